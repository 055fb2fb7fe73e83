"""The check of human labels finds flipped labels."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activeprop.experiments import SimulationConfig, prepare_pool, run_rounds
from activeprop.labeling import LabelingSession, init_project
from activeprop.review import suspicious_labels


def test_flipped_labels_of_a_simulated_run_are_found():
    """Flip 5% of the labels an active-learning run collected; report the fraction found."""
    config = SimulationConfig(subset=0, initial=10, batch=10, rounds=20, kernel="knn",
                              n_neighbors=10, alpha=0.9, solver="cg", rtol=1e-4,
                              max_iter=500, strategy="margin")
    pool = prepare_pool(config)
    picked = np.concatenate([np.arange(10)] + [o.queried for o in
                                               run_rounds(pool, config, config.model_for(pool),
                                                          "margin", seed=0)])
    labels = np.full(len(pool), -1)
    labels[picked] = pool.y[picked]
    rng = np.random.default_rng(0)
    flipped = rng.choice(picked, len(picked) // 20, replace=False)
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, len(flipped))) % 10
    flagged = suspicious_labels(config.model_for(pool), labels, 10)
    found = {f["item"] for f in flagged} & set(flipped.tolist())
    # Actively chosen items are the ambiguous ones, so some true labels are flagged too;
    # the list is sorted, so the flips should come first.
    top = {f["item"] for f in flagged[: 2 * len(flipped)]} & set(flipped.tolist())
    recall = len(found) / len(flipped)
    print(f"flipped {len(flipped)} of {len(picked)} labels: {recall:.0%} flagged among "
          f"{len(flagged)}; {len(top)} of them in the first {2 * len(flipped)}")
    assert recall >= 0.8 and len(top) >= 0.6 * len(flipped)


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
    assert mean_confidence(labels, proba) == pytest.approx(0.8)  # mean of 0.9 and 0.7
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
