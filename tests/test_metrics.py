import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sklearn_metrics

from activeprop import metrics


def test_confidence_interval_by_hand():
    mean, low, high = metrics.mean_confidence_interval([1, 2, 3, 4])
    # sd = 1.29099, se = 0.645497, t(0.975, df=3) = 3.182446
    assert mean == 2.5
    assert low == pytest.approx(2.5 - 3.182446 * 0.645497, abs=1e-5)
    assert high == pytest.approx(2.5 + 3.182446 * 0.645497, abs=1e-5)
    assert metrics.mean_confidence_interval([0.7]) == (0.7, 0.7, 0.7)


def test_confidence_interval_is_cut_to_the_values_range():
    # Two repeats: t(0.975, df=1) = 12.706, se = 0.1, so the t interval is 0.8 +- 1.27.
    mean, low, high = metrics.mean_confidence_interval([0.7, 0.9], bounds=(0.0, 1.0))
    assert (mean, low, high) == (pytest.approx(0.8), 0.0, 1.0)
    mean, low, high = metrics.mean_confidence_interval([0.7, 0.9])
    assert low == pytest.approx(0.8 - 1.2706, abs=1e-4)
    assert high == pytest.approx(0.8 + 1.2706, abs=1e-4)
    # An interval inside the range is unchanged.
    assert metrics.mean_confidence_interval([1, 2, 3, 4], bounds=(0, 10)) == \
        metrics.mean_confidence_interval([1, 2, 3, 4])


def test_normalized_auc_by_hand():
    # trapezoids: (0.5 + 0.7) / 2 * 10 + (0.7 + 0.9) / 2 * 20 = 6 + 16, over a span of 30
    assert metrics.normalized_auc([10, 20, 40], [0.5, 0.7, 0.9]) == pytest.approx(22 / 30)
    assert metrics.normalized_auc([5], [0.4]) == 0.4
    assert metrics.normalized_auc([0, 10], [0.8, 0.8]) == pytest.approx(0.8)


def test_labels_to_target():
    assert metrics.labels_to_target([10, 20, 30], [0.9, 0.95, 0.97], 0.95) == 20
    assert metrics.labels_to_target([10, 20, 30], [0.9, 0.95, 0.97], 0.99) is None


def test_paired_wilcoxon_by_hand():
    # Five positive differences: the exact two-sided p is 2 / 2**5.
    assert metrics.paired_wilcoxon([2, 3, 4, 5, 6], [1, 1, 1, 1, 1]) == pytest.approx(0.0625)
    assert metrics.paired_wilcoxon([1, 2], [1, 2]) == 1.0
    assert metrics.paired_wilcoxon([1], [0]) is None
    signs = np.array([1, -1, 1, -1, 1, -1])
    assert metrics.paired_wilcoxon(signs * np.arange(1, 7), np.zeros(6)) > 0.5


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 11).flatmap(lambda k: st.tuples(
    st.lists(st.integers(0, k), min_size=1, max_size=120),
    st.lists(st.integers(0, k + 1), min_size=120, max_size=120))))
def test_classification_report_is_scikit_learns_character_for_character(pair):
    true, predicted = np.array(pair[0]), np.array(pair[1][:len(pair[0])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about classes it scores 0
        expected = sklearn_metrics.classification_report(true, predicted)
    assert metrics.classification_report(true, predicted) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=60), st.data())
def test_confusion_matrix_and_kappa_are_scikit_learns(true, data):
    predicted = data.draw(st.lists(st.integers(0, 6), min_size=len(true), max_size=len(true)))
    labels = data.draw(st.lists(st.integers(-1, 8), min_size=1, max_size=9, unique=True))
    true, predicted = np.array(true), np.array(predicted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns on one label, or undefined kappa
        if np.isin(labels, true).any():  # scikit-learn refuses labels none of y_true has
            np.testing.assert_array_equal(
                metrics.confusion_matrix(true, predicted, labels),
                sklearn_metrics.confusion_matrix(true, predicted, labels=labels))
        expected = sklearn_metrics.cohen_kappa_score(true, predicted)
    np.testing.assert_array_equal(metrics.cohen_kappa(true, predicted), expected)
