"""The check of human labels finds flipped labels."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activeprop.experiments import RECOMMENDED, SimulationConfig, prepare_pool, run_rounds
from activeprop.labeling import LabelingSession
from activeprop.project import init_project
from activeprop.review import suspicious_labels


def test_flipped_labels_of_a_simulated_run_are_found():
    """Flip 5% of the labels an active run with the labeler's settings collected: most of
    what the review lists first are the flips, and most flips are listed."""
    config = SimulationConfig(subset=0, initial=10, batch=10, rounds=19, seed=0,
                              estimate=False, **RECOMMENDED)
    config, pool = config.working(prepare_pool(config))
    labeled = np.concatenate([o.queried for o in run_rounds(pool, config,
                                                            config.model_for(pool),
                                                            config.strategy, seed=0)])
    labels = np.full(len(pool), -1)
    labels[labeled] = pool.y[labeled]
    rng = np.random.default_rng(0)
    flipped = rng.choice(labeled, len(labeled) // 20, replace=False)
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, len(flipped))) % 10
    flagged = [f["item"] for f in suspicious_labels(config.model_for(pool), labels, 10)]
    first = flagged[:10]
    precision = np.isin(first, flipped).mean()
    recall = np.isin(flipped, flagged).mean()
    print(f"flipped {len(flipped)} of {len(labeled)}: {len(flagged)} listed, precision "
          f"among the first 10 {precision:.2f}, recall {recall:.2f}")
    assert precision >= 0.5 and recall >= 0.7


def test_correct_labels_of_classes_with_few_labels_are_not_flagged(tmp_path):
    """One or two labels per class: the others cannot know the class, so nothing is
    flagged (every one of them was, "support 0%")."""
    init_project(tmp_path / "p", "digits")
    session = LabelingSession(tmp_path / "p")
    truth = session.pool.y
    for c in range(10):
        for item in np.flatnonzero(truth == c)[:2]:
            session.add_label(int(item), c)
    assert session.review() == []


def test_slip_chance_is_bayes_rule():
    from activeprop.review import slip_chance

    # 10 classes, 5% slips: a label the others give 0.5% is a slip with chance
    # 0.995 * 0.05 / 9 / (0.005 * 0.95 + 0.995 * 0.05 / 9) = 0.538.
    assert slip_chance(np.array([0.005]), 10)[0] == pytest.approx(0.5378, abs=1e-4)
    assert slip_chance(np.array([1.0]), 10)[0] == 0
    assert slip_chance(np.array([0.0]), 10)[0] == 1


def test_review_in_a_project(tmp_path):
    init_project(tmp_path / "p", "digits")
    session = LabelingSession(tmp_path / "p")
    truth = session.pool.y
    for item in range(60):
        session.add_label(item, int(truth[item]))
    session.add_label(60, int((truth[60] + 1) % 10), "slip")
    flagged = session.review()
    assert flagged and flagged[0]["item_id"] == 60 and flagged[0]["annotator"] == "slip"
    assert flagged[0]["suggested"] == str(truth[60])


def test_estimates_without_ground_truth():
    from activeprop.stopping import calibrated_accuracy, mean_confidence

    labels = np.array([0, 1, -1, -1])
    proba = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.3, 0.7]])
    assert mean_confidence(labels, proba.max(axis=1)) == pytest.approx(0.8)  # 0.9 and 0.7
    assert mean_confidence(np.array([0, 1, 0, 1]), proba) == 1.0  # nothing left unlabeled
    # Held out, the confident label was right and the unsure one wrong: the isotonic map
    # sends 0.8 and above to 1, 0.6 and below to 0, 0.7 halfway: (1 + 0.5) / 2.
    held = (np.array([0, 1]), np.array([[0.8, 0.2], [0.6, 0.4]]))
    assert calibrated_accuracy(held, labels, proba) == pytest.approx(0.75)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 80), st.booleans())
def test_isotonic_map_is_scikit_learns(seed, n, binary):
    from sklearn.isotonic import IsotonicRegression

    from activeprop.stopping import isotonic_map

    rng = np.random.default_rng(seed)
    x = np.round(rng.random(n), 2)  # rounded: ties to merge
    y = (rng.random(n) < x).astype(float) if binary else rng.random(n)
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(x, y)
    queries = np.concatenate([rng.random(50) * 1.4 - 0.2, x])
    np.testing.assert_allclose(isotonic_map(x, y)(queries), reference.predict(queries),
                               rtol=0, atol=1e-12)
