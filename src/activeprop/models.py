"""Models an active learner can drive, behind one small interface.

Every model sees the whole pool and the current partial labels (-1 = unlabeled) and
returns class probabilities for every pool item:

* ``spreading`` / ``propagation`` / ``poisson``: the transductive graph labeling of
  :mod:`activeprop.propagation`; the graph is built on the first fit and reused after;
* ``logistic``: scikit-learn's LogisticRegression trained on the labeled items only,
  scoring the pool (the seed tutorial's model);
* ``module:Class``: any scikit-learn classifier with ``predict_proba``.
"""

from __future__ import annotations

import time

import numpy as np

from .errors import UserError
from .graph import EDGE_WEIGHTS, build_graph, build_knn_graph, with_local_weights
from .plugins import load_model
from .propagation import (VARIANTS, GraphLabeling, load_compiled_loops, power_columns,
                          validate_params)

GRAPH_MODELS = VARIANTS
MODEL_NAMES = (*GRAPH_MODELS, "logistic")


class GraphModel:
    """Label spreading, propagation or Poisson learning fitted on one pool's reused graph.

    ``kernel``, ``gamma`` and ``n_neighbors`` choose the graph (built on the first fit);
    the other parameters are :class:`activeprop.propagation.GraphLabeling`'s. Every fit
    starts from what the previous one left (the cg solution, or the iteration's power
    columns).
    """

    transductive = True

    def __init__(self, name: str, X: np.ndarray, graph_options: dict | None = None,
                 graph_cache: dict | None = None, *, kernel: str, gamma: float,
                 n_neighbors: int, alpha: float | None, max_iter: int, tol: float,
                 solver: str, rtol: float, class_priors: dict | None = None):
        validate_params(name, kernel=kernel, gamma=gamma, n_neighbors=n_neighbors, alpha=alpha,
                        max_iter=max_iter, tol=tol, solver=solver, rtol=rtol)
        self.name = name
        self.X = X
        self.kernel, self.gamma, self.n_neighbors = kernel, gamma, n_neighbors
        self.labeling = GraphLabeling(name, alpha=alpha, max_iter=max_iter, tol=tol,
                                      solver=solver, rtol=rtol, warm_start=True,
                                      class_priors=class_priors)
        self.graph_options = graph_options or {}
        self.graph_cache = {} if graph_cache is None else graph_cache
        self.graph = None
        self.graph_seconds = 0.0
        self.weights = self.graph_options.get("weights", "connectivity")
        # the columns' weights the graph was built with (activeprop.column_weights; None:
        # the features as given)
        self.features, self.column_weights = X, None

    @property
    def alpha(self) -> float | None:
        """The spreading clamping factor (None for the other models)."""
        return self.labeling.alpha

    def _graph_recipe(self) -> tuple:
        """What determines the graph; models with the same recipe share one graph."""
        backend = self.graph_options.get("backend", "auto")
        if self.kernel == "knn" and backend != "sklearn" and not (
                backend == "auto" and self.labeling.solver == "iterate"):
            return ("knn", self.n_neighbors, backend, self.graph_options.get("symmetric", False),
                    self.weights)
        # scikit-learn's own graph: exact reproduction with the iterate solver
        return (self.kernel, self.n_neighbors if self.kernel == "knn" else self.gamma,
                "sklearn")

    def _has_edge_weights(self) -> bool:
        """Whether this model's graph takes edge weights: a faiss kNN graph does,
        scikit-learn's graphs (the iterate solver's exact reproduction) do not."""
        return self._graph_recipe()[-1] in EDGE_WEIGHTS

    def build_graph(self):
        """Build the pool's graph (or take the one another model of this pool built) and
        the operators the solver needs, once."""
        start = time.perf_counter()
        recipe = self._graph_recipe()
        # A directed kNN graph weighted locally: its plain twin's neighbours, if searched.
        plain = recipe[:-1] + ("connectivity",) if recipe[-1] == "local" and not recipe[3] \
            else None
        if recipe in self.graph_cache:
            self.graph = self.graph_cache[recipe]
        elif plain is not None and plain in self.graph_cache:
            self.graph = with_local_weights(self.graph_cache[plain])  # no second search
        elif recipe[2] == "sklearn":
            self.graph = build_graph(self.X, self.kernel, gamma=self.gamma,
                                     n_neighbors=self.n_neighbors)
        else:
            self.graph = build_knn_graph(self.X, self.n_neighbors, backend=recipe[2],
                                         symmetric=recipe[3], weights=recipe[4])
        # The operators are part of the one-off graph cost, not of a round.
        variant = self.labeling.variant
        if self.labeling.solver == "cg" or variant == "poisson":
            self.graph.operator("symmetric-spreading" if variant == "spreading" else "degrees")
            self.graph.components()
            if variant == "spreading":
                load_compiled_loops(self.graph)  # (a labeler's first refit waited for them)
        else:
            self.graph.operator(variant)
        # registered with them: a project's graph file keeps what the solvers derived
        self.graph_cache[recipe] = self.graph
        self.graph_seconds = time.perf_counter() - start
        return self.graph

    def plan(self, n_fits: int) -> None:
        """Announce ``n_fits`` fits to come on this pool's graph (this model's and those of
        models sharing the graph), so that one-off work that pays over them is done first."""
        graph = self.graph if self.graph is not None else self.build_graph()
        if self.labeling.reuses_powers(graph):
            power_columns(graph).plan(n_fits)

    def fit(self, y: np.ndarray) -> "GraphModel":
        """Fit on the partial labels ``y`` (-1 = unlabeled) of the whole pool."""
        y = np.asarray(y)
        if y.shape != (len(self.X),):
            raise UserError(f"y must have one label per item ({len(self.X)}), got {y.shape}")
        self._weigh_for(y)
        if self.graph is None:
            self.build_graph()
        fitted = self.labeling.fit(self.graph, y, self.labeling.warm_)
        self.classes_ = fitted.classes_
        self.proba_ = fitted.label_distributions_
        self.proba_version_ = fitted.distributions_version_  # rows moved since (PoolScores)
        self.unreached_ = fitted.unreached_
        return self

    def _weigh_for(self, y: np.ndarray) -> None:
        """The graph for the labels ``y``: a table's columns weighed by what the labels say
        when ``graph_options``' ``column_weights`` is ``"labels"`` (:meth:`_weigh_columns`),
        and local edge weights (:meth:`_weigh_edges`). Both are functions of the labels
        alone, so every process fitting the same labels uses the same graph."""
        if self.graph_options.get("column_weights") == "labels":
            self._weigh_columns(y)
        self._weigh_edges(y)

    def _weigh_columns(self, y: np.ndarray) -> None:
        """The features' columns weighed for the labels ``y``
        (:func:`activeprop.column_weights.label_weights`); the graph is built again when
        the weights change. A weighted graph is this model's own: the graph cache (a
        project's stored graphs, other models of the pool) holds the features' graph."""
        from .column_weights import label_weights, weighted

        weights = label_weights(self.features, y)
        if self.column_weights is None and np.all(weights == 1.0):
            return  # the features as given, and their graph
        if self.column_weights is not None and np.array_equal(weights, self.column_weights):
            return
        self.column_weights, self.X = weights, weighted(self.features, weights)
        self.graph, self.graph_cache = None, {}

    def _weigh_edges(self, y: np.ndarray) -> None:
        """Edges weighted locally once the labels ``y`` number ``graph_options``'
        ``local_from`` per class seen, plain before.

        With one to three labels per class, local weights cost the first guesses (raw
        pixels, an embedding: 0.03-0.05 at 20 labels); from four per class on they gain on
        pictures and lose on texts and wine (docs/benchmarks.md, 2026-12-02;
        experiments.recommended_local_from)."""
        per_class = self.graph_options.get("local_from")
        if per_class is None or not self._has_edge_weights():
            return
        labeled = y[y != -1]
        enough = len(labeled) > 0 and len(labeled) >= per_class * len(np.unique(labeled))
        weights = "local" if enough else self.graph_options.get("weights", "connectivity")
        if weights != self.weights:
            self.weights, self.graph = weights, None

    def held_out(self, y: np.ndarray, folds: list[np.ndarray]):
        """The labeled items' distributions from fits without their fold, read off what the
        last fit on ``y`` cached, without refitting; None when that is not possible.
        See :meth:`activeprop.propagation.GraphLabeling.held_out`."""
        graph = self.graph if self.graph is not None else self.build_graph()
        return self.labeling.held_out(graph, np.asarray(y), folds)

    def predict(self) -> np.ndarray:
        """Predicted class of every pool item (``transduction_``)."""
        return self.labeling.transduction_

    def confidences(self) -> tuple[np.ndarray, np.ndarray]:
        """Every item's predicted class and its probability (derived once per fit)."""
        return self.labeling.transduction_, self.labeling.confidence_


class ClassifierModel:
    """An inductive scikit-learn classifier trained on the labeled items of the pool."""

    transductive = False
    graph_seconds = 0.0

    def __init__(self, name: str, X: np.ndarray, estimator):
        if not hasattr(estimator, "predict_proba"):
            raise UserError(f"model {name!r} has no predict_proba; a query strategy needs "
                            "class probabilities")
        self.name = name
        self.X = X
        self.estimator = estimator

    def fit(self, y: np.ndarray) -> "ClassifierModel":
        """Train on the items whose label is not -1, then score the whole pool."""
        labeled = y != -1
        self.classes_ = np.unique(y[labeled])
        self.unreached_ = np.zeros(len(y), dtype=bool)
        if len(self.classes_) == 1:
            # Most classifiers refuse a single class; the only sensible answer is that class.
            self.proba_ = np.ones((len(y), 1))
            return self
        from sklearn.base import clone  # only classifier models need scikit-learn

        model = clone(self.estimator).fit(self.X[labeled], y[labeled])
        self.proba_ = model.predict_proba(self.X)
        self.classes_ = model.classes_
        return self

    def predict(self) -> np.ndarray:
        """Most probable class of every pool item."""
        return self.classes_[np.argmax(self.proba_, axis=1)]

    def confidences(self) -> tuple[np.ndarray, np.ndarray]:
        """Every item's most probable class and its probability."""
        return self.predict(), self.proba_.max(axis=1)


def check_model_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a known model or an importable ``module:Class``."""
    if name in MODEL_NAMES:
        return
    if ":" in name:
        load_model(name, seed=0)
        return
    raise UserError(f"unknown model {name!r}; allowed: {', '.join(MODEL_NAMES)} or "
                    "module:Class of a scikit-learn classifier")


def make_model(name: str, X: np.ndarray, *, kernel: str = "rbf", gamma: float = 20,
               n_neighbors: int = 7, alpha: float = 0.2, max_iter: int = 30,
               tol: float = 1e-3, solver: str = "iterate", rtol: float = 1e-6,
               graph_options: dict | None = None, graph_cache: dict | None = None,
               seed: int = 0, class_priors: dict | None = None):
    """Build the model called ``name`` for the pool features ``X``.

    Graph parameters apply to ``spreading`` and ``propagation``: each fit reuses what the
    previous round left (``warm_start``: the cg solution, or the iteration's power
    columns). ``graph_options`` (``backend``, ``symmetric``, ``weights``) choose how a knn
    graph is built; see :func:`activeprop.graph.build_knn_graph` (backend ``auto`` means
    scikit-learn's exact graph for the iterate solver and faiss for cg). ``seed`` seeds the
    estimators that take a ``random_state``. Graph models given the same ``graph_cache`` dict share a graph
    whenever their graph parameters agree (a grid of models over one pool).
    ``class_priors`` (class -> share, ``poisson`` only): see :mod:`activeprop.priors`.
    """
    if name in GRAPH_MODELS:
        if name == "poisson":
            solver = "cg"  # Poisson learning has no scikit-learn iteration to reproduce
        return GraphModel(name, X, graph_options, graph_cache, kernel=kernel, gamma=gamma,
                          n_neighbors=n_neighbors, alpha=alpha if name == "spreading" else None,
                          max_iter=max_iter, tol=tol, solver=solver, rtol=rtol,
                          class_priors=class_priors if name == "poisson" else None)
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression

        return ClassifierModel(name, X, LogisticRegression(max_iter=1000))
    if ":" in name:
        return ClassifierModel(name, X, load_model(name, seed))
    check_model_name(name)  # raises: the name is neither known nor module:Class
