"""Simulation runs: an active learner, a simulated annotator, metrics per round.

:func:`simulate` with the default :class:`SimulationConfig` is scikit-learn's "Label
Propagation digits active learning" example, number for number. :func:`compare` runs a
grid of models x strategies over repeated, paired runs.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .column_weights import CHOICES as COLUMN_WEIGHTS
from .column_weights import recommended as recommended_column_weights
from .datasets import UNLABELED, Pool, load_pool
from .errors import UserError
from .graph import EDGE_WEIGHTS, KNN_BACKENDS
from .learner import ActiveLearner
from .metrics import classification_report, confusion_matrix, format_confusion
from .missing_cells import count_missing
from .models import GRAPH_MODELS, check_model_name, make_model
from .oracles import GroundTruthOracle
from .params import KERNELS, check_params
from .priors import check_model, parse_class_priors
from .scaling import check_scale, scaled, standardises
from .stopping import StoppingEstimate, StopRule, estimate
from .strategies import (
    BATCH_MODES,
    INITIAL_STRATEGIES,
    PASSIVE_STRATEGIES,
    get_strategy,
    initial_items,
)

MODEL_TITLES = {"spreading": "Label Spreading", "propagation": "Label Propagation",
                "poisson": "Poisson Learning", "logistic": "Logistic Regression"}
EVALUATIONS = ("pool", "all", "holdout:F")

# The project's recommended settings (`--recommended`, and the labeler's defaults): Poisson
# learning on a k-nearest-neighbour graph (k from the features: recommended_neighbors),
# margin sampling that starts on typical items (typical-margin), a typical start, diverse
# batches, and on pictures edges weighted locally from 4 labels per class
# (recommended_local_from). On full digits (10 initial labels, batches of 5, seeds 0-4) they
# give 0.956 / 0.992 / 0.997 at 20 / 50 / 100 labels (seeds 0-39: 0.935 / 0.989 / 0.997)
# against the example's 0.903 / 0.958 / 0.983, and beat a plain entropy loop on iris, wine,
# breast-cancer and digits-aug (docs/benchmarks.md).
RECOMMENDED = {"model": "poisson", "kernel": "knn", "n_neighbors": None, "solver": "cg",
               "rtol": 1e-4, "max_iter": 3000, "strategy": "typical-margin",
               "initial_strategy": "typical", "batch_mode": "diverse", "components": 48,
               "local_from": None, "scale": "auto", "column_weights": "auto"}

# The recommended graph's neighbours, chosen on the real-data suite (bench/bench_real.py,
# bench/bench_neighbors.py; docs/benchmarks.md, 2026-12-02): on features reduced to
# principal components 7 neighbours gain +0.063 / +0.048 / +0.015 at 20 / 50 / 100 labels
# on raw MNIST pixels and are level on HOG (chosen on seeds 0-9, held out on 10-29); texts
# (an SVD of 200 dimensions) and small tables (iris) lose 0.01-0.03 with 7 and keep 15;
# digits do as well with either.
NEIGHBORS_REDUCED, NEIGHBORS_OTHERWISE = 7, 15


def recommended_neighbors(shape: tuple, components: int) -> int:
    """The recommended neighbours per item for features of ``shape`` (items, dimensions)
    that a run reduces to ``components`` principal components (0: kept as they are)."""
    from .features import reduces

    return NEIGHBORS_REDUCED if reduces(shape, components) else NEIGHBORS_OTHERWISE


# Plain edges first, then edges weighted by a local width from 4 labels per class seen
# (--local-from 4), where the items are pictures and the model is Poisson learning. Measured
# with bench_real's protocol, paired per seed against plain edges throughout, 20 seeds (10
# chosen on, 10 held out; docs/benchmarks.md, 2026-12-02): digits +0.005 / +0.007 at 50
# labels (38 better / 1 worse), an embedding of MNIST photos +0.011 / +0.009, raw MNIST
# pixels +0.004 / +0.019, HOG of them -0.005 / +0.003; every one of them level or better at
# 100. Texts (Rotten Tomatoes: -0.019 / -0.002 at 50) and wine (-0.044 / -0.012 at 40) lose,
# so other pools keep plain edges. Other models were not measured with it.
LOCAL_FROM_PICTURES = 4.0


def recommended_local_from(pool: Pool, model: str, graph_weights: str = "connectivity",
                           on_cluster: bool = False) -> float:
    """The recommended labels per class from which plain edges (``graph_weights``
    connectivity) get local weights, 0 for never, for ``pool`` under ``model``; a cluster's
    graph has no weights."""
    if on_cluster or model != "poisson" or graph_weights != "connectivity" \
            or not pool.holds_pictures:
        return 0.0
    return LOCAL_FROM_PICTURES


def check_column_weights(choice: str) -> None:
    """Raise UserError unless ``choice`` is one of :data:`COLUMN_WEIGHTS`."""
    if choice not in COLUMN_WEIGHTS:
        raise UserError(f"unknown column weights {choice!r}; allowed: "
                        f"{', '.join(COLUMN_WEIGHTS)} (auto: labels for a table)")


def check_local_from(local_from: float | None) -> None:
    """Raise UserError unless ``local_from`` is None (chosen for the pool) or >= 0."""
    if local_from is not None and not local_from >= 0:
        raise UserError(f"local-from must be >= 0 (labels per class; 0: never), got "
                        f"{local_from}")


@dataclass
class SimulationConfig:
    """Every setting of a simulated run; the defaults are the digits example's."""

    dataset: str = "digits"
    label_column: str | None = None
    text_column: str | None = None  # a .csv or .jsonl of texts
    text_model: str | None = None  # a sentence-transformers model for them (extra "text")
    features: str | None = None  # the user's own features file, one row per item
    image_features: str | None = None  # image folders: pixels, hog, colour or hog+colour
    image_model: str | None = None  # or a pretrained image model's embeddings (extra "vision")
    seed: int = 0
    subset: int = 330
    initial: int = 40
    rounds: int = 5
    batch: int = 5
    strategy: str = "entropy"
    model: str = "spreading"
    kernel: str = "rbf"
    gamma: float = 0.25
    alpha: float = 0.2
    max_iter: int = 20
    n_neighbors: int | None = 7  # None: recommended_neighbors for the run's features
    tol: float = 1e-3
    eval: str = "pool"
    solver: str = "iterate"
    rtol: float = 1e-6
    graph_backend: str = "auto"
    graph_symmetric: bool = False
    graph_weights: str = "connectivity"
    # local edge weights from this many labels per class (0: never; None: recommended_local_from)
    local_from: float | None = 0.0
    # Features of many dimensions (above features.COMPONENTS_ABOVE) are reduced to this many
    # principal components before anything else; 0 keeps them.
    components: int = 0
    # A table's columns in different units are standardised (activeprop.scaling)
    scale: str = "auto"
    # A table's columns weighed by what the labels say (activeprop.column_weights): labels,
    # none, or auto (labels for a table, none otherwise)
    column_weights: str = "none"
    initial_strategy: str = "first"
    batch_mode: str = "topk"
    # The stopping estimate refits on held-out folds every round: about 60 of 89 s of a run
    # at 70,000 items. Opt-in (--estimate), and on with --stop-when, which decides from it.
    estimate: bool = False
    stop_when: float | None = None
    class_priors: str | None = None  # "uniform" or shares "0.3,0.7" (poisson only)

    def validate(self) -> None:
        """Raise ValueError for a setting outside its allowed range."""
        checks = [
            (self.batch >= 1, f"batch must be >= 1, got {self.batch}"),
            (self.rounds >= 0, f"rounds must be >= 0, got {self.rounds}"),
            (self.initial >= 1, f"initial must be >= 1 (the model needs a label to start), "
                                f"got {self.initial}"),
            (self.subset >= 0, f"subset must be >= 0 (0 = the whole dataset), got {self.subset}"),
            (self.kernel in KERNELS,
             f"unknown kernel {self.kernel!r}; allowed: {', '.join(KERNELS)}"),
            (self.graph_backend in KNN_BACKENDS, f"unknown graph backend "
             f"{self.graph_backend!r}; allowed: {', '.join(KNN_BACKENDS)}"),
            (self.graph_weights in EDGE_WEIGHTS, f"unknown graph weights "
             f"{self.graph_weights!r}; allowed: {', '.join(EDGE_WEIGHTS)}"),
            (self.initial_strategy in INITIAL_STRATEGIES, f"unknown initial strategy "
             f"{self.initial_strategy!r}; allowed: {', '.join(INITIAL_STRATEGIES)}"),
            (self.batch_mode in BATCH_MODES, f"unknown batch mode {self.batch_mode!r}; "
             f"allowed: {', '.join(BATCH_MODES)}"),
            (self.components >= 0,
             f"components must be >= 0 (0 keeps the features), got {self.components}"),
            (self.stop_when is None or 0 < self.stop_when <= 1,
             f"stop-when must be a kappa in (0, 1], got {self.stop_when}"),
            (self.stop_when is None or self.estimate,
             "stop-when decides from the estimate; it cannot be used with --no-estimate"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        check_local_from(self.local_from)
        check_scale(self.scale)
        check_column_weights(self.column_weights)
        # The model's own parameters: one rule each, shared with the estimators.
        neighbors = {} if self.n_neighbors is None else {"n_neighbors": self.n_neighbors}
        check_params(gamma=self.gamma, alpha=self.alpha, max_iter=self.max_iter, tol=self.tol,
                     solver=self.solver, rtol=self.rtol, **neighbors)
        holdout_fraction(self.eval)
        check_model(self.model, self.class_priors)
        get_strategy(self.strategy)
        check_model_name(self.model)

    def working(self, pool: Pool, on_cluster: bool = False) -> tuple[SimulationConfig, Pool]:
        """This config and the pool as the run sees them: a table's columns standardised
        when its ``scale`` says so (:mod:`activeprop.scaling`), the features reduced to
        ``components`` principal components when they have many dimensions
        (:func:`features.principal_components`), and unset neighbours and edge weights
        chosen for them (:func:`recommended_neighbors`, :func:`recommended_local_from`)."""
        from .features import principal_components

        reduced = principal_components(scaled(pool.X, self.scale, pool.is_table),
                                       self.components)
        return self.chosen_for(pool, on_cluster), \
            pool if reduced is pool.X else pool.with_features(reduced)

    def chosen_for(self, pool: Pool, on_cluster: bool = False) -> SimulationConfig:
        """This config with its unset neighbours and edge weights chosen for ``pool``
        (:func:`recommended_neighbors`, :func:`recommended_local_from`)."""
        config = self
        if self.n_neighbors is None:
            config = dataclasses.replace(
                config, n_neighbors=recommended_neighbors(pool.X.shape, self.components))
        if self.local_from is None:
            config = dataclasses.replace(
                config, local_from=recommended_local_from(
                    pool, self.model, self.graph_weights, on_cluster))
        if self.column_weights == "auto":
            config = dataclasses.replace(config, column_weights=recommended_column_weights(
                pool.is_table, len(pool), pool.X.shape[1], on_cluster))
        return config

    def model_for(self, pool: Pool, name: str | None = None, graph_cache: dict | None = None):
        """The model ``name`` (default: this config's) with this config's parameters;
        graph models sharing ``graph_cache`` share their graph."""
        if self.n_neighbors is None or self.local_from is None or \
                self.column_weights == "auto":  # a caller's bug: unchosen
            raise ValueError("model_for needs the config that working() returns")
        graph_options = {"backend": self.graph_backend, "symmetric": self.graph_symmetric,
                         "weights": self.graph_weights, "local_from": self.local_from or None,
                         "column_weights": self.column_weights}
        return make_model(name or self.model, pool.X, kernel=self.kernel, gamma=self.gamma,
                          n_neighbors=self.n_neighbors, alpha=self.alpha,
                          max_iter=self.max_iter, tol=self.tol, solver=self.solver,
                          rtol=self.rtol, graph_options=graph_options,
                          graph_cache=graph_cache, seed=self.seed,
                          class_priors=parse_class_priors(self.class_priors,
                                                          len(pool.class_names)))


def holdout_fraction(spec: str) -> float:
    """Parse an evaluation spec: 0.0 for ``pool`` and ``all``, F for ``holdout:F``."""
    if spec in ("pool", "all"):
        return 0.0
    name, _, value = spec.partition(":")
    try:
        fraction = float(value)
    except ValueError:
        fraction = -1.0
    if name != "holdout" or not 0 < fraction < 1:
        raise UserError(f"bad evaluation {spec!r}; allowed: pool (items not yet labeled), "
                        "all (the whole pool), holdout:F (a fraction F in (0, 1) held out)")
    return fraction


def holdout_mask(n_items: int, spec: str) -> np.ndarray:
    """Items held out of labeling for ``holdout:F``: the last ceil(F * n) of the pool."""
    mask = np.zeros(n_items, dtype=bool)
    n_held = math.ceil(holdout_fraction(spec) * n_items)
    if n_held:
        mask[n_items - n_held:] = True
    return mask


def evaluation_items(spec: str, labeled: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    """Indices the accuracy of a round is measured on."""
    if spec == "pool":
        return np.flatnonzero(~labeled & ~held_out)
    if spec == "all":
        return np.arange(len(labeled))
    return np.flatnonzero(held_out)


@dataclass
class RoundOutcome:
    """What one round of the loop measured."""

    round: int
    n_labeled: int
    evaluated: np.ndarray  # pool indices the accuracy was measured on
    true: np.ndarray
    predicted: np.ndarray  # predictions of the evaluated items
    classes: np.ndarray  # the classes the model knew
    queried: np.ndarray
    queried_predicted: np.ndarray
    seconds: float
    estimate: StoppingEstimate | None = None

    @property
    def accuracy(self) -> float:
        """Fraction of the evaluated items predicted right."""
        return float(np.mean(self.true == self.predicted)) if len(self.true) else float("nan")


def run_rounds(pool: Pool, config: SimulationConfig, model, strategy: str,
               seed: int) -> Iterator[RoundOutcome]:
    """The active-learning loop with a simulated annotator, one outcome per round.

    The first ``config.initial`` items start labeled. Each round fits the model, scores it
    on the items of ``config.eval``, and labels the ``config.batch`` items the strategy
    picks, answered from the ground truth. Stops early when nothing is left to query.
    """
    oracle = GroundTruthOracle(pool.y)
    held_out = holdout_mask(len(pool), config.eval)
    if config.initial > int((~held_out).sum()):
        raise UserError(f"initial ({config.initial}) is more than the pool holds outside "
                        f"the held-out items ({int((~held_out).sum())})")
    labels = np.full(len(pool), UNLABELED, dtype=np.int64)
    embedding = None
    if config.initial_strategy == "typical" and hasattr(model, "build_graph"):
        graph = model.graph if model.graph is not None else model.build_graph()
        embedding = graph.spectral_embedding()
    start = initial_items(config.initial_strategy, pool.X, config.initial, seed, ~held_out,
                          embedding)
    labels[start] = oracle(start)
    learner = ActiveLearner(model, strategy, labels=labels, seed=seed, exclude=held_out,
                            batch_mode=config.batch_mode)
    # The stopping estimate refits a second model (same graph) on folds of the labels.
    spare = config.model_for(pool, getattr(model, "name", config.model),
                             getattr(model, "graph_cache", None)) if config.estimate else None
    stop_rule = StopRule(config.stop_when) if config.stop_when else None
    previous = None
    for index in range(config.rounds):
        if learner.n_queryable == 0:
            return
        graph_before = getattr(model, "graph_seconds", 0.0)
        start = time.perf_counter()
        learner.fit()
        evaluated = evaluation_items(config.eval, learner.labeled, held_out)
        predicted = learner.predict()
        queried = learner.query(config.batch)
        graph_cost = getattr(model, "graph_seconds", 0.0) - graph_before
        seconds = time.perf_counter() - start - graph_cost
        signals = estimate(spare, learner.labels, learner.proba, predicted,
                           len(pool.class_names), previous) if config.estimate else None
        previous = predicted.copy()
        yield RoundOutcome(index, learner.n_labeled, evaluated, oracle(evaluated),
                           predicted[evaluated], learner.classes, queried, predicted[queried],
                           seconds, signals)
        if stop_rule is not None and stop_rule.update(signals):
            return
        learner.teach(queried, oracle(queried))


# --------------------------------------------------------------------------- simulate


@dataclass
class RoundResult:
    """Metrics of one round: the model fit on ``n_labeled`` labels, scored on the rest."""

    round: int
    n_labeled: int
    n_unlabeled: int
    accuracy: float
    confusion_matrix: list[list[int]]
    confusion_labels: list[str]  # the class of each row (true) and column (predicted)
    queried: list[int]
    seconds: float
    report: str = field(repr=False)
    queried_predicted: list[int] = field(repr=False)
    estimate: StoppingEstimate | None = None

    def to_json(self) -> dict:
        """The round as the JSON document's ``rounds`` entry."""
        keys = ("round", "n_labeled", "n_unlabeled", "accuracy", "confusion_matrix",
                "confusion_labels", "queried", "seconds")
        document = {key: getattr(self, key) for key in keys}
        if self.estimate is not None:
            document["estimate"] = self.estimate.to_json()
        return document


@dataclass
class SimulationResult:
    """A whole run: its configuration, the graph cost and every round."""

    config: SimulationConfig
    pool: Pool = field(repr=False)
    rounds: list[RoundResult] = field(default_factory=list)
    graph_seconds: float = 0.0
    graph: dict | None = None
    exhausted: bool = False
    stopped: bool = False
    standardised: bool = False  # a table's columns, standardised (activeprop.scaling)
    missing_cells: int = 0  # a table's, filled for the graph (activeprop.missing_cells)

    def to_json(self) -> dict:
        """``{"config", "graph_seconds", "graph", "exhausted", "stopped", "standardised",
        "missing_cells", "rounds": [...]}``."""
        return {"config": dataclasses.asdict(self.config), "graph_seconds": self.graph_seconds,
                "graph": self.graph, "exhausted": self.exhausted, "stopped": self.stopped,
                "standardised": self.standardised, "missing_cells": self.missing_cells,
                "rounds": [r.to_json() for r in self.rounds]}


def prepare_pool(config: SimulationConfig, seed: int | None = None,
                 lazy: bool = False) -> Pool:
    """Load the dataset, shuffle it with ``seed`` (default: the config's), keep the subset.
    ``lazy``: a sharded pool's features stay on disk as a dask array (a cluster run)."""
    pool = load_pool(config.dataset, label_column=config.label_column,
                     text_column=config.text_column, text_model=config.text_model,
                     features=config.features, image_features=config.image_features,
                     image_model=config.image_model, lazy=lazy)
    if not pool.has_ground_truth:
        raise UserError(f"dataset {config.dataset!r} lacks ground-truth labels for some "
                        "items; a simulation needs a label for every item")
    pool = pool.shuffled(config.seed if seed is None else seed, config.subset)
    if config.initial > len(pool):
        raise UserError(f"initial ({config.initial}) is more than the pool holds "
                        f"({len(pool)} items)")
    return pool


def simulate(config: SimulationConfig, pool: Pool | None = None,
             client=None) -> SimulationResult:
    """Run one simulated active-learning experiment and report every round; with a
    ``distributed.Client`` the graph is built and solved on its cluster."""
    config.validate()
    if pool is None:
        pool = prepare_pool(config, lazy=client is not None)
    standardised = standardises(pool.X, config.scale, pool.is_table)
    missing = count_missing(pool.X)
    config, pool = config.working(pool, on_cluster=client is not None)
    if client is not None:
        from .distributed.model import cluster_model

        model = cluster_model(config, pool, client)
    else:
        model = config.model_for(pool)
    if hasattr(model, "plan"):  # a fit per round (refits on held-out folds add no labels)
        model.plan(config.rounds)
    result = SimulationResult(config, pool, standardised=standardised, missing_cells=missing)
    for outcome in run_rounds(pool, config, model, config.strategy, config.seed):
        result.rounds.append(_round_result(outcome, pool))
    result.graph_seconds = getattr(model, "graph_seconds", 0.0)
    if getattr(model, "graph", None) is not None:
        result.graph = model.graph.describe()
    last = result.rounds[-1] if result.rounds else None
    result.stopped = bool(config.stop_when and last and last.estimate and
                          len(result.rounds) < config.rounds and len(last.queried) > 0)
    result.exhausted = len(result.rounds) < config.rounds and not result.stopped
    return result


def _round_result(outcome: RoundOutcome, pool: Pool) -> RoundResult:
    names = [str(name) for name in pool.class_names]
    report = classification_report(outcome.true, outcome.predicted, class_names=names)
    # Every class of the report (true or predicted) and every class the model knows.
    labels = np.union1d(np.union1d(outcome.true, outcome.predicted), outcome.classes)
    matrix = confusion_matrix(outcome.true, outcome.predicted, labels=labels)
    return RoundResult(outcome.round, outcome.n_labeled, len(pool) - outcome.n_labeled,
                       outcome.accuracy, matrix.tolist(), [names[i] for i in labels],
                       outcome.queried.tolist(),
                       outcome.seconds, report, outcome.queried_predicted.tolist(),
                       outcome.estimate)


def format_estimate(result: RoundResult, strategy: str) -> str:
    """One line of the stopping signals of a round of a run with ``strategy``."""
    e = result.estimate
    moved = "" if e.stability is None else \
        f"; the last batch changed {e.changed:.1%} of the predictions (kappa {e.stability:.3f})"
    # Labels a strategy chose for being hard make held-out calibration pessimistic: on digits
    # it is below the truth in 98-100% of the rounds of margin or entropy runs, in 49% of
    # random ones (docs/benchmarks.md).
    caveat = "" if strategy in PASSIVE_STRATEGIES else ", low: the strategy chose hard ones"
    calibrated = "" if e.calibrated_accuracy is None else \
        f", {e.calibrated_accuracy:.3f} calibrated on held-out labels{caveat}"
    missing = e.classes_without_labels
    optimistic = "" if not missing else \
        f"; optimistic while {missing} class{'' if missing == 1 else 'es'} without a label"
    return (f"Estimate without ground truth: accuracy {e.estimated_accuracy:.3f} "
            f"(mean confidence{calibrated}){moved}{optimistic}")


def format_round(result: RoundResult, model: str) -> str:
    """The round as the digits example prints it."""
    title = MODEL_TITLES.get(model, model.rpartition(":")[2])
    total = result.n_labeled + result.n_unlabeled
    return "\n".join([
        "Iteration %i %s" % (result.round, 70 * "_"),
        "%s model: %d labeled & %d unlabeled (%d total)"
        % (title, result.n_labeled, result.n_unlabeled, total),
        result.report,
        "Confusion matrix",
        _confusion_text(result),
    ])


def _confusion_text(result: RoundResult) -> str:
    """The example's bare matrix when its rows are the classes 0, 1, 2, ... named by
    their own numbers (the reference output); else the matrix with its classes named."""
    matrix = np.array(result.confusion_matrix)
    if result.confusion_labels == [str(i) for i in range(len(matrix))]:
        return str(matrix)
    return format_confusion(matrix, result.confusion_labels)


def default_evaluation(models: list[str]) -> str:
    """``pool`` when a graph model is compared (the example's), else ``all`` (the tutorial's)."""
    return "pool" if any(name in GRAPH_MODELS for name in models) else "all"
