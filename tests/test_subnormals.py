"""No product in the engine runs into subnormal numbers (issue 18, item 1).

Subnormal operands make many CPUs compute a product many times slower (1.8 s against
0.09 s for one product of digits' operator with itself on a Xeon). These tests watch the
data, not the clock: every matrix product the engine runs with a graph's operators, their
powers, their columns and the iterates is checked for subnormal operands, on scikit-learn's
digits with the example's rbf kernel, whose weights span hundreds of orders of magnitude
(the kernel itself holds 200,000 subnormals, and the unflushed powers millions).
"""

from typing import ClassVar

import numpy as np
import pytest
from sklearn.datasets import load_digits

from activeprop.estimators import LabelPropagation, LabelSpreading, PoissonLearning
from activeprop.experiments import SimulationConfig, simulate
from activeprop.graph import Graph, ThreadedMatrix, build_graph
from activeprop.numerics import NEGLIGIBLE, ExactProducts, count_subnormal, flush_negligible
from activeprop.propagation import GraphLabeling, dense_products, power_columns


class Watched(np.ndarray):
    """An array whose matrix products log (subnormal operands, rows of the left one)."""

    log: ClassVar[list] = []

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [x.view(np.ndarray) if isinstance(x, Watched) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(x.view(np.ndarray) if isinstance(x, Watched) else x
                                  for x in kwargs["out"])
        result = getattr(ufunc, method)(*plain, **kwargs)
        if ufunc is np.matmul:
            subnormal = sum(count_subnormal(x) for x in plain if isinstance(x, np.ndarray))
            Watched.log.append((subnormal, len(plain[0])))
            return result.view(Watched)  # the powers built from products stay watched
        return result


def assert_clean(log, n_items, share=0.1):
    """Every product of the whole operator (or its powers) had normal operands; the rows
    the exactness bound could not vouch for, recomputed from the exact operator whatever
    they hold, are few."""
    whole = [subnormal for subnormal, rows in log if rows == n_items]
    recomputed = sum(rows for _, rows in log if rows < n_items)
    assert whole and not any(whole), log
    assert recomputed <= share * n_items * len(whole), (recomputed, len(whole))


@pytest.fixture
def watched(monkeypatch):
    """Every dense operator a graph hands out is watched; sparse products are checked."""
    Watched.log = []
    operator = Graph.operator

    def watched_operator(self, variant):
        matrix = operator(self, variant)
        return matrix.view(Watched) if isinstance(matrix, np.ndarray) and matrix.ndim == 2 \
            else matrix

    multiply = ThreadedMatrix.multiply

    def checked_multiply(self, block, finish=None, out=None):
        product = multiply(self, block, finish, out)
        Watched.log.append((count_subnormal(self.matrix) + count_subnormal(block),
                            self.matrix.shape[0]))
        return product

    make_products = ExactProducts.__init__

    def watched_products(self, exact, error=0.0):
        make_products(self, exact, error)
        self.fast = self.fast.view(Watched)  # the copy the products multiply with

    monkeypatch.setattr(ExactProducts, "__init__", watched_products)
    monkeypatch.setattr(Graph, "operator", watched_operator)
    monkeypatch.setattr(ThreadedMatrix, "multiply", checked_multiply)
    return Watched.log


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


def _partial(y, n_labeled=40, seed=0):
    partial = np.full_like(y, -1)
    chosen = np.random.RandomState(seed).permutation(len(y))[:n_labeled]
    partial[chosen] = y[chosen]
    return partial


def test_the_operators_multiplied_hold_no_subnormal(digits):
    graph = build_graph(digits[0], "rbf", gamma=0.25)
    # the kernel and the iterations' operators are scikit-learn's, bit for bit,
    # subnormals included (the trap) ...
    assert count_subnormal(graph.affinity) > 100_000
    assert count_subnormal(graph.operator("spreading")) > 0
    # ... and what is multiplied holds none: the converged solvers' operators, and the
    # copy the iterations multiply with
    for variant in ("symmetric", "symmetric-spreading"):
        assert count_subnormal(graph.operator(variant)) == 0, variant
    for variant in ("spreading", "propagation"):
        assert count_subnormal(dense_products(graph, variant).fast) == 0, variant


def test_the_example_run_multiplies_no_subnormal(watched):
    """The seed example on the whole of digits: 40 rounds, powers bought and rented."""
    result = simulate(SimulationConfig(subset=0, initial=10, rounds=40))
    assert len(result.rounds) == 40
    assert_clean(watched, 1797)


def test_the_bought_powers_hold_no_subnormal(digits, watched):
    graph = build_graph(digits[0], "rbf", gamma=0.25)
    columns = power_columns(graph)
    columns.plan(10_000)  # powers pay at once
    labeling = GraphLabeling("spreading", alpha=0.2, max_iter=20, tol=1e-3, solver="iterate",
                             rtol=1e-6, warm_start=True)
    labeling.fit(graph, _partial(digits[1]))  # renting: the powers' cost not yet spent
    labeling.fit(graph, _partial(digits[1], n_labeled=60))  # buying, with 9,999 fits to come
    assert columns.powers is not None
    assert_clean(watched, 1797)


@pytest.mark.parametrize("make", [
    lambda: LabelSpreading(gamma=0.25, max_iter=30),
    lambda: LabelSpreading(gamma=0.25, solver="cg"),
    lambda: LabelPropagation(gamma=0.25, max_iter=200),
    lambda: PoissonLearning(kernel="rbf", gamma=0.25),
    lambda: LabelSpreading(kernel="knn", n_neighbors=10, solver="cg"),
], ids=["spreading", "spreading-cg", "propagation", "poisson-rbf", "spreading-knn"])
def test_every_solver_multiplies_no_subnormal(digits, watched, make):
    X, y = digits
    make().fit(X, _partial(y))
    assert_clean(watched, len(X))


def test_flushing_zeroes_only_what_is_negligible():
    dense = np.array([[1.0, 1e-149, 9e-151], [-5e-151, 0.0, -2e-150], [1e-300, 5e-324, 0.5]])
    flushed = flush_negligible(dense.copy())
    assert (flushed == np.where(np.abs(dense) < NEGLIGIBLE, 0.0, dense)).all()
    from scipy import sparse

    matrix = flush_negligible(sparse.csr_matrix(dense))
    assert matrix.nnz == 4 and count_subnormal(matrix) == 0


def test_a_users_kernel_is_not_changed(digits):
    """A callable kernel's matrix belongs to the user: its negligible entries are dropped in
    the operators, never in their array."""
    X = digits[0][:300]
    mine = np.exp(-0.25 * ((X[:, None] - X[None]) ** 2).sum(-1))
    before = mine.copy()
    graph = Graph(kernel="callable", gamma=None, n_neighbors=None, X=X, affinity=mine,
                  build_seconds=0.0)
    assert count_subnormal(graph.operator("symmetric")) == 0
    assert np.array_equal(mine, before)
