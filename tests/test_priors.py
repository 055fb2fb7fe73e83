"""Class-size priors (activeprop.priors): offsets that bring the predicted class sizes to
the declared shares, and Poisson learning with them."""

import numpy as np
import pytest

from activeprop import PoissonLearning, load_pool
from activeprop.graph import build_knn_graph
from activeprop.priors import SLACK, class_offsets, parse_class_priors, shares_for
from activeprop.propagation import GraphLabeling


def predicted_shares(scores, offsets):
    return np.bincount(np.argmax(scores + offsets, axis=1), minlength=scores.shape[1]) / len(scores)


def test_offsets_bring_a_lopsided_prediction_within_the_slack():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5000, 4))
    scores[:, 0] += 0.8  # class 0 wins far more than its share
    shares = np.array([0.1, 0.2, 0.3, 0.4])
    assert abs(predicted_shares(scores, 0)[0] - 0.1) > 0.2
    offsets = class_offsets(scores, shares)
    got = predicted_shares(scores, offsets)
    assert np.all(np.abs(got - shares) <= SLACK * shares + 1e-12)


def test_offsets_are_zero_when_the_prediction_already_matches():
    scores = np.eye(3)[np.arange(300) % 3] + 0.01
    np.testing.assert_array_equal(class_offsets(scores, np.full(3, 1 / 3)), 0.0)


def test_unreached_rows_are_left_out():
    scores = np.zeros((200, 2))
    scores[:100] = [[1.0, 0.0], [0.0, 1.0]] * 50  # the other 100 rows are unreached
    np.testing.assert_array_equal(class_offsets(scores, np.array([0.5, 0.5])), 0.0)


def test_parse_class_priors():
    assert parse_class_priors(None, 3) is None
    assert parse_class_priors("uniform", 4) == {0: 0.25, 1: 0.25, 2: 0.25, 3: 0.25}
    assert parse_class_priors("1,3", 2) == {0: 0.25, 1: 0.75}
    for bad in ("1,2,3", "0,1", "-1,2", "a,b", "nan,1"):
        with pytest.raises(ValueError, match="class-priors"):
            parse_class_priors(bad, 2)


def test_shares_of_the_labeled_classes_are_renormalised():
    np.testing.assert_allclose(shares_for({0: 0.5, 1: 0.25, 2: 0.25}, np.array([1, 2])), [0.5, 0.5])
    np.testing.assert_allclose(shares_for("uniform", np.array([3, 7, 9])), [1 / 3] * 3)
    with pytest.raises(ValueError, match="no share for class"):
        shares_for({0: 1.0}, np.array([0, 1]))


def test_class_priors_are_for_poisson_learning_only():
    with pytest.raises(ValueError, match="Poisson learning"):
        GraphLabeling("spreading", alpha=0.9, max_iter=10, tol=1e-3, solver="cg", rtol=1e-4,
                      warm_start=False, class_priors="uniform")


def test_poisson_learning_with_uniform_priors_on_digits_at_two_labels_per_class():
    """Two random labels per class of the balanced digits: plain Poisson learning gives
    some classes far more items than their share; the declared prior brings every class
    within the slack of a tenth, and over five draws more items are right (measured over
    20 draws: 0.899 -> 0.922, better in 14)."""
    pool = load_pool("digits")
    graph = build_knn_graph(pool.X, 15, backend="flat")
    accuracy = []
    for draw in range(5):
        rng = np.random.default_rng(draw)
        y = np.full(len(pool), -1)
        for label in range(10):
            y[rng.choice(np.flatnonzero(pool.y == label), 2, replace=False)] = label
        unlabeled = y == -1
        plain = PoissonLearning(n_neighbors=15, rtol=1e-4).fit(pool.X, y, graph=graph)
        prior = PoissonLearning(n_neighbors=15, rtol=1e-4, class_priors="uniform").fit(
            pool.X, y, graph=graph)
        plain_shares = np.bincount(plain.transduction_, minlength=10) / len(pool)
        prior_shares = np.bincount(prior.transduction_, minlength=10) / len(pool)
        assert np.max(np.abs(plain_shares - 0.1)) > SLACK * 0.1
        assert np.max(np.abs(prior_shares - 0.1)) <= SLACK * 0.1 + 1e-12
        accuracy.append([np.mean(m.transduction_[unlabeled] == pool.y[unlabeled])
                         for m in (plain, prior)])
    plain_mean, prior_mean = np.mean(accuracy, axis=0)
    assert prior_mean > plain_mean + 0.005


def test_poisson_learning_checks_the_shares_against_the_classes():
    pool = load_pool("digits")
    y = np.full(len(pool), -1)
    y[:20] = pool.y[:20]
    with pytest.raises(ValueError, match="one positive share per class"):
        PoissonLearning(class_priors=[0.5, 0.5]).fit(pool.X, y)
