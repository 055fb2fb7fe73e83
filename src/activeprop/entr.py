"""``scipy.special.entr`` (``-x log x``) to the bit, importing scipy only when that pays.

The digits example breaks ties between entropies to the last bit, so the entropy strategy
computes ``-x log x`` with the log scipy uses: the C library's. numpy's float64 log is the C
library's too, except where numpy has its own vectorised code (AVX-512), which differs in
the last bit for about 0.3% of inputs. There the entries go through Python's ``math.log``
(the C library's function, ~50 ns an entry) until that has cost what importing
scipy.special does on this machine (measured once and kept,
:mod:`activeprop.calibration`), and through scipy's ``entr`` after: a ski rental. The
example's 40 queries of 18,000 entries take about 2 ms each and never pay the import; a
long run pays at most twice the better of the two.

The import's cost is measured, not a constant: 75-90 ms on an AMD EPYC, 230-275 ms on an
Intel Xeon (where scipy.special pulls in numpy.f2py through scipy's array-API layer), and
43-66 ms there once scipy.sparse is loaded, as a kNN graph's solves load it. With
the EPYC's 80 ms as the bound, the example's command on the Xeon logged 81 ms of entries,
then paid the import too: 1.30-1.64 s in all, against 0.99-1.22 s with the Xeon's own
bound, which it never reaches (issue 18, item 2; docs/benchmarks.md).
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np


def _numpy_has_own_log() -> bool:
    """Whether numpy dispatches float64 log to its AVX-512 code rather than the C library."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # another numpy layout: assume its own code, take the C library's
        return True
    return bool(__cpu_features__.get("AVX512F", True))


NUMPY_HAS_OWN_LOG = _numpy_has_own_log()


class CLibraryLogs:
    """``-x log x`` with the C library's log: element by element while that has cost less
    than ``import_seconds`` in all (None: this machine's measured cost of importing
    scipy.special, as this process stands), then scipy's ``entr`` (imported once)."""

    def __init__(self, import_seconds: float | None = None):
        self._import_seconds = import_seconds
        self.spent = 0.0  # seconds taken by the element-by-element logs so far

    @property
    def import_seconds(self) -> float:
        """The rental's bound: what importing scipy.special would cost this process now, in
        seconds. Much less once scipy.sparse is loaded (a kNN graph's solves load it): 43-66
        against 220-252 ms on an Intel Xeon. With the larger bound there, a 70,000-item
        pool's entropies went through ``math.log`` for eight rounds, 35 ms each."""
        if self._import_seconds is not None:
            return self._import_seconds
        from .calibration import machine_costs

        costs = machine_costs()
        return costs.scipy_special_import_after_sparse if "scipy.sparse" in sys.modules \
            else costs.scipy_special_import

    def entr(self, x: np.ndarray) -> np.ndarray:
        """``scipy.special.entr(x)``, the same bits."""
        # paid for by now, or already imported (by the caller, a test): free
        if "scipy.special" in sys.modules or self.spent >= self.import_seconds:
            from scipy import special

            return special.entr(x)
        start = time.perf_counter()
        terms = entr_by_math_log(x)
        self.spent += time.perf_counter() - start
        return terms


def entr_by_math_log(x: np.ndarray) -> np.ndarray:
    """scipy's ``entr``: ``-x log x`` for x > 0, 0 at 0, -inf below 0, nan for nan; the
    logs by ``math.log``, one entry at a time."""
    terms = np.zeros_like(x, dtype=np.float64)
    positive = x > 0
    values = x[positive]
    logs = np.fromiter(map(math.log, values.tolist()), dtype=np.float64, count=len(values))
    terms[positive] = -values * logs
    terms[x < 0] = -np.inf
    terms[np.isnan(x)] = np.nan
    return terms


def entr_by_numpy_log(x: np.ndarray) -> np.ndarray:
    """scipy's ``entr`` by numpy's log (its bits where that log is the C library's)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = -x * np.log(x)
    terms[x == 0] = 0.0
    terms[x < 0] = -np.inf
    return terms


_LOGS = CLibraryLogs()


def entr(x: np.ndarray) -> np.ndarray:
    """``scipy.special.entr(x)`` to the bit, at the least cost this process can get it."""
    return _LOGS.entr(x) if NUMPY_HAS_OWN_LOG else entr_by_numpy_log(x)
