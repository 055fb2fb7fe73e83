"""What each block computes around a solve: right-hand sides, per-component sums, the fill
of far rows, distributions and the strategy's best candidates. Each function is one task
on one block; the client only ever combines the small numbers they return."""

from __future__ import annotations

import numpy as np

from ..propagation import distributions, one_hot
from ..ranking import best_positions
from ..strategies import PoolScores
from .halo import stacked


def one_hot_block(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """A block's labels as one-hot rows (zero rows for unlabeled items)."""
    return one_hot(y, classes)


def labeled_components(components: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The components of a block's labeled items."""
    return np.unique(components[Y.sum(axis=1) > 0])


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


def poisson_sources(Y: np.ndarray, components: np.ndarray, means: dict) -> np.ndarray:
    """Each label's one-hot row minus its component's mean label row (zero elsewhere)."""
    labeled = Y.sum(axis=1) > 0
    return np.where(labeled[:, None], Y - lookup(components, means, Y.shape[1]), 0.0)


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


def nonnegative(F: np.ndarray) -> np.ndarray:
    """Scores below zero (round-off) set to zero."""
    return np.maximum(F, 0.0)


def largest(F: np.ndarray) -> float:
    """A block's largest score."""
    return float(F.max()) if F.size else 0.0


def empty_rows(F: np.ndarray, reached: np.ndarray, floor: float):
    """The fill's start: reached rows whose best score is at most ``floor`` are zeroed
    and marked empty. Returns the fill's state: (F, empty, how many are empty, which rows
    the last layer filled: None before the first, when any empty row may fill)."""
    empty = (reached > 0) & (F.max(axis=1) <= floor)
    F = F.copy()
    F[empty] = 0.0
    return F, empty, int(empty.sum()), None


def rows_product(W, rows: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``(W @ M)[rows]``. Slicing most rows out of a CSR matrix copies it: then all rows
    are multiplied instead."""
    if 4 * len(rows) > W.shape[0]:
        return np.asarray(W @ M)[rows]
    return np.asarray(W[rows] @ M)


def fill_layer(W, state, floor: float, *parts):
    """One layer of :func:`activeprop.fill.fill_below_precision` on a block: every
    empty row next to a row the last layer filled (here or, by ``parts``, the halo's)
    takes its neighbours' weighted scores, rescaled to ``floor``. ``parts``: the halo
    rows' (scores, filled by the last layer) from :func:`fill_halo`. Returns the new
    state; a layer that fills nothing returns the old arrays."""
    F, empty, _, newly = state
    rows = np.flatnonzero(empty)
    if len(rows) and newly is not None:
        # as on one machine: only rows next to those just filled can fill now
        changed = stacked(newly, *(part[1] for part in parts))
        rows = rows[rows_product(W, rows, changed.astype(F.dtype)) > 0] if changed.any() \
            else rows[:0]
    if not len(rows):
        return F, empty, 0, np.zeros(len(F), dtype=bool)
    incoming = rows_product(W, rows, stacked(F, *(part[0] for part in parts)))
    sums = incoming.sum(axis=1)
    filled = sums > 0
    F, empty, newly = F.copy(), empty.copy(), np.zeros(len(F), dtype=bool)
    rows = rows[filled]
    F[rows] = incoming[filled] * (floor / sums[filled, None])
    empty[rows] = False
    newly[rows] = True
    return F, empty, len(rows), newly


def fill_halo(state, positions: np.ndarray):
    """The rows ``positions`` of a fill state's scores, and whether its last layer filled
    them: what a neighbour block needs of it."""
    F, _, _, newly = state
    return np.take(F, positions, axis=0), None if newly is None else newly[positions]


def count_of(state) -> int:
    """How many rows a block's last fill step emptied or filled."""
    return state[2]


def nonzero_moments(U: np.ndarray, mean: float | None):
    """Over the non-zero rows of U: (count, sum) of the entries, or with ``mean`` the sum
    of squared deviations from it."""
    values = U[U.any(axis=1)]
    if mean is None:
        return values.size, float(values.sum())
    return values.size, float(((values - mean) ** 2).sum())


def poisson_probabilities(U: np.ndarray, scale: float) -> np.ndarray:
    """:func:`activeprop.propagation._poisson_distributions` with the pool's ``scale``."""
    zero = ~U.any(axis=1)
    shifted = (U - U.max(axis=1, keepdims=True)) / (scale / 4 or 1.0)
    P = np.exp(shifted)
    P[zero] = 0.0
    return P


def block_distributions(F: np.ndarray):
    """Row distributions and the unreached mask (:func:`activeprop.propagation.distributions`).
    Not the single machine's compiled pass: importing numba costs a worker 110 MB, and two
    workers' rounds at 200,000 items were no faster with it (1,808 against 1,864 ms)."""
    return distributions(F)


def predictions(state) -> np.ndarray:
    """The most probable class index of each row."""
    return np.argmax(state[0], axis=1)


def predicted_confidence(state) -> tuple[np.ndarray, np.ndarray]:
    """Each row's most probable class index and that class's probability."""
    proba = state[0]
    index = np.argmax(proba, axis=1)
    return index, proba[np.arange(len(proba)), index]


def top_candidates(state, members: np.ndarray, excluded: np.ndarray, utility, n: int):
    """A block's ``n`` best candidates by ``utility`` (a per-item strategy, or the
    :class:`activeprop.strategies.PoolScores` of one kept with the block), ties to the
    lower pool index, as (scores, pool indices): enough for the client to merge the global
    top ``n``."""
    proba = state[0]
    scores = np.asarray(utility(proba, None), dtype=np.float64)
    if isinstance(utility, PoolScores):  # ranks only the moved rows again
        best = utility.best(excluded, n, members)
        return scores[best], members[best]
    free = ~excluded
    scores, ids = scores[free], members[free]
    best = best_positions(scores, ids, n)
    return scores[best], ids[best]

