"""The columns ``S^k e_i`` of a dense operator's powers for new items, rented or bought.

A warm-started spreading fit on a dense graph reads its first steps off the columns
``S^k e_i`` (k = 1..depth) of the labeled items (:class:`activeprop.propagation.
PowerColumns` keeps them). A new item's columns come from ``depth - 1`` thin products of
the operator with the new items' unit columns (rent: about what one plain fit costs, so a
round never pays more than the plain iteration would), or, once bought, from the powers
``S`` and ``S^2``: read off for k <= 2, then ``S^2`` times the last two, three products of
twice the width; or, once those are bought too, from ``S .. S^4``: read off for k <= 4,
then one product. The square costs one symmetric dense product, the cube and the fourth
power three times that. Each is bought once what it would have saved on the rounds on this
graph (timed) reaches what it costs on this machine (its measured rates:
:mod:`activeprop.calibration`), or earlier when a runner's :meth:`OperatorPowers.plan` says
the rounds to come will.

Why in two steps: a thin product costs about a pass over the n x n matrix whatever its
width, so the cube and the fourth power save about two passes a fit, and pay back only over
a hundred fits or so. On the digits example (1,797 items, 40 rounds of 5; AMD EPYC) all
four powers at once took 235-278 ms and the square 74 ms; a round took 6.9 ms against 4.1,
and the whole command 0.558 s against 0.640 s (medians of 20 alternating runs, faster in
18; the same output).
"""

from __future__ import annotations

import time

import numpy as np

from .calibration import fourth_power_seconds, machine_costs, powers_pay, powers_seconds
from .numerics import ExactProducts


class OperatorPowers:
    """The powers of a dense operator ``S`` bought so far, what renting columns instead has
    cost, and the decision to buy (see the module's docstring).

    ``kept``: None until the square is bought, then ``[S, S^2]``, then ``[S, .., S^4]``.
    ``costs``: this machine's rates (:func:`activeprop.calibration.machine_costs`), read
    when first needed; a test may set made-up ones.
    """

    def __init__(self, operator: "np.ndarray | ExactProducts"):
        # products with the operator S, free of subnormal arithmetic
        self.products = operator if isinstance(operator, ExactProducts) else \
            ExactProducts(operator)
        self.operator = self.products.exact
        self.kept: list[np.ndarray] | None = None
        self.kept_errors: list[float] = []  # how far each kept power can be from the exact
        self._far: ExactProducts | None = None  # products with the last kept power
        self.build_seconds = 0.0
        self.rented, self.rented_seconds = 0, 0.0  # products rented, the seconds they took
        # fits since the square alone was bought, and the seconds its products took
        self.squared_fits, self.squared_seconds = 0, 0.0
        self.costs = None
        self.fits, self.planned = 0, 0  # fits run / fits a runner announced to come

    @property
    def nbytes(self) -> int:
        """Memory held by the kept powers and the products' copies of them."""
        copies = self.products.nbytes + (self._far.nbytes if self._far is not None else 0)
        return sum(p.nbytes for p in self.kept or ()) + copies

    @property
    def worth(self) -> float:
        """What buying the square costs on this machine, in seconds (measured rates)."""
        return powers_seconds(len(self.operator), self._costs())

    def plan(self, n_fits: int) -> None:
        """Announce ``n_fits`` more fits on this graph (a runner that knows its rounds)."""
        self.planned += n_fits

    def start_fit(self) -> None:
        """Buy what has paid by now, and count the fit (it spends one announced fit)."""
        if self.kept is None and self._pays():
            self._buy_square()
        elif self.kept is not None and len(self.kept) == 2 and self._fourth_pays():
            self._buy_fourth_power()
        self.fits += 1
        if self.kept is not None and len(self.kept) == 2:
            self.squared_fits += 1
        self.planned = max(self.planned - 1, 0)

    def columns(self, new: list[int], depth: int) -> tuple[np.ndarray, np.ndarray]:
        """``S^k e_i`` for the ``new`` items, k = 1..depth, shape (len(new), depth, n), and
        for each k how far any entry can be from the exact one (negligible entries were
        dropped on the way: :mod:`activeprop.numerics`)."""
        fresh = np.empty((len(new), depth, len(self.operator)))
        errors = np.zeros(depth)
        start = time.perf_counter()
        if self.kept is None:
            self._rent(new, fresh, errors)
            self.rented += depth - 1
            self.rented_seconds += time.perf_counter() - start
            return fresh, errors
        self._read_off(new, fresh, errors)
        if len(self.kept) == 2:
            self.squared_seconds += time.perf_counter() - start
        return fresh, errors

    def _rent(self, new: list[int], fresh: np.ndarray, errors: np.ndarray) -> None:
        """Fill ``fresh`` and ``errors`` by products with the new unit columns."""
        block = self.operator[:, new]
        fresh[:, 0] = block.T
        for k in range(1, fresh.shape[1]):
            block, errors[k] = self.products.fast_product(block, errors[k - 1])
            fresh[:, k] = block.T

    def _read_off(self, new: list[int], fresh: np.ndarray, errors: np.ndarray) -> None:
        """Fill ``fresh`` and ``errors`` from the kept powers: read off for k <= m, then
        ``S^m`` times the last m columns (m = 2 or 4)."""
        n, kept = len(self.operator), len(self.kept)
        for k, power in enumerate(self.kept):
            fresh[:, k] = power[new]  # rows: the powers are symmetric, rows are contiguous
        errors[:kept] = self.kept_errors
        for k in range(kept, fresh.shape[1], kept):
            near = fresh[:, k - kept:k].reshape(-1, n)
            far, error = self._far.fast_product(np.ascontiguousarray(near.T),
                                                errors[k - kept:k].max())
            fresh[:, k:k + kept] = far.T.reshape(len(new), -1, n)
            errors[k:k + kept] = error

    def _costs(self):
        return self.costs or machine_costs()

    def _pays(self) -> bool:
        """Whether the rent paid so far, and what the announced fits would pay at the same
        rate, cost at least the square (:func:`activeprop.calibration.powers_pay`)."""
        coming = self._announced(self.rented_seconds, self.fits)
        return powers_pay(len(self.operator), self.rented_seconds, coming, self._costs())

    def _fourth_pays(self) -> bool:
        """Whether the cube and the fourth power would have saved so far, with what the
        announced fits would save at the same rate, at least what they cost: a fit's new
        columns then take one product where they take three from the square alone, each
        about a pass over the matrix, so they save two thirds of those products' time."""
        saved = self.squared_seconds * 2 / 3
        return saved + self._announced(saved, self.squared_fits) >= fourth_power_seconds(
            len(self.operator), self._costs())

    def _announced(self, seconds: float, fits: int) -> float:
        """``seconds`` spent over ``fits`` fits, carried on at that rate over the fits a
        runner announced (:meth:`plan`)."""
        return seconds / fits * self.planned if fits else 0.0

    def _buy_square(self) -> None:
        """``S^2`` as ``S S^T`` (BLAS's symmetric product, half the work), free of
        subnormal arithmetic (numerics)."""
        start = time.perf_counter()
        square, square_error = self.products.fast_square()
        self.kept, self.kept_errors = [self.operator, square], [0.0, square_error]
        self._far = ExactProducts(square, square_error)
        self.build_seconds = time.perf_counter() - start

    def _buy_fourth_power(self) -> None:
        """``S^3`` as ``S S^2`` and ``S^4`` as ``S^2 (S^2)^T`` (symmetric), free of
        subnormal arithmetic (numerics)."""
        start = time.perf_counter()
        cube, cube_error = self.products.fast_product(self.kept[1], self.kept_errors[1])
        fourth, fourth_error = self._far.fast_square()
        self.kept += [cube, fourth]
        self.kept_errors += [cube_error, fourth_error]
        self._far = ExactProducts(fourth, fourth_error)
        self.build_seconds += time.perf_counter() - start
