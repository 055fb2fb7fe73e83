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

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Callable

import numpy as np

from .calibration import (MachineCosts, machine_costs, rows_worth_a_thread, search_backend,
                          usable_cores)
from .errors import UserError
from .numerics import flush_negligible
from .params import KERNELS, check_params
from .row_steps import row_steps

if TYPE_CHECKING:  # annotations only
    import scipy.sparse

# scipy takes ~0.2 s of a command's start-up to import (scipy.sparse alone pulls in its
# array-API layer, numpy.testing and numpy.f2py) and the default dense path needs none of
# it: scipy.sparse and csgraph are imported where the sparse and converged paths use them.

KNN_BACKENDS = ("auto", "sklearn", "flat", "hnsw")
EDGE_WEIGHTS = ("connectivity", "rbf", "local")

RECALL_SAMPLE = 1000
# Local edge weights are exp(-LOCAL_SHARPNESS d^2 / d_k^2), graphlearning's: the k-th
# neighbour's edge at exp(-4) = 0.018 of an item's own. Measured with the recommended
# settings otherwise (docs/benchmarks.md, 2026-12-02), 4 gained the most on digits, raw
# pixels and an embedding once the labels number 4 per class (--local-from 4, which the
# recommended settings use on pictures: experiments.recommended_local_from).
LOCAL_SHARPNESS = 4.0

# The operators the converged solvers derive from a sparse affinity (Graph.derived_arrays),
# and the arrays a CSR matrix is kept as.
DERIVED_OPERATORS = ("symmetric", "symmetric-spreading")
CSR_PARTS = ("data", "indices", "indptr")

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
    backend : str
        How neighbours were found: "dense" (rbf), "sklearn" (scikit-learn's exact search,
        identical to its LabelSpreading), "flat" (faiss exact) or "hnsw" (faiss approximate).
    recall : float or None
        For "hnsw": the measured fraction of true k nearest neighbours found (on a sample).
    """

    kernel: str
    gamma: float
    n_neighbors: int
    X: np.ndarray
    affinity: np.ndarray | scipy.sparse.csr_matrix
    build_seconds: float
    backend: str = "dense"
    recall: float | None = None
    search: Callable | None = field(default=None, repr=False)
    # Three kinds of thing derived from the affinity, kept apart: the matrices solvers
    # multiply with, the locality order they are stored in, and analyses of the graph
    # (embedding, components, a solver's reusable columns) shared by models and rounds.
    _operators: dict = field(default_factory=dict, repr=False)
    _order: np.ndarray | None = field(default=None, repr=False)
    _derived: dict = field(default_factory=dict, repr=False)
    # Holds spreading's normalised operator alone (of_ordered_knn without the affinity):
    # its affinity attribute is that operator, and nothing else can be derived from it.
    _spreading_only: bool = field(default=False, repr=False)

    @classmethod
    def of_ordered_knn(cls, spreading: "ThreadedMatrix", roots: np.ndarray,
                       components: np.ndarray, n_neighbors: int, backend: str,
                       symmetric: "ThreadedMatrix | None" = None,
                       degrees: np.ndarray | None = None) -> "Graph":
        """A kNN graph given by its converged solvers' operators, already symmetric and in a
        locality order (a cluster's lone row block): its order is the identity, so the
        items' order is the matrices', its components are ``components``, and
        ``roots`` are :meth:`spreading_roots`. The symmetric affinity and its row sums
        ``degrees`` may be left out: spreading reads the normalised ``spreading`` alone
        (then no other operator can be asked for). The operators and arrays are kept, not
        copied; the order is its own inverse (one array, not two: 8 B an item on a lone
        worker)."""
        graph = cls(kernel="knn", gamma=0.0, n_neighbors=n_neighbors, X=None,
                    affinity=(symmetric or spreading).matrix, build_seconds=0.0,
                    backend=backend)
        graph._operators["symmetric-spreading"] = spreading
        if symmetric is not None:
            graph._operators.update({"symmetric": symmetric, "degrees": degrees})
        else:
            graph._spreading_only = True
        graph._order = np.arange(graph.n_items)
        graph._derived.update({"inverse-order": graph._order, "components": components,
                               "spreading-roots": roots})
        return graph

    @property
    def n_items(self) -> int:
        """Number of items (nodes) in the graph."""
        return self.affinity.shape[0]

    @property
    def is_sparse(self) -> bool:
        """True when the affinity matrix is stored sparse."""
        return is_sparse(self.affinity)

    @property
    def nbytes(self) -> int:
        """Memory held by the affinity matrix and the operators built so far, in bytes:
        each array once (a threaded matrix's row blocks share its entries; a graph of
        spreading's operator alone holds it as its affinity too)."""
        held = {}
        for matrix in (self.affinity, *self._operators.values()):
            held.update((id(array), array.nbytes) for array in _held_arrays(matrix))
        return sum(held.values())

    def matches(self, kernel: str, gamma: float, n_neighbors: int) -> bool:
        """Whether this graph was built with these kernel parameters."""
        if callable(kernel):  # a user's kernel: its graph is labelled "callable"
            return self.kernel == "callable"
        if kernel != self.kernel:
            return False
        if kernel == "rbf":
            return float(gamma) == float(self.gamma)
        return int(n_neighbors) == int(self.n_neighbors)

    def operator(self, variant: str):
        """The matrix a solver multiplies with, built on first use and cached.

        ``"spreading"`` and ``"propagation"`` are scikit-learn's operators, in pool order.
        The converged solver uses ``"symmetric"`` (the affinity made symmetric,
        (W + W^T) / 2, which conjugate gradients need), ``"symmetric-spreading"`` (its
        normalised form) and ``"degrees"`` (its row sums), all in :attr:`order`.
        """
        if variant not in self._operators:
            if self._spreading_only:  # a caller's bug: its graph was made for spreading
                raise RuntimeError(f"this graph holds spreading's operator alone, not "
                                   f"{variant!r}")
            builders = {
                "spreading": lambda: _spreading_operator(self.affinity),
                "propagation": lambda: _propagation_operator(self.affinity),
                "symmetric": self._symmetric_in_locality_order,
                "symmetric-spreading": lambda: _spreading_operator(
                    _unwrap(self.operator("symmetric"))),
                "degrees": lambda: np.ravel(self.operator("symmetric").sum(axis=1)),
            }
            if variant not in builders:
                raise ValueError(f"unknown operator {variant!r}; allowed: {', '.join(builders)}")
            operator = builders[variant]()
            if variant in ("symmetric", "symmetric-spreading"):  # the converged solvers'
                operator = self._without_negligible(operator, normalized=variant != "symmetric")
            if is_sparse(operator):
                operator = ThreadedMatrix(operator)
            self._operators[variant] = operator
        return self._operators[variant]

    def spreading_roots(self) -> np.ndarray:
        """The square roots of the degrees ``"symmetric-spreading"`` is normalised by (the
        symmetric affinity's row sums off its diagonal), in :attr:`order`: an entry of
        that operator times its column's root is the affinity's entry divided by its row's
        root."""
        return self.cached("spreading-roots", lambda: degree_roots(
            off_diagonal_degrees(_unwrap(self.operator("symmetric")))))

    def _without_negligible(self, operator, normalized: bool):
        """``operator`` with its negligible entries zeroed (:mod:`activeprop.numerics`): a
        normalised operator's below :data:`NEGLIGIBLE`, the affinity's where its normalised
        value is. In place, unless it is the affinity itself (then a copy, if anything is
        dropped: the graph's affinity, and a user's kernel matrix, stay as they were)."""
        scale = None if normalized else _degree_scale(operator)
        return flush_negligible(operator, scale, in_place=operator is not self.affinity)

    @property
    def order(self) -> np.ndarray:
        """The order the converged solver's operators are stored in.

        For a sparse graph, reverse Cuthill-McKee on the symmetrised graph: neighbours sit
        close in memory, so a sparse product reads mostly cached rows (2.5x faster at
        300,000 items). Position ``p`` of the solver's arrays is pool item ``order[p]``.
        """
        self.operator("symmetric")  # computes the order with the matrix it orders
        return self._order

    def to_graph_order(self, rows: np.ndarray) -> np.ndarray:
        """Rows of a pool-ordered array, in :attr:`order`."""
        return np.take(rows, self.order, axis=0)  # 8x faster than rows[order] for n x 10

    def labels_to_graph_order(self, codes: np.ndarray) -> np.ndarray:
        """A pool-ordered vector of labels (-1: unlabeled) in :attr:`order`, the same as
        :meth:`to_graph_order`, written at the labeled items only: a gather of every item
        read the whole vector out of order (7 ms of a labeler's refit at 1,000,000 items)."""
        labeled = np.flatnonzero(codes != -1)
        ordered = np.full(len(codes), -1, dtype=codes.dtype)
        ordered[self.pool_positions()[labeled]] = codes[labeled]
        return ordered

    def to_pool_order(self, rows: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_graph_order`."""
        return np.take(rows, self.pool_positions(), axis=0)

    def pool_positions(self) -> np.ndarray:
        """Where each pool item sits in :attr:`order`."""
        return self.cached("inverse-order", lambda: np.argsort(self.order))

    def _symmetric_in_locality_order(self):
        symmetric = _symmetrize(self.affinity)
        if self.is_sparse:
            from scipy import sparse
            from scipy.sparse.csgraph import reverse_cuthill_mckee

            symmetric = sparse.csr_matrix(symmetric)
            order = reverse_cuthill_mckee(symmetric, symmetric_mode=True)
        else:
            order = np.arange(self.n_items)
        self._order = np.asarray(order, dtype=np.int64)
        return _permute(symmetric, self._order)

    def cached(self, key: str, build: Callable):
        """``build()``, computed on first use and kept with the graph under ``key``: things
        derived from the graph alone, shared by every model and round of this pool."""
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]

    def derived_arrays(self) -> dict[str, np.ndarray]:
        """What the converged solvers derived so far from a sparse affinity, as named arrays
        for the project's graph file (:meth:`adopt_derived` takes them back): the operators
        in :attr:`order` with the order itself, and the components. At 1,000,000 items
        deriving them took 5 of the 7 s the labeler's first label after opening waited
        (symmetrising 2.6 s, ordering 1.1 s, normalising 1.1 s, the components 0.35 s)."""
        arrays = {}
        if not self.is_sparse:  # a dense graph is not kept (rebuilt on opening)
            return arrays
        for variant in DERIVED_OPERATORS:
            if variant in self._operators:
                matrix = _unwrap(self._operators[variant])
                arrays.update({f"{variant}.{part}": getattr(matrix, part) for part in CSR_PARTS})
        if arrays:
            arrays["order"] = self._order
        if "components" in self._derived:
            arrays["components"] = self._derived["components"]
        return arrays

    def adopt_derived(self, arrays: dict[str, np.ndarray]) -> None:
        """Take what :meth:`derived_arrays` gave (read back from a file) instead of deriving
        it again: the same arrays, so the same answers to the bit. Raises ValueError,
        adopting nothing, when they do not fit this graph (a damaged file)."""
        from scipy import sparse

        n = self.n_items
        operators = {}
        for variant in DERIVED_OPERATORS:
            if f"{variant}.data" in arrays:
                matrix = sparse.csr_matrix(tuple(arrays[f"{variant}.{part}"]
                                                 for part in CSR_PARTS), shape=(n, n))
                check_sparse_graph(matrix)
                operators[variant] = matrix
        if operators and not is_permutation(arrays.get("order"), n):
            raise ValueError("the operators' order is not a permutation of the items")
        if "symmetric-spreading" in operators and "symmetric" not in operators:
            raise ValueError("the normalised operator without the one it normalises")
        components = arrays.get("components")
        if components is not None and not (
                components.shape == (n,) and components.dtype.kind in "iu" and
                (n == 0 or components.min() >= 0)):
            raise ValueError("the components are not one number per item")
        if components is not None and "symmetric" not in operators:
            raise ValueError("the components without the order they are in")
        for variant, matrix in operators.items():
            self._operators[variant] = ThreadedMatrix(matrix)
        if operators:
            self._order = np.asarray(arrays["order"], dtype=np.int64)
        if components is not None:
            self._derived["components"] = components

    def spectral_embedding(self, dimensions: int = 16) -> np.ndarray:
        """Items as rows of the leading eigenvectors of the normalised affinity (Laplacian
        eigenmaps), in pool order, each row scaled to unit length; cached. Clusters of
        this embedding follow the graph's clusters, which raw features often do not.
        Always finishes (see :func:`leading_eigenvectors`)."""
        def embed():
            operator = self.operator("symmetric-spreading")
            k = min(dimensions, self.n_items - 2)
            vectors = leading_eigenvectors(operator, k)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            return self.to_pool_order(vectors)

        return self.cached(f"embedding-{dimensions}", embed)

    def components(self) -> np.ndarray:
        """Connected component of every item of the symmetrised graph, in :attr:`order`."""
        from scipy.sparse.csgraph import connected_components

        return self.cached("components", lambda: connected_components(
            _unwrap(self.operator("symmetric")), directed=False)[1])

    def describe(self) -> dict:
        """What a user needs to judge the graph: backend, size, time, recall."""
        nnz = self.affinity.nnz if self.is_sparse else self.n_items ** 2
        return {"kernel": self.kernel, "backend": self.backend, "n_items": self.n_items,
                "n_neighbors": self.n_neighbors if self.kernel == "knn" else None,
                "edges": int(nnz), "megabytes": round(self.nbytes / 2**20, 1),
                "build_seconds": self.build_seconds, "recall": self.recall}

    def affinity_to(self, X_new: np.ndarray):
        """Affinities between the pool and new items, for inductive prediction.

        Returns a dense (n_items, n_new) array for rbf, and for knn the indices of each
        new item's nearest pool items, shape (n_new, n_neighbors), as scikit-learn does.
        """
        if self.kernel == "rbf":
            return rbf_kernel(self.X, np.asarray(X_new, dtype=np.float64), gamma=self.gamma)
        if self.search is None:  # a graph read back from disk: index the pool on first use
            self.search = _SEARCHERS[self.backend](self.X, None)
        return self.search(np.asarray(X_new, dtype=np.float64), self.n_neighbors)[1]


class ThreadedMatrix:
    """A sparse matrix whose products with a block of columns run on every core.

    scipy's sparse product is single-threaded but releases the GIL, so the rows are split
    into one block per core and multiplied in threads. This is the one place the solvers
    touch the graph (``matrix @ block``); a distributed engine would replace it.
    """

    def __init__(self, matrix: scipy.sparse.csr_matrix, n_blocks: int | None = None):
        from scipy import sparse

        self.matrix = sparse.csr_matrix(matrix)
        self.shape = self.matrix.shape
        self._blocks = [(rows.start, rows.stop, _row_view(self.matrix, rows))
                        for rows in row_blocks(self.shape[0], seconds_per_row(self.matrix),
                                               n_blocks)]

    def __reduce__(self):
        # pickled (sent to another process, spilled to disk) as the matrix alone: its row
        # blocks are views of it, which pickle would write out a second time
        return ThreadedMatrix, (self.matrix, len(self._blocks))

    def __sizeof__(self) -> int:
        # What Dask counts a task's result as (its sizeof falls back to sys.getsizeof),
        # to place the tasks that read it and to weigh moving them: without it, a block's
        # operator of hundreds of MB looked like 56 B, cheap to send to an idle worker.
        return object.__sizeof__(self) + sum(array.nbytes for array in self.held_arrays())

    def __matmul__(self, block: np.ndarray) -> np.ndarray:
        return self.multiply(block)

    def held_arrays(self) -> list[np.ndarray]:
        """The arrays this holds: its matrix's, and its row blocks' own row pointers (their
        entries are views of the matrix's)."""
        return [self.matrix.data, self.matrix.indices, self.matrix.indptr,
                *(rows.indptr for _, _, rows in self._blocks)]

    def multiply(self, block: np.ndarray, finish: Callable | None = None,
                 out: np.ndarray | None = None) -> np.ndarray:
        """``matrix @ block``, then ``finish(rows, product_rows)`` (in place) on each row
        block in the thread that computed it, while those rows are still in cache. Written
        into ``out`` when it is given with the product's shape and dtype (memory the caller
        no longer needs), else into a new array; returns it."""
        if block.ndim != 2:
            return np.asarray(self.matrix @ block)
        shape, dtype = (self.shape[0], block.shape[1]), np.result_type(block, float)
        if out is None or out.shape != shape or out.dtype != dtype:
            out = np.empty(shape, dtype=dtype)

        def multiply(part):
            start, stop, rows = part
            _product_into(rows, block, out[start:stop])
            if finish is not None:
                finish(slice(start, stop), out[start:stop])

        on_every_core(multiply, self._blocks)
        return out

    def __getitem__(self, rows):
        return self.matrix[rows]

    def diagonal(self) -> np.ndarray:
        """The matrix's diagonal."""
        return self.matrix.diagonal()

    def sum(self, axis=None):
        """Sums, as scipy's."""
        return self.matrix.sum(axis=axis)

    @property
    def nnz(self) -> int:
        """Stored entries."""
        return self.matrix.nnz


def _product_into(rows, block: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = rows @ block`` for CSR ``rows``. In float64, scipy's own kernels
    (``csr_matvec`` for one column, ``csr_matvecs`` for more: what ``rows @ block`` runs,
    so the same bits) add into ``out`` directly: ``rows @ block`` wrote a fresh array and
    ``out`` took a copy of it. At 1,000,000 x 10 that was two 40 MB arrays a product, new
    memory that the kernel must hand over page by page (up to 310 ms of system time in a
    deep solve of the labeler's, on a virtual machine: docs/benchmarks.md) and one more
    pass over it."""
    from scipy.sparse import _sparsetools  # private, but the kernel of scipy's product

    if rows.dtype != np.float64 or block.dtype != np.float64 or not out.flags.c_contiguous:
        out[...] = rows @ block
        return
    block = np.ascontiguousarray(block)
    out[...] = 0.0  # the kernels add into it
    if block.shape[1] == 1:  # scipy's product takes its one-vector kernel too (2x faster)
        _sparsetools.csr_matvec(rows.shape[0], rows.shape[1], rows.indptr, rows.indices,
                                rows.data, block.ravel(), out.ravel())
    else:
        _sparsetools.csr_matvecs(rows.shape[0], rows.shape[1], block.shape[1], rows.indptr,
                                 rows.indices, rows.data, block.ravel(), out.ravel())


def _row_view(matrix, rows: slice):
    """Rows ``rows`` of a CSR matrix sharing its entries (scipy's slicing copies them, which
    doubled a threaded matrix's memory: 130 MB more for the spreading operator at 1,000,000
    items and 10 neighbours)."""
    from scipy import sparse

    start, stop = matrix.indptr[rows.start], matrix.indptr[rows.stop]
    view = sparse.csr_matrix((rows.stop - rows.start, matrix.shape[1]), dtype=matrix.dtype)
    # set after construction: scipy's constructor copies a slice of a much larger array
    view.data, view.indices = matrix.data[start:stop], matrix.indices[start:stop]
    view.indptr = (matrix.indptr[rows.start:rows.stop + 1] - start).astype(matrix.indptr.dtype)
    view.has_sorted_indices = matrix.has_sorted_indices
    return view


def seconds_per_row(matrix) -> float:
    """This machine's measured time to read one row of a sparse ``matrix`` against a block
    of about 8 columns (its calibrated rate for a 10-neighbour row, scaled to the rows'
    mean length)."""
    return machine_costs().sparse_row * matrix.nnz / max(matrix.shape[0], 1) / 10


def row_blocks(n_rows: int, seconds_per_row: float, n_blocks: int | None = None,
               costs: MachineCosts | None = None) -> list[slice]:
    """Rows split into one block per usable core (default;
    :func:`activeprop.calibration.usable_cores`), each of at least as many rows as make a
    thread worth handing them to, by this machine's measured costs (a task taking
    ``seconds_per_row`` per row; :func:`activeprop.calibration.rows_worth_a_thread`)."""
    cores = n_blocks or usable_cores()
    min_rows = rows_worth_a_thread(seconds_per_row, costs or machine_costs(), cores)
    n_blocks = max(1, min(cores, n_rows // min_rows))
    bounds = np.linspace(0, n_rows, n_blocks + 1).astype(int)
    return [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]


def in_row_blocks(task: Callable, n_rows: int, columns: int):
    """``task(rows)`` for each of :func:`row_blocks`, on every core (numpy releases the GIL
    on large arrays), for an element-wise task over ``columns`` columns; returns the sum
    of what the tasks return (None if they return None)."""
    per_row = machine_costs().stream_item * max(columns, 1)
    results = on_every_core(task, row_blocks(n_rows, per_row))
    return None if results[0] is None else sum(results)


def on_every_core(task: Callable, parts) -> list:
    """``[task(part) for part in parts]``, the parts in threads (inline when only one)."""
    parts = list(parts)
    if len(parts) == 1:
        return [task(parts[0])]
    return list(_thread_pool().map(task, parts))


@lru_cache(maxsize=1)
def _thread_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1)


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
    X = _pool_matrix(X)
    validate_kernel_params(kernel, gamma, n_neighbors, X.shape[0])
    if kernel == "knn":
        return build_knn_graph(X, n_neighbors, n_jobs=n_jobs)
    start = time.perf_counter()
    if is_sparse(X):
        from sklearn.metrics.pairwise import rbf_kernel as sparse_rbf_kernel

        affinity = sparse_rbf_kernel(X, gamma=gamma)
    else:
        affinity = rbf_kernel(X, gamma=gamma)
    return Graph(kernel=kernel, gamma=gamma, n_neighbors=n_neighbors, X=X, affinity=affinity,
                 build_seconds=time.perf_counter() - start)


def build_knn_graph(X, n_neighbors: int = 7, *, backend: str = "sklearn",
                    symmetric: bool = False, weights: str = "connectivity",
                    gamma: float | None = None, n_jobs: int | None = None) -> Graph:
    """A sparse k-nearest-neighbour graph; each item's neighbours include itself, as in
    scikit-learn.

    Parameters
    ----------
    X : array-like of shape (n_items, n_features)
    n_neighbors : int
    backend : {"sklearn", "flat", "hnsw", "auto"}
        ``"sklearn"``: scikit-learn's exact search (the graph its LabelSpreading builds).
        ``"flat"``: faiss exact search (IndexFlatL2). ``"hnsw"``: faiss HNSW, approximate;
        its recall is measured on a sample of items. ``"auto"``: flat while an exact
        search costs at most a few times HNSW on this machine (measured:
        :func:`activeprop.calibration.search_backend`), else hnsw.
    symmetric : bool
        Make the affinity symmetric, (W + W^T) / 2.
    weights : {"connectivity", "rbf", "local"}
        Edge weight 1; ``exp(-gamma * d^2)``, ``gamma`` by default one over the median
        squared neighbour distance; or ``exp(-4 d^2 / d_k^2)`` with ``d_k`` the distance
        from the edge's item to its k-th neighbour (itself counted), a width local to
        each item, as graphlearning's knn weights.
    n_jobs : int, optional
        Threads for the search.
    """
    X = _pool_matrix(X)
    validate_kernel_params("knn", 1.0, n_neighbors, X.shape[0])
    if is_sparse(X) and backend not in ("auto", "sklearn"):
        raise UserError(f"graph backend {backend!r} (faiss) needs dense features; use "
                        "sklearn (or auto) for sparse ones")
    _check_choice(backend, KNN_BACKENDS, "graph backend")
    _check_choice(weights, EDGE_WEIGHTS, "graph weights")
    if backend == "auto":
        backend = "sklearn" if is_sparse(X) else \
            search_backend(X.shape[0], X.shape[1], machine_costs())
    start = time.perf_counter()
    search = _SEARCHERS[backend](X, n_jobs)
    distances, indices = search(X, n_neighbors)
    affinity = _knn_affinity(distances, indices, weights, gamma)
    if symmetric:
        affinity = _symmetrize(affinity)
    build_seconds = time.perf_counter() - start
    recall = _measure_recall(X, indices, distances) if backend == "hnsw" else None
    return Graph(kernel="knn", gamma=gamma or 0.0, n_neighbors=n_neighbors, X=X,
                 affinity=affinity, build_seconds=build_seconds, backend=backend,
                 recall=recall, search=search)


def with_local_weights(graph: Graph) -> Graph:
    """``graph``'s neighbour lists (a directed kNN graph, ``k`` items a row) with local edge
    weights (see :func:`build_knn_graph`), the distances recomputed from the features
    rather than searched for again (a second search of 70,000 x 784 items takes ~20 s)."""
    matrix = graph.affinity.tocsr()
    n_items, k = matrix.shape[0], graph.n_neighbors
    if not np.all(np.diff(matrix.indptr) == k):  # a caller's bug: symmetrised or dense
        raise ValueError("with_local_weights needs a directed kNN graph of k items a row")
    start = time.perf_counter()
    columns = matrix.indices.reshape(n_items, k)
    squared = np.empty((n_items, k))
    for rows in np.array_split(np.arange(n_items), max(1, n_items * k // 2_000_000)):
        difference = graph.X[columns[rows]] - graph.X[rows, None, :]
        squared[rows] = np.einsum("ijk,ijk->ij", difference, difference)
    affinity = _knn_affinity(np.sqrt(squared), columns, "local", None)
    return Graph(kernel="knn", gamma=0.0, n_neighbors=k, X=graph.X, affinity=affinity,
                 build_seconds=time.perf_counter() - start, backend=graph.backend,
                 recall=graph.recall, search=graph.search)


def nearest_neighbors(X: np.ndarray, k: int):
    """Distances and indices of every item's ``k`` nearest items (itself first), by faiss:
    exact while cheap, HNSW above (see :func:`build_knn_graph`)."""
    X = np.asarray(X, dtype=np.float64)
    backend = search_backend(X.shape[0], X.shape[1], machine_costs())
    return _SEARCHERS[backend](X, None)(X, k)


# Up to this many items the embedding's eigenvectors come from a dense symmetric
# eigensolver: exact and always done (about a second at 2,000 items).
DENSE_EIGEN_ITEMS = 3000
# ARPACK's restarts before it is given up: it stalls when the leading eigenvalues cluster
# (a nearly disconnected graph, e.g. a narrow rbf kernel: 0/16 converged in 8,001 restarts).
ARPACK_RESTARTS = 50
SUBSPACE_ITERATIONS = 40


def leading_eigenvectors(operator, k: int) -> np.ndarray:
    """``k`` eigenvectors of the symmetric ``operator`` (spectrum in [-1, 1]) with the
    largest eigenvalues, by a method that always finishes: a dense eigensolver for small
    pools, else ARPACK with a bounded number of restarts, falling back to a fixed number
    of block power iterations (their span is what clustering needs, even where clustered
    eigenvalues keep ARPACK from telling its vectors apart)."""
    n = operator.shape[0]
    if n <= DENSE_EIGEN_ITEMS:
        from scipy.linalg import eigh

        operator = _unwrap(operator)
        dense = operator.toarray() if is_sparse(operator) else np.array(operator)
        dense[np.abs(dense) < np.finfo(np.float64).tiny] = 0  # subnormals are slow, and 0 here
        return eigh(dense, subset_by_index=[n - k, n - 1])[1]
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    try:
        return eigsh(_as_linear_operator(operator), k=k, which="LA", v0=np.ones(n),
                     maxiter=ARPACK_RESTARTS)[1]
    except ArpackNoConvergence:
        return _subspace_iteration(operator, k)


def _as_linear_operator(operator):
    """What ARPACK multiplies by: a :class:`ThreadedMatrix`'s products of one vector on
    every core (scipy's run on one; the same kernel on each row block, so the same bits),
    or ``operator`` itself."""
    if not isinstance(operator, ThreadedMatrix):
        return operator
    from scipy.sparse.linalg import LinearOperator

    return LinearOperator(operator.shape, dtype=np.float64,
                          matvec=lambda v: operator.multiply(v.reshape(-1, 1)).ravel())


def _subspace_iteration(operator, k: int) -> np.ndarray:
    """Leading eigenvectors by block power iteration on (I + S) / 2 (spectrum in [0, 1], so
    the largest eigenvalues of S lead), a fixed number of steps, then Rayleigh-Ritz."""
    n = operator.shape[0]
    block = np.random.default_rng(0).standard_normal((n, k + 8))
    for _ in range(SUBSPACE_ITERATIONS):
        block = orthonormal_columns((block + operator @ block) / 2)
    projected = block.T @ (operator @ block)
    values, vectors = np.linalg.eigh((projected + projected.T) / 2)
    return block @ vectors[:, -k:]


def orthonormal_columns(block: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the span of the columns of the tall, thin ``block`` (its
    Q factor, up to the columns' signs), by Cholesky QR done twice (CholeskyQR2: the
    second pass restores the orthogonality the first loses); by Householder QR when the
    block is too close to rank-deficient for that. LAPACK's Householder QR works a column
    at a time: of 1,000,000 x 24 it took 2 s (79 of a 1,000,000-item project's 545 s of
    creation); the Gram matrix and the product with its factor's inverse are matrix
    products."""
    gram = block.T @ block
    if np.linalg.cond(gram) > MAX_GRAM_CONDITION:
        return np.linalg.qr(block)[0]
    # one pass leaves the columns orthonormal to within cond(gram) x 1e-16 (1e-2 at worst
    # here): well-conditioned, so the second pass makes them orthonormal to round-off
    block = _cholesky_qr(block, gram)
    return _cholesky_qr(block, block.T @ block)


def _cholesky_qr(block: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """``block`` times the inverse of the transposed Cholesky factor of its Gram matrix
    ``gram`` (= L L^T): its Q factor, as exact as ``gram`` is well-conditioned. The small
    factor is inverted, then multiplied (a triangular solve against a 1,000,000 x 24 block
    took 0.65 s, the product 0.27 s, both with another job on the cores)."""
    from scipy.linalg import solve_triangular

    factor = np.linalg.cholesky(gram)
    inverse = solve_triangular(factor, np.eye(len(factor)), lower=True)
    return block @ inverse.T


# CholeskyQR2 gives columns orthonormal to working precision when the block's condition
# number is below about 1 / sqrt(machine epsilon), 1e8 (Yamamoto et al., 2015): its Gram
# matrix's, squared, below 1e16. Kept at a hundredth of that.
MAX_GRAM_CONDITION = 1e14


def rbf_kernel(X: np.ndarray, Y: np.ndarray | None = None, *, gamma: float) -> np.ndarray:
    """``exp(-gamma ||x - y||^2)`` between the rows of X and of Y (X itself if None).

    The same operations in the same order as scikit-learn's ``rbf_kernel`` on float64
    arrays, so the same bits (a test checks it), without the second of start-up that
    importing scikit-learn costs a command.
    """
    same = Y is None
    Y = X if same else Y
    XX = np.einsum("ij,ij->i", X, X)[:, None]
    YY = XX.T if same else np.einsum("ij,ij->i", Y, Y)[None, :]
    K = X @ Y.T

    def finish(rows: slice) -> None:  # element-wise, so row blocks on both cores: same bits
        block = K[rows]
        block *= -2
        block += XX[rows]
        block += YY
        np.maximum(block, 0, out=block)
        if same:  # an item's distance to itself is 0, whatever the rounding
            block[np.arange(rows.stop - rows.start), np.arange(rows.start, rows.stop)] = 0
        block *= -gamma
        np.exp(block, out=block)

    # exp of mostly underflowing values is slow: half the kernel's time on one core
    on_every_core(finish, row_blocks(len(X), machine_costs().exp_item * K.shape[1]))
    return K


def _degree_scale(affinity) -> np.ndarray:
    """The square roots of the items' degrees without their self-loops: dividing an
    affinity's entry by the scales of its row and column gives the spreading operator's."""
    degrees = np.ravel(affinity.sum(axis=1)) - np.ravel(affinity.diagonal())
    return np.sqrt(np.maximum(degrees, 0.0))


def _pool_matrix(X):
    """The pool's features as float64: CSR when sparse (scikit-learn's searches and kernel
    take it), else a dense array."""
    if is_sparse(X):
        from scipy import sparse

        return sparse.csr_matrix(X, dtype=np.float64)
    return np.asarray(X, dtype=np.float64)


def _sklearn_searcher(X: np.ndarray, n_jobs):
    from sklearn.neighbors import NearestNeighbors  # only for scikit-learn's exact graph

    neighbors = NearestNeighbors(n_jobs=n_jobs).fit(X)

    def search(queries, k):
        return neighbors.kneighbors(queries, k)

    return search


# faiss HNSW settings. The recall on a sample hides where misses land: at 300,000
# digits-aug items, links 16 / build depth 40 / search depth 32 found 99.7% of the true
# neighbours, yet spreading with 100 labels was right on 0.867 of the items against 0.900
# on the exact graph (the misses are long edges between unrelated items). Links 32 / build
# depth 80 / search depth 64: recall 1.0000 and 0.900, for 23 s of search against 12.5 s.
HNSW_LINKS, HNSW_BUILD_DEPTH, HNSW_SEARCH_DEPTH = 32, 80, 64


def hnsw_index(dimensions: int):
    """An empty faiss HNSW index with activeprop's settings."""
    import faiss

    index = faiss.IndexHNSWFlat(dimensions, HNSW_LINKS)
    index.hnsw.efConstruction = HNSW_BUILD_DEPTH
    return index


def hnsw_search_depth(k: int) -> int:
    """How many candidates an HNSW search for ``k`` neighbours keeps (``efSearch``)."""
    return max(HNSW_SEARCH_DEPTH, 2 * k)


def _faiss_searcher(kind: str):
    def make(X: np.ndarray, n_jobs):
        import faiss

        if n_jobs and n_jobs > 0:
            faiss.omp_set_num_threads(n_jobs)
        data = np.ascontiguousarray(X, dtype=np.float32)
        if kind == "flat":
            index = faiss.IndexFlatL2(data.shape[1])
        else:
            index = hnsw_index(data.shape[1])
        index.add(data)

        def search(queries, k):
            if kind == "hnsw":
                index.hnsw.efSearch = hnsw_search_depth(k)
            squared, found = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
            return np.sqrt(np.maximum(squared, 0)), found

        return search

    return make


_SEARCHERS = {"sklearn": _sklearn_searcher, "flat": _faiss_searcher("flat"),
              "hnsw": _faiss_searcher("hnsw")}


def _knn_affinity(distances, indices, weights: str, gamma: float | None):
    n_items, k = indices.shape
    if weights == "rbf":
        squared = distances.astype(np.float64) ** 2
        if gamma is None:
            gamma = 1.0 / max(float(np.median(squared[:, 1:])) if k > 1 else 1.0, 1e-12)
        values = np.exp(-gamma * squared).ravel()
    elif weights == "local":
        # Each item's width is its k-th neighbour's distance: dense and sparse regions
        # get edges of the same strength. An item whose k neighbours all sit on it
        # (duplicates) gets weight 1 on each, as with any width.
        squared = distances.astype(np.float64) ** 2
        width = np.maximum(squared.max(axis=1, keepdims=True), np.finfo(np.float64).tiny)
        values = np.exp(-LOCAL_SHARPNESS * squared / width).ravel()
    else:
        values = np.ones(n_items * k)
    rows = np.repeat(np.arange(n_items), k)
    from scipy import sparse

    return sparse.csr_matrix((values, (rows, indices.ravel())), shape=(n_items, n_items))


def _measure_recall(X: np.ndarray, found: np.ndarray, distances: np.ndarray) -> float:
    """Fraction of the true k nearest neighbours found, on a fixed sample of items.

    Truth comes from an exact faiss search; distances are recomputed in float64 so that a
    found neighbour tied with the true k-th one (duplicates, float32 round-off) is not
    counted as a miss.
    """
    sample = np.random.default_rng(0).choice(len(X), min(RECALL_SAMPLE, len(X)), replace=False)
    k = found.shape[1]
    _, true_indices = _faiss_searcher("flat")(X, None)(X[sample], k)
    queries = X[sample][:, None, :]
    true_kth = np.linalg.norm(X[true_indices] - queries, axis=2).max(axis=1, keepdims=True)
    found_distances = np.linalg.norm(X[found[sample]] - queries, axis=2)
    return float(np.mean(found_distances <= true_kth * (1 + 1e-9)))


def _check_choice(value: str, allowed: tuple, what: str) -> None:
    if value not in allowed:
        raise UserError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")


def validate_kernel_params(kernel: str, gamma: float, n_neighbors: int, n_items: int) -> None:
    """Raise UserError naming the bad parameter and what is allowed: the values'
    ranges (:func:`activeprop.params.check_params`), then what the pool's size allows."""
    if kernel not in KERNELS:
        raise UserError(f"unknown kernel {kernel!r}; allowed: {', '.join(KERNELS)}")
    check_params(gamma=gamma, n_neighbors=n_neighbors)
    if kernel == "rbf":
        if n_items > MAX_DENSE_ITEMS:
            gib = 3 * n_items**2 * 8 / 2**30
            raise UserError(
                f"a dense rbf graph of {n_items} items needs about {gib:.0f} GiB "
                f"(limit {MAX_DENSE_ITEMS} items); use --kernel knn for large pools")
    elif n_items < 2:
        raise UserError(f"a knn graph needs at least 2 items, got n_samples = {n_items}")
    elif not 1 <= n_neighbors < n_items:
        raise UserError(f"n_neighbors must be between 1 and {n_items - 1} (pool size - 1), "
                        f"got {n_neighbors}; ask for fewer (--neighbors on the command line)")


def check_sparse_graph(matrix) -> None:
    """Raise ValueError unless the CSR ``matrix`` is a well-formed graph: indices in range,
    pointers ordered, weights finite and not negative. A product over a damaged index
    array reads outside memory (a crash, not an error)."""
    matrix.check_format(full_check=True)
    if matrix.dtype.kind != "f":  # (scipy keeps text or objects as weights)
        raise ValueError(f"graph weights must be floating-point numbers, not {matrix.dtype}")
    if matrix.data.size and not (np.all(np.isfinite(matrix.data)) and matrix.data.min() >= 0):
        raise ValueError("graph weights must be finite and not negative")


def is_permutation(order, n: int) -> bool:
    """Whether ``order`` (as read from a file) orders ``n`` items."""
    try:
        order = np.asarray(order, dtype=np.int64)
    except (TypeError, ValueError):
        return False
    return order.shape == (n,) and np.array_equal(np.sort(order), np.arange(n))


def _symmetrize(affinity):
    """(W + W^T) / 2; the same matrix when it is already symmetric."""
    if is_sparse(affinity):
        if (affinity != affinity.T).nnz == 0:
            return affinity
        return ((affinity + affinity.T) / 2).tocsr()
    return affinity if np.array_equal(affinity, affinity.T) else (affinity + affinity.T) / 2


def _permute(matrix, order: np.ndarray):
    """Rows and columns of ``matrix`` taken in ``order`` (a no-op for the identity)."""
    if np.array_equal(order, np.arange(len(order))):
        return matrix
    if is_sparse(matrix):
        return matrix.tocsr()[order][:, order]
    return matrix[np.ix_(order, order)]


def _spreading_operator(affinity):
    """scikit-learn's LabelSpreading graph: minus the normalised Laplacian, zero diagonal."""
    if not is_sparse(affinity):
        return _normalized_dense(affinity)
    from scipy import sparse
    from scipy.sparse.csgraph import laplacian

    return without_diagonal(sparse.csr_matrix(-laplacian(affinity, normed=True)))


# Rows whose entries are sorted out at a time: the temporary arrays stay this small.
WITHOUT_DIAGONAL_ROWS = 65536


def off_diagonal_degrees(matrix) -> np.ndarray:
    """A sparse affinity's row sums without its diagonal (scikit-learn's normalised
    Laplacian ignores the diagonal)."""
    return np.ravel(matrix.sum(axis=1)) - matrix.diagonal()


def degree_roots(degrees: np.ndarray) -> np.ndarray:
    """What a normalised affinity divides each row and column by: the degrees' square
    roots, 1 for a row without edges (as ``scipy.sparse.csgraph.laplacian``)."""
    return np.where(degrees == 0, 1.0, np.sqrt(degrees))


def without_diagonal(matrix):
    """A copy of the CSR ``matrix`` without its entries on the diagonal or equal to zero,
    in arrays of the copy's size. (``setdiag(0)`` and ``eliminate_zeros()`` on a copy left
    the arrays at the whole matrix's size: 12 B an item more on a lone cluster worker.)"""
    from scipy import sparse

    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    keep = np.empty(matrix.nnz, dtype=np.bool_)
    counts = np.empty(matrix.shape[0], dtype=np.int64)
    for rows in row_steps(matrix.shape[0], WITHOUT_DIAGONAL_ROWS):
        start, stop = rows.start, rows.stop
        entries = slice(indptr[start], indptr[stop])
        row_of = np.repeat(np.arange(stop - start), np.diff(indptr[start:stop + 1]))
        kept = (indices[entries] != row_of + start) & (data[entries] != 0)
        keep[entries] = kept
        counts[start:stop] = np.bincount(row_of[kept], minlength=stop - start)
    new_indptr = np.zeros(matrix.shape[0] + 1, dtype=indptr.dtype)
    np.cumsum(counts, out=new_indptr[1:])
    return sparse.csr_matrix((data[keep], indices[keep], new_indptr), shape=matrix.shape)


def _normalized_dense(affinity: np.ndarray) -> np.ndarray:
    """``-laplacian(W, normed=True)`` with a zero diagonal for a dense W, with scipy's
    operations in scipy's order (bit for bit: the reference's tie-breaking depends on it):
    diagonal dropped, degrees as column sums, ``W_ij / d_j / d_i``."""
    operator = np.array(affinity, dtype=np.float64)
    np.fill_diagonal(operator, 0.0)
    degrees = operator.sum(axis=0)
    degrees = np.where(degrees == 0, 1, np.sqrt(degrees))  # an isolated item keeps its zeros
    operator /= degrees
    operator /= degrees[:, np.newaxis]
    return operator


def _propagation_operator(affinity):
    """scikit-learn's LabelPropagation graph: affinities divided by their row sums."""
    row_sums = np.ravel(affinity.sum(axis=1))
    if is_sparse(affinity):
        from scipy import sparse

        return sparse.csr_matrix(sparse.diags(1.0 / row_sums) @ affinity)
    return affinity / row_sums[:, np.newaxis]


def is_sparse(matrix) -> bool:
    """``scipy.sparse.issparse`` without importing scipy: while scipy.sparse is not loaded,
    nothing can be a sparse matrix."""
    loaded = sys.modules.get("scipy.sparse")
    return loaded is not None and loaded.issparse(matrix)


def _unwrap(matrix):
    """The scipy matrix behind a ThreadedMatrix (anything else as is)."""
    return matrix.matrix if isinstance(matrix, ThreadedMatrix) else matrix


def _held_arrays(matrix) -> list[np.ndarray]:
    """The arrays a graph's matrix or vector holds its entries in (a threaded matrix's:
    its matrix's, and its row blocks' own row pointers; their entries are views)."""
    if isinstance(matrix, ThreadedMatrix):
        return matrix.held_arrays()
    if is_sparse(matrix):
        return [matrix.data, matrix.indices, matrix.indptr]
    return [np.asarray(matrix)]
