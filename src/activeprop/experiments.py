"""Simulation runs: an active learner, a simulated annotator, metrics per round.

:func:`simulate` with the default :class:`SimulationConfig` is scikit-learn's "Label
Propagation digits active learning" example, number for number.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

from .datasets import UNLABELED, Pool, load_pool
from .graph import KERNELS
from .learner import ActiveLearner
from .models import make_model
from .oracles import GroundTruthOracle
from .strategies import get_strategy

MODEL_TITLES = {"spreading": "Label Spreading", "propagation": "Label Propagation",
                "logistic": "Logistic Regression"}


@dataclass
class SimulationConfig:
    """Every setting of a simulated run; the defaults are the digits example's."""

    dataset: str = "digits"
    label_column: str | None = None
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
    n_neighbors: int = 7
    tol: float = 1e-3

    def validate(self) -> None:
        """Raise ValueError for a setting outside its allowed range."""
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}")
        if self.initial < 1:
            raise ValueError(f"initial must be >= 1 (the model needs a label to start), "
                             f"got {self.initial}")
        if self.subset < 0:
            raise ValueError(f"subset must be >= 0 (0 = the whole dataset), got {self.subset}")
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")
        if self.n_neighbors < 1:
            raise ValueError(f"neighbors must be >= 1, got {self.n_neighbors}")
        if self.kernel not in KERNELS:
            raise ValueError(f"unknown kernel {self.kernel!r}; allowed: {', '.join(KERNELS)}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be strictly between 0 and 1, got {self.alpha}")
        if self.max_iter < 1:
            raise ValueError(f"max-iter must be >= 1, got {self.max_iter}")
        get_strategy(self.strategy)


@dataclass
class RoundResult:
    """Metrics of one round: the model fit on ``n_labeled`` labels, scored on the rest."""

    round: int
    n_labeled: int
    n_unlabeled: int
    accuracy: float
    confusion_matrix: list[list[int]]
    queried: list[int]
    seconds: float
    report: str = field(repr=False)
    queried_predicted: list[int] = field(repr=False)

    def to_json(self) -> dict:
        """The round as the JSON document's ``rounds`` entry."""
        keys = ("round", "n_labeled", "n_unlabeled", "accuracy", "confusion_matrix",
                "queried", "seconds")
        return {key: getattr(self, key) for key in keys}


@dataclass
class SimulationResult:
    """A whole run: its configuration, the graph cost and every round."""

    config: SimulationConfig
    pool: Pool = field(repr=False)
    rounds: list[RoundResult] = field(default_factory=list)
    graph_seconds: float = 0.0
    exhausted: bool = False

    def to_json(self) -> dict:
        """``{"config", "graph_seconds", "exhausted", "rounds": [...]}``."""
        return {"config": dataclasses.asdict(self.config), "graph_seconds": self.graph_seconds,
                "exhausted": self.exhausted, "rounds": [r.to_json() for r in self.rounds]}


def prepare_pool(config: SimulationConfig) -> Pool:
    """Load the dataset, shuffle it with the seed and keep the subset."""
    pool = load_pool(config.dataset, label_column=config.label_column)
    pool = pool.shuffled(config.seed, config.subset)
    if config.initial > len(pool):
        raise ValueError(f"initial ({config.initial}) is more than the pool holds "
                         f"({len(pool)} items)")
    return pool


def simulate(config: SimulationConfig, pool: Pool | None = None) -> SimulationResult:
    """Run the active-learning loop with a simulated annotator.

    The first ``config.initial`` items of the (shuffled, subset) pool start labeled. Each
    round fits the model, scores it on the items still unlabeled, and labels the
    ``config.batch`` items the strategy picks, answered from the ground truth.
    """
    config.validate()
    pool = pool if pool is not None else prepare_pool(config)
    oracle = GroundTruthOracle(pool.y)
    model = make_model(config.model, pool.X, kernel=config.kernel, gamma=config.gamma,
                       n_neighbors=config.n_neighbors, alpha=config.alpha,
                       max_iter=config.max_iter, tol=config.tol, seed=config.seed)
    labels = np.full(len(pool), UNLABELED, dtype=np.int64)
    labels[: config.initial] = oracle(np.arange(config.initial))
    learner = ActiveLearner(model, config.strategy, labels=labels, seed=config.seed)
    result = SimulationResult(config, pool)
    for index in range(config.rounds):
        if learner.n_labeled == len(pool):
            result.exhausted = True
            break
        result.rounds.append(_run_round(index, learner, oracle, config.batch))
        result.graph_seconds = model.graph_seconds
    return result


def _run_round(index: int, learner: ActiveLearner, oracle, batch: int) -> RoundResult:
    start = time.perf_counter()
    learner.fit()
    graph_seconds = getattr(learner.model, "graph_seconds", 0.0) if index == 0 else 0.0
    unlabeled = np.flatnonzero(~learner.labeled)
    predicted = learner.predict()
    true, guessed = oracle(unlabeled), predicted[unlabeled]
    queried = learner.query(batch)
    seconds = time.perf_counter() - start - graph_seconds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes absent from a round are reported as 0
        report = classification_report(true, guessed)
    matrix = confusion_matrix(true, guessed, labels=learner.classes)
    n_labeled = learner.n_labeled
    learner.teach(queried, oracle(queried))
    return RoundResult(index, n_labeled, len(unlabeled), float(np.mean(true == guessed)),
                       matrix.tolist(), queried.tolist(), seconds, report,
                       predicted[queried].tolist())


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
        str(np.array(result.confusion_matrix)),
    ])
