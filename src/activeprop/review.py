"""A check of human labels: the ones the graph disagrees with.

Each human label is predicted from the others (k-fold: refit without a fold of the human
labels, predict the fold). A label whose held-out prediction gives it little probability
and prefers another class is listed for review: a slip of the key, or an item that
really is ambiguous.
"""

from __future__ import annotations

import numpy as np

from .datasets import UNLABELED


def held_out_proba(model, labels: np.ndarray, n_classes: int, n_folds: int = 10,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each labeled item's class probabilities from a fit without its fold.

    ``model`` is refit ``n_folds`` times (pass a spare one: its state is overwritten);
    graph models reuse their graph, and label spreading reads the folds' predictions off
    the columns its last fit on ``labels`` cached, without refitting. Returns the labeled
    items and an (n_labeled, n_classes) array over all class indices.
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
        model.fit(held)
        proba[np.ix_(fold, model.classes_)] = model.proba_[items[fold]]
    return items, proba


def suspicious_labels(model, labels: np.ndarray, n_classes: int, threshold: float = 0.5,
                      n_folds: int = 10, seed: int = 0) -> list[dict]:
    """Human labels the rest of the labels disagree with, least supported first.

    A label is listed when its held-out probability is below ``threshold`` and another
    class is more probable. Each entry: item, label, suggested class, support (the
    held-out probability of the human label).
    """
    items, proba = held_out_proba(model, labels, n_classes, n_folds, seed)
    support = proba[np.arange(len(items)), labels[items]]
    suggested = np.argmax(proba, axis=1)
    flagged = (support < threshold) & (suggested != labels[items])
    order = np.argsort(support[flagged], kind="stable")
    return [{"item": int(items[flagged][i]), "label": int(labels[items][flagged][i]),
             "suggested": int(suggested[flagged][i]), "support": float(support[flagged][i])}
            for i in order]
