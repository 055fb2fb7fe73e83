import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    """numpy's own (AVX-512) log is not the C library's: there scipy's entr is taken."""
    from scipy import stats

    monkeypatch.setattr(strategies, "_NUMPY_HAS_OWN_LOG", numpy_has_own_log)
    proba = np.random.default_rng(5).random((500, 10)) ** 3
    proba[:3] = 0.0
    np.testing.assert_array_equal(strategies.entropy(proba, context(500)),
                                  stats.entropy(proba, axis=1))


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
