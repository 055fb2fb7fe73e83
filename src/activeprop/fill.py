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

from .abandon import stop_if_abandoned
from .calibration import machine_costs
from .column_room import empty_like
from .graph import on_every_core, row_blocks, seconds_per_row


def fill_below_precision(W, scores: np.ndarray, reached: np.ndarray, floor: float,
                         column_scale: np.ndarray | None = None) -> np.ndarray:
    """Give reachable items whose scores are lost in the solver's round-off a distribution.

    ``W`` is the graph's symmetric affinity: a dense array, or a CSR matrix (or a
    :class:`activeprop.graph.ThreadedMatrix` holding one); or, with ``column_scale``, a
    sparse matrix whose entries times their column's scale are proportional, row by row,
    to the affinity's (each row's weights are rescaled, so a factor common to a row does
    not matter: spreading's normalised affinity ``S_ij = W_ij / sqrt(d_i d_j)`` with
    the square roots of the degrees). Returns a copy of ``scores``
    (n, k) where negative entries (round-off) are zero and the rows of ``reached`` items
    whose largest score is at most ``floor`` are filled; ``scores`` is left as it is (a
    solver starts its next solve from them).
    """
    matrix = getattr(W, "matrix", W)
    if isinstance(matrix, np.ndarray):
        assert column_scale is None, "a dense fill reads the affinity itself"
        return _fill_dense(matrix, np.maximum(scores, 0.0), reached, floor)
    return fill_with_layers(matrix, scores, reached, floor, column_scale)[0]


def _fill_dense(W: np.ndarray, F: np.ndarray, reached: np.ndarray, floor: float) -> np.ndarray:
    """The fill on a dense graph: it links (nearly) every pair, so one product of the empty
    rows per layer, and rarely a second layer (affinities that underflowed to zero)."""
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


def fill_with_layers(matrix, scores: np.ndarray, reached: np.ndarray, floor: float,
                     column_scale: np.ndarray | None = None, in_place: bool = False):
    """:func:`fill_below_precision` on the CSR ``matrix`` (its entries times
    ``column_scale``, when given), a walk: layer after layer, the
    empty rows next to the last layer's rows (the rows with scores, first) take their
    neighbours' weighted scores, each row reading the scores as the layer before left
    them. Returns the filled copy and each row's layer (0: the row has scores; -1:
    unreached, or never filled). ``in_place``: fill ``scores`` itself (C-contiguous
    float64), not a copy: a caller that needs no solution afterwards saves an array of
    the pool's scores (:mod:`activeprop.distributed.lean`)."""
    if in_place and not (scores.flags.c_contiguous and scores.dtype == np.float64):
        raise ValueError("a fill in place needs C-contiguous float64 scores")  # (a bug)
    scores = np.ascontiguousarray(scores, dtype=np.float64)
    reached, floor = np.ascontiguousarray(reached, dtype=np.bool_), float(floor)
    indptr, indices = matrix.indptr, matrix.indices
    data, scale = np.asarray(matrix.data, dtype=np.float64), scale_array(column_scale)
    F, sources, empty, layers = _clipped_copy(scores, reached, floor,
                                              scores if in_place else None)
    listed = np.zeros(len(F), dtype=np.bool_)
    # a row of the walk reads its graph row like a row of a sparse product
    per_row = seconds_per_row(matrix)
    # The first layer: the empty rows next to a row with scores. Finding them reads the
    # graph rows of the rows with scores; when the empty rows are fewer, weighing every
    # empty row reads fewer (one without such a neighbour weighs zero and stays empty).
    # Spreading at alpha 0.9 on 1,000,000 items, 300 and 3,000 random labels (284,287 and
    # 3,878 rows empty): 173 -> 155 and 43 -> 23 ms a fill, the same bits.
    rows = np.flatnonzero(empty)
    if len(rows) >= len(sources):
        on_every_core(lambda part: _list_empty_neighbours(indptr, indices, sources[part],
                                                          empty, listed),
                      row_blocks(len(sources), per_row))
        rows = _take_listed(listed, empty)
    layer = 0
    while len(rows):
        stop_if_abandoned()  # a background job's answer may no longer be wanted
        layer += 1
        # Each row of the layer writes its own row of F (no row of the layer reads
        # another's: they are all empty until the layer is done) and lists its empty
        # neighbours while their graph row is still in cache. A separate pass over the
        # filled rows' graph rows, and a buffer of the layer's scores, took 43 and 14 of
        # 200 ms; the fill of a labeler's refit at 1,000,000 x 64, alpha 0.9, 8 labels, took
        # a median of 169 -> 149 ms over five alternating runs, the same bits.
        on_every_core(lambda part: _weigh_and_list(indptr, indices, data, scale, F, empty,
                                                   layers, rows[part], layer, floor, listed),
                      row_blocks(len(rows), per_row))
        _close_layer(empty, layers, rows, layer)
        rows = _take_listed(listed, empty)
    return F, layers


def scale_array(column_scale: np.ndarray | None) -> np.ndarray:
    """The compiled loops' form of a column scale: float64, empty for none."""
    if column_scale is None:
        return np.empty(0)
    return np.ascontiguousarray(column_scale, dtype=np.float64)


def _take_listed(listed: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """The listed rows that are still empty (the next layer), the list cleared."""
    rows = np.flatnonzero(listed)
    listed[rows] = False
    return rows[empty[rows]]


def _clipped_copy(scores: np.ndarray, reached: np.ndarray, floor: float,
                  out: np.ndarray | None = None):
    """``scores`` copied with negative entries zero and the empty rows (reached, largest
    score at most ``floor``) all zero, in one pass on every core (a copy, then a pass,
    took 11 + 8 ms of a labeler's refit at 1,000,000 x 10). Returns the copy, the rows
    with scores (reached, not empty), the mask of empty rows and the rows' layers so far
    (0 for the rows with scores, -1 for the others). Written into ``out`` when given
    (``scores`` itself may be: each entry is read before it is written)."""
    # (else with the scores' room for more classes: column_room)
    F = empty_like(scores) if out is None else out
    empty, source = clip_into(scores, reached, floor, F)
    layers = np.where(source, np.int32(0), np.int32(-1))
    return F, np.flatnonzero(source), empty, layers


def clip_into(scores: np.ndarray, reached: np.ndarray, floor: float, F: np.ndarray):
    """Write ``scores`` into ``F`` (the same shape) with negative entries zero and the
    empty rows (reached, largest score at most ``floor``) all zero, on every core. Returns
    the masks of the empty rows and of the rows with scores (reached, not empty)."""
    n, k = scores.shape
    empty, source = np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.bool_)
    per_row = 2 * k * machine_costs().stream_item  # a row read and written
    on_every_core(lambda part: _clip_rows(scores, reached, floor, part.start, part.stop, F,
                                          empty, source), row_blocks(n, per_row))
    return empty, source


# The steps below are compiled on first use and cached on disk for the next process. Their
# loops over the classes are written out: numba allocates an array for a slice expression.

@njit(cache=True, nogil=True)
def _clip_rows(scores, reached, floor, start, stop, F, empty, source):
    """Rows ``start`` to ``stop`` of :func:`_clipped_copy` (:func:`clip_row`); ``empty``
    marks the reached rows whose largest score is at most ``floor``, ``source`` the other
    reached rows."""
    for row in range(start, stop):
        empty[row], source[row] = clip_row(scores, reached, floor, row, F)


@njit(cache=True, nogil=True, inline="always")  # called per row
def clip_row(scores, reached, floor, row, F):
    """F's ``row`` is the scores' with negative entries zero, or all zero when the row is
    empty (reached, its largest score at most ``floor``). Returns whether it is empty, and
    whether it has scores (reached, not empty)."""
    k = scores.shape[1]
    top = 0.0
    for j in range(k):
        F[row, j] = max(scores[row, j], 0.0)
        top = max(top, F[row, j])
    empty = reached[row] and top <= floor
    if empty:
        for j in range(k):
            F[row, j] = 0.0
    return empty, reached[row] and not empty


@njit(cache=True, nogil=True)
def _list_empty_neighbours(indptr, indices, sources, empty, listed):
    """Mark in ``listed`` the empty neighbours of ``sources`` (threads mark alike: every
    write is True)."""
    for row in sources:
        for position in range(indptr[row], indptr[row + 1]):
            if empty[indices[position]]:
                listed[indices[position]] = True


@njit(cache=True, nogil=True, inline="always")  # called per edge
def edge_weight(data, scale, position, neighbour):
    """The fill's weight of the edge at ``position`` (to ``neighbour``): the matrix's entry,
    times the neighbour's ``scale`` unless that is empty."""
    if len(scale):
        return data[position] * scale[neighbour]
    return data[position]


@njit(cache=True, nogil=True)
def _weigh_and_list(indptr, indices, data, scale, F, empty, layers, rows, layer, floor,
                    listed):
    """Fill each of ``rows`` (empty, of ``layer``) with its neighbours' weighted scores
    rescaled to sum to ``floor``, set its layer and mark its empty neighbours in
    ``listed``; a row whose neighbours' scores sum to zero stays as it is (all zero) and
    lists nothing (on a graph with zero weights two such rows would list each other
    forever)."""
    k = F.shape[1]
    incoming = np.empty(k)
    # The empty neighbours not yet listed are noted while the row is read and marked once
    # its sum is known: a second read of the row's neighbours, to mark them, took 15-20 of
    # 140 ms of a fill at 1,000,000 x 64 (alpha 0.9, 8 labels; /tmp script, the same bits).
    widest = 0
    for row in rows:
        widest = max(widest, indptr[row + 1] - indptr[row])
    unlisted = np.empty(widest, dtype=indices.dtype)
    for row in rows:
        for j in range(k):
            incoming[j] = 0.0
        n_unlisted = 0
        for position in range(indptr[row], indptr[row + 1]):
            neighbour = indices[position]
            if not empty[neighbour]:
                weight = edge_weight(data, scale, position, neighbour)
                for j in range(k):
                    incoming[j] += weight * F[neighbour, j]
            elif not listed[neighbour]:
                unlisted[n_unlisted] = neighbour
                n_unlisted += 1
        total = 0.0
        for j in range(k):
            total += incoming[j]
        if total > 0.0:
            for j in range(k):
                F[row, j] = incoming[j] * (floor / total)
            layers[row] = layer
            for i in range(n_unlisted):
                listed[unlisted[i]] = True


@njit(cache=True, nogil=True)
def _close_layer(empty, layers, rows, layer):
    """The rows of ``layer`` that were filled are no longer empty."""
    for row in rows:
        if layers[row] == layer:
            empty[row] = False
