"""A lone block's fit when its worker's memory is the limit: nothing kept between fits, the
classes solved in groups, and the scores made into distributions in their own memory.

The single engine's fit (:mod:`.lone`) keeps its solution, residual, filled scores and fill
between rounds so that the next labels are pushed locally; with the distributions and the
solve's work vectors that is about 56 B an item per class, plus 50 for the fill (from
its fifth fit on it peaked at 500-700 B an item at 10 classes; docs/benchmarks.md). At
4,000,000 items on one worker that state alone passed the worker's target (its share of
the pool plus 1 GiB) by about 1 GB. Here a fit holds, beside the graph:

- the scores (8 B an item per class), which the solves of the groups of classes write into;
  spreading's fill completes them in place, Poisson learning's centring and softmax change
  them in place;
- one group's conjugate-gradient vectors at a time (the groups of
  :func:`activeprop.distributed.model.column_groups`, as the blocks' solves);
- at its end, the distributions beside the scores.

Every fit is a cold global solve to the tolerance, so its answer is the converged solve's
within that tolerance, as the single engine's is; what it gives up is the local rounds.
"""

from __future__ import annotations

import numpy as np

from ..fill import fill_with_layers
from ..graph import Graph
from ..pool_distributions import pool_distributions
from ..propagation import (_laplacian_system, _reached, _rhs_norms, _spreading_matrix,
                           _spreading_system, class_codes, conjugate_gradient,
                           load_compiled_loops, one_hot_codes, poisson_softmax)
from ..row_steps import row_steps
from ..row_versions import RowVersion
from .steps import nonzero_moments, pooled_spread

# What the single engine's fit of a lone block holds beside its graph, B an item: per class,
# its kept solution, residual and filled scores, the distributions and three work vectors of
# the solve (7 x 8); and the fill's parent lists (about 50). Measured at 300,000 and
# 1,000,000 items (docs/benchmarks.md, forty-third session): 505 held and up to 700 at the
# peak, at 10 classes.
FULL_FIT_BYTES_PER_CLASS = 56
FULL_FIT_FILL_BYTES = 50
# A worker process's own memory before it holds any data (Python, numpy, Dask, numba's
# compiled loops): about 300 MB measured on a lone worker at 1,000,000 and 4,000,000 items.
WORKER_OWN_BYTES = 300 * 2**20
# Rows of the scores changed at a time by Poisson learning's softmax (its temporaries).
SOFTMAX_ROWS = 65536


def full_fit_bytes(graph: Graph, n_classes: int) -> int:
    """The peak memory a lone worker reaches with the single engine's fit of
    ``n_classes`` on ``graph``: its own, the graph's and the fit's."""
    per_item = FULL_FIT_BYTES_PER_CLASS * n_classes + FULL_FIT_FILL_BYTES
    return WORKER_OWN_BYTES + graph.nbytes + per_item * graph.n_items


def fits_lean(graph: Graph, y: np.ndarray, budget: int | None) -> bool:
    """Whether a lone block's fit of the labels ``y`` should be lean: when the single
    engine's would pass the worker's memory ``budget`` (bytes; None: no budget)."""
    if budget is None:
        return False
    return full_fit_bytes(graph, len(np.unique(y[y != -1]))) > budget


def fit(graph: Graph, y: np.ndarray, model: dict, groups: list[np.ndarray]) -> tuple:
    """The ``model``'s fit (spreading or Poisson learning, with its alpha, rtol and
    max_iter) of the lone block's labels ``y`` (block order, -1 unlabeled), solving the
    classes' columns in ``groups`` (of :func:`activeprop.distributed.model.column_groups`)
    one after another. Returns ((distributions, unreached, their version), n_iter,
    converged, predicted classes) as :func:`activeprop.distributed.lone.fit_kept` does;
    n_iter is the most any group took."""
    classes = np.unique(y[y != -1])
    codes = graph.labels_to_graph_order(class_codes(y, classes))
    reached = _reached(graph, codes >= 0)
    load_compiled_loops(graph)  # (the solve's, the fill's: not timed, but held once)
    solve_group, finish = _VARIANTS[model["variant"]]
    scores = np.empty((len(codes), len(classes)))
    n_iter, converged = 0, True
    for group in groups:
        group_iter, group_converged = solve_group(graph, codes, group, reached, model, scores)
        n_iter, converged = max(n_iter, group_iter), converged and group_converged
    finish(graph, codes, reached, model, scores)
    distributions, unreached, best, _ = pool_distributions(scores, graph.pool_positions())
    return (distributions, unreached, RowVersion.new()), n_iter, converged, classes[best]


def _fill_spreading(graph: Graph, codes: np.ndarray, reached: np.ndarray, model: dict,
                    scores: np.ndarray) -> None:
    """Spreading's far rows filled in place (:func:`activeprop.fill.fill_with_layers`,
    from the floor the single engine's fill has)."""
    fill_with_layers(_spreading_matrix(graph), scores, reached, model["rtol"] * scores.max(),
                     graph.spreading_roots(), in_place=True)


def _poisson_probabilities(graph: Graph, codes: np.ndarray, reached: np.ndarray,
                           model: dict, scores: np.ndarray) -> None:
    """Poisson learning's scores centred and turned into probabilities, in place."""
    _centre_poisson(graph, codes, reached, scores)
    _softmax_in_place(scores)


def _group_codes(codes: np.ndarray, group: np.ndarray, n_classes: int) -> np.ndarray:
    """The labels' positions among the ``group``'s classes; -1 for the unlabeled and for
    labels of other classes."""
    in_group = np.full(n_classes, -1, dtype=codes.dtype)
    in_group[group] = np.arange(len(group))
    return np.where(codes >= 0, in_group[np.maximum(codes, 0)], -1)


def _solve_spreading_group(graph: Graph, codes: np.ndarray, group: np.ndarray,
                           reached: np.ndarray, model: dict,
                           scores: np.ndarray) -> tuple[int, bool]:
    """The cold conjugate-gradient solve of spreading's classes ``group`` (the single
    engine's: ``X0 = Y``, ``B = (1 - alpha) Y``, each column to its own tolerance),
    written into those columns of ``scores``. Returns n_iter, converged."""
    alpha = model["alpha"]
    in_group = _group_codes(codes, group, scores.shape[1])
    X, _, n_iter, converged, _ = conjugate_gradient(
        _spreading_system(graph, alpha), one_hot_codes(in_group, len(group), 1 - alpha),
        one_hot_codes(in_group, len(group)), diagonal=reached.astype(np.float64),
        rtol=model["rtol"], max_iter=model["max_iter"],
        rhs_norms=_rhs_norms(in_group, len(group), alpha))
    scores[:, group] = X
    return n_iter, converged


def _solve_poisson_group(graph: Graph, codes: np.ndarray, group: np.ndarray,
                         reached: np.ndarray, model: dict,
                         scores: np.ndarray) -> tuple[int, bool]:
    """The cold conjugate-gradient solve of Poisson learning's classes ``group``
    (:func:`activeprop.propagation.solve_poisson`'s system, from zero), written into
    those columns of ``scores``. Returns n_iter, converged."""
    B = _poisson_sources(graph.components(), codes, group, scores.shape[1])
    apply, diagonal = _laplacian_system(graph, reached.astype(np.float64)[:, None])
    X, _, n_iter, converged, _ = conjugate_gradient(
        apply, B, np.zeros_like(B), diagonal=diagonal, rtol=model["rtol"],
        max_iter=model["max_iter"])
    scores[:, group] = X
    return n_iter, converged


def _label_shares(components: np.ndarray, codes: np.ndarray, n_classes: int):
    """The labeled rows, and each one's component's share of labels of every class (its
    mean one-hot label row): (rows, shares of shape (len(rows), n_classes))."""
    rows = np.flatnonzero(codes >= 0)
    _, component = np.unique(components[rows], return_inverse=True)
    counts = np.zeros((component.max(initial=-1) + 1, n_classes))
    np.add.at(counts, (component, codes[rows]), 1.0)
    return rows, (counts / counts.sum(axis=1, keepdims=True))[component]


def _poisson_sources(components: np.ndarray, codes: np.ndarray, group: np.ndarray,
                     n_classes: int) -> np.ndarray:
    """Poisson learning's right-hand side for the classes ``group``: each label's one-hot
    row minus its component's mean label row (a label of a class outside the group is a
    source too, of minus that mean); zero rows where unlabeled."""
    rows, shares = _label_shares(components, codes, n_classes)
    B = np.zeros((len(codes), len(group)))
    B[rows] = (codes[rows, None] == group[None, :]) - shares[:, group]
    return B


def _centre_poisson(graph: Graph, codes: np.ndarray, reached: np.ndarray,
                    U: np.ndarray) -> None:
    """:func:`activeprop.propagation.solve_poisson`'s centring, in place: each reached
    component's degree-weighted mean removed; a component whose labels are all one class
    (its sources cancel) gets that class's row."""
    components, degrees = graph.components(), graph.operator("degrees")
    ids, component = np.unique(components[reached], return_inverse=True)
    rows = np.flatnonzero(reached)
    weights = np.bincount(component, weights=degrees[rows], minlength=len(ids))
    for column in range(U.shape[1]):
        sums = np.bincount(component, weights=degrees[rows] * U[rows, column],
                           minlength=len(ids))
        U[rows, column] -= (sums / weights)[component]
    labeled, shares = _label_shares(components, codes, U.shape[1])
    one_class = shares.max(axis=1) == 1.0
    keys, first = np.unique(components[labeled[one_class]], return_index=True)
    for key, row in zip(keys, shares[one_class][first]):
        U[components == key] = row


def _softmax_in_place(U: np.ndarray) -> None:
    """:func:`activeprop.propagation._poisson_distributions` in place, a block of rows at a
    time: a softmax at the scale of the non-zero rows' spread (their entries' standard
    deviation); rows that are all zero (unreached) stay zero."""
    blocks = [U[rows] for rows in row_steps(len(U), SOFTMAX_ROWS)]
    scale = pooled_spread(lambda mean: [nonzero_moments(part, mean) for part in blocks])
    for part in blocks:
        poisson_softmax(part, scale, out=part)


# Each model's lean fit: its solve of a group of classes, then what makes its scores ready
# to be normalised.
_VARIANTS = {"spreading": (_solve_spreading_group, _fill_spreading),
             "poisson": (_solve_poisson_group, _poisson_probabilities)}
