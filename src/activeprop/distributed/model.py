"""Label spreading and Poisson learning on a Dask cluster, behind the active learner's model
interface (:class:`activeprop.models.GraphModel`'s ``fit`` / ``predict`` / ``proba_``).

Every fit solves on the workers' row blocks, warm-started from the last fit's solution, as
the single-process engine does; queries by a strategy that reads each item's own
probabilities are scored per block, and only each block's best candidates reach the client.
"""

from __future__ import annotations

import time
from operator import getitem

import numpy as np

from ..errors import UserError
from ..propagation import poisson_softmax
from ..strategies import BATCH_MODES, DIVERSE_CANDIDATES, diverse_among
from .chunks import chunk_rows_for, row_chunks
from .cluster import arguments_kept_in_tasks, workers
from .graph import ClusterGraph
from .solve import BlockSolver, laplacian_product, spreading_product
from . import lone, steps

CLUSTER_MODELS = ("spreading", "poisson")
# Fill layers submitted between two looks at whether the last one filled anything.
FILL_LAYERS_PER_CHECK = 4
# The most bytes of one block's vector (rows x classes, float64) a solve iterates on: more
# classes than fit are solved in groups, one after the other. CG treats each class's column
# on its own (its own step, direction and tolerance), so a group's columns are the whole
# solve's; but the iterations hold about seven such vectors per block, and at 4,000,000
# items on two workers (160 MB vectors) they were most of a worker's peak. A group costs
# a pass over the block's matrix per iteration: at 1,000,000 items on two workers (40 MB
# vectors) and below, one group.
SOLVE_VECTOR_BYTES = 64 * 2**20
# Warm-started fits in a row before one starts cold. A warm start is the last solution, a
# result of that fit's tasks, which were made from the fit's before: the scheduler keeps
# that lineage to recompute a lost block (each fit's tasks, with the blocks of labels each
# carried: 8 B an item a fit), and a worker lost late in a labeling session would have
# every fit since the last cold one solved again. A cold start depends on its labels
# alone, so the lineage before it is let go. (A lone block keeps its warm start on its
# worker instead, outside the lineage: lone.KeptFit; one task fits it, so a rerun is
# always whole, where blocks recomputed on their own must meet the others' iterations.)
WARM_FITS = 8
# What a worker may hold beyond its share of the pool's features, unless told otherwise
# (issue 19's bound): a lone block whose single-engine fit would pass it fits lean.
WORKER_HEADROOM = 2**30


def column_groups(n_classes: int, block_rows: int) -> list[np.ndarray]:
    """The classes' columns in as few groups of about equal size as keep a block's vector
    of a group within SOLVE_VECTOR_BYTES (one group per column at most)."""
    per_group = max(1, SOLVE_VECTOR_BYTES // (8 * max(block_rows, 1)))
    return np.array_split(np.arange(n_classes), -(-n_classes // per_group))


def narrow_labels(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Integer labels ``y`` in the narrowest integer type that holds -1 and their sorted
    ``classes`` (int8 for up to 127 classes numbered from 0): what a lone block's fit is
    sent every round, 1 MB at 1,000,000 items rather than 8 (11 against 22 ms through the
    scheduler here), and its predictions come back in. Other labels are kept as they are."""
    if not np.issubdtype(y.dtype, np.signedinteger):
        return y
    low, high = min(-1, int(classes[0])), int(classes[-1])
    for kind in (np.int8, np.int16, np.int32):
        if np.iinfo(kind).min <= low and high <= np.iinfo(kind).max:
            return y.astype(kind)
    return y


def needs_affinity(name: str, n_blocks: int) -> bool:
    """Whether model ``name`` on a graph of ``n_blocks`` row blocks reads the symmetric
    affinity: Poisson learning does; spreading's solve and fill read the normalised
    operator alone (the fill weighs its columns by the degrees' roots)."""
    return name != "spreading"


def needs_spreading(name: str, n_blocks: int) -> bool:
    """Whether model ``name`` on a graph of ``n_blocks`` row blocks reads the normalised
    spreading operator: spreading does, and every model on a lone block (the single
    engine's graph there is built around it: :mod:`.lone`). Poisson learning on several
    blocks does not: a graph for it alone keeps one matrix per block, not two (145 B an
    item)."""
    return name == "spreading" or n_blocks == 1


def _laplacian_inverse(reached, degrees, self_loops) -> np.ndarray:
    """The inverse diagonal of ``mask (D - W)``, zero on rows left out."""
    diagonal = reached * (degrees - self_loops)
    return np.divide(1.0, diagonal, out=np.zeros_like(diagonal), where=diagonal != 0)


class ClusterGraphModel:
    """Spreading or Poisson learning on a kNN graph built and solved on a Dask cluster.

    Parameters
    ----------
    name : {"spreading", "poisson"}
    X : ndarray or dask array of shape (n_items, n_features)
    client : distributed.Client
    n_neighbors, alpha, max_iter, rtol :
        As :class:`activeprop.models.GraphModel`'s (the solver is always conjugate
        gradients, the graph always an exact kNN connectivity graph).
    n_blocks : int, optional
        Row blocks of the graph; default one per worker (a worker's threads share its
        block's products, as one machine's cores share its graph's).
    chunk_rows : int, optional
        Rows per chunk of the neighbour search; default the pool split evenly over the
        workers (:func:`activeprop.distributed.chunks.chunk_rows_for`).
    search : {"auto", "flat", "hnsw"}
        How each chunk is searched (:class:`activeprop.distributed.graph.ClusterGraph`).
    worker_memory : int, optional
        The bytes a worker may hold; default its share of the pool's features plus
        :data:`WORKER_HEADROOM`. A graph in one block whose single-engine fit would pass
        it is fitted lean (:mod:`activeprop.distributed.lean`).
    """

    transductive = True

    def __init__(self, name: str, X, client, *, n_neighbors: int, alpha: float | None,
                 max_iter: int, rtol: float, n_blocks: int | None = None,
                 chunk_rows: int | None = None, search: str = "auto",
                 worker_memory: int | None = None):
        if name not in CLUSTER_MODELS:
            raise UserError(f"model {name!r} does not run on a cluster; allowed there: "
                            f"{', '.join(CLUSTER_MODELS)}")
        self.name, self.X, self.client = name, X, client
        self.n_neighbors, self.alpha, self.max_iter, self.rtol = n_neighbors, alpha, \
            max_iter, rtol
        self.n_blocks = n_blocks or len(workers(client))
        self.chunk_rows = chunk_rows or chunk_rows_for(
            len(X), len(workers(client)))
        self.search = search
        self.worker_memory = worker_memory if worker_memory is not None else \
            int(X.nbytes) // len(workers(client)) + WORKER_HEADROOM
        self.graph: ClusterGraph | None = None
        self.graph_seconds = 0.0
        self._warm = None  # (classes, X blocks per group of columns) of the last fit
        self._warm_fits = 0  # fits warm-started since the last cold one (WARM_FITS)
        self._lone_graph = None  # a lone block's single-engine graph (lone.engine_graph)
        self._lone_kept = None  # a lone block's last fit, kept on its worker (lone.KeptFit)
        self._scorers: dict = {}  # a lone block's kept scores per strategy (_kept_scores)
        self._lone_predicted = None  # a lone block's last fit's predicted classes (future)
        self._distributions: list | None = None  # each block's last fit's (futures)

    def build_graph(self, models: tuple[str, ...] = ()) -> ClusterGraph:
        """Build the pool's graph on the cluster, once; for this model and the ``models``
        that will share it (a graph for one model holds only the matrix it reads, which
        another model may not be able to use: :meth:`can_use`)."""
        start = time.perf_counter()
        names = (self.name, *models)
        self.graph = ClusterGraph(
            self.client, row_chunks(self.client, self.X, self.chunk_rows), self.n_neighbors,
            self.n_blocks, search=self.search,
            keeps_affinity=any(needs_affinity(name, self.n_blocks) for name in names),
            keeps_spreading=any(needs_spreading(name, self.n_blocks) for name in names))
        self.graph_seconds = time.perf_counter() - start
        return self.graph

    def can_use(self, graph: ClusterGraph) -> bool:
        """Whether this model can be fitted on ``graph`` (one another model built)."""
        return ((graph.keeps_affinity or not needs_affinity(self.name, graph.n_blocks))
                and (graph.keeps_spreading or not needs_spreading(self.name, graph.n_blocks)))

    def fit(self, y: np.ndarray) -> "ClusterGraphModel":
        """Fit on the partial labels ``y`` (-1 = unlabeled) of the whole pool."""
        if self.graph is None:
            self.build_graph()
        assert self.can_use(self.graph), "a graph built without the matrix this model reads"
        y = np.asarray(y)
        if y.shape != (self.graph.n_items,):
            raise UserError(f"y must have one label per item ({self.graph.n_items}), "
                            f"got {y.shape}")
        self.classes_ = np.unique(y[y != -1])
        if len(self.classes_) == 0:
            raise UserError("y has no labeled item: mark at least one item with its class "
                            "(unlabeled items are -1)")
        # The last fit's distributions are let go before this fit makes its own: nothing
        # below reads them, and they were one (items x classes) array more at a fit's peak
        # (a lone block's fit writes over them: lone.KeptFit holds them for it).
        self._distributions, self._proba, self._predicted = None, None, None
        if self.graph.n_blocks == 1:
            return self._fit_lone(y)
        submit, graph = self.client.submit, self.graph
        labels = graph.to_blocks(y)
        holding = np.unique(np.concatenate(self.client.gather(
            [submit(steps.labeled_components, c, y_b) for c, y_b in zip(graph.components,
                                                                        labels)])))
        reached = [submit(steps.reached_rows, c, holding) for c in graph.components]
        scores = self._spreading(labels, reached) if self.name == "spreading" \
            else self._poisson(labels, reached)
        self._distributions = [submit(steps.block_distributions, F) for F in scores]
        return self

    def _fit_lone(self, y: np.ndarray) -> "ClusterGraphModel":
        """A graph in one block: the single engine's fit in its worker
        (:mod:`activeprop.distributed.lone`), warm from the last fit, which stays on the
        worker (:class:`activeprop.distributed.lone.KeptFit`)."""
        submit, graph = self.client.submit, self.graph
        if self._lone_graph is None:
            affinity = [graph.affinity_products[0], graph.degrees[0]] \
                if graph.keeps_affinity else []
            self._lone_graph = submit(lone.engine_graph, graph.spreading_products[0],
                                      graph.roots[0], graph.components[0], self.n_neighbors,
                                      *affinity)
            # not pure: the model's own, changed by each fit (two models sharing one
            # would take each other's warm starts)
            self._lone_kept = submit(lone.KeptFit, self._lone_graph, pure=False)
        model = {"variant": self.name, "alpha": self.alpha, "max_iter": self.max_iter,
                 "rtol": self.rtol}
        # not pure: the task changes what the holder keeps (lone.KeptFit says why a rerun
        # stays right)
        with arguments_kept_in_tasks():  # (the labels, carried by the fit's task)
            fitted = submit(lone.fit_kept, self._lone_graph,
                            graph.blocks_of(narrow_labels(y, self.classes_))[0], model,
                            self._lone_kept, self.worker_memory,
                            column_groups(len(self.classes_), graph.n_items), pure=False)
        self._distributions = [submit(getitem, fitted, 0)]
        self._lone_predicted = submit(getitem, fitted, 3)
        self.n_products_ = 0  # (no halo: the products stay on the worker)
        self.n_iter_, self.converged_ = self.client.gather(
            [submit(getitem, fitted, 1), submit(getitem, fitted, 2)])
        return self

    def _warm_start(self) -> list | None:
        """The last fit's solution, one list of blocks per group of columns, when the
        classes are the same (a warm start), taken from the model: each group's solve lets
        its blocks go once it has started from them. None after WARM_FITS warm fits in a
        row: this fit then starts cold, and the lineage before it is let go."""
        warm, self._warm = self._warm, None
        if warm is not None and np.array_equal(warm[0], self.classes_) \
                and self._warm_fits < WARM_FITS:
            self._warm_fits += 1
            return warm[1]
        self._warm_fits = 0
        return None

    def _solve_in_groups(self, solver: BlockSolver, system, inverse: list) -> list:
        """Solve column group after group (:func:`column_groups`); ``system(columns)``
        gives a group's (B, cold start) blocks. Returns the solution as one list of
        blocks per group, kept as the next fit's warm start; sets ``n_iter_`` (the most
        any group took, as one solve of all columns would), ``converged_`` and
        ``n_products_`` (the products through the halo the solves submitted:
        :attr:`BlockSolver.products`)."""
        groups = column_groups(len(self.classes_),
                               max(len(rows) for rows in self.graph.layout.members))
        warm = self._warm_start()
        if warm is None or len(warm) != len(groups):  # (no last fit, or other groups)
            warm = [None] * len(groups)
        solutions, self.n_iter_, self.converged_ = [], 0, True
        for columns, X0 in zip(groups, warm):
            B, cold = system(columns)
            X, n_iter, converged = solver.solve(B, X0 if X0 is not None else cold(),
                                                inverse, rtol=self.rtol,
                                                max_iter=self.max_iter)
            solutions.append(X)
            self.n_iter_, self.converged_ = max(self.n_iter_, n_iter), \
                self.converged_ and converged
        self._warm = (self.classes_, solutions)
        self.n_products_ = solver.products
        return solutions

    def _spreading(self, labels: list, reached: list) -> list:
        submit, graph, classes = self.client.submit, self.graph, self.classes_
        solver = BlockSolver(self.client, graph.exchange, spreading_product,
                             graph.spreading_products,
                             [[self.alpha] * graph.n_blocks], unit_diagonal=True)

        def system(columns):
            # B and a cold start made from the labels' blocks (no one-hot block kept
            # beside them through the solve)
            return ([submit(steps.one_hot_block, y_b, classes[columns], 1 - self.alpha)
                     for y_b in labels],
                    lambda: self._one_hot(labels, classes[columns]))

        # the system's diagonal is 1 on reached rows (0 on those left out): its own inverse
        return self._fill(self._solve_in_groups(solver, system, reached), reached)

    def _fill(self, groups: list, reached: list) -> list:
        """:func:`activeprop.fill.fill_below_precision`, one layer per exchange of
        the newly filled rows' scores between blocks (as one machine fills them, on the
        normalised operator with its columns weighed by the degrees' roots); ``groups``:
        the solution's blocks, one list per group of columns."""
        submit, graph = self.client.submit, self.graph
        floor = self.rtol * max(self.client.gather([submit(steps.largest, x)
                                                    for X in groups for x in X]))
        start = state = [submit(steps.empty_rows, r, floor, *parts)
                         for r, *parts in zip(reached, *groups)]
        layers = []  # each layer's states: the rows it filled, written in at the end
        while sum(self.client.gather([submit(steps.count_of, s) for s in state])):
            # Layers after the last that fills a row change nothing: submit a few at a
            # time, so the client's round trip is paid once per few layers.
            for _ in range(FILL_LAYERS_PER_CHECK):
                state = [submit(steps.fill_layer, S, roots, s, floor,
                                *graph.exchange.parts(state, b, take=steps.fill_halo))
                         for b, (S, roots, s) in enumerate(zip(
                             graph.spreading_products, graph.column_roots, state))]
                layers.append(state)
        return [submit(steps.filled_scores, s, *(layer[b] for layer in layers))
                for b, s in enumerate(start)]

    def _poisson(self, labels: list, reached: list) -> list:
        submit, graph, k, classes = self.client.submit, self.graph, len(self.classes_), \
            self.classes_
        means = self._label_means(self._one_hot(labels))
        inverse = [submit(_laplacian_inverse, r, d, s)
                   for r, d, s in zip(reached, graph.degrees, graph.self_loops)]
        solver = BlockSolver(self.client, graph.exchange, laplacian_product,
                             graph.affinity_products,
                             [graph.degrees, reached])

        def system(columns):
            # a group's sources: its classes' one-hot columns less their means
            group_means = {key: row[columns] for key, row in means.items()}
            B = [submit(steps.poisson_sources, y_b, classes[columns], c, group_means)
                 for y_b, c in zip(labels, graph.components)]
            return B, lambda: [submit(np.zeros_like, b) for b in B]

        groups = self._solve_in_groups(solver, system, inverse)
        # the sources again, now that the solve has let its groups' go
        B = [submit(steps.poisson_sources, y_b, classes, c, means)
             for y_b, c in zip(labels, graph.components)]
        X = [submit(steps.joined_columns, *parts) for parts in zip(*groups)]
        totals = steps.combine_components(self.client.gather(
            [submit(steps.poisson_statistics, x, b, y_b, d, c, r) for x, b, y_b, d, c, r in
             zip(X, B, self._one_hot(labels), graph.degrees, graph.components, reached)]))
        U = [submit(steps.poisson_centre, x, c, r, totals, k)
             for x, c, r in zip(X, graph.components, reached)]
        return self._poisson_probabilities(U)

    def _one_hot(self, labels: list, classes: np.ndarray | None = None) -> list:
        """The blocks of labels as one-hot blocks of ``classes`` (this fit's, unless
        given)."""
        classes = self.classes_ if classes is None else classes
        return [self.client.submit(steps.one_hot_block, y_b, classes) for y_b in labels]

    def _label_means(self, Y: list) -> dict:
        """Each labeled component's mean label row."""
        submit, graph = self.client.submit, self.graph
        totals = steps.combine_components(self.client.gather(
            [submit(steps.label_sums, c, y_b) for c, y_b in zip(graph.components, Y)]))
        return {key: row[:-1] / row[-1] for key, row in totals.items()}

    def _poisson_probabilities(self, U: list) -> list:
        """Softmax at the scale of the scores' spread, as the single-process engine."""
        submit = self.client.submit
        scale = steps.pooled_spread(lambda mean: self.client.gather(
            [submit(steps.nonzero_moments, u, mean) for u in U]))
        return [submit(poisson_softmax, u, scale) for u in U]

    # ------------------------------------------------------------------ what the loop reads

    @property
    def proba_(self) -> np.ndarray:
        """Every item's class probabilities, gathered to the client on first use (a query
        by a per-item strategy never needs them: see :meth:`top_items`)."""
        if self._proba is None:
            self._proba = self.graph.from_blocks(
                [self.client.submit(getitem, d, 0) for d in self._distributions])
        return self._proba

    @property
    def unreached_(self) -> np.ndarray:
        """Items whose component holds no label (their distribution is uniform)."""
        return self.graph.from_blocks(
            [self.client.submit(getitem, d, 1) for d in self._distributions])

    def predict(self) -> np.ndarray:
        """The predicted class of every item (gathered: one integer per item)."""
        if self._predicted is None:
            self._predicted = self._lone_predictions() if self._lone_graph is not None \
                else self._block_predictions()
        return self._predicted

    def _block_predictions(self) -> np.ndarray:
        """Each block's most probable classes, found on its worker (a narrow index)."""
        return self.classes_[self.graph.from_blocks(
            [self.client.submit(steps.predictions, d) for d in self._distributions])]

    def _lone_predictions(self) -> np.ndarray:
        """A lone fit's own predicted classes (found as it made the distributions, sent in
        its labels' narrow type), in the classes' type."""
        return self.graph.from_blocks([self._lone_predicted]).astype(self.classes_.dtype,
                                                                     copy=False)

    def typical_items(self, k: int) -> np.ndarray:
        """The ``k`` typical items of the pool, found on the workers
        (:func:`activeprop.distributed.typical.typical_items`)."""
        from .typical import typical_items

        if self.graph is None:
            self.build_graph()
        return typical_items(self.client, self.graph.chunks, k)

    def confidences(self) -> tuple[np.ndarray, np.ndarray]:
        """Every item's predicted class and its probability, gathered to the client (two
        numbers per item, where :attr:`proba_` would bring one per class)."""
        submit = self.client.submit
        parts = [submit(steps.predicted_confidence, d) for d in self._distributions]
        index = self.graph.from_blocks([submit(getitem, part, 0) for part in parts])
        confidence = self.graph.from_blocks([submit(getitem, part, 1) for part in parts])
        return self.classes_[index], confidence

    def top_candidates(self, utility, excluded: np.ndarray, n: int):
        """The ``n`` items not ``excluded`` that ``utility`` (a per-item strategy) rates
        highest, best first (ties to the lower pool index), with their scores: each block
        sends its best ``n``."""
        graph, submit = self.graph, self.client.submit
        scorer = self._kept_scores(utility) if self._lone_graph is not None else utility
        with arguments_kept_in_tasks():  # (each block's excluded items)
            asked = [submit(steps.top_candidates, d, members, excluded_b, scorer, n)
                     for d, members, excluded_b in zip(self._distributions, graph.members,
                                                       graph.blocks_of(excluded))]
        parts = self.client.gather(asked)
        scores = np.concatenate([p[0] for p in parts])
        ids = np.concatenate([p[1] for p in parts])
        best = np.lexsort((ids, -scores))[:n]
        return ids[best], scores[best]

    def _kept_scores(self, utility):
        """A lone block's :class:`activeprop.strategies.PoolScores` for ``utility``, kept on
        its worker from round to round (next to the graph, so where the distributions are):
        it scores again only the rows whose distributions moved, as on one machine."""
        if utility not in self._scorers:
            # not pure: a model's own (two models sharing one would rescore every row)
            self._scorers[utility] = self.client.submit(lone.kept_scores, utility,
                                                        self._lone_graph, pure=False)
        return self._scorers[utility]

    def top_items(self, utility, excluded: np.ndarray, n: int) -> np.ndarray:
        """:meth:`top_candidates`' items."""
        return self.top_candidates(utility, excluded, n)[0]

    def select_batch(self, mode: str, utility, excluded: np.ndarray, n: int,
                     seed: int = 0) -> np.ndarray:
        """:func:`activeprop.strategies.select_batch` for a per-item ``utility``, scored on
        the blocks: only the candidates (and, for a diverse batch, their features) reach
        the client."""
        if mode not in BATCH_MODES:
            raise UserError(f"unknown batch mode {mode!r}; allowed: {', '.join(BATCH_MODES)}")
        if mode == "topk":
            return self.top_items(utility, excluded, n)
        ids, scores = self.top_candidates(utility, excluded, DIVERSE_CANDIDATES * n)
        return diverse_among(ids, scores, self.graph.rows(ids), n, seed)


def check_cluster_config(config) -> None:
    """Raise UserError when a simulation setting has no cluster form (yet), naming it."""
    problems = [
        (config.model in CLUSTER_MODELS,
         f"--model {config.model} does not run on a cluster; allowed: "
         f"{', '.join(CLUSTER_MODELS)}"),
        (config.kernel == "knn", "--cluster needs --kernel knn (a dense rbf graph does not "
                                 "split into row blocks)"),
        (config.initial_strategy != "typical",
         "--initial-strategy typical does not run on a cluster; use first or random"),
        (not config.estimate, "--estimate and --stop-when do not run on a cluster yet"),
        (config.class_priors is None, "--class-priors do not run on a cluster yet"),
        (not config.local_from, "--local-from does not run on a cluster yet (its graph has "
                                "no weights); give --local-from 0"),
        (config.graph_weights == "connectivity",
         f"--graph-weights {config.graph_weights} does not run on a cluster yet; allowed "
         "there: connectivity"),
        (config.column_weights != "labels", "--column-weights labels does not run on a "
                                            "cluster (its graph would be built again for "
                                            "every round); give none"),
    ]
    for ok, message in problems:
        if not ok:
            raise UserError(message)


def cluster_model(config, pool, client, graph: ClusterGraph | None = None) -> ClusterGraphModel:
    """The model of a simulation ``config`` on ``pool``, solved on the cluster of
    ``client`` (always conjugate gradients on an exact kNN graph); ``graph``: the pool's
    graph, already built by another model."""
    check_cluster_config(config)
    model = ClusterGraphModel(config.model, pool.X, client, n_neighbors=config.n_neighbors,
                              alpha=config.alpha if config.model == "spreading" else None,
                              max_iter=config.max_iter, rtol=config.rtol,
                              search={"sklearn": "flat"}.get(config.graph_backend,
                                                             config.graph_backend))
    model.graph = graph
    return model
