"""A lone block's spreading fit when its worker's memory is the limit: nothing kept between
fits, the classes solved in groups, and the far rows filled in the solution's own memory.

The single engine's fit (:mod:`.lone`) keeps its solution, residual, filled scores and fill
between rounds so that the next labels are pushed locally; with the distributions and the
solve's work vectors that is about 56 B an item per class, plus 50 for the fill (from
its fifth fit on it peaked at 500-700 B an item at 10 classes; docs/benchmarks.md). At
4,000,000 items on one worker that state alone passed the worker's target (its share of
the pool plus 1 GiB) by about 1 GB. Here a fit holds, beside the graph:

- the scores (8 B an item per class), which the solves of the groups of classes write into
  and the fill completes in place;
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
from ..propagation import (_reached, _rhs_norms, _spreading_matrix, _spreading_system,
                           class_codes, conjugate_gradient, load_compiled_loops,
                           one_hot_codes)
from ..row_versions import RowVersion

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


def full_fit_bytes(graph: Graph, n_classes: int) -> int:
    """The peak memory a lone worker reaches with the single engine's fit of
    ``n_classes`` on ``graph``: its own, the graph's and the fit's."""
    per_item = FULL_FIT_BYTES_PER_CLASS * n_classes + FULL_FIT_FILL_BYTES
    return WORKER_OWN_BYTES + graph.nbytes + per_item * graph.n_items


def fits_lean(graph: Graph, y: np.ndarray, model: dict, budget: int | None) -> bool:
    """Whether a lone block's fit of the labels ``y`` should be lean: a spreading model
    whose single-engine fit would pass the worker's memory ``budget`` (bytes; None: no
    budget). Poisson learning's lean fit is not built: it always fits as one machine."""
    if budget is None or model["variant"] != "spreading":
        return False
    return full_fit_bytes(graph, len(np.unique(y[y != -1]))) > budget


def fit(graph: Graph, y: np.ndarray, model: dict, groups: list[np.ndarray]) -> tuple:
    """Spreading's fit of the lone block's labels ``y`` (block order, -1 unlabeled) with the
    ``model``'s alpha, rtol and max_iter, solving the classes' columns in ``groups`` (of
    :func:`activeprop.distributed.model.column_groups`) one after another. Returns
    ((distributions, unreached, their version), n_iter, converged) as
    :func:`activeprop.distributed.lone.fit_kept` does; n_iter is the most any group took."""
    alpha, rtol, max_iter = model["alpha"], model["rtol"], model["max_iter"]
    classes = np.unique(y[y != -1])
    codes = graph.labels_to_graph_order(class_codes(y, classes))
    reached = _reached(graph, codes >= 0)
    load_compiled_loops(graph)
    scores = np.empty((len(codes), len(classes)))
    n_iter, converged = 0, True
    for group in groups:
        group_iter, group_converged = _solve_group(graph, codes, group, alpha, reached,
                                                   rtol, max_iter, scores)
        n_iter, converged = max(n_iter, group_iter), converged and group_converged
    floor = rtol * scores.max()
    fill_with_layers(_spreading_matrix(graph), scores, reached, floor,
                     graph.spreading_roots(), in_place=True)
    distributions, unreached, _, _ = pool_distributions(scores, graph.pool_positions())
    return (distributions, unreached, RowVersion.new()), n_iter, converged


def _solve_group(graph: Graph, codes: np.ndarray, group: np.ndarray, alpha: float,
                 reached: np.ndarray, rtol: float, max_iter: int,
                 scores: np.ndarray) -> tuple[int, bool]:
    """The cold conjugate-gradient solve of spreading's classes ``group`` (the single
    engine's: ``X0 = Y``, ``B = (1 - alpha) Y``, each column to its own tolerance),
    written into those columns of ``scores``. Returns n_iter, converged."""
    in_group = np.full(scores.shape[1], -1, dtype=codes.dtype)
    in_group[group] = np.arange(len(group))
    group_codes = np.where(codes >= 0, in_group[np.maximum(codes, 0)], -1)
    X, _, n_iter, converged, _ = conjugate_gradient(
        _spreading_system(graph, alpha), one_hot_codes(group_codes, len(group), 1 - alpha),
        one_hot_codes(group_codes, len(group)), diagonal=reached.astype(np.float64),
        rtol=rtol, max_iter=max_iter, rhs_norms=_rhs_norms(group_codes, len(group), alpha))
    scores[:, group] = X
    return n_iter, converged
