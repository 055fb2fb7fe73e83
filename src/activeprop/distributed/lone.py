"""A graph held in one row block (one worker): the single-process engine's fit in that
worker, with its warm start kept there between rounds.

A lone block has no halo, so the single engine's solve applies as it is: spreading pushes
the new labels' residual locally (:mod:`activeprop.push`) instead of the blocks' global
conjugate-gradient iterations, and the fill and the distributions are its compiled passes.
Before, a lone worker's round at 200,000 items took 751 ms against the single engine's 91
(the blocks' global solve took 23 iterations over 6 rounds where the push took 4); now
180 against 97, and at 1,000,000 items 809 against 648; then, with the fit's BLAS on all
of the worker's threads (:mod:`.worker_threads`) and a round's labels and predictions
sent in a byte an item, 234 against 146 (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..graph import Graph
from ..propagation import GraphLabeling, WarmStart
from ..strategies import PoolScores
from . import lean
from .worker_threads import on_the_workers_threads


def engine_graph(spreading, roots: np.ndarray, components: np.ndarray, n_neighbors: int,
                 affinity=None, degrees: np.ndarray | None = None) -> Graph:
    """The single engine's :class:`activeprop.graph.Graph` over a lone block's matrices
    (:class:`activeprop.graph.ThreadedMatrix`, rows already in a locality order): the
    normalised ``spreading`` with its ``roots`` (:meth:`activeprop.graph.Graph.
    spreading_roots`), and the ``affinity`` with its ``degrees`` unless the block is
    held for spreading alone; sharing them. Block order is then the engine's pool order."""
    return Graph.of_ordered_knn(spreading, roots, components, n_neighbors, "cluster",
                                symmetric=affinity, degrees=degrees)


def fit(graph: Graph, y: np.ndarray, model: dict, warm: WarmStart | None,
        last: tuple | None = None):
    """Fit the lone block's labels ``y`` (block order; -1 unlabeled) with the single
    engine's ``model`` (the :class:`activeprop.propagation.GraphLabeling` settings), warm
    from the last fit's ``warm``. Returns ((distributions, unreached, their
    :class:`activeprop.row_versions.RowVersion`), the next warm start without its graph,
    n_iter, converged, each row's predicted class). ``last``: the last fit's first
    result, whose distributions this fit's version names the moved rows from (the rows a
    kept strategy's scores read again: :func:`kept_scores`). This fit's distributions are written over them (the model lets
    them go for these: one array of the pool's distributions on the worker, not two).

    ``warm`` is taken over (its arrays are updated in place): it is marked used first, so
    that a rerun of this task (Dask recomputing after a lost worker) starts cold rather
    than from arrays this run changed. The warm start returned leaves the graph out: Dask
    may spill it to disk, and the graph is already on the worker."""
    if warm is not None and warm.X is not None:
        # (the kept fill too: held here, the last fill's parent lists stayed beside the
        # ones a refill makes until the fit returned, 58 B an item at the rounds' peak)
        taken = replace(warm, graph=graph)
        warm.X, warm.R, warm.norms2, warm.fill = None, None, None, None
    else:
        taken = None
    labeling = GraphLabeling(solver="cg", tol=0.0, warm_start=False, **model)
    if last is not None:  # (the model lets them go for this fit's: written over them)
        labeling.follows(last[0], last[2], writes_over=True)
    labeling.fit(graph, y, taken)
    return ((labeling.label_distributions_, labeling.unreached_,
             labeling.distributions_version_),
            replace(labeling.warm_, graph=None), labeling.n_iter_, labeling.converged_,
            labeling.transduction_)


class KeptFit:
    """A lone block's last fit, kept on its worker from round to round: its warm start and
    its result (the distributions the next fit writes over and names the moved rows from).
    One per model, made once as a task next to the block's graph (as :func:`kept_scores`),
    and changed in place by :func:`fit_kept`.

    Why not pass them from round to round as task results (as before): a result made from
    the last round's ties every round to all before it, and the scheduler keeps that
    lineage (each round's tasks, with the block of labels each carried: 8 B an item a
    round) so that it could recompute the newest. Through this holder a round's tasks
    depend on the graph, the holder and their own labels alone. A lost worker loses its
    holder with it: made again empty, the next fit (or the rerun of the one that was
    running) starts cold and gives the same answer within the solver's tolerance."""

    def __init__(self, graph: Graph):  # (``graph`` places the holder on its worker)
        self.warm: WarmStart | None = None
        self.last: tuple | None = None

    def take(self) -> tuple:
        """The warm start and the last result, given up (a rerun of the fit taking them,
        after a failure, finds none and starts cold)."""
        taken, self.warm, self.last = (self.warm, self.last), None, None
        return taken


def fit_kept(graph: Graph, y: np.ndarray, model: dict, kept: KeptFit,
             budget: int | None = None, groups: list | None = None) -> tuple:
    """:func:`fit` warm from what ``kept`` holds, which then holds this fit's. Returns
    ((distributions, unreached, their version), n_iter, converged, each row's predicted
    class: the fit's own, found in the pass that made the distributions).

    When that fit would pass the worker's memory ``budget`` (bytes), the fit is lean
    instead (:mod:`.lean`, its classes solved in ``groups``): what ``kept`` held is let
    go first, and it keeps nothing (the next fit starts cold)."""
    warm, last = kept.take()
    with on_the_workers_threads():  # (the block's only task while it runs)
        if lean.fits_lean(graph, y, budget):
            del warm, last  # (before the lean fit's arrays)
            return lean.fit(graph, y, model, groups)
        result, kept.warm, n_iter, converged, predicted = fit(graph, y, model, warm, last)
    kept.last = result
    return result, n_iter, converged, predicted


def kept_scores(utility, graph: Graph) -> PoolScores:
    """A strategy's scores of the lone block, kept between rounds (``graph`` only places the
    task on the block's worker)."""
    return PoolScores(utility)
