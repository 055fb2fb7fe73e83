"""ActiveLearner: a pool, its labeled set, a model and a query strategy.

>>> learner = ActiveLearner(make_model("spreading", X, gamma=0.25), strategy="entropy",
...                         labels=initial_labels)
>>> picked = learner.query(5)          # pool indices worth a label
>>> learner.teach(picked, oracle(picked))

``query`` refits the model when labels changed since the last fit; the graph models
reuse their graph, so a round costs one solve.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .datasets import UNLABELED
from .errors import UserError
from .strategies import PER_ITEM, PoolScores, QueryContext, get_strategy, select_batch


@dataclass
class Round:
    """One fit-and-query step of the loop."""

    round: int
    n_labeled: int
    queried: list[int]
    fit_seconds: float
    query_seconds: float


@dataclass
class ActiveLearner:
    """Active learning over a fixed pool.

    Parameters
    ----------
    model : GraphModel or ClassifierModel
        From :func:`activeprop.models.make_model`; it knows the pool's features.
    strategy : str or callable
        A name from :data:`activeprop.strategies.STRATEGIES`, ``module:function``, or a
        utility function ``(proba, context) -> scores``.
    labels : ndarray of shape (n_items,), optional
        Starting labels, -1 for unlabeled. Default: nothing labeled.
    seed : int
        Seeds the generator handed to strategies (``random`` uses it).
    exclude : ndarray of bool, shape (n_items,), optional
        Items never to query (a held-out evaluation set).
    batch_mode : {"topk", "diverse"}
        How a batch is chosen from the utilities (see :func:`strategies.select_batch`).
    """

    model: object
    strategy: object = "entropy"
    labels: np.ndarray | None = None
    seed: int = 0
    exclude: np.ndarray | None = None
    batch_mode: str = "topk"
    history: list[Round] = field(default_factory=list)

    def __post_init__(self):
        n_items = len(self.model.X)
        if self.labels is None:
            self.labels = np.full(n_items, UNLABELED, dtype=np.int64)
        self.labels = np.array(self.labels, dtype=np.int64)
        if self.labels.shape != (n_items,):
            raise UserError(f"labels must have one entry per pool item ({n_items}), "
                            f"got shape {self.labels.shape}")
        if self.exclude is None:
            self.exclude = np.zeros(n_items, dtype=bool)
        self.utility = get_strategy(self.strategy) if isinstance(self.strategy, str) \
            else self.strategy
        self.scores = PoolScores(self.utility)  # rescores only the items whose predictions moved
        self.rng = np.random.default_rng(self.seed)
        self.cache: dict = {}  # pool-level quantities strategies compute once
        self._fitted_labels = None
        self.fit_seconds = 0.0

    @property
    def labeled(self) -> np.ndarray:
        """Boolean mask of the items that have a label."""
        return self.labels != UNLABELED

    @property
    def n_queryable(self) -> int:
        """How many items a query can still return."""
        return int((~(self.labeled | self.exclude)).sum())

    @property
    def n_labeled(self) -> int:
        """How many items are labeled."""
        return int(self.labeled.sum())

    def fit(self) -> "ActiveLearner":
        """Refit the model on the current labels (a no-op when nothing changed)."""
        if self._fitted_labels is not None and np.array_equal(self._fitted_labels, self.labels):
            return self
        if self.n_labeled == 0:
            raise UserError("no item is labeled yet: give at least one starting label")
        start = time.perf_counter()
        self.model.fit(self.labels)
        self.fit_seconds = time.perf_counter() - start
        self._fitted_labels = self.labels.copy()
        return self

    @property
    def proba(self) -> np.ndarray:
        """Predicted class probabilities of every pool item (columns: ``classes``)."""
        return self.fit().model.proba_

    @property
    def classes(self) -> np.ndarray:
        """The classes the model currently knows (those seen among the labels)."""
        return self.fit().model.classes_

    def predict(self) -> np.ndarray:
        """Predicted class of every pool item."""
        return self.fit().model.predict()

    def query(self, n: int) -> np.ndarray:
        """Pool indices of the ``n`` unlabeled items the strategy rates highest.

        Returns fewer when fewer items are unlabeled; never a labeled or excluded item.
        """
        if n < 1:
            raise UserError(f"batch size must be >= 1, got {n}")
        if self._scored_where_held():
            start = time.perf_counter()
            picked = self.fit().model.select_batch(self.batch_mode, self.utility,
                                                   self.labeled | self.exclude, n,
                                                   self.seed + len(self.history))
            return self._record(picked, start)
        proba = self.proba
        start = time.perf_counter()
        context = QueryContext(labeled=self.labeled, rng=self.rng, X=self.model.X,
                               cache=self.cache, labels=self.labels, model=self.model)
        utility = self.scores(proba, context, getattr(self.model, "proba_version_", None))
        picked = select_batch(self.batch_mode, utility, self.labeled | self.exclude, n,
                              self.model.X, self.seed + len(self.history),
                              best=self.scores.best)
        return self._record(picked, start)

    def _scored_where_held(self) -> bool:
        """Whether the model chooses the batch itself, where its probabilities are (a
        cluster's blocks), because the strategy reads only each item's own."""
        return hasattr(self.model, "select_batch") and self.utility in PER_ITEM

    def _record(self, picked: np.ndarray, start: float) -> np.ndarray:
        self.history.append(Round(len(self.history), self.n_labeled, picked.tolist(),
                                  self.fit_seconds, time.perf_counter() - start))
        return picked

    def teach(self, indices, labels) -> None:
        """Record the labels of the items at ``indices`` (their answers to a query)."""
        indices = np.asarray(indices, dtype=np.int64)
        labels = np.asarray(labels, dtype=np.int64)
        if indices.shape != labels.shape:
            raise UserError(f"got {len(indices)} indices but {len(labels)} labels")
        if np.any((indices < 0) | (indices >= len(self.labels))):
            raise UserError(f"indices must be pool positions from 0 to {len(self.labels) - 1}")
        if np.any(labels < 0):
            raise UserError("labels must be class indices >= 0")
        self.labels[indices] = labels
