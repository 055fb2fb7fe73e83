"""What each block computes around a solve: right-hand sides, per-component sums, the fill
of far rows, distributions and the strategy's best candidates. Each function is one task
on one block; the client only ever combines the small numbers they return."""

from __future__ import annotations

import numpy as np

from ..propagation import distributions, one_hot
from ..ranking import best_positions
from ..strategies import PoolScores


def one_hot_block(y: np.ndarray, classes: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """A block's labels (-1 unlabeled) as one-hot rows times ``scale`` (zero rows for
    unlabeled items)."""
    Y = one_hot(y, classes)
    if scale != 1.0:
        Y *= scale  # in place: the same products as scale * Y, without a second block
    return Y


def labeled_components(components: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The components of a block's labeled items (``y``: its labels, -1 unlabeled)."""
    return np.unique(components[y != -1])


def reached_rows(components: np.ndarray, holding_labels: np.ndarray) -> np.ndarray:
    """1.0 where an item's component holds a label, else 0.0."""
    return np.isin(components, holding_labels).astype(np.float64)


def component_sums(components: np.ndarray, rows: np.ndarray, values: np.ndarray):
    """Sums of ``values`` over the ``rows`` (a mask) of each component in a block:
    (component ids, sums)."""
    ids, inverse = np.unique(components[rows], return_inverse=True)
    sums = np.zeros((len(ids), values.shape[1]))
    np.add.at(sums, inverse, values[rows])
    return ids, sums


def combine_components(parts) -> dict:
    """Per-block (ids, sums) added up per component: {component: sums}."""
    totals: dict = {}
    for ids, sums in parts:
        for key, row in zip(ids.tolist(), sums):
            totals[key] = totals[key] + row if key in totals else row.copy()
    return totals


def lookup(components: np.ndarray, table: dict, width: int) -> np.ndarray:
    """Each row's component entry in ``table`` (zeros for components not in it)."""
    out = np.zeros((len(components), width))
    for key, row in table.items():
        out[components == key] = row
    return out


def label_sums(components: np.ndarray, Y: np.ndarray):
    """Per component of a block: the sum of its labeled rows and their count."""
    labeled = Y.sum(axis=1) > 0
    return component_sums(components, labeled, np.hstack([Y, np.ones((len(Y), 1))]))


def poisson_sources(y: np.ndarray, classes: np.ndarray, components: np.ndarray,
                    means: dict) -> np.ndarray:
    """Each label's one-hot row over ``classes`` minus its component's mean label row over
    them (zero rows where unlabeled); ``y``: the block's labels, -1 unlabeled. (Of some
    of the classes, as a group of columns is solved: a label of another class is still a
    source, of minus the mean.)"""
    labeled = y != -1
    Y = one_hot(y, classes)
    return np.where(labeled[:, None], Y - lookup(components, means, len(classes)), 0.0)


def poisson_statistics(U, B, Y, degrees, components, reached):
    """Per component: degree-weighted sums of U, the degrees, whether any source is
    non-zero, the labels' sums and count."""
    rows = reached > 0
    labeled = (Y.sum(axis=1) > 0).astype(np.float64)[:, None]
    values = np.hstack([degrees[:, None] * U, degrees[:, None],
                        np.abs(B).sum(axis=1, keepdims=True), Y * labeled, labeled])
    return component_sums(components, rows, values)


def poisson_centre(U, components, reached, totals: dict, n_classes: int) -> np.ndarray:
    """U with each component's degree-weighted mean removed; a component whose labels are
    all one class gets that class's row (its sources cancel)."""
    U = U.copy()
    for key, row in totals.items():
        members = (components == key) & (reached > 0)
        weighted, weight = row[:n_classes], row[n_classes]
        if row[n_classes + 1] > 0:
            U[members] -= weighted / weight
        else:
            labels, count = row[n_classes + 2:2 * n_classes + 2], row[2 * n_classes + 2]
            U[members] = labels / count
    return U


def largest(F: np.ndarray) -> float:
    """A block's largest score."""
    return float(F.max()) if F.size else 0.0


def joined_columns(*parts: np.ndarray) -> np.ndarray:
    """A block's columns solved in groups, side by side: a new array, or the block itself
    when it was solved in one group."""
    return np.hstack(parts) if len(parts) > 1 else parts[0]


def empty_rows(reached: np.ndarray, floor: float, *parts: np.ndarray):
    """The fill's start from a block's solution (``parts``: its groups of columns): its
    scores with those below zero (round-off) set to zero, and reached rows whose best
    score is at most ``floor`` zeroed and marked empty. Returns the fill's state: (F,
    the empty rows packed (:func:`packed_rows`), how many are empty, the last layer: None
    before the first, when every row with scores may fill a neighbour). One task and one
    new array: the clipped scores, made by a task of their own, stayed on the worker
    through the whole fill beside this copy (80 B an item at ten classes)."""
    joined = joined_columns(*parts)
    F = np.maximum(joined, 0.0, out=joined if len(parts) > 1 else None)
    empty = (reached > 0) & (F.max(axis=1) <= floor)
    F[empty] = 0.0
    return F, packed_rows(empty), int(empty.sum()), None


def packed_rows(mask: np.ndarray) -> np.ndarray:
    """A block's row mask at one bit a row. Each layer of a fill has a state of its own,
    with the rows still empty, and all are held until the layers are written in: at a
    byte a row, at 4,000,000 items on two workers (2,000,000 rows a block, 44 layers a
    round), 88 MB a worker by the fill's end, where the rounds peak."""
    return np.packbits(mask)


def unpacked_rows(packed: np.ndarray, n_rows: int) -> np.ndarray:
    """The row mask of a block of ``n_rows`` rows that :func:`packed_rows` packed."""
    return np.unpackbits(packed, count=n_rows).view(np.bool_)


def fill_layer(S, column_scale: np.ndarray, state, floor: float, *parts):
    """One layer of :func:`activeprop.fill.fill_below_precision` on a block: every
    empty row next to a row the last layer filled (here or, by ``parts``, in the halo)
    takes its neighbours' weighted scores, rescaled to ``floor``. ``S``: the block's rows
    of the normalised operator, whose entries times their column's ``column_scale`` (the
    degrees' roots of its items, then its halo's) are, row by row, proportional to the
    affinity's, as the single engine weighs them. ``parts``: what :func:`fill_halo` took
    of the other blocks' states. Returns the new state, whose last layer is the rows it
    filled and their scores, and which holds no ``F`` (None): the layers are written into
    the start's at the end (:func:`filled_scores`).

    A layer reads only the rows that can fill a neighbour: before the first, the rows with
    scores; after it, the last layer's (the layers are distances from the rows with
    scores, so no other row with scores is next to an empty one). It reads their columns
    of ``S``, in the same order (the same sums, bit for bit: the other columns added
    zeros). Copying the block's scores and stacking them with the halo's at every layer
    made the fill hold four block-sized arrays, and sent each neighbour the whole halo a
    layer (76 MB a round at 300,000 items on two workers); the first layer alone still did
    so, and multiplied every row, and at 4,000,000 items on two workers (192 MB stacked,
    160 MB of product) it was where the rounds peaked.

    A state after the first layer leaves ``F`` out because Dask sizes each state by its
    parts, a shared array once per state: with ``F`` in every layer's state, the task that
    writes the layers in (:func:`filled_scores`) counted the block's scores once a layer,
    and at 4,000,000 items on two workers the scheduler refused it (6.95 GiB of inputs
    against a memory limit of 5.68 GiB, where the block's scores are 153 MB)."""
    F, packed, _, last = state
    empty = unpacked_rows(packed, S.shape[0])
    rows = np.flatnonzero(empty)
    columns, scores = _last_layer_columns(len(empty), _scored_rows(F) if last is None
                                          else last, parts)
    near = S[:, columns].tocsr()  # the edges into the last layer's rows
    rows = rows[np.diff(near.indptr)[rows] > 0]
    scores = scores * column_scale[columns, None]
    incoming = np.asarray(near[rows] @ scores) if len(rows) else \
        np.empty((0, scores.shape[1]))
    sums = incoming.sum(axis=1)
    filled = sums > 0
    rows = rows[filled]
    empty[rows] = False  # (its own array: the state holds the rows packed)
    return None, packed_rows(empty), len(rows), \
        (rows, incoming[filled] * (floor / sums[filled, None]))


def _scored_rows(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of a block's scores that have some, and their scores: before the first
    layer, the rows that may fill a neighbour."""
    rows = np.flatnonzero(F.any(axis=1))
    return rows, F[rows]


def _last_layer_columns(n_own: int, last, parts) -> tuple[np.ndarray, np.ndarray]:
    """The columns of a block's matrix that the last layer filled (its own rows, then each
    halo part's, all ascending), and their scores."""
    columns, scores, offset = [last[0]], [last[1]], n_own
    for hit, values, size in parts:
        columns.append(offset + hit)
        scores.append(values)
        offset += size
    return np.concatenate(columns), np.concatenate(scores)


def fill_halo(state, positions: np.ndarray):
    """What a neighbour block needs of a fill state, of its rows ``positions``: before the
    first layer, which of them have scores, after a layer, which of them it filled (their
    places in ``positions``), and their scores. Returns (places, scores,
    len(positions))."""
    F, _, _, last = state
    if last is None:
        return *_scored_rows(np.take(F, positions, axis=0)), len(positions)
    rows, scores = last
    places = np.flatnonzero(np.isin(positions, rows, assume_unique=True))
    return places, scores[np.searchsorted(rows, positions[places])], len(positions)


def filled_scores(state, *layers) -> np.ndarray:
    """A block's scores after its fill: the start's (``state``'s F), with each layer's
    rows written in (``layers``: the states after each layer)."""
    F = state[0].copy()
    for layer in layers:
        rows, scores = layer[3]
        F[rows] = scores
    return F


def count_of(state) -> int:
    """How many rows a block's last fill step emptied or filled."""
    return state[2]


def nonzero_moments(U: np.ndarray, mean: float | None):
    """Over the non-zero rows of U: (count, sum) of the entries, or with ``mean`` the sum
    of squared deviations from it."""
    values = U[U.any(axis=1)]  # (a copy: its deviations are made in it)
    if mean is not None:
        values -= mean
        np.square(values, out=values)
    return values.size, float(values.sum())


def pooled_spread(moments) -> float:
    """The standard deviation of the non-zero rows' entries of a pool held in parts, from
    ``moments(mean)``: each part's :func:`nonzero_moments`, as a list (1 when every row is
    zero)."""
    counts = moments(None)
    size = sum(count for count, _ in counts)
    if not size:
        return 1.0
    mean = sum(total for _, total in counts) / size
    return float(np.sqrt(sum(total for _, total in moments(mean)) / size))


def block_distributions(F: np.ndarray):
    """Row distributions and the unreached mask (:func:`activeprop.propagation.distributions`).
    Not the single machine's compiled pass: importing numba costs a worker 110 MB, and two
    workers' rounds at 200,000 items were no faster with it (1,808 against 1,864 ms)."""
    return distributions(F)


def predictions(state) -> np.ndarray:
    """The most probable class index of each row, in the narrowest unsigned type that
    holds it (one byte a row up to 256 classes: what the client gathers every round, 8 MB
    at 1,000,000 items in int64)."""
    proba = state[0]
    return np.argmax(proba, axis=1).astype(np.min_scalar_type(proba.shape[1] - 1))


def predicted_confidence(state) -> tuple[np.ndarray, np.ndarray]:
    """Each row's most probable class index (as :func:`predictions`) and that class's
    probability."""
    proba = state[0]
    index = predictions(state)
    return index, proba[np.arange(len(proba)), index]


def top_candidates(state, members: np.ndarray, excluded: np.ndarray, utility, n: int):
    """A block's ``n`` best candidates by ``utility`` (a per-item strategy, or the
    :class:`activeprop.strategies.PoolScores` of one kept with the block), ties to the
    lower pool index, as (scores, pool indices): enough for the client to merge the global
    top ``n``."""
    proba = state[0]
    if isinstance(utility, PoolScores):  # scores and ranks only the moved rows again
        scores = utility(proba, None, state[2])  # (a lone block's state: lone.fit)
        best = utility.best(excluded, n, members)
        return scores[best], members[best]
    scores = np.asarray(utility(proba, None), dtype=np.float64)
    free = ~excluded
    scores, ids = scores[free], members[free]
    best = best_positions(scores, ids, n)
    return scores[best], ids[best]

