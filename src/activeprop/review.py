"""A check of human labels: the ones the graph disagrees with.

Each human label is predicted from the others (k-fold: refit without a fold of the human
labels, predict the fold). Bayes' rule then turns the held-out probability of the given
class into the chance that the label is a slip, assuming a person slips on
:data:`SLIP_RATE` of labels and a slip lands on any other class alike. A label whose chance
of a slip is at least the threshold (default one half) is listed, most likely slip first.

A label is judged only when its class has at least :data:`MIN_CLASS_LABELS` human labels:
with fewer, the others cannot know the class, and "the graph says otherwise" is no evidence
(before this rule, one correct label per class was every one flagged, "support 0%").

Measured with ``python bench/bench_review.py`` (digits, recommended settings, an annotator
who errs on 5% of labels, 20 seeds): see docs/benchmarks.md.
"""

from __future__ import annotations

import numpy as np

from .abandon import stop_if_abandoned
from .datasets import UNLABELED

SLIP_RATE = 0.05  # about one label in twenty given by mistake
MIN_CLASS_LABELS = 3


def held_out_proba(model, labels: np.ndarray, n_classes: int, n_folds: int = 10,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each labeled item's class probabilities from a fit without its fold.

    ``model`` is refit ``n_folds`` times (pass a spare one: its state is overwritten);
    graph models reuse their graph, and label spreading reads the folds' predictions off
    the columns its last fit on ``labels`` cached, without refitting. Returns the labeled
    items and an (n_labeled, n_classes) array over all class indices. Inside
    :func:`activeprop.abandon.abandoned_when` it gives up before a refit, and within one,
    once the answer is no longer wanted.
    """
    items = np.flatnonzero(labels != UNLABELED)
    proba = np.zeros((len(items), n_classes))
    folds = np.array_split(np.random.default_rng(seed).permutation(len(items)),
                           min(n_folds, len(items)))
    quick = model.held_out(labels, folds) if hasattr(model, "held_out") else None
    if quick is not None:
        classes, held = quick
        proba[:, classes] = held
        return items, proba
    for fold in folds:
        held = labels.copy()
        held[items[fold]] = UNLABELED
        if not np.any(held != UNLABELED):
            continue
        stop_if_abandoned()  # also before a refit that runs no solver of the engine's
        model.fit(held)
        proba[np.ix_(fold, model.classes_)] = model.proba_[items[fold]]
    return items, proba


def slip_chance(support: np.ndarray, n_classes: int, slip_rate: float = SLIP_RATE) -> np.ndarray:
    """The chance that a label is a slip, given the held-out probability ``support`` of the
    class it was given: P(slip | label) by Bayes' rule, with a prior ``slip_rate`` of slips
    spread evenly over the other ``n_classes - 1`` classes."""
    elsewhere = (1 - support) * slip_rate / max(n_classes - 1, 1)
    return elsewhere / (support * (1 - slip_rate) + elsewhere)


def suspicious_labels(model, labels: np.ndarray, n_classes: int, threshold: float = 0.5,
                      n_folds: int = 10, seed: int = 0,
                      slip_rate: float = SLIP_RATE) -> list[dict]:
    """Human labels that are likely slips, most likely first.

    A label is listed when its class has at least :data:`MIN_CLASS_LABELS` labels, another
    class is more probable held out, and its chance of being a slip (:func:`slip_chance`)
    is at least ``threshold``. Each entry: item, label, suggested class, support (the
    held-out probability of the given label) and slip (its chance of being a slip).
    """
    items, proba = held_out_proba(model, labels, n_classes, n_folds, seed)
    given = labels[items]
    support = proba[np.arange(len(items)), given]
    suggested = np.argmax(proba, axis=1)
    slip = slip_chance(support, n_classes, slip_rate)
    judged = np.bincount(given, minlength=n_classes)[given] >= MIN_CLASS_LABELS
    flagged = np.flatnonzero(judged & (suggested != given) & (slip >= threshold))
    flagged = flagged[np.lexsort((items[flagged], support[flagged], -slip[flagged]))]
    return [{"item": int(items[i]), "label": int(given[i]), "suggested": int(suggested[i]),
             "support": float(support[i]), "slip": float(slip[i])} for i in flagged]
