"""Statistics of learning curves: confidence intervals, area under the curve,
labels needed to reach a target, and the paired test between strategies."""

from __future__ import annotations

import numpy as np
from scipy import stats


def mean_confidence_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval of the mean.

    With a single value the interval is that value (no spread can be estimated).
    """
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)
                 * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def normalized_auc(n_labeled, accuracy) -> float:
    """Area under the learning curve (trapezoids) divided by the label range: the mean
    accuracy over the curve, in [0, 1]. A single point is its own accuracy."""
    n_labeled = np.asarray(n_labeled, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    if len(n_labeled) == 1:
        return float(accuracy[0])
    span = n_labeled[-1] - n_labeled[0]
    return float(np.sum((accuracy[1:] + accuracy[:-1]) / 2 * np.diff(n_labeled)) / span)


def labels_to_target(n_labeled, accuracy, target: float) -> int | None:
    """The first label count whose accuracy reaches ``target``; None if none does."""
    for n, value in zip(n_labeled, accuracy):
        if value >= target:
            return int(n)
    return None


def paired_wilcoxon(values, baseline) -> float | None:
    """Two-sided p-value of the Wilcoxon signed-rank test of paired samples.

    None when there are fewer than two pairs; 1.0 when every pair is equal (no evidence
    of a difference).
    """
    values, baseline = np.asarray(values, float), np.asarray(baseline, float)
    if len(values) < 2:
        return None
    if np.all(values == baseline):
        return 1.0
    return float(stats.wilcoxon(values, baseline).pvalue)
