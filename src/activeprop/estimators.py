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

import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .errors import UserError
from .graph import Graph, build_graph, is_sparse, rbf_kernel
from .propagation import GraphLabeling, distributions, validate_params

ACCEPTED_SPARSE = ["csr", "csc"]


class _BaseLabelGraph(ClassifierMixin, BaseEstimator):
    """Shared fit/predict of the graph estimators; subclasses set ``_variant``.

    ``kernel`` is "rbf", "knn" or a callable ``kernel(X, Y) -> (len(X), len(Y))`` affinity
    (dense or sparse), as in scikit-learn. X may be dense or sparse (CSR/CSC).
    """

    _variant = "spreading"

    def __init__(self, kernel, gamma, n_neighbors, alpha, max_iter, tol, n_jobs, solver, rtol,
                 warm_start):
        # Subclasses list their own parameters (scikit-learn reads them from the signature).
        self.kernel = kernel
        self.gamma = gamma
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs
        self.solver = solver
        self.rtol = rtol
        self.warm_start = warm_start

    def _class_priors(self, y):
        return None  # only Poisson learning takes class priors

    def _neighbors_for(self, n_items: int) -> int:
        """The neighbour count a knn graph of ``n_items`` items is built with."""
        return self.n_neighbors

    def fit(self, X, y, graph: Graph | None = None):
        """Fit on a pool whose unlabeled items are marked -1.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_items, n_features)
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
        if graph is not None and X is graph.X:
            # The pool was validated when its graph was built; rounds skip the O(n d) check.
            y = np.asarray(y)
            if y.shape != (len(X),):
                raise UserError(f"y must have one label per item ({len(X)}), got {y.shape}")
            self.n_features_in_ = X.shape[1]
        else:
            X, y = validate_data(self, X, y, accept_sparse=ACCEPTED_SPARSE,
                                 dtype=[np.float64, np.float32], reset=True)
        check_classification_targets(y)
        if graph is None:
            graph = self._build_pool_graph(X)
        elif graph.n_items != X.shape[0] or not graph.matches(
                self.kernel, self.gamma, self._neighbors_for(X.shape[0])):
            raise UserError("graph was built for another pool or other kernel parameters "
                            f"({graph.kernel}, {graph.n_items} items); build it with "
                            "build_graph(X, kernel, gamma=..., n_neighbors=...) of this "
                            "estimator")
        self._graph, self._search = graph, None
        self.X_ = X
        previous = getattr(self, "_labeling", None)
        self._labeling = GraphLabeling(
            self._variant, alpha=self._alpha(), max_iter=self.max_iter, tol=self.tol,
            solver=self.solver, rtol=self.rtol, warm_start=self.warm_start,
            class_priors=self._class_priors(y))
        warm = previous.warm_ if self.warm_start and previous is not None else None
        fitted = self._labeling.fit(graph, y, warm)
        for name in ("classes_", "label_distributions_", "transduction_", "unreached_",
                     "n_iter_"):
            setattr(self, name, getattr(fitted, name))
        if not fitted.converged_:
            warnings.warn(f"max_iter={self.max_iter} was reached without convergence.",
                          category=ConvergenceWarning)
        return self

    @property
    def graph_(self) -> Graph:
        """The graph the model was fit on; pass it to later fits on the same pool. Not
        pickled (it holds n x n numbers for rbf): built again from ``X_`` when needed."""
        check_is_fitted(self)
        if getattr(self, "_graph", None) is None:
            self._graph = self._build_pool_graph(self.X_)
        return self._graph

    def _build_pool_graph(self, X) -> Graph:
        if callable(self.kernel):
            start = time.perf_counter()
            affinity = _as_affinity(self.kernel(X, X))
            return Graph(kernel="callable", gamma=self.gamma, n_neighbors=self.n_neighbors,
                         X=X, affinity=affinity, build_seconds=time.perf_counter() - start)
        return build_graph(X, self.kernel, gamma=self.gamma,
                           n_neighbors=self._neighbors_for(X.shape[0]), n_jobs=self.n_jobs)

    def _build_graph(self):
        """The matrix the iteration multiplies with, as scikit-learn's private method of
        the same name returns it (its tests call it): the normalised affinity without its
        diagonal for spreading, the row-normalised affinity for propagation."""
        operator = self.graph_.operator(self._variant)
        matrix = getattr(operator, "matrix", operator)  # a ThreadedMatrix's scipy matrix
        return matrix.copy()

    def predict(self, X):
        """Predict the class of new items from their affinity to the fitted pool."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_proba(self, X):
        """Class distribution of new items, weighted by their affinity to the pool.

        Same rule as scikit-learn: rbf (or a callable kernel) weights every pool item by its
        kernel value, knn sums the distributions of the ``n_neighbors`` nearest pool items.
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=ACCEPTED_SPARSE,
                          dtype=[np.float64, np.float32], reset=False)
        if self.kernel == "knn":
            neighbors = self._nearest(X)
            probabilities = self.label_distributions_[neighbors].sum(axis=1)
        else:
            weights = self._kernel(self.X_, X)  # (pool, new)
            probabilities = np.asarray(safe_sparse_dot(weights.T, self.label_distributions_))
        # An item with no affinity to the pool is unknown, not class 0 (scikit-learn: NaN).
        return distributions(probabilities)[0]

    def _kernel(self, X, Y):
        if callable(self.kernel):
            return _as_affinity(self.kernel(X, Y))
        if is_sparse(X) or is_sparse(Y):
            from sklearn.metrics.pairwise import rbf_kernel as sparse_rbf

            return sparse_rbf(X, Y, gamma=self.gamma)
        return rbf_kernel(np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64),
                          gamma=self.gamma)

    def _nearest(self, X) -> np.ndarray:
        """Indices of each new item's nearest pool items (the graph's search, or an exact
        one built on first use after unpickling)."""
        k = self._neighbors_for(self.X_.shape[0])
        graph = getattr(self, "_graph", None)
        if graph is not None and graph.search is not None:
            return graph.search(X, k)[1]
        if getattr(self, "_search", None) is None:
            from sklearn.neighbors import NearestNeighbors

            self._search = NearestNeighbors(n_jobs=self.n_jobs).fit(self.X_)
        return self._search.kneighbors(X, k, return_distance=False)

    def __getstate__(self):
        # The graph, its operators and the solver's warm start are derived from X_ and the
        # parameters and may be n x n: rebuilt on demand after unpickling.
        state = super().__getstate__()
        for derived in ("_graph", "_labeling", "_search"):
            state.pop(derived, None)
        return state

    def _alpha(self) -> float | None:
        return None

    def _validate_params_values(self) -> None:
        """Reject parameter values scikit-learn rejects, with a message naming the range."""
        validate_params(self._variant, kernel=self.kernel, gamma=self.gamma,
                        n_neighbors=self.n_neighbors, alpha=self._alpha(),
                        max_iter=self.max_iter, tol=self.tol, solver=self.solver,
                        rtol=self.rtol)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _as_affinity(matrix):
    """A kernel's answer as float64: CSR when sparse, else a dense array."""
    if is_sparse(matrix):
        from scipy import sparse

        return sparse.csr_matrix(matrix, dtype=np.float64)
    return np.asarray(matrix, dtype=np.float64)


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
    solver : {"iterate", "cg"}, default="iterate"
        ``"iterate"``: scikit-learn's iteration, stopped by ``max_iter`` / ``tol`` (exact
        reproduction). ``"cg"``: the converged solution by conjugate gradients on the
        symmetrised graph, to a relative residual ``rtol``, at most ``max_iter`` steps.
    rtol : float, default=1e-6
        Relative residual the cg solver stops at.
    warm_start : bool, default=False
        Keep what the next fit on the same graph can reuse (the next round of active
        learning). ``"cg"`` starts from the previous fit's solution when the classes are
        the same; ``"iterate"`` on a dense graph of at most 3,000 items keeps the columns
        of the operator's powers for every labeled item (:class:`PowerColumns`), after
        which a refit costs column reads instead of ``n_iter`` products, and a round only
        the new items' columns: the same result, to rounding.

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
                 tol=1e-3, n_jobs=None, solver="iterate", rtol=1e-6, warm_start=False):
        super().__init__(kernel, gamma, n_neighbors, alpha, max_iter, tol, n_jobs, solver, rtol,
                         warm_start)

    def _alpha(self) -> float:
        return self.alpha


class LabelPropagation(_BaseLabelGraph):
    """Label propagation (Zhu & Ghahramani 2002) on a reusable graph; drop-in for scikit-learn's.

    Labeled items are clamped to their label. Parameters and attributes as
    :class:`LabelSpreading`, without ``alpha``; ``max_iter`` defaults to 1000. With
    ``solver="cg"`` it solves the harmonic system on the unlabeled items.
    """

    _variant = "propagation"

    def __init__(self, kernel="rbf", *, gamma=20, n_neighbors=7, max_iter=1000, tol=1e-3,
                 n_jobs=None, solver="iterate", rtol=1e-6, warm_start=False):
        super().__init__(kernel, gamma, n_neighbors, None, max_iter, tol, n_jobs, solver, rtol,
                         warm_start)


class PoissonLearning(_BaseLabelGraph):
    """Poisson learning (Calder et al., ICML 2020) on a reusable graph.

    Accurate with very few labels (one or a few per class), where label propagation
    collapses. Same interface as :class:`LabelSpreading`; solved by conjugate gradients
    to the relative residual ``rtol`` (``solver`` is always ``"cg"``); ``label_distributions_``
    is a softmax of the Poisson scores.

    ``class_priors`` (optional): how common each class is, when you know it: ``"uniform"``
    or one share per class of ``y`` (sorted class order). The predictions are then shifted
    per class until their class sizes match (Calder et al.'s volume constraint; see
    :mod:`activeprop.priors`); a wrong prior costs accuracy.
    """

    _variant = "poisson"

    def __init__(self, kernel="knn", *, gamma=20, n_neighbors=10, max_iter=2000, tol=1e-3,
                 n_jobs=None, solver="cg", rtol=1e-6, warm_start=False, class_priors=None):
        super().__init__(kernel, gamma, n_neighbors, None, max_iter, tol, n_jobs, solver, rtol,
                         warm_start)
        self.class_priors = class_priors

    def _neighbors_for(self, n_items: int) -> int:
        # Poisson learning's defaults must work on any pool: a pool smaller than the
        # neighbour count gets every other item as a neighbour.
        return max(1, min(self.n_neighbors, n_items - 1))

    def _class_priors(self, y):
        if self.class_priors is None or isinstance(self.class_priors, str):
            return self.class_priors
        classes = np.unique(y[y != -1])
        shares = np.asarray(self.class_priors, dtype=np.float64).ravel()
        if len(shares) != len(classes) or not np.all(shares > 0):
            raise UserError(f"class_priors needs one positive share per class of y "
                            f"({len(classes)}), got {len(shares)}")
        return dict(zip(classes.tolist(), shares.tolist()))
