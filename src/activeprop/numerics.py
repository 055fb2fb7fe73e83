"""Floating-point hygiene: no product in the engine runs into subnormal numbers.

An rbf graph's weights ``exp(-gamma d^2)`` span hundreds of orders of magnitude, and their
products (the operator's powers, its products with the iterates) fall below the smallest
normal double, 2.2e-308, into subnormal numbers. Many CPUs (Intel's among them) compute
with those through slow microcode: one product of scikit-learn's digits operator with
itself took 1.8 s on a Xeon against 0.09 s once the entries below 1e-150 were dropped, and
a product with 40 of its columns 44 ms against 3.7 ms.

Dropping is not free, though: an item far from every other has only tiny weights, and a
group of items joined to the rest by tiny edges alone gets its scores through them, their
ratios deciding its label. So there are two tools here:

* :class:`ExactProducts`, for the iterations that must equal scikit-learn's (spreading
  and propagation, their powers): products with the negligible entries dropped, checked
  row by row against a bound on what was dropped; a row the bound cannot vouch for (its
  scores are themselves that small) is recomputed from the exact rows. Everything there
  is non-negative, so nothing cancels and the bound is a true one.
* :func:`flush_negligible`, for the operators of the converged solvers (conjugate
  gradients), whose answers are only as exact as their tolerance and whose rows below
  precision are filled in afterwards: the negligible entries are simply dropped (an
  affinity's where its normalised value is negligible), and so are the search vectors'
  entries negligible beside their column's largest (:func:`flush_negligible_in_rows`).
"""

from __future__ import annotations

import sys

import numpy as np

NEGLIGIBLE = 1e-150  # the product of two entries at least this large is a normal double
# Scaled thresholds never go below this: an entry there is at the edge of the double range,
# where scikit-learn's own arithmetic on it already rounds to subnormals.
FLOOR = 1e-300
SMALLEST_NORMAL = np.finfo(np.float64).tiny
# A row is taken as exact when what was dropped from it is below this share of its sum:
# far below double precision (2^-53), and errors relative to a row's sum do not grow
# through products of non-negative matrices, so a thousand iterations stay below 1e-20.
GUARD = 2.0**-80
BLOCK_ENTRIES = 2**20  # entries per block of a dense pass (a whole mask of a big one is GBs)


def flush_negligible(matrix, scale: np.ndarray | None = None, in_place: bool = True):
    """Set the entries of ``matrix`` (a dense array or a scipy sparse matrix) below
    :data:`NEGLIGIBLE` in magnitude to zero; with ``scale`` (one per row and column, a
    square matrix), the entries ``|m_ij| < max(NEGLIGIBLE * scale_i * scale_j, FLOOR)``.
    Returns it; with ``in_place=False`` a copy when anything is dropped, else itself
    (one pass either way)."""
    if _clearly_none(matrix, scale):
        return matrix
    if not isinstance(matrix, np.ndarray):
        matrix = matrix.tocsr()
        threshold = NEGLIGIBLE if scale is None else np.maximum(
            NEGLIGIBLE * np.repeat(scale, np.diff(matrix.indptr)) * scale[matrix.indices],
            FLOOR)
        dropped = np.abs(matrix.data) < threshold
        if not dropped.any():
            return matrix
        matrix = matrix if in_place else matrix.copy()
        matrix.data[dropped] = 0.0
        matrix.eliminate_zeros()
        return matrix
    for rows in _row_blocks(matrix):
        dropped = (matrix[rows] != 0) & (np.abs(matrix[rows]) < _threshold(scale, rows))
        if dropped.any():
            if not in_place:
                matrix, in_place = matrix.copy(), True
            matrix[rows][dropped] = 0.0
    return matrix


def _clearly_none(matrix, scale) -> bool:
    """Whether every non-zero entry is above the largest threshold (a kNN graph's weights
    of 1, say): one pass over the values, no threshold per entry."""
    values = matrix if isinstance(matrix, np.ndarray) else matrix.data
    if values.size == 0:
        return True
    largest = NEGLIGIBLE if scale is None else \
        max(NEGLIGIBLE * float(scale.max()) ** 2, FLOOR)
    magnitudes = np.abs(values)
    return float(magnitudes.min()) >= largest


def flush_negligible_in_rows(F: np.ndarray) -> np.ndarray:
    """Zero the entries of each row of ``F`` below :data:`NEGLIGIBLE` times the row's
    largest magnitude, in place: they cannot move the row's distribution."""
    magnitudes = np.abs(F)
    F[magnitudes < np.maximum(NEGLIGIBLE * magnitudes.max(axis=1, keepdims=True), FLOOR)] = 0.0
    return F


class ExactProducts:
    """``A @ B`` for a non-negative dense ``A`` and non-negative blocks ``B``, without
    subnormal arithmetic and equal to the plain product to rounding.

    ``A``'s entries below :data:`NEGLIGIBLE` are dropped once (a copy, ``fast``), and so
    are ``B``'s below ``NEGLIGIBLE`` times its largest entry, so that no product of two
    factors underflows. An entry of row ``j`` of ``fast @ B`` then falls short of the exact
    one by at most ``slack_j * max(B)``, with ``slack_j`` what ``A``'s row lost plus
    ``NEGLIGIBLE`` times its row sum, and the row's sum by that times B's columns: :meth:`multiply` recomputes from ``A``'s exact rows
    the rows whose sum is not :data:`GUARD` times above that. :meth:`fast_product` and
    :meth:`fast_square` skip that check and return a bound per entry instead, for
    blocks whose columns are used apart (the caller checks what it sums from them).

    Parameters
    ----------
    exact : ndarray of shape (n, n)
        ``A`` (kept, not copied; its exact rows are read from it).
    error : float
        How far any entry of ``exact`` may be from the true ``A`` (a power computed by
        these products), 0 for an operator built from the graph.
    """

    def __init__(self, exact: np.ndarray, error: float = 0.0):
        self.exact, self.error = exact, error
        kept = exact >= NEGLIGIBLE
        # multiplying by the mask: one pass, no subnormal arithmetic (np.where and
        # summing the dropped entries both touch the subnormals)
        self.fast = np.multiply(exact, kept)
        self.fast_row_sums = self.fast.sum(axis=1)
        lost = NEGLIGIBLE * (len(exact) - np.count_nonzero(kept, axis=1))  # at most
        self.slack = lost + NEGLIGIBLE * self.fast_row_sums + len(exact) * error
        self.rows_recomputed = 0  # rows the bound could not vouch for, over all products

    @property
    def nbytes(self) -> int:
        return self.fast.nbytes

    def __matmul__(self, B: np.ndarray) -> np.ndarray:
        return self.multiply(B)

    def multiply(self, B: np.ndarray, nonzero_rows: np.ndarray | None = None) -> np.ndarray:
        """``A @ B``, every row equal to the plain product's to rounding relative to the
        row's sum; with ``nonzero_rows``, ``B`` is zero outside those rows (only those
        columns of ``A`` are read)."""
        columns = slice(None) if nonzero_rows is None else nonzero_rows
        B = B[columns]
        kept, scale = _without_negligible(B)
        product = self.fast[:, columns] @ kept
        # a row sum adds up to one such shortfall per column of B
        unsure = np.flatnonzero(product.sum(axis=1) * GUARD < self.slack * scale * B.shape[1])
        if len(unsure):
            product[unsure] = self.exact[unsure][:, columns] @ B
            self.rows_recomputed += len(unsure)
        return product

    def fast_product(self, B: np.ndarray, error: float = 0.0) -> tuple[np.ndarray, float]:
        """``fast @ B`` and a bound on how far any entry of it is from the true product,
        given that ``B``'s entries are at most ``error`` from theirs."""
        kept, scale = _without_negligible(B)
        bound = float(self.slack.max()) * scale + float(self.fast_row_sums.max()) * error
        return self.fast @ kept, bound

    def fast_square(self) -> tuple[np.ndarray, float]:
        """``A A^T`` (BLAS's symmetric product: half the work of a general one) and a bound
        on how far any entry of it is from the true one."""
        scale = float(self.fast.max()) if self.fast.size else 0.0
        gap = NEGLIGIBLE + self.error  # how far an entry of ``fast`` is from the truth
        bound = float(self.slack.max()) * scale + float(self.fast_row_sums.max()) * gap
        return self.fast @ self.fast.T, bound


def _without_negligible(B: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative ``B`` with its entries below NEGLIGIBLE times its largest dropped (a
    copy, unless there are none), and that largest entry."""
    scale = float(B.max()) if B.size else 0.0
    kept = B >= NEGLIGIBLE * scale
    return (B if kept.all() else np.multiply(B, kept)), scale


def count_subnormal(values) -> int:
    """The number of subnormal entries of an array or a scipy sparse matrix."""
    sparse = sys.modules.get("scipy.sparse")
    data = values.data if sparse is not None and sparse.issparse(values) else values
    magnitudes = np.abs(np.asarray(data))
    return int(np.count_nonzero((magnitudes > 0) & (magnitudes < SMALLEST_NORMAL)))


def _row_blocks(matrix: np.ndarray):
    rows = max(1, BLOCK_ENTRIES // max(matrix[0].size, 1)) if matrix.ndim > 1 else len(matrix)
    return (slice(start, start + rows) for start in range(0, len(matrix), rows))


def _threshold(scale, rows: slice):
    if scale is None:
        return NEGLIGIBLE
    return np.maximum(NEGLIGIBLE * scale[rows, None] * scale[None, :], FLOOR)
