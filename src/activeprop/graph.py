"""Affinity graphs over a pool, built once and reused by every fit and every round.

A :class:`Graph` holds the affinity matrix ``W`` of a pool (dense for the rbf kernel,
sparse for the k-nearest-neighbour kernel) and derives from it, on first use, the two
operators the propagation solvers need:

* the *spreading* operator ``S = D^-1/2 W0 D^-1/2`` (``W0`` is ``W`` without its
  diagonal, ``D`` its degrees), exactly as scikit-learn's ``LabelSpreading`` builds it
  through ``scipy.sparse.csgraph.laplacian(W, normed=True)``;
* the *propagation* operator ``P = D^-1 W`` (row-normalised, diagonal kept), exactly as
  scikit-learn's ``LabelPropagation`` (1.8 and later) builds it.

Solvers touch an operator only through ``operator @ F`` with a block of label columns,
which is the seam a distributed engine can later replace.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import laplacian
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.neighbors import NearestNeighbors

KERNELS = ("rbf", "knn")

# A dense rbf graph needs about three n x n float64 arrays while it is being built.
# Above this many items that no longer fits comfortably in the memory of a workstation.
MAX_DENSE_ITEMS = 20_000


@dataclass
class Graph:
    """The affinity graph of one pool.

    Build it with :func:`build_graph`; hand the same object to every fit.

    Attributes
    ----------
    kernel : {"rbf", "knn"}
        How the affinities were computed.
    gamma : float
        Width of the rbf kernel (unused for knn).
    n_neighbors : int
        Neighbours per item for knn (unused for rbf).
    X : ndarray of shape (n_items, n_features)
        The pool's features, kept for inductive prediction on new items.
    affinity : ndarray or scipy.sparse.csr_matrix of shape (n_items, n_items)
        The kernel matrix ``W``.
    build_seconds : float
        Wall-clock time spent building ``affinity``.
    """

    kernel: str
    gamma: float
    n_neighbors: int
    X: np.ndarray
    affinity: np.ndarray | sparse.csr_matrix
    build_seconds: float
    _neighbors: NearestNeighbors | None = None
    _operators: dict = field(default_factory=dict, repr=False)

    @property
    def n_items(self) -> int:
        """Number of items (nodes) in the graph."""
        return self.affinity.shape[0]

    @property
    def is_sparse(self) -> bool:
        """True when the affinity matrix is stored sparse."""
        return sparse.issparse(self.affinity)

    @property
    def nbytes(self) -> int:
        """Memory held by the affinity matrix and the operators built so far, in bytes."""
        return sum(_matrix_nbytes(m) for m in (self.affinity, *self._operators.values()))

    def matches(self, kernel: str, gamma: float, n_neighbors: int) -> bool:
        """Whether this graph was built with these kernel parameters."""
        if kernel != self.kernel:
            return False
        if kernel == "rbf":
            return float(gamma) == float(self.gamma)
        return int(n_neighbors) == int(self.n_neighbors)

    def operator(self, variant: str):
        """The matrix a solver multiplies with: ``"spreading"`` or ``"propagation"``.

        Built on first use and cached, so every later fit on this pool reuses it.
        """
        if variant not in self._operators:
            builders = {"spreading": _spreading_operator, "propagation": _propagation_operator}
            if variant not in builders:
                raise ValueError(f"unknown variant {variant!r}; allowed: spreading, propagation")
            self._operators[variant] = builders[variant](self.affinity)
        return self._operators[variant]

    def affinity_to(self, X_new: np.ndarray):
        """Affinities between the pool and new items, for inductive prediction.

        Returns a dense (n_items, n_new) array for rbf, and for knn the indices of each
        new item's nearest pool items, shape (n_new, n_neighbors), as scikit-learn does.
        """
        if self.kernel == "rbf":
            return rbf_kernel(self.X, X_new, gamma=self.gamma)
        return self._neighbors.kneighbors(X_new, return_distance=False)


def build_graph(X, kernel: str = "rbf", *, gamma: float = 20, n_neighbors: int = 7,
                n_jobs: int | None = None) -> Graph:
    """Build the affinity graph of a pool exactly as scikit-learn's label propagation does.

    Parameters
    ----------
    X : array-like of shape (n_items, n_features)
        Features of every item in the pool, labeled or not.
    kernel : {"rbf", "knn"}
        ``"rbf"``: dense ``exp(-gamma * ||x_i - x_j||^2)``. ``"knn"``: sparse
        connectivity to the ``n_neighbors`` nearest items (the item itself included).
    gamma : float
        rbf width, > 0.
    n_neighbors : int
        knn neighbours, >= 1 and < n_items.
    n_jobs : int, optional
        Parallel jobs for the neighbour search.

    Returns
    -------
    Graph
    """
    X = np.asarray(X, dtype=np.float64)
    validate_kernel_params(kernel, gamma, n_neighbors, len(X))
    start = time.perf_counter()
    neighbors = None
    if kernel == "rbf":
        affinity = rbf_kernel(X, X, gamma=gamma)
    else:
        neighbors = NearestNeighbors(n_neighbors=n_neighbors, n_jobs=n_jobs).fit(X)
        affinity = neighbors.kneighbors_graph(neighbors._fit_X, n_neighbors, mode="connectivity")
    return Graph(kernel=kernel, gamma=gamma, n_neighbors=n_neighbors, X=X, affinity=affinity,
                 build_seconds=time.perf_counter() - start, _neighbors=neighbors)


def validate_kernel_params(kernel: str, gamma: float, n_neighbors: int, n_items: int) -> None:
    """Raise ValueError naming the bad parameter and what is allowed."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; allowed: {', '.join(KERNELS)}")
    if kernel == "rbf":
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        if n_items > MAX_DENSE_ITEMS:
            gib = 3 * n_items**2 * 8 / 2**30
            raise ValueError(
                f"a dense rbf graph of {n_items} items needs about {gib:.0f} GiB "
                f"(limit {MAX_DENSE_ITEMS} items); use --kernel knn for large pools")
    elif not 1 <= n_neighbors < n_items:
        raise ValueError(f"n_neighbors must be between 1 and {n_items - 1} (pool size - 1), "
                         f"got {n_neighbors}")


def _spreading_operator(affinity):
    """scikit-learn's LabelSpreading graph: minus the normalised Laplacian, zero diagonal."""
    operator = -laplacian(affinity, normed=True)
    if sparse.issparse(operator):
        operator = sparse.csr_matrix(operator)
        operator.setdiag(0.0)
        operator.eliminate_zeros()
    else:
        np.fill_diagonal(operator, 0.0)
    return operator


def _propagation_operator(affinity):
    """scikit-learn's LabelPropagation graph: affinities divided by their row sums."""
    row_sums = np.ravel(affinity.sum(axis=1))
    if sparse.issparse(affinity):
        return sparse.csr_matrix(sparse.diags(1.0 / row_sums) @ affinity)
    return affinity / row_sums[:, np.newaxis]


def _matrix_nbytes(matrix) -> int:
    if sparse.issparse(matrix):
        return matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
    return matrix.nbytes
