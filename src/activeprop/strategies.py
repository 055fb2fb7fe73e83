"""Query strategies: pure functions from predicted probabilities to utilities.

A *utility* function maps the pool's predicted class probabilities (n_items, n_classes)
to one score per item, higher meaning "more worth a human label". Choosing the batch
from those scores is a separate step (:func:`select_top`), which never returns an item
that is already labeled and breaks ties deterministically (lower pool index first).

Utilities take ``proba`` and a ``context`` (:class:`QueryContext`) so that strategies
needing more than the probabilities (a random generator, the graph) share one signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats

from .plugins import import_object


@dataclass
class QueryContext:
    """What a strategy may look at besides the probabilities."""

    labeled: np.ndarray  # bool mask over the pool
    rng: np.random.Generator


Utility = Callable[[np.ndarray, QueryContext], np.ndarray]


def random(proba: np.ndarray, context: QueryContext) -> np.ndarray:
    """Uniform random scores: the passive baseline."""
    return context.rng.random(len(proba))


def least_confident(proba: np.ndarray, context: QueryContext) -> np.ndarray:
    """One minus the probability of the most likely class (LC)."""
    return 1.0 - proba.max(axis=1)


def margin(proba: np.ndarray, context: QueryContext) -> np.ndarray:
    """Minus the gap between the two most likely classes ("breaking ties", BT)."""
    if proba.shape[1] < 2:
        return np.zeros(len(proba))
    top_two = np.partition(proba, -2, axis=1)[:, -2:]
    return -(top_two[:, 1] - top_two[:, 0])


def entropy(proba: np.ndarray, context: QueryContext) -> np.ndarray:
    """Shannon entropy of each item's predicted distribution (the digits example's)."""
    return stats.entropy(proba, axis=1)


def first(proba: np.ndarray, context: QueryContext) -> np.ndarray:
    """Earlier pool items first: passive learning in the pool's (shuffled) order."""
    return -np.arange(len(proba), dtype=np.float64)


STRATEGIES: dict[str, Utility] = {
    "random": random,
    "first": first,
    "least-confident": least_confident,
    "margin": margin,
    "entropy": entropy,
}


def get_strategy(name: str) -> Utility:
    """Look up a strategy by name, or import a user's one given as ``module:function``."""
    if name in STRATEGIES:
        return STRATEGIES[name]
    if ":" in name:
        return import_object(name, "strategy")
    raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGIES)} "
                     "or module:function")


def select_top(utility: np.ndarray, labeled: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` unlabeled items with the highest utility, best first.

    Ties go to the lower pool index, so a run is reproducible whatever the sort
    algorithm. Fewer than ``n`` items are returned when fewer are unlabeled.
    """
    candidates = np.flatnonzero(~labeled)
    scores = utility[candidates]
    if len(candidates) > 4 * n:
        # Keep every candidate scoring at least the n-th best (ties included), then sort.
        cutoff = np.partition(scores, len(scores) - n)[len(scores) - n]
        keep = scores >= cutoff
        candidates, scores = candidates[keep], scores[keep]
    order = np.lexsort((candidates, -scores))
    return candidates[order[:n]]

