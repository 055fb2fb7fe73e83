"""Each row's two largest probabilities, in one compiled pass on every core.

Margin sampling reads the gap between an item's two most likely classes. numpy finds them
with ``np.partition(P, -2, axis=1)``, which runs its selection once per row: at 1,000,000
x 10 that took 104-130 ms on this project's Intel Xeon, most of a labeler's queue after a
label (60-140 ms; docs/benchmarks.md). A loop that keeps the two largest values of each
row as it reads it does the same work in one pass. The values it picks are the same
entries of ``P``, so the gaps are the same bits.

The loop is compiled with numba. Only processes that have already loaded numba use it (a
large pool's solves do: :mod:`activeprop.fill`, :mod:`activeprop.push`); small pools,
whose queues take a few milliseconds with numpy, do not pay numba's import.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .calibration import machine_costs
from .graph import on_every_core, row_blocks


def top_two_gaps(P: np.ndarray) -> np.ndarray:
    """``second - first`` for each row of the 2-D float array ``P`` with at least two
    columns, where ``first`` is the row's largest entry and ``second`` its next (equal to
    ``first`` when the largest appears twice): ``-(top[:, 1] - top[:, 0])`` with ``top =
    np.partition(P, -2, axis=1)[:, -2:]``, to the bit, for rows without NaN."""
    P = np.ascontiguousarray(P, dtype=np.float64)
    gaps = np.empty(len(P))
    per_row = P.shape[1] * machine_costs().stream_item
    on_every_core(lambda part: _gaps(P, part.start, part.stop, gaps),
                  row_blocks(len(P), per_row))
    return gaps


@njit(cache=True, nogil=True)  # compiled on first use, cached on disk for the next process
def _gaps(P, start, stop, gaps):
    # Without branches: the comparisons of random probabilities are unpredictable, and a
    # loop that branched on them took 58-65 ms a core at 1,000,000 x 10 against 16 ms.
    # (A value equal to the largest becomes the second.)
    for i in range(start, stop):
        first, second = P[i, 0], -np.inf
        for j in range(1, P.shape[1]):
            value = P[i, j]
            second = max(second, min(first, value))
            first = max(first, value)
        gaps[i] = -(first - second)
