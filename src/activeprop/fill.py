"""Scores for the items a spreading solve leaves below its precision.

Spreading scores decay like ``alpha ** hops``: far from every label they fall below the
solver's relative precision and their sign and ratios mean nothing. Such rows are filled
layer by layer with the affinity-weighted sum of their neighbours' scores, the next term of
the propagation, rescaled to ``floor``. Items in components with no label stay zero (the
caller flags them as unreached).

On a sparse graph the fill is a breadth-first walk out of the rows that hold scores: each
empty row is read once, in the layer where a neighbour first has scores. Its steps are loops
over single rows, compiled with numba and run on row blocks in threads (they release the
GIL). With numpy the walk took passes over arrays of rows whose fixed costs decided: at
70,000 x 784, where 56,000 of 70,000 rows are below the floor at alpha 0.2, 35-42 ms of a
74 ms round; at 1,000,000 x 64, where 989,000 are, 620 ms of 1.08 s (issue 18;
docs/benchmarks.md has the compiled walk's figures).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .graph import on_every_core, row_blocks, seconds_per_row


def fill_below_precision(W, F: np.ndarray, reached: np.ndarray, floor: float) -> np.ndarray:
    """Give reachable items whose scores are lost in the solver's round-off a distribution.

    ``W`` is the graph's symmetric affinity: a dense array, or a CSR matrix (or a
    :class:`activeprop.graph.ThreadedMatrix` holding one). ``F`` (n, k) is changed in place
    and returned: negative entries (round-off) become zero and the rows of ``reached``
    items whose largest score is at most ``floor`` are filled.
    """
    matrix = getattr(W, "matrix", W)
    if isinstance(matrix, np.ndarray):
        return _fill_dense(matrix, F, reached, floor)
    F = np.ascontiguousarray(F, dtype=np.float64)
    _fill_sparse(matrix, F, np.ascontiguousarray(reached, dtype=np.bool_), float(floor))
    return F


def _fill_dense(W: np.ndarray, F: np.ndarray, reached: np.ndarray, floor: float) -> np.ndarray:
    """The fill on a dense graph: it links (nearly) every pair, so one product of the empty
    rows per layer, and rarely a second layer (affinities that underflowed to zero)."""
    F = np.maximum(F, 0.0, out=F)
    empty = reached & (F.max(axis=1) <= floor)
    F[empty] = 0.0
    rows = np.flatnonzero(empty)
    while len(rows):
        incoming = W[rows] @ F
        sums = incoming.sum(axis=1)
        filled = sums > 0
        if not filled.any():
            break
        F[rows[filled]] = incoming[filled] * (floor / sums[filled, None])
        rows = rows[~filled]
    return F


def _fill_sparse(matrix, F: np.ndarray, reached: np.ndarray, floor: float) -> None:
    """The walk on a CSR graph, in place: layer after layer, the empty rows next to the
    last layer's rows (the rows with scores, first) take their neighbours' weighted
    scores, each row reading the scores as the layer before left them."""
    indptr, indices = matrix.indptr, matrix.indices
    data = np.asarray(matrix.data, dtype=np.float64)
    empty = np.zeros(len(F), dtype=np.bool_)
    sources = _clip_and_find_empty(F, reached, floor, empty)
    listed = np.zeros(len(F), dtype=np.bool_)
    incoming = np.empty((int(empty.sum()), F.shape[1]))
    # a row of the walk reads its graph row like a row of a sparse product
    per_row = seconds_per_row(matrix)
    while len(sources):
        on_every_core(lambda part: _list_empty_neighbours(indptr, indices, sources[part],
                                                          empty, listed),
                      row_blocks(len(sources), per_row))
        rows = np.flatnonzero(listed)
        listed[rows] = False
        on_every_core(lambda part: _weigh_neighbours(indptr, indices, data, F, empty,
                                                     rows[part], incoming[part], floor),
                      row_blocks(len(rows), per_row))
        sources = _write_filled(F, empty, rows, incoming)


# The steps below are compiled on first use and cached on disk for the next process. Their
# loops over the classes are written out: numba allocates an array for a slice expression.

@njit(cache=True, nogil=True)
def _clip_and_find_empty(F, reached, floor, empty):
    """Zero F's negative entries; mark in ``empty`` (and zero) the reached rows whose
    largest score is at most ``floor``; return the other reached rows."""
    n, k = F.shape
    sources = np.empty(n, dtype=np.int64)
    n_sources = 0
    for row in range(n):
        top = 0.0
        for j in range(k):
            if F[row, j] < 0.0:
                F[row, j] = 0.0
            top = max(top, F[row, j])
        if reached[row] and top <= floor:
            empty[row] = True
            for j in range(k):
                F[row, j] = 0.0
        elif reached[row]:
            sources[n_sources] = row
            n_sources += 1
    return sources[:n_sources]


@njit(cache=True, nogil=True)
def _list_empty_neighbours(indptr, indices, sources, empty, listed):
    """Mark in ``listed`` the empty neighbours of ``sources`` (threads mark alike: every
    write is True)."""
    for row in sources:
        for position in range(indptr[row], indptr[row + 1]):
            if empty[indices[position]]:
                listed[indices[position]] = True


@njit(cache=True, nogil=True)
def _weigh_neighbours(indptr, indices, data, F, empty, rows, incoming, floor):
    """Row i of ``incoming``: the weighted scores of ``rows[i]``'s neighbours that have
    any, rescaled to sum to ``floor`` (all zero when they sum to zero)."""
    k = F.shape[1]
    for i in range(len(rows)):
        for j in range(k):
            incoming[i, j] = 0.0
        for position in range(indptr[rows[i]], indptr[rows[i] + 1]):
            neighbour = indices[position]
            if not empty[neighbour]:
                for j in range(k):
                    incoming[i, j] += data[position] * F[neighbour, j]
        total = 0.0
        for j in range(k):
            total += incoming[i, j]
        if total > 0.0:
            for j in range(k):
                incoming[i, j] *= floor / total


@njit(cache=True, nogil=True)
def _write_filled(F, empty, rows, incoming):
    """Copy the rows of ``incoming`` that have scores into F; return those rows."""
    filled = np.empty(len(rows), dtype=np.int64)
    n_filled = 0
    for i in range(len(rows)):
        total = 0.0
        for j in range(F.shape[1]):
            total += incoming[i, j]
        if total > 0.0:
            for j in range(F.shape[1]):
                F[rows[i], j] = incoming[i, j]
            empty[rows[i]] = False
            filled[n_filled] = rows[i]
            n_filled += 1
    return filled[:n_filled]
