"""Each filled row's parents (its neighbours one layer down), kept for filling again.

The fill (:mod:`activeprop.fill`) gives a row of layer L the weighted sum of its neighbours
of layer L - 1, rescaled. Finding those neighbours is most of a fresh fill's cost: its walk
reads every graph row of the layer's rows, which lie all over the graph. With each filled
row's parents listed in one array, in layer order, the fill's sums read that array from
start to end: at 1,000,000 x 64 (alpha 0.9, 8 classes, 3.9 million parents of 18.6 million
edges) 26-35 ms against 100-120 ms for the walk (``/tmp`` script, the same bits).

Between global solves only the rows near a new label change layer, so the lists of the
other rows are copied from the last ones; a row's list is read again from the graph where
its layer or a neighbour's changed. The lists take 12 bytes a parent and 12 a filled row
(row numbers and offsets in the graph's own integer types: 32 bits below 2**31 edges):
about 60 MB there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .abandon import stop_if_abandoned
from .fill import edge_weight, scale_array
from .graph import on_every_core, row_blocks, seconds_per_row


@dataclass
class FillParents:
    """The filled rows in layer order and their parents.

    ``order``: the rows of layers 1, 2, .. (rows in increasing order within a layer);
    ``starts[L]``: where layer L begins in ``order`` (``starts[1] == 0``); ``ptr``: row
    ``order[i]``'s parents are ``neighbours[ptr[i]:ptr[i + 1]]``, in the order of its graph
    row, with the edges' ``weights``; ``position[row]``: the row's place in ``order``.
    """

    order: np.ndarray
    starts: np.ndarray
    ptr: np.ndarray
    neighbours: np.ndarray
    weights: np.ndarray
    position: np.ndarray

    @classmethod
    def build(cls, matrix, layers: np.ndarray, stale: np.ndarray | None = None,
              last: "FillParents | None" = None,
              column_scale: np.ndarray | None = None) -> "FillParents":
        """The parents of the rows of ``layers`` (the fill's, on the CSR ``matrix`` with its
        ``column_scale``: :func:`activeprop.fill.fill_below_precision`'s weights): read
        from the graph for the ``stale`` rows (every row when None), copied from ``last``
        for the others (whose layer and whose neighbours' layers are unchanged since)."""
        n = len(layers)
        indptr, indices = matrix.indptr, matrix.indices
        # Rows and offsets take the graph's integer types (a row number is a column index,
        # an offset at most an edge's): 12 B a filled row rather than 24 in int64, held
        # twice while a refill builds the new lists beside the last ones.
        order, starts, position = _layer_order(layers, int(layers.max(initial=0)), indices)
        if stale is None or last is None:
            stale, last = np.ones(n, dtype=np.bool_), _no_parents(indptr, indices)
        # Only the stale rows are visited in the graph, a tenth to a fifth of the pool
        # between two labels (two passes over every row to find them: the lists' build in
        # a labeler's refit at 1,000,000 items took 30-37 ms, now 20-25 ms; /tmp script).
        stale_rows = np.flatnonzero(stale)
        data, scale = np.asarray(matrix.data, dtype=np.float64), scale_array(column_scale)
        # The stale rows are read in the graph's order, the kept lists copied in layer
        # order: each in the order its source lies in memory (reading the graph rows in
        # layer order, which puts neighbouring rows far apart, took twice as long).
        graph_rows = row_blocks(len(stale_rows), seconds_per_row(matrix))
        filled = row_blocks(len(order), seconds_per_row(matrix) / 4)
        counts = np.zeros(n, dtype=indices.dtype)
        on_every_core(lambda part: _count_stale(indptr, indices, layers, stale_rows[part],
                                                counts), graph_rows)
        on_every_core(lambda part: _count_kept(order, part.start, part.stop, stale, last.ptr,
                                               last.position, counts), filled)
        ptr = _offsets(counts, order, indptr)
        neighbours = np.empty(ptr[-1], dtype=indices.dtype)
        weights = np.empty(ptr[-1])
        on_every_core(lambda part: _copy_kept(order, part.start, part.stop, stale, last.ptr,
                                              last.position, last.neighbours, last.weights,
                                              ptr, neighbours, weights), filled)
        on_every_core(lambda part: _read_stale(indptr, indices, data, scale, layers,
                                               stale_rows[part], position, ptr, neighbours,
                                               weights), graph_rows)
        return cls(order, starts, ptr, neighbours, weights, position)

    def weigh(self, F: np.ndarray, floor: float, matrix) -> None:
        """Fill the rows of ``order``, layer by layer, in place: each takes its parents'
        rows of ``F`` weighted, rescaled to sum to ``floor`` (a row of layer L reads rows
        of layer L - 1 only, so the rows of a layer are shared among the cores).
        ``matrix``: the graph, whose rows' cost scales a row's (by its parents)."""
        edges_per_row = matrix.nnz / max(matrix.shape[0], 1)
        parents_per_row = len(self.neighbours) / max(len(self.order), 1)
        per_row = seconds_per_row(matrix) * parents_per_row / max(edges_per_row, 1.0)
        for layer in range(1, len(self.starts) - 1):
            stop_if_abandoned()  # a background job's answer may no longer be wanted
            start, stop = int(self.starts[layer]), int(self.starts[layer + 1])
            on_every_core(lambda part: _weigh(self.ptr, self.neighbours, self.weights,
                                              self.order, start + part.start,
                                              start + part.stop, F, floor),
                          row_blocks(stop - start, per_row))


def _no_parents(indptr: np.ndarray, indices: np.ndarray) -> FillParents:
    """The last parents when there are none (every row is read from the graph), in the
    integer types of the graph whose lists are built."""
    rows = np.zeros(1, dtype=indices.dtype)
    return FillParents(order=rows[:0], starts=np.zeros(2, dtype=np.int64),
                       ptr=np.zeros(1, dtype=indptr.dtype), neighbours=rows[:0],
                       weights=np.zeros(0), position=rows)


# Compiled on first use and cached on disk for the next process; loops over the classes are
# written out, as in fill.py.

@njit(cache=True, nogil=True)
def _layer_order(layers, n_layers, row_type):
    """The rows of layers 1 .. n_layers in layer order (a counting sort), where each layer
    starts (index L; the last entry is the number of rows) and each row's position (-1
    for the rows of no layer above 0); rows and positions of ``row_type``'s dtype."""
    starts = np.zeros(n_layers + 2, dtype=np.int64)
    for layer in layers:
        if layer > 0:
            starts[layer + 1] += 1
    for layer in range(2, n_layers + 2):
        starts[layer] += starts[layer - 1]
    order = np.empty(starts[n_layers + 1], dtype=row_type.dtype)
    position = np.full(len(layers), -1, dtype=row_type.dtype)
    following = starts[:n_layers + 1].copy()
    for row in range(len(layers)):
        layer = layers[row]
        if layer > 0:
            order[following[layer]] = row
            position[row] = following[layer]
            following[layer] += 1
    return order, starts, position


@njit(cache=True, nogil=True)
def _count_stale(indptr, indices, layers, rows, counts):
    """``counts[row]``: how many parents each filled row of the (stale) ``rows`` has."""
    for row in rows:
        layer = layers[row]
        if layer > 0:
            found = 0
            for edge in range(indptr[row], indptr[row + 1]):
                if 0 <= layers[indices[edge]] < layer:
                    found += 1
            counts[row] = found


@njit(cache=True, nogil=True)
def _count_kept(order, start, stop, stale, last_ptr, last_position, counts):
    """``counts[row]`` for the rows ``order[start:stop]`` that are not stale: their last
    count."""
    for i in range(start, stop):
        row = order[i]
        if not stale[row]:
            was = last_position[row]
            counts[row] = last_ptr[was + 1] - last_ptr[was]


@njit(cache=True, nogil=True)
def _offsets(counts, order, offset_type):
    """Where each row of ``order`` starts its parents (and the end), from the counts; of
    ``offset_type``'s dtype."""
    ptr = np.empty(len(order) + 1, dtype=offset_type.dtype)
    ptr[0] = 0
    for i in range(len(order)):
        ptr[i + 1] = ptr[i] + counts[order[i]]
    return ptr


@njit(cache=True, nogil=True)
def _copy_kept(order, start, stop, stale, last_ptr, last_position, last_neighbours,
               last_weights, ptr, neighbours, weights):
    """The parents of the rows ``order[start:stop]`` that are not stale, as last listed."""
    for i in range(start, stop):
        row = order[i]
        if not stale[row]:
            was = last_ptr[last_position[row]]
            for j in range(ptr[i + 1] - ptr[i]):
                neighbours[ptr[i] + j] = last_neighbours[was + j]
                weights[ptr[i] + j] = last_weights[was + j]


@njit(cache=True, nogil=True)
def _read_stale(indptr, indices, data, scale, layers, rows, position, ptr, neighbours,
                weights):
    """The parents of the filled rows of the (stale) ``rows``, read from their graph rows in
    their order (so the sums add them as the fresh fill does)."""
    for row in rows:
        layer = layers[row]
        if layer > 0:
            at = ptr[position[row]]
            for edge in range(indptr[row], indptr[row + 1]):
                if 0 <= layers[indices[edge]] < layer:
                    neighbours[at] = indices[edge]
                    weights[at] = edge_weight(data, scale, edge, indices[edge])
                    at += 1


@njit(cache=True, nogil=True)
def _weigh(ptr, neighbours, weights, order, start, stop, F, floor):
    """Rows ``order[start:stop]`` of ``F`` from their parents' rows, as fill._weigh_and_list
    adds them (in the graph row's order: the same bits)."""
    k = F.shape[1]
    incoming = np.empty(k)
    for i in range(start, stop):
        for j in range(k):
            incoming[j] = 0.0
        for at in range(ptr[i], ptr[i + 1]):
            parent, weight = neighbours[at], weights[at]
            for j in range(k):
                incoming[j] += weight * F[parent, j]
        total = 0.0
        for j in range(k):
            total += incoming[j]
        row = order[i]
        for j in range(k):
            F[row, j] = incoming[j] * (floor / total)
