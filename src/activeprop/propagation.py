"""LabelSpreading and LabelPropagation: scikit-learn drop-ins that run on a reusable graph.

With the same parameters they give scikit-learn's ``label_distributions_`` (to rounding)
and the same ``transduction_``. Two differences, both deliberate:

* ``fit`` accepts ``graph=`` (a :class:`activeprop.graph.Graph` of the same pool), so
  rounds of active learning reuse one graph instead of rebuilding it on every fit;
* an item the graph never reaches from any labeled item keeps an all-zero row in
  scikit-learn, which then calls it ``classes_[0]``. Here such a row becomes the uniform
  distribution and the item is flagged in ``unreached_``, so that query strategies see
  it as maximally uncertain instead of confidently class 0. ``transduction_`` is
  unchanged (argmax of a uniform row is still ``classes_[0]``); use ``unreached_`` to
  treat those items as unknown.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

from .graph import Graph, build_graph

SOLVERS = ("iterate",)


def iterate(operator, Y, *, variant: str, alpha: float | None, max_iter: int, tol: float):
    """scikit-learn's fixed-point iteration, step for step.

    Parameters
    ----------
    operator : matrix
        ``graph.operator(variant)``; only ``operator @ F`` is used.
    Y : ndarray of shape (n_items, n_classes)
        One-hot rows for labeled items, zero rows for unlabeled ones.
    variant : {"spreading", "propagation"}
    alpha : float
        Clamping factor (spreading only).
    max_iter, tol : int, float
        Stop after ``max_iter`` steps or once the summed absolute change is below ``tol``.

    Returns
    -------
    F : ndarray of shape (n_items, n_classes)
        Unnormalised label scores.
    n_iter : int
        Number of iterations run (scikit-learn's ``n_iter_``).
    converged : bool
    """
    labeled = Y.sum(axis=1) > 0
    static = Y * (1 - alpha) if variant == "spreading" else Y
    F = Y.copy()
    previous = np.zeros_like(F)
    for n_iter in range(max_iter):
        if np.abs(F - previous).sum() < tol:
            return F, n_iter, True
        previous = F
        F = _product(operator, F, labeled if n_iter == 0 else None)
        if variant == "propagation":
            F = _normalize_rows(F)
            F[labeled] = static[labeled]
        else:
            F *= alpha
            F += static
    return F, max_iter, False


def _product(operator, F: np.ndarray, nonzero_rows: np.ndarray | None) -> np.ndarray:
    """``operator @ F``; when only ``nonzero_rows`` of F are non-zero (the first step, where
    F is the one-hot labels) a dense operator needs only those columns."""
    if nonzero_rows is not None and isinstance(operator, np.ndarray):
        return operator[:, nonzero_rows] @ F[nonzero_rows]
    return np.asarray(operator @ F)


def _normalize_rows(F: np.ndarray) -> np.ndarray:
    """Divide each row by its sum; all-zero rows stay zero."""
    sums = F.sum(axis=1, keepdims=True)
    sums[sums == 0] = 1
    return F / sums


class _BaseLabelGraph(ClassifierMixin, BaseEstimator):
    """Shared fit/predict for the two variants; subclasses set ``_variant``."""

    _variant = "spreading"

    def fit(self, X, y, graph: Graph | None = None):
        """Fit on a pool whose unlabeled items are marked -1.

        Parameters
        ----------
        X : array-like of shape (n_items, n_features)
            Every item of the pool, labeled or not.
        y : array-like of shape (n_items,)
            Class labels, -1 for unlabeled items.
        graph : Graph, optional
            A graph already built over this ``X`` with this estimator's kernel
            parameters; reused as is. Built from ``X`` when omitted.

        Returns
        -------
        self
        """
        self._validate_params_values()
        X, y = check_X_y(X, y, dtype=np.float64)
        check_classification_targets(y)
        if graph is None:
            graph = build_graph(X, self.kernel, gamma=self.gamma,
                                n_neighbors=self.n_neighbors, n_jobs=self.n_jobs)
        elif graph.n_items != len(X) or not graph.matches(self.kernel, self.gamma, self.n_neighbors):
            raise ValueError("graph was built for another pool or other kernel parameters "
                             f"({graph.kernel}, {graph.n_items} items); build it with "
                             "build_graph(X, kernel, gamma=..., n_neighbors=...) of this estimator")
        self.graph_ = graph
        self.X_ = X
        self.n_features_in_ = X.shape[1]
        self.classes_ = np.unique(y[y != -1])
        if len(self.classes_) == 0:
            raise ValueError("y has no labeled item: mark at least one item with its class "
                             "(unlabeled items are -1)")
        Y = (y[:, None] == self.classes_[None, :]).astype(np.float64)
        F, self.n_iter_, converged = iterate(
            graph.operator(self._variant), Y, variant=self._variant, alpha=self._alpha(),
            max_iter=self.max_iter, tol=self.tol)
        if not converged:
            warnings.warn(f"max_iter={self.max_iter} was reached without convergence.",
                          category=ConvergenceWarning)
        self._set_distributions(F)
        return self

    def _set_distributions(self, F: np.ndarray) -> None:
        """Normalise scores into distributions; flag and uniformise unreached rows."""
        sums = F.sum(axis=1)
        self.unreached_ = sums == 0
        F = _normalize_rows(F)
        F[self.unreached_] = 1.0 / len(self.classes_)
        self.label_distributions_ = F
        self.transduction_ = self.classes_[np.argmax(F, axis=1)]

    def predict(self, X):
        """Predict the class of new items from their affinity to the fitted pool."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_proba(self, X):
        """Class distribution of new items, weighted by their affinity to the pool.

        Same rule as scikit-learn: rbf weights every pool item by its kernel value,
        knn sums the distributions of the ``n_neighbors`` nearest pool items.
        """
        check_is_fitted(self)
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but the model was fit with "
                             f"{self.n_features_in_}")
        affinity = self.graph_.affinity_to(X)
        if self.kernel == "knn":
            probabilities = self.label_distributions_[affinity].sum(axis=1)
        else:
            probabilities = affinity.T @ self.label_distributions_
        # An item with no affinity to the pool is unknown, not class 0 (scikit-learn: NaN).
        unknown = probabilities.sum(axis=1) == 0
        probabilities = _normalize_rows(probabilities)
        probabilities[unknown] = 1.0 / len(self.classes_)
        return probabilities

    def _alpha(self) -> float | None:
        return None

    def _validate_params_values(self) -> None:
        """Reject parameter values scikit-learn rejects, with a message naming the range."""
        if self.kernel not in ("rbf", "knn"):
            raise ValueError(f"kernel must be 'rbf' or 'knn', got {self.kernel!r}")
        checks = [
            (isinstance(self.gamma, Real) and self.gamma >= 0, "gamma must be >= 0"),
            (isinstance(self.n_neighbors, Integral) and self.n_neighbors > 0,
             "n_neighbors must be an integer >= 1"),
            (isinstance(self.max_iter, Integral) and self.max_iter > 0,
             "max_iter must be an integer >= 1"),
            (isinstance(self.tol, Real) and self.tol >= 0, "tol must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


class LabelSpreading(_BaseLabelGraph):
    """Label spreading (Zhou et al. 2004) on a reusable graph; drop-in for scikit-learn's.

    Parameters
    ----------
    kernel : {"rbf", "knn"}, default="rbf"
    gamma : float, default=20
        rbf kernel width.
    n_neighbors : int, default=7
        Neighbours of the knn kernel.
    alpha : float, default=0.2
        Clamping factor in (0, 1): how much of its neighbours' label an item takes.
    max_iter : int, default=30
    tol : float, default=1e-3
    n_jobs : int, optional
        Jobs for the neighbour search.

    Attributes
    ----------
    classes_, label_distributions_, transduction_, n_iter_ :
        As in scikit-learn.
    unreached_ : ndarray of bool, shape (n_items,)
        Items no labeled item reaches; their distribution is uniform.
    graph_ : Graph
        The graph used; pass it to later fits on the same pool.
    """

    _variant = "spreading"

    def __init__(self, kernel="rbf", *, gamma=20, n_neighbors=7, alpha=0.2, max_iter=30,
                 tol=1e-3, n_jobs=None):
        self.kernel = kernel
        self.gamma = gamma
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs

    def _alpha(self) -> float:
        return self.alpha

    def _validate_params_values(self) -> None:
        super()._validate_params_values()
        if not (isinstance(self.alpha, Real) and 0 < self.alpha < 1):
            raise ValueError(f"alpha must be strictly between 0 and 1, got {self.alpha}")


class LabelPropagation(_BaseLabelGraph):
    """Label propagation (Zhu & Ghahramani 2002) on a reusable graph; drop-in for scikit-learn's.

    Labeled items are clamped to their label. Parameters and attributes as
    :class:`LabelSpreading`, without ``alpha``; ``max_iter`` defaults to 1000.
    """

    _variant = "propagation"

    def __init__(self, kernel="rbf", *, gamma=20, n_neighbors=7, max_iter=1000, tol=1e-3,
                 n_jobs=None):
        self.kernel = kernel
        self.gamma = gamma
        self.n_neighbors = n_neighbors
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs
