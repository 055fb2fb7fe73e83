"""When to stop labeling: estimates that need no ground truth.

Two signals, per round:

* **stability** (Bloodgood & Vijay-Shanker, 2009, "stabilizing predictions"): Cohen's kappa
  between the pool's predicted labels before and after the last batch, and the fraction of
  items whose label changed. When a batch of labels no longer moves the predictions, more
  labels of the same kind will not either;
* **estimated accuracy**: the mean confidence of the predictions on the unlabeled items.
  Beside it, the same confidences calibrated on the human labels (each human label is
  predicted from the others, held out on the graph, and an isotonic map from confidence to
  "was right" is fit on those pairs). Measured on digits (docs/benchmarks.md): with Poisson
  learning (the recommended model) the plain mean confidence is within ~0.01-0.03 of the
  truth, while the calibration runs low when the labels were chosen actively (those are
  the hardest items; held out, they understate the pool); label spreading's normalised
  scores are under-confident, and there the calibration is the closer of the two.
  While some class has no human label both are optimistic (the model cannot predict that
  class at all), and the estimate says how many classes are missing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .datasets import UNLABELED
from .errors import UserError
from .metrics import cohen_kappa
from .review import held_out_proba

CALIBRATION_FOLDS = 5
MIN_CALIBRATION_LABELS = 20


@dataclass
class StoppingEstimate:
    """What a round says about stopping, without ground truth."""

    estimated_accuracy: float  # mean top probability on the unlabeled items
    calibrated_accuracy: float | None  # the same, calibrated on held-out human labels
    changed: float | None  # fraction of pool predictions the last batch changed
    stability: float | None  # Cohen's kappa with the previous round's predictions
    classes_without_labels: int = 0  # while > 0 the estimates are optimistic

    def to_json(self) -> dict:
        """As a JSON object."""
        return asdict(self)


def estimate(spare_model, labels: np.ndarray, proba: np.ndarray, predicted: np.ndarray,
             n_classes: int, previous: np.ndarray | None) -> StoppingEstimate:
    """The stopping signals of one round.

    ``spare_model`` is refit on folds of the human labels (pass one that shares the graph
    but not the state of the model in use); ``proba`` and ``predicted`` are the current
    model's, ``previous`` the last round's predictions (None in the first round).
    """
    calibrated = None
    if (labels != UNLABELED).sum() >= MIN_CALIBRATION_LABELS:
        held = held_out_proba(spare_model, labels, n_classes, CALIBRATION_FOLDS)
        calibrated = calibrated_accuracy(held, labels, proba)
    confidence = mean_confidence(labels, proba.max(axis=1))
    missing = n_classes - labeled_classes(labels)
    if previous is None:
        return StoppingEstimate(confidence, calibrated, None, None, missing)
    changed = float(np.mean(previous != predicted))
    stability = 1.0 if changed == 0 else cohen_kappa(previous, predicted)
    return StoppingEstimate(confidence, calibrated, changed, stability, missing)


def labeled_classes(labels: np.ndarray) -> int:
    """How many classes have at least one human label. Until that is every class, the
    model cannot predict the others and its confidences overstate its accuracy."""
    return len(np.unique(labels[labels != UNLABELED]))


def mean_confidence(labels: np.ndarray, confidence: np.ndarray) -> float:
    """The mean top probability (``confidence``: each item's) of the items without a human
    label (1.0 if there are none): the model's own estimate of its accuracy on them."""
    unlabeled = labels == UNLABELED
    return float(confidence[unlabeled].mean()) if unlabeled.any() else 1.0


def calibrated_accuracy(held: tuple[np.ndarray, np.ndarray], labels: np.ndarray,
                        proba: np.ndarray) -> float:
    """Estimated accuracy on the unlabeled items: their mean confidence, mapped through an
    isotonic fit of "the held-out prediction was right" on its confidence.

    ``held`` is :func:`activeprop.review.held_out_proba`'s (items, probabilities) of the
    human labels; ``proba`` the current model's probabilities of every item.
    """
    items, held_proba = held
    unlabeled = labels == UNLABELED
    if not unlabeled.any():
        return 1.0
    right = (np.argmax(held_proba, axis=1) == labels[items]).astype(float)
    mapping = isotonic_map(held_proba.max(axis=1), right)
    return float(mapping(proba.max(axis=1)[unlabeled]).mean())


def isotonic_map(x: np.ndarray, y: np.ndarray):
    """The non-decreasing fit of ``y`` on ``x`` (pool-adjacent-violators, equal x merged),
    as a function interpolating linearly between the fitted points and clipping outside
    them: scikit-learn's ``IsotonicRegression(out_of_bounds="clip")`` (a test compares),
    without importing scikit-learn."""
    order = np.lexsort((y, x))
    unique_x, start, counts = np.unique(x[order], return_index=True, return_counts=True)
    means = np.add.reduceat(y[order], start) / counts
    values, weights, sizes = [], [], []  # blocks of the fit, merged while they decrease
    for value, weight in zip(means.tolist(), counts.tolist()):
        values.append(value), weights.append(weight), sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            value, weight, size = values.pop(), weights.pop(), sizes.pop()
            total = weights[-1] + weight
            values[-1] = (values[-1] * weights[-1] + value * weight) / total
            weights[-1], sizes[-1] = total, sizes[-1] + size
    fitted = np.repeat(values, sizes)
    return lambda t: np.interp(t, unique_x, fitted)


class StopRule:
    """Stop once the predictions have been stable (kappa >= ``threshold``) for ``window``
    rounds in a row."""

    def __init__(self, threshold: float, window: int = 3):
        if not 0 < threshold <= 1:
            raise UserError(f"stop-when must be a kappa in (0, 1], got {threshold}")
        self.threshold, self.window, self.streak = threshold, window, 0

    def update(self, estimate_: StoppingEstimate) -> bool:
        """Record a round; True when labeling no longer pays."""
        stable = estimate_.stability is not None and estimate_.stability >= self.threshold
        self.streak = self.streak + 1 if stable else 0
        return self.streak >= self.window
