"""A converged solve's scores as the pool's label distributions, in one compiled pass.

The converged solvers work in the graph's order (:attr:`activeprop.graph.Graph.order`).
Their scores used to be put back in pool order, then normalised row by row, then read
twice more for each item's predicted class and confidence: five passes over an
(items x classes) array, 200 ms at 1,000,000 x 10 (numpy; and the labeler read the
argmax and the maximum once more). Here one loop over the pool's rows reads each row of
the scores where the graph order keeps it, adds them up and writes its distribution,
predicted column and confidence: 55 ms, on the row blocks of every core (25 ms since
it gathers a block of rows before dividing them: :func:`_distribute`), and the same
numbers bit for bit. The row sums are added in numpy's own order (:func:`_pairwise_sum`),
so they are ``F.sum(axis=1)``'s, which took 25 ms on its own (a call of numpy's inner loop
per row of ten); and a division is a division.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .calibration import machine_costs
from .column_room import empty_like
from .graph import on_every_core, row_blocks


def pool_distributions(F: np.ndarray, rows: np.ndarray, out: np.ndarray | None = None):
    """Row ``i`` of the result is row ``rows[i]`` of the non-negative scores ``F``
    divided by its sum; a row summing to zero is uniform and flagged unreached. The
    distributions are written into ``out`` when given (a float64 array of their shape).

    Returns
    -------
    distributions : ndarray (len(rows), n_classes)
    unreached : ndarray of bool
    best : ndarray of int
        Each row's column of largest probability (the first of ties, as ``np.argmax``).
    confidence : ndarray
        That probability.
    """
    F = np.ascontiguousarray(F, dtype=np.float64)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    n, k = len(rows), F.shape[1]
    sums = F.sum(axis=1) if k > WIDEST_RUN else np.empty(0)  # else summed in the loop
    if out is None:  # with the scores' room for more classes (column_room)
        out = empty_like(F) if len(F) == n else np.empty((n, k))
    P = out
    unreached = np.empty(n, dtype=np.bool_)
    best = np.empty(n, dtype=np.int64)
    confidence = np.empty(n)
    # a row reads k scores and writes k probabilities: two element-wise passes' worth
    per_row = 2 * k * machine_costs().stream_item
    on_every_core(lambda part: _distribute(F, sums, rows, part.start, part.stop, P, unreached,
                                           best, confidence), row_blocks(n, per_row))
    return P, unreached, best, confidence


def update_pool_distributions(F: np.ndarray, rows: np.ndarray, items: np.ndarray,
                              previous: tuple, out: np.ndarray | None = None,
                              in_place: bool = False):
    """:func:`pool_distributions`' results after the scores changed on the rows ``rows``
    of ``F`` only: ``previous`` (the results before) copied, with the entries of the pool
    ``items`` (those rows' items) computed again. Copied, not changed in place, unless
    ``in_place``: callers keep the last fit's distributions (to see what moved); the
    distributions are copied into ``out`` when given. Returns None when ``F`` has more
    than :data:`WIDEST_RUN` classes (rows that wide are summed by numpy, per array)."""
    if F.shape[1] > WIDEST_RUN:
        return None
    if in_place:
        P, unreached, best, confidence = previous
    else:
        if out is None:
            P = np.copy(previous[0])
        else:
            P = out
            np.copyto(P, previous[0])
        unreached, best, confidence = (np.copy(array) for array in previous[1:])
    _distribute_at(np.ascontiguousarray(F, dtype=np.float64),
                   np.ascontiguousarray(rows, dtype=np.int64),
                   np.ascontiguousarray(items, dtype=np.int64), P, unreached, best, confidence)
    return P, unreached, best, confidence


def pool_distributions_over(F: np.ndarray, rows: np.ndarray, previous: np.ndarray):
    """:func:`pool_distributions` written over ``previous`` (an earlier fit's
    distributions of the same shape, C-contiguous float64, which nothing else reads any
    more), and the rows where they moved (:func:`moved_rows`' answer, found as each row is
    written). Each row is computed in a small buffer, compared and then written: no
    second array of the pool's distributions, the lone cluster worker's highest point in
    its rounds (80 B an item of the 725 it held there; docs/benchmarks.md).

    Returns ((distributions, unreached, best, confidence), moved rows)."""
    F = np.ascontiguousarray(F, dtype=np.float64)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    n, k = len(rows), F.shape[1]
    assert previous.shape == (n, k) and previous.flags.c_contiguous, "not the same shape"
    sums = F.sum(axis=1) if k > WIDEST_RUN else np.empty(0)
    unreached, moved = np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.bool_)
    best, confidence = np.empty(n, dtype=np.int64), np.empty(n)
    per_row = 3 * k * machine_costs().stream_item  # (a row read twice, written once)
    on_every_core(lambda part: _distribute_over(F, sums, rows, part.start, part.stop,
                                                previous, unreached, best, confidence,
                                                moved), row_blocks(n, per_row))
    return (previous, unreached, best, confidence), np.flatnonzero(moved)


def moved_rows(P: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """The rows where ``P`` differs from ``previous`` (the same shape) in any entry, on
    every core: what a fit's distributions changed since the last fit's, when no step of
    the fit names those rows (after a local solve, a fill made afresh leaves most far rows
    as they were, bit for bit). A query used to compare a copy of them it kept."""
    moved = np.empty(len(P), dtype=np.bool_)
    per_row = 2 * P.shape[1] * machine_costs().stream_item  # two rows read
    on_every_core(lambda part: _compare_rows(P, previous, part.start, part.stop, moved),
                  row_blocks(len(P), per_row))
    return np.flatnonzero(moved)


@njit(cache=True, nogil=True)
def _compare_rows(P, previous, start, stop, moved):
    for i in range(start, stop):
        moved[i] = False
        for j in range(P.shape[1]):
            if P[i, j] != previous[i, j]:
                moved[i] = True
                break


# Rows gathered at a time before they are divided: small enough to stay in a core's cache
# (64 KB, under any current core's L2) between the two loops.
GATHERED_BYTES = 64 * 1024


@njit(cache=True, nogil=True)  # compiled on first use, cached on disk for the next process
def _distribute(F, sums, rows, start, stop, P, unreached, best, confidence):
    """The rows ``start`` to ``stop`` of :func:`pool_distributions`' results (``sums``: the
    rows' sums, or empty to add them here).

    The rows ``rows`` lie all over ``F`` (the solver's order is not the pool's), and a
    loop that divides each row as it reads it keeps few reads in flight: each waits behind
    the divisions before it. So a block of rows is first copied into its place in ``P``
    (reads that wait for nothing), then divided there: 49 ms against 28 ms at 1,000,000 x
    10 on two cores (``/tmp`` script); the same bits."""
    k = F.shape[1]
    block = max(GATHERED_BYTES // (8 * k), 1)
    for first in range(start, stop, block):
        last = min(first + block, stop)
        for i in range(first, last):
            row = rows[i]
            for j in range(k):
                P[i, j] = F[row, j]
        for i in range(first, last):
            total = sums[rows[i]] if len(sums) else _pairwise_sum(P, i, k)
            _normalize_row(P, i, total, unreached, best, confidence)


@njit(cache=True, nogil=True)
def _distribute_over(F, sums, rows, start, stop, P, unreached, best, confidence, moved):
    """:func:`_distribute` into a buffer of a block of rows, each then compared with its
    row of ``P`` (``moved``) and written there."""
    k = F.shape[1]
    block = max(GATHERED_BYTES // (8 * k), 1)
    gathered = np.empty((block, k))
    gathered_unreached = np.empty(block, dtype=np.bool_)
    gathered_best, gathered_confidence = np.empty(block, dtype=np.int64), np.empty(block)
    for first in range(start, stop, block):
        last = min(first + block, stop)
        for i in range(first, last):
            row = rows[i]
            for j in range(k):
                gathered[i - first, j] = F[row, j]
        for i in range(first, last):
            g = i - first
            total = sums[rows[i]] if len(sums) else _pairwise_sum(gathered, g, k)
            _normalize_row(gathered, g, total, gathered_unreached, gathered_best,
                           gathered_confidence)
            differs = False  # (no branch in the loops: both are vectorised)
            for j in range(k):
                differs |= gathered[g, j] != P[i, j]
            moved[i] = differs
            for j in range(k):
                P[i, j] = gathered[g, j]
            unreached[i], best[i] = gathered_unreached[g], gathered_best[g]
            confidence[i] = gathered_confidence[g]


@njit(cache=True, nogil=True)
def _distribute_at(F, rows, items, P, unreached, best, confidence):
    """Entry ``items[i]`` of the results from row ``rows[i]`` of ``F``."""
    k = F.shape[1]
    for i in range(len(rows)):
        for j in range(k):
            P[items[i], j] = F[rows[i], j]
        total = _pairwise_sum(P, items[i], k)
        _normalize_row(P, items[i], total, unreached, best, confidence)


@njit(cache=True, nogil=True, inline="always")  # called per row
def _normalize_row(P, i, total, unreached, best, confidence):
    """Entry ``i`` of the results from row ``i`` of ``P``, the scores, whose sum is
    ``total``: divided in place. The division and the choice of the largest entry are
    separate loops, over the one array: the division's is then vectorised (one loop doing
    both, or reading another array that may be the same one, took 38-54 ms for a pass over
    1,000,000 x 10 on two cores against 22-28 ms; ``/tmp`` script, the same bits)."""
    k = P.shape[1]
    unreached[i] = total == 0.0
    if total == 0.0:
        for j in range(k):
            P[i, j] = 1.0 / k
    else:
        for j in range(k):
            P[i, j] = P[i, j] / total
    top, column = -1.0, 0
    for j in range(k):
        if P[i, j] > top:
            top, column = P[i, j], j
    best[i], confidence[i] = column, top


# numpy's order splits runs of over 128 values in halves, recursively; a recursive function
# loaded from numba's disk cache crashed the process (segmentation fault, numba 0.68), so
# rows that wide take numpy's own sums instead
WIDEST_RUN = 128


@njit(cache=True, nogil=True, inline="always")  # called per row
def _pairwise_sum(values, row, n):
    """The sum of ``values[row, :n]`` (``n <= WIDEST_RUN``) added as numpy adds a contiguous
    run (its ``pairwise_sum``: in order below 8 values, else in 8 interleaved partial sums),
    so that it is ``F.sum(axis=1)``'s to the bit: every solver's distributions are
    normalised by the same sums. (Read by row and column, not from a slice of the row: a
    slice per row took a third of a pass over 1,000,000 x 10.)"""
    total = 0.0
    if n < 8:
        for j in range(n):
            total += values[row, j]
        return total
    # the partial sums are scalars: an array per row would cost its allocation
    s0, s1, s2, s3 = values[row, 0], values[row, 1], values[row, 2], values[row, 3]
    s4, s5, s6, s7 = values[row, 4], values[row, 5], values[row, 6], values[row, 7]
    j = 8
    while j < n - n % 8:
        s0, s1 = s0 + values[row, j], s1 + values[row, j + 1]
        s2, s3 = s2 + values[row, j + 2], s3 + values[row, j + 3]
        s4, s5 = s4 + values[row, j + 4], s5 + values[row, j + 5]
        s6, s7 = s6 + values[row, j + 6], s7 + values[row, j + 7]
        j += 8
    total = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    for j in range(j, n):
        total += values[row, j]
    return total
