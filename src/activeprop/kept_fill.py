"""The fill of far items (:mod:`activeprop.fill`) kept between solves, and updated only where
a local solve changed the scores.

After a local update (:mod:`activeprop.push`) the solution changed only on the rows the push
moved, yet filling afresh walks every empty row: at 1,000,000 items and alpha 0.9, a dozen
labels in, 915,000 of the million rows are filled over a dozen layers, 170-330 ms of a
labeler's refit (issue 18, item 5; docs/benchmarks.md).

A filled row's layer is its graph distance to the nearest row with scores, and its scores
are read off its neighbours one layer down. A row farther from every moved row than its
layer has the same rows with scores, with the same scores, within that distance, hence the
same layer and the same fill. So the update walks out of the moved rows through the rows
no farther from them than their (old) layer, and fills those afresh, layer by layer, from
their neighbours outside (whose layers and scores stand) and inside. The walk is a breadth-
first search; every row on a shortest path from a moved row to a row it changes is itself
one it changes, so the search never needs to pass through the others. The answer is the full
fill's to the bit (each row adds its neighbours' scores in the same order); the tests
compare them.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import numpy as np
from numba import njit
from scipy import sparse

from .calibration import usable_cores
from .fill import clip_into, clip_row, edge_weight, fill_with_layers, scale_array
from .fill_parents import FillParents
from .recycle import copy_into_spare


class KeptFill:
    """A sparse graph's filled scores and each row's layer, to update after a local solve.

    ``F`` (n, k): the filled scores (graph order; a later :meth:`update` changes them in
    place). ``layers``: 0 for a row with scores, L for a row filled in layer L, -1 for an
    unreached row or one no layer reached. ``floor`` and ``reached`` are those of the fill.
    """

    def __init__(self, F: np.ndarray, layers: np.ndarray, floor: float, reached: np.ndarray):
        self.F, self.layers, self.floor = F, layers, floor
        self.reached = np.packbits(reached).tobytes()
        self.n_filled = int(np.count_nonzero(layers > 0))  # rows a fresh fill weighs
        # updates so far, and the rows the last one may have changed (None: none yet)
        self.version, self.changed = 0, None
        self.parents: FillParents | None = None  # the filled rows' parents, once listed
        # rows whose parents may have changed since they were listed (None: none)
        self.stale: np.ndarray | None = None

    @staticmethod
    def suits(matrix) -> bool:
        """Whether a fill on the CSR ``matrix`` can be kept: every edge weighs more than
        zero. (Where one weighs zero, a row next to a filled one can stay empty, and layers
        are no longer distances.)"""
        return not matrix.nnz or bool(np.asarray(matrix.data).min() > 0)

    @classmethod
    def fill(cls, matrix, scores: np.ndarray, reached: np.ndarray, floor: float,
             column_scale: np.ndarray | None = None) -> "KeptFill":
        """The full fill of ``scores`` (:func:`activeprop.fill.fill_below_precision` on the
        CSR ``matrix``, which :meth:`suits`, with its ``column_scale``), kept. Its updates
        and refills are given the same matrix and scale."""
        F, layers = fill_with_layers(matrix, scores, reached, floor, column_scale)
        return cls(F, layers, float(floor), reached)

    def widened(self, F: np.ndarray) -> "KeptFill":
        """This fill with ``F``, its scores with zero columns added for new classes (no
        row's layer changes, and a filled row's sum neither). ``F`` may be this fill's
        scores widened in place (:func:`activeprop.column_room.widened`), so this one is
        used up."""
        kept = copy.copy(self)
        kept.F, self.F = F, None
        kept.version, kept.changed = 0, None
        return kept

    def copy(self, into: KeptFill | None = None) -> "KeptFill":
        """A copy that an update or a refill may change while this one stays as it is
        (they change the scores and the layers in place; the rest they replace); written
        into the arrays of the fill ``into`` that nothing else holds
        (:func:`activeprop.recycle.copy_into_spare`; ``into`` is then used up)."""
        kept = copy.copy(self)
        kept.F = copy_into_spare(self.F, into, "F")
        kept.layers = copy_into_spare(self.layers, into, "layers")
        return kept

    def matches(self, reached: np.ndarray, floor: float) -> bool:
        """Whether an update to ``reached`` and ``floor`` can start from this fill (the same
        ones: another floor moves which rows are empty, everywhere)."""
        return floor == self.floor and np.packbits(reached).tobytes() == self.reached

    def update(self, matrix, scores: np.ndarray, reached: np.ndarray, moved: np.ndarray,
               column_scale: np.ndarray | None = None) -> np.ndarray | None:
        """Fill again after ``scores`` changed on the rows ``moved`` only (the same reached
        items and floor: :meth:`matches`). Returns the rows whose fill may have changed; or
        None, changing nothing, when it would lay out again more rows than
        :meth:`most_laid_out` (then :meth:`refill` is cheaper). Early in labeling at alpha
        0.9 a push that reaches the edge of the rows with scores changes the fill of most
        far rows: at 1,000,000 items and 10 labels, an update of 354,000 rows (of 943,000
        filled) took 270 ms, against 74-100 ms for a refill; at 200 labels, 18,000-109,000
        rows (mostly rows with scores) took 7-34 ms (``/tmp`` scripts, docs/benchmarks.md)."""
        reached = np.ascontiguousarray(reached, dtype=np.bool_)
        affected = _affected_rows(matrix.indptr, matrix.indices, reached, self.layers,
                                  np.ascontiguousarray(moved, dtype=np.int64),
                                  self.most_laid_out())
        if affected is None:
            return None
        waiting = _set_status(np.ascontiguousarray(scores, dtype=np.float64), reached,
                              self.floor, self.F, self.layers, moved, affected)
        _fill_layers(matrix.indptr, matrix.indices, np.asarray(matrix.data, np.float64),
                     scale_array(column_scale), self.F, self.layers, waiting, self.floor)
        self.n_filled = int(np.count_nonzero(self.layers > 0))
        self.version, self.changed = self.version + 1, affected
        if self.parents is not None:
            self.stale = self._stale_with(matrix, affected)
        return affected

    def most_laid_out(self) -> int:
        """The most rows an :meth:`update` or a :meth:`refill` lays out again before the
        next way costs less (a refill, or a fresh fill). Their walks run on one core, where
        a fill's or a refill's run on every core, and a row laid out again costs about 4
        filled rows of either: at 1,000,000 x 64 and alpha 0.9, 254,000 rows laid out
        again by a refill took 400-490 ms against 150 ms afresh, and 354,000 by an update
        270 ms against 74-100 ms for a refill from parent lists (``/tmp`` scripts)."""
        return max(self.n_filled // (4 * usable_cores()), 1)

    def _stale_with(self, matrix, rows: np.ndarray) -> np.ndarray:
        """The rows whose parents may have changed: the stale ones so far, and ``rows``
        (whose layers changed) with their neighbours. A new array (a widened copy shares
        the last one)."""
        stale = np.zeros(len(self.layers), dtype=np.bool_) if self.stale is None \
            else self.stale.copy()
        _mark_with_neighbours(matrix.indptr, matrix.indices, rows, stale)
        return stale

    def refill(self, matrix, scores: np.ndarray, reached: np.ndarray, floor: float,
               column_scale: np.ndarray | None = None,
               moved: np.ndarray | None = None) -> "KeptFill | None":
        """The fill of ``scores`` changed anywhere (after a global solve; the same reached
        items, any floor), from this one. Layers change only around the rows that gained
        or lost scores above the floor; every filled row is then weighed again from its
        parents (:mod:`activeprop.fill_parents`), whose lists are copied where no layer
        near them changed. The same scores and layers as a fresh fill, to the bit (the
        tests compare them).

        At 1,000,000 x 64 and alpha 0.9, between two labels the global solve moves every
        row's scores, but 5,000-15,000 rows cross the floor (nearly all upwards) and the
        layers of 50,000-150,000 of about 900,000 filled rows change.

        Takes this fill's ``F`` over, also when it returns None: the new kept fill; or
        None when the reached items differ, or when the layers would cost more to bring
        up to date than filling afresh (then fill afresh): more rows to lay out again than
        a quarter of what a fresh fill weighs on each core, or to lower than it weighs.

        ``moved``: when only these rows' scores changed since this fill (a push moved them,
        and the :meth:`update` gave up), at the same floor, only they are read again; the
        filled rows are all weighed again. At 1,000,000 items a pass over every row took
        5-16 ms of a labeler's refit (``/tmp`` script timing the refill's steps), and
        comparing every row's layer to find those that gained or lost scores 3.5 ms more."""
        if np.packbits(reached).tobytes() != self.reached or scores.shape != self.F.shape:
            return None
        reached = np.ascontiguousarray(reached, dtype=np.bool_)
        scores = np.ascontiguousarray(scores, dtype=np.float64)
        F, floor, layers = self.F, float(floor), self.layers.copy()
        if moved is not None and floor == self.floor:
            gained, lost = _clip_moved(scores, reached, floor, F, layers,
                                       np.ascontiguousarray(moved, dtype=np.int64))
        else:
            _, source = clip_into(scores, reached, floor, F)
            had = layers == 0
            gained, lost = np.flatnonzero(source & ~had), np.flatnonzero(had & ~source)
        # A row lowered costs about 2 rows of a fresh fill's, on one core (as most_laid_out).
        # Allowed twice as many, a refill that lowered 418,000 rows of 993,000 filled took
        # 276 ms against 115-138 ms afresh (1,000,000 x 64, alpha 0.9, /tmp script).
        changed = _moved_layers(matrix, scale_array(column_scale), scores, reached, floor,
                                F, layers, gained, lost, self.most_laid_out(),
                                max(self.n_filled // (2 * usable_cores()), 1))
        if changed is None:
            return None
        stale = self._stale_with(matrix, changed)
        kept = KeptFill(F, layers, floor, reached)
        kept.parents = FillParents.build(matrix, layers, stale, self.parents, column_scale)
        kept.parents.weigh(F, floor, matrix)
        return kept


@lru_cache(maxsize=None)
def compile_for(index_dtype: np.dtype) -> None:
    """Compile the fill and its update for a graph whose indices are ``index_dtype`` (or
    load them from the disk cache), once per process, on a path of three rows: a caller
    that times a refit's fill to choose the next refit's path calls this first (the first
    process after an install compiles for seconds, which is not what a fill costs)."""
    path = sparse.csr_matrix(np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    path.indptr, path.indices = path.indptr.astype(index_dtype), path.indices.astype(index_dtype)
    scores, reached = np.array([[1.0], [1.0], [0.0]]), np.ones(3, dtype=np.bool_)
    kept = KeptFill.fill(path, scores, reached, 0.5)  # the third row filled
    scores[0, 0] = 2.0  # moves the first row alone: an update on any number of cores
    assert kept.update(path, scores, reached, np.zeros(1, dtype=np.int64)) is not None
    # the middle row loses its scores, the last gains some: a refill's every step
    kept = kept.refill(path, np.array([[2.0], [0.0], [1.0]]), reached, 0.5)
    assert kept is not None and list(kept.layers) == [0, 1, 0]


# Compiled on first use and cached on disk for the next process; loops over the classes are
# written out, as in fill.py.

NO_LAYER = np.iinfo(np.int64).max  # the start of a row next to no row with a layer

@njit(cache=True, nogil=True)
def _affected_rows(indptr, indices, reached, layers, moved, most):
    """The moved rows and every reached row no farther from them than its layer (a row
    that was never filled counts as infinitely far), by breadth-first search out of the
    moved rows; None once more than ``most`` rows beside the moved ones (rows to fill)."""
    n = len(layers)
    distance = np.full(n, -1, dtype=np.int32)
    rows = np.empty(n, dtype=np.int64)
    n_rows = 0
    for row in moved:
        if distance[row] < 0:
            distance[row] = 0
            rows[n_rows] = row
            n_rows += 1
    n_moved = n_rows
    head = 0
    while head < n_rows:
        row = rows[head]
        head += 1
        further = distance[row] + 1
        for position in range(indptr[row], indptr[row + 1]):
            neighbour = indices[position]
            if distance[neighbour] < 0 and reached[neighbour] and \
                    (layers[neighbour] < 0 or layers[neighbour] >= further):
                distance[neighbour] = further
                rows[n_rows] = neighbour
                n_rows += 1
        if n_rows - n_moved > most:
            return None
    return rows[:n_rows].copy()


@njit(cache=True, nogil=True)
def _set_status(scores, reached, floor, F, layers, moved, affected):
    """Clear the affected rows; a moved row whose scores are above ``floor`` takes them
    (layer 0). Returns the affected rows left empty, to fill."""
    k = F.shape[1]
    for row in affected:
        layers[row] = -1
        for j in range(k):
            F[row, j] = 0.0
    for row in moved:
        top = 0.0
        for j in range(k):
            top = max(top, scores[row, j])
        if reached[row] and top > floor:
            layers[row] = 0
            for j in range(k):
                F[row, j] = max(scores[row, j], 0.0)
    waiting = np.empty(len(affected), dtype=np.int64)
    n_waiting = 0
    for row in affected:
        if layers[row] < 0:
            waiting[n_waiting] = row
            n_waiting += 1
    return waiting[:n_waiting]


@njit(cache=True, nogil=True)
def _fill_layers(indptr, indices, data, scale, F, layers, waiting, floor):
    """Layers and scores of the ``waiting`` rows: a breadth-first search whose start is each
    row's nearest layer outside (or a new row with scores), then each layer's rows filled
    from their neighbours one layer down, as the full fill does."""
    k = F.shape[1]
    start = np.empty(len(waiting), dtype=np.int64)  # 1 + the lowest layer next to the row
    for i in range(len(waiting)):
        lowest = -1
        for position in range(indptr[waiting[i]], indptr[waiting[i] + 1]):
            layer = layers[indices[position]]
            if layer >= 0 and (lowest < 0 or layer < lowest):
                lowest = layer
        start[i] = lowest + 1 if lowest >= 0 else NO_LAYER
    order = np.argsort(start)
    current = np.empty(len(waiting), dtype=np.int64)
    following = np.empty(len(waiting), dtype=np.int64)
    n_current, n_following, next_start = 0, 0, 0
    incoming = np.empty(k)
    layer = 0
    while True:
        if n_current == 0:  # the next layer starts from the outside
            while next_start < len(order) and layers[waiting[order[next_start]]] >= 0:
                next_start += 1
            if next_start == len(order) or start[order[next_start]] == NO_LAYER:
                break
            layer = start[order[next_start]]
        while next_start < len(order) and start[order[next_start]] == layer:
            row = waiting[order[next_start]]
            if layers[row] < 0:
                layers[row] = layer
                current[n_current] = row
                n_current += 1
            next_start += 1
        for i in range(n_current):
            row = current[i]
            _weigh_row(indptr, indices, data, scale, F, layers, row, layer, incoming, floor)
            for position in range(indptr[row], indptr[row + 1]):
                neighbour = indices[position]
                # an empty neighbour of an affected row is affected (it waits)
                if layers[neighbour] < 0:
                    layers[neighbour] = layer + 1
                    following[n_following] = neighbour
                    n_following += 1
        current, following = following, current
        n_current, n_following = n_following, 0
        layer += 1


@njit(cache=True, nogil=True)
def _weigh_row(indptr, indices, data, scale, F, layers, row, layer, incoming, floor):
    """Fill ``row`` (of ``layer``) with its lower-layer neighbours' weighted scores rescaled
    to sum to ``floor``, added in the full fill's order (fill._weigh_and_list)."""
    k = F.shape[1]
    for j in range(k):
        incoming[j] = 0.0
    for position in range(indptr[row], indptr[row + 1]):
        neighbour = indices[position]
        if 0 <= layers[neighbour] < layer:
            weight = edge_weight(data, scale, position, neighbour)
            for j in range(k):
                incoming[j] += weight * F[neighbour, j]
    total = 0.0
    for j in range(k):
        total += incoming[j]
    if total > 0.0:
        for j in range(k):
            F[row, j] = incoming[j] * (floor / total)


def _moved_layers(matrix, scale, scores, reached, floor, F, layers, gained, lost,
                  most_laid_out, most_lowered):
    """Bring ``layers`` (a fill's) to the rows with scores now, in place, from the rows that
    ``gained`` scores and those that ``lost`` them: around the latter as
    :meth:`KeptFill.update` does (F's rows there are filled too, to be weighed again), then
    down from the former and from the rows laid out again. Returns the rows whose layer
    may have changed; None once more than ``most_laid_out`` rows are laid out again or
    ``most_lowered`` lowered."""
    indptr, indices = matrix.indptr, matrix.indices
    layers[gained] = 0
    if not len(lost):
        lowered = _lower_layers(indptr, indices, layers, gained, most_lowered)
        return None if lowered is None else np.concatenate([gained, lowered])
    affected = _affected_rows(indptr, indices, reached, layers, lost, most_laid_out)
    if affected is None:
        return None
    # the rows that gained scores keep them (layer 0), inside the affected rows too
    waiting = _set_status(scores, reached, floor, F, layers, np.concatenate([lost, gained]),
                          affected)
    _fill_layers(indptr, indices, np.asarray(matrix.data, np.float64), scale, F, layers,
                 waiting, floor)
    # an affected row may now be nearer than before to rows outside (a gained row among
    # them): lower from them too, nearest first
    laid_out = affected[layers[affected] >= 0]  # (a row no layer reaches has none)
    starts = np.concatenate([gained, laid_out[np.argsort(layers[laid_out], kind="stable")]])
    lowered = _lower_layers(indptr, indices, layers, starts, most_lowered)
    return None if lowered is None else np.concatenate([gained, affected, lowered])


@njit(cache=True, nogil=True)
def _clip_moved(scores, reached, floor, F, layers, moved):
    """:func:`activeprop.fill.clip_into` on the rows ``moved`` alone (no other row's scores
    changed). Returns those of them that gained scores (above the floor, where their
    ``layers`` say they had none) and those that lost them."""
    gained = np.empty(len(moved), dtype=np.int64)
    lost = np.empty(len(moved), dtype=np.int64)
    n_gained = n_lost = 0
    for row in moved:
        source = clip_row(scores, reached, floor, row, F)[1]
        if source and layers[row] != 0:
            gained[n_gained] = row
            n_gained += 1
        elif not source and layers[row] == 0:
            lost[n_lost] = row
            n_lost += 1
    return gained[:n_gained], lost[:n_lost]


@njit(cache=True, nogil=True)
def _lower_layers(indptr, indices, layers, starts, most):
    """Lower the layers around the ``starts`` (whose layers are set): each neighbour of a
    row gets one more than the row's layer where that is lower than its own (or it had
    none: a reached row of a component that had no row with scores), until no layer can
    be lowered (a queue: out of rows of one layer, a breadth-first search). Returns the
    rows lowered; None once more than ``most``."""
    n = len(layers)
    queue = np.empty(n, dtype=np.int64)  # a ring: each row is in it at most once at a time
    queued = np.zeros(n, dtype=np.bool_)
    lowered = np.zeros(n, dtype=np.bool_)
    rows = np.empty(min(n, most + 1), dtype=np.int64)
    n_lowered, head, size = 0, 0, 0
    for row in starts:
        if not queued[row]:
            queued[row] = True
            queue[size] = row
            size += 1
    while size:
        row = queue[head]
        head, size = (head + 1) % n, size - 1
        queued[row] = False
        further = layers[row] + 1
        for position in range(indptr[row], indptr[row + 1]):
            neighbour = indices[position]
            if layers[neighbour] < 0 or layers[neighbour] > further:
                layers[neighbour] = further
                if not lowered[neighbour]:
                    if n_lowered == most:
                        return None
                    lowered[neighbour] = True
                    rows[n_lowered] = neighbour
                    n_lowered += 1
                if not queued[neighbour]:
                    queued[neighbour] = True
                    queue[(head + size) % n] = neighbour
                    size += 1
    return rows[:n_lowered].copy()


@njit(cache=True, nogil=True)
def _mark_with_neighbours(indptr, indices, rows, marked):
    """Mark the ``rows`` and their neighbours."""
    for row in rows:
        marked[row] = True
        for position in range(indptr[row], indptr[row + 1]):
            marked[indices[position]] = True
