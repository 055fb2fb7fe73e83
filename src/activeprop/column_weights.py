"""A table's columns weighed by what the labels say about them.

A graph links items by distance, and in a distance every column of a table counts alike
(once they share a scale: :mod:`activeprop.scaling`). A column that says nothing about the
classes then decides as much as one that says everything: the Palmer penguins' file also
gives each bird's sex and the year it was measured, and with them the recommended settings
labeled 0.68 of the birds right at 40 labels, against 0.996 on the four measurements alone
(docs/benchmarks.md). The labels say which columns matter: among the labeled rows, the
share of a column's variance that lies between their classes (eta squared, the
correlation ratio). Each column is weighed by it, relative to the columns' mean, the
graph is built again on the weighted columns, and more labels weigh more: with few, the
weights stay near equal (:data:`PRIOR_LABELS`).

Measured on ten real tables with the recommended settings (``python bench/bench_tables.py``;
paired over seeds 0-19, then held-out seeds 20-39): the nuisance columns no longer decide
(the penguins with sex and year: 0.69 -> 0.88-0.92 at 20 labels, 0.68 -> 0.998 at 40);
iris, wine, crabs and cats gain 0.01-0.05 at 10-40 labels; the significant losses are
biopsy's at 10-20 labels (0.002-0.004) and the penguins' at 10 (0.008-0.011), and glass
(fgl) is mixed (+0.03, then -0.06 at 20 labels; neither significant).

The weights are a function of the labels alone, so every process fitting the same labels
builds the same graph.
"""

from __future__ import annotations

import numpy as np

# The equal weights count as this many labels: with n labels a column's weight is
# (n * eta^2 / mean eta^2 + PRIOR_LABELS) / (n + PRIOR_LABELS). Not tuned: the one value
# tried (docs/benchmarks.md).
PRIOR_LABELS = 5.0
# Weighing builds the graph again, and solves from nothing, whenever the labels change: a
# labeler's refit on a table of 10 columns took a median of 44 / 146 / 816 ms at 2,000 /
# 5,000 / 20,000 rows, against 16 / 21 / 56 ms unweighted (/tmp script,
# docs/benchmarks.md). So ``auto`` weighs tables up to this many rows.
MOST_ROWS = 5_000
CHOICES = ("auto", "labels", "none")


def eta_squared(X: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Each column's share of its variance among the labeled rows of ``X`` (``y`` not -1)
    that lies between their classes; None while the labels name fewer than two classes.
    A column constant on the labeled rows has 0."""
    labeled = y != -1
    rows, classes = X[labeled], y[labeled]
    names = np.unique(classes)
    if len(names) < 2:
        return None
    centre = rows.mean(axis=0)
    total = ((rows - centre) ** 2).sum(axis=0)
    between = sum(np.count_nonzero(classes == name) *
                  (rows[classes == name].mean(axis=0) - centre) ** 2 for name in names)
    return np.divide(between, total, out=np.zeros_like(total), where=total > 0)


def label_weights(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The columns' weights for the labels ``y`` (-1: none): eta squared relative to its
    mean over the columns, shrunk towards 1 by :data:`PRIOR_LABELS`; all 1 while the labels
    name fewer than two classes, or when no column tells them apart."""
    eta = eta_squared(X, y)
    if eta is None or eta.mean() <= 0:
        return np.ones(X.shape[1])
    n = np.count_nonzero(y != -1)
    return (n * eta / eta.mean() + PRIOR_LABELS) / (n + PRIOR_LABELS)


def weighted(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``X``'s columns scaled so that each adds ``weights`` times its squared difference to
    a squared distance."""
    return X * np.sqrt(weights)


def recommended(is_table: bool, n_rows: int, n_columns: int, on_cluster: bool) -> str:
    """What ``auto`` means for a pool: ``labels`` for a table's own columns (at most
    :data:`MOST_ROWS` rows, not reduced to principal components, not on a cluster: its
    graph stays on the workers), ``none`` otherwise (pictures and texts have features made
    to be compared as they are)."""
    from .features import COMPONENTS_ABOVE

    fits = is_table and n_rows <= MOST_ROWS and n_columns <= COMPONENTS_ABOVE
    return "labels" if fits and not on_cluster else "none"
