import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activeprop import entr as entr_module
from activeprop import strategies
from activeprop.strategies import QueryContext, get_strategy, select_top

PROBA = np.array([[0.9, 0.05, 0.05],   # confident
                  [0.4, 0.4, 0.2],     # tie between two classes
                  [1 / 3, 1 / 3, 1 / 3],  # uniform
                  [0.6, 0.3, 0.1]])


def context(n=4, labeled=()):
    mask = np.zeros(n, dtype=bool)
    mask[list(labeled)] = True
    return QueryContext(labeled=mask, rng=np.random.default_rng(0))


def test_least_confident_values():
    np.testing.assert_allclose(strategies.least_confident(PROBA, context()),
                               [0.1, 0.6, 2 / 3, 0.4])


def test_margin_values():
    np.testing.assert_allclose(strategies.margin(PROBA, context()), [-0.85, 0.0, 0.0, -0.3])


def partition_margin(P: np.ndarray) -> np.ndarray:
    """Margin as numpy's partition gives it (margin's way without numba)."""
    top_two = np.partition(P, -2, axis=1)[:, -2:]
    return -(top_two[:, 1] - top_two[:, 0])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(2, 17), st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_the_compiled_top_two_gaps_are_partitions_to_the_bit(n, k, seed, levels):
    """Rows with repeated largest values (few distinct levels) and ties below them."""
    from activeprop.top_two import top_two_gaps

    rng = np.random.default_rng(seed)
    P = rng.integers(0, levels, size=(n, k)) / levels + rng.random((n, k)) * (seed % 2)
    assert np.array_equal(top_two_gaps(P), partition_margin(P))


def test_margin_gives_the_same_bits_with_and_without_numba(monkeypatch):
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(10), size=5000)
    proba[::4, 2] = proba[::4].max(axis=1)  # two equal largest
    import numba  # noqa: F401 (loaded: the compiled pass)

    compiled = strategies.margin(proba, context(len(proba)))
    monkeypatch.delitem(sys.modules, "numba")  # as in a process without it: numpy's
    assert np.array_equal(strategies.margin(proba, context(len(proba))), compiled)
    assert np.array_equal(compiled, partition_margin(proba))


def test_entropy_values():
    expected = [-(0.9 * np.log(0.9) + 2 * 0.05 * np.log(0.05)),
                -(2 * 0.4 * np.log(0.4) + 0.2 * np.log(0.2)), np.log(3),
                -(0.6 * np.log(0.6) + 0.3 * np.log(0.3) + 0.1 * np.log(0.1))]
    np.testing.assert_allclose(strategies.entropy(PROBA, context()), expected)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.booleans())
def test_entropy_is_scipys_to_the_bit(seed, n_classes, transposed_layout):
    from scipy import stats

    rng = np.random.default_rng(seed)
    proba = rng.random((200, n_classes)) ** rng.integers(1, 20)  # some rows near one-hot
    proba[rng.random(200) < 0.1] = 0.0  # all-zero rows
    proba[:, rng.integers(n_classes)] *= rng.random(200) < 0.5  # some exact zeros
    if transposed_layout:  # label_distributions_ as the example passes it
        proba = np.asfortranarray(proba)
    np.testing.assert_array_equal(strategies.entropy(proba, context()),
                                  stats.entropy(proba, axis=1))


@pytest.mark.parametrize("numpy_has_own_log", [False, True])
def test_entropy_matches_scipy_on_either_log(monkeypatch, numpy_has_own_log):
    """numpy's own (AVX-512) log is not the C library's: there the C library's is taken."""
    from scipy import stats

    monkeypatch.setattr(entr_module, "NUMPY_HAS_OWN_LOG", numpy_has_own_log)
    proba = np.random.default_rng(5).random((500, 10)) ** 3
    proba[:3] = 0.0
    np.testing.assert_array_equal(strategies.entropy(proba, context(500)),
                                  stats.entropy(proba, axis=1))


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_entr_by_math_log_is_scipys_to_the_bit(seed):
    """Python's math.log is the C library's log, as scipy's entr's is (numpy's own AVX-512
    log differs in the last bit for about 0.3% of inputs); zeros, negatives, nan alike."""
    from scipy import special

    rng = np.random.default_rng(seed)
    x = rng.random((300, 7)) ** rng.integers(1, 40)
    x[rng.random(x.shape) < 0.05] = 0.0
    x[rng.random(x.shape) < 0.02] = -rng.random()
    x[rng.random(x.shape) < 0.02] = np.nan
    np.testing.assert_array_equal(entr_module.entr_by_math_log(x), special.entr(x))
    np.testing.assert_array_equal(entr_module.entr_by_math_log(np.asfortranarray(x)),
                                  special.entr(x))


@pytest.fixture
def logged_by_math_log(monkeypatch) -> list:
    """A process without scipy.special whose element-by-element logs return zeros, each
    taking 0.03 s by the clock entr reads; the list records each of them."""
    import sys

    taken = []
    monkeypatch.setattr(entr_module, "entr_by_math_log",
                        lambda x: taken.append("math.log") or np.zeros_like(x))
    ticks = iter(range(100))
    monkeypatch.setattr(entr_module.time, "perf_counter", lambda: float(next(ticks)) * 0.03)
    monkeypatch.delitem(sys.modules, "scipy.special", raising=False)
    return taken


def test_c_library_logs_take_scipy_once_they_cost_its_import(monkeypatch,
                                                             logged_by_math_log):
    """A ski rental: entries logged one by one until that has cost the import, then scipy;
    scipy at once when the process already has it."""
    import sys

    taken = logged_by_math_log
    logs = entr_module.CLibraryLogs(import_seconds=0.08)
    x = np.full((2, 2), 0.5)
    for _ in range(3):  # 0.03 s each: 0.03, 0.06, 0.09 spent
        assert not logs.entr(x).any()
    assert taken == ["math.log"] * 3 and logs.spent == pytest.approx(0.09)
    np.testing.assert_array_equal(logs.entr(x), np.full((2, 2), 0.5 * np.log(2)))
    assert taken == ["math.log"] * 3  # the fourth: scipy's

    from scipy import special

    monkeypatch.setitem(sys.modules, "scipy.special", special)
    fresh = entr_module.CLibraryLogs(import_seconds=0.08)  # scipy.special already imported
    np.testing.assert_array_equal(fresh.entr(x), np.full((2, 2), 0.5 * np.log(2)))
    assert fresh.spent == 0.0 and len(taken) == 3


@pytest.mark.parametrize("has_sparse, logged", [(False, 4), (True, 2)])
def test_c_library_logs_rent_up_to_this_machines_measured_import_cost(
        monkeypatch, logged_by_math_log, has_sparse, logged):
    """Without a given bound the rental reads what importing scipy.special costs on this
    machine (activeprop.calibration), as the process stands: slow into a process without
    scipy, so the logs go element by element longer; fast once scipy.sparse is loaded."""
    import sys

    from activeprop import calibration

    costs = calibration.MachineCosts(scipy_special_import=0.5,
                                     scipy_special_import_after_sparse=0.05)
    monkeypatch.setattr(calibration, "machine_costs", lambda: costs)
    if has_sparse:
        monkeypatch.setitem(sys.modules, "scipy.sparse", object())
    else:
        monkeypatch.delitem(sys.modules, "scipy.sparse", raising=False)
    logs = entr_module.CLibraryLogs()
    for _ in range(4):
        logs.entr(np.full((2, 2), 0.5))
    assert logged_by_math_log == ["math.log"] * logged


def test_scipy_special_import_is_measured_in_a_fresh_interpreter():
    """The measurement runs (scipy is already imported here: a fresh process pays it)."""
    from activeprop import calibration

    for name in ("scipy_special_import", "scipy_special_import_after_sparse"):
        assert 0.0 < calibration.MEASUREMENTS[name](repeats=1) < 60.0


def test_random_is_seeded():
    first = strategies.random(PROBA, context())
    assert np.array_equal(first, strategies.random(PROBA, context()))


def test_select_top_skips_labeled_and_breaks_ties_by_index():
    utility = np.array([0.5, 0.9, 0.9, 0.1, 0.9])
    labeled = np.array([False, True, False, False, False])
    assert select_top(utility, labeled, 3).tolist() == [2, 4, 0]
    assert select_top(utility, np.ones(5, dtype=bool), 3).tolist() == []
    assert select_top(utility, labeled, 10).tolist() == [2, 4, 0, 3]


def test_user_strategy_by_module_path():
    assert get_strategy("activeprop.strategies:margin") is strategies.margin


@pytest.mark.parametrize("name", ["nope", "no_such_module:f", "activeprop.strategies:nope"])
def test_unknown_strategy_is_a_clear_error(name):
    with pytest.raises(ValueError, match="strategy"):
        get_strategy(name)


def _pool_context(X, model=None, labeled=()):
    mask = np.zeros(len(X), dtype=bool)
    mask[list(labeled)] = True
    return QueryContext(labeled=mask, rng=np.random.default_rng(0), X=X, model=model)


def _density_by_hand(X, k=10):
    squared = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(squared, np.inf)
    nearest = np.sort(squared, axis=1)[:, :k]
    return np.exp(-nearest / np.median(nearest)).mean(axis=1)


@pytest.mark.parametrize("symmetric", [False, True])
def test_density_read_off_the_knn_graph_equals_a_new_search(symmetric):
    from activeprop.models import make_model

    X = np.random.default_rng(3).normal(size=(300, 5))
    model = make_model("poisson", X, kernel="knn", n_neighbors=15, solver="cg",
                       graph_options={"backend": "flat", "symmetric": symmetric})
    model.build_graph()
    from_graph = strategies.density(_pool_context(X, model))
    searched = strategies.density(_pool_context(X))
    np.testing.assert_allclose(from_graph, _density_by_hand(X), rtol=1e-6)
    np.testing.assert_allclose(searched, _density_by_hand(X), rtol=1e-5)


def test_density_searches_when_the_graph_holds_too_few_neighbours():
    from activeprop.models import make_model

    X = np.random.default_rng(4).normal(size=(200, 3))
    model = make_model("poisson", X, kernel="knn", n_neighbors=5, solver="cg",
                       graph_options={"backend": "flat"})
    model.build_graph()
    np.testing.assert_allclose(strategies.density(_pool_context(X, model)),
                               _density_by_hand(X), rtol=1e-5)


def test_information_density_is_entropy_times_density():
    X = np.random.default_rng(5).normal(size=(40, 2))
    proba = np.random.default_rng(6).dirichlet(np.ones(3), size=40)
    expected = strategies.entropy(proba, context(40)) * _density_by_hand(X)
    np.testing.assert_allclose(strategies.information_density(proba, _pool_context(X)),
                               expected, rtol=1e-5)


def test_typical_margin_weights_by_density_only_below_one_and_a_half_labels_per_class():
    X = np.random.default_rng(7).normal(size=(40, 2))
    proba = np.random.default_rng(8).dirichlet(np.ones(4), size=40)
    closeness = 1 + strategies.margin(proba, context(40))
    # 4 classes: 5 labels (1.25 per class) are still the warm-up, 6 (1.5 per class) are not
    warm = strategies.typical_margin(proba, _pool_context(X, labeled=range(5)))
    np.testing.assert_allclose(warm, closeness * _density_by_hand(X) ** 2, rtol=1e-5)
    after = strategies.typical_margin(proba, _pool_context(X, labeled=range(6)))
    np.testing.assert_array_equal(after, closeness)
    assert get_strategy("typical-margin") is strategies.typical_margin


def test_pool_scores_rescore_only_moved_rows_and_equal_scoring_every_row(monkeypatch):
    from sklearn.datasets import load_digits

    from activeprop.learner import ActiveLearner
    from activeprop.models import make_model

    digits = load_digits()
    X, y = digits.data / 16, digits.target
    # a sparse graph solved by cg: after the first rounds a batch is pushed locally, so
    # most items' probabilities stay as they were, bit for bit
    model = make_model("spreading", X, kernel="knn", n_neighbors=10, solver="cg",
                       alpha=0.2, rtol=1e-4, max_iter=500)
    labels = np.full(len(y), -1)
    labels[:40] = y[:40]
    learner = ActiveLearner(model, "entropy", labels=labels)
    scored_rows = []
    original = strategies.score_pool
    monkeypatch.setattr(strategies, "score_pool",
                        lambda utility, proba, context: scored_rows.append(len(proba))
                        or original(utility, proba, context))
    for _ in range(10):
        picked = learner.query(5)
        every_row = original(learner.utility, learner.proba, context(len(y)))
        np.testing.assert_array_equal(learner.scores._scores, every_row)
        assert picked.tolist() == select_top(every_row, learner.labeled, 5).tolist()
        learner.teach(picked, y[picked])
    assert scored_rows[0] == len(y) and min(scored_rows) < len(y) / 2


def test_pool_scores_score_every_row_for_a_strategy_that_reads_others():
    calls = []

    def reads_the_pool(proba, context):
        calls.append(len(proba))
        return proba[:, 0] - proba[:, 0].mean()

    scores = strategies.PoolScores(reads_the_pool)
    moved = PROBA.copy()
    moved[0] = [0.1, 0.8, 0.1]
    for proba in (PROBA, moved):
        np.testing.assert_array_equal(scores(proba, context()), reads_the_pool(proba, None))
    assert calls[::2] == [4, 4]
