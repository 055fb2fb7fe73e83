"""Statistics of learning curves: confidence intervals, area under the curve,
labels needed to reach a target, and the paired test between strategies."""

from __future__ import annotations

import numpy as np


def mean_confidence_interval(values, confidence: float = 0.95,
                             bounds: tuple[float, float] = (-np.inf, np.inf)
                             ) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval of the mean.

    With a single value the interval is that value (no spread can be estimated). The
    interval is cut to ``bounds``, the range the values can take (an accuracy's is 0 to 1):
    the mean lies there too, so the cut interval covers it exactly as often, and with few
    repeats the t interval would otherwise reach past them (2 repeats: mean +- 12.7 se).
    """
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean, mean
    from scipy import stats  # a second to import; only comparisons need it

    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)
                 * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, max(mean - half, bounds[0]), min(mean + half, bounds[1])


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
    from scipy import stats

    return float(stats.wilcoxon(values, baseline).pvalue)


def pair_counts(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """The labels seen in either array (sorted) and the (true, predicted) count of each
    pair of them: scikit-learn's confusion matrix without ``labels``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    k = len(labels)
    codes = codes.reshape(-1)
    counts = np.bincount(codes[:len(y_true)] * k + codes[len(y_true):], minlength=k * k)
    return labels, counts.reshape(k, k)


def confusion_matrix(y_true, y_pred, labels) -> np.ndarray:
    """scikit-learn's ``confusion_matrix(y_true, y_pred, labels=labels)``: rows are true
    labels and columns predicted ones, in the order of ``labels``; pairs with a label
    outside ``labels`` are not counted."""
    seen, counts = pair_counts(y_true, y_pred)
    labels = np.asarray(labels)
    where = np.searchsorted(seen, labels).clip(max=max(len(seen) - 1, 0))
    present = (seen[where] == labels) if len(seen) else np.zeros(len(labels), bool)
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    rows = np.flatnonzero(present)
    matrix[np.ix_(rows, rows)] = counts[np.ix_(where[rows], where[rows])]
    return matrix


def cohen_kappa(a, b) -> float:
    """scikit-learn's ``cohen_kappa_score(a, b)`` (unweighted): agreement beyond chance.
    NaN when it is undefined (both sides one and the same label)."""
    confusion = pair_counts(a, b)[1].astype(np.float64)
    sum0, sum1 = confusion.sum(axis=0), confusion.sum(axis=1)
    expected = np.outer(sum0, sum1) / sum0.sum()
    disagree = 1.0 - np.eye(len(confusion))
    denominator = np.sum(disagree * expected)
    if denominator == 0:
        return float("nan")
    return float(1 - np.sum(disagree * confusion) / denominator)


def classification_report(y_true, y_pred, digits: int = 2,
                          class_names: list[str] | None = None) -> str:
    """scikit-learn's ``classification_report(y_true, y_pred)`` text, character for
    character (classes with no prediction or no support score 0.0), from one count of
    the label pairs. ``class_names[label]`` names each class (scikit-learn's
    ``target_names``); without it the labels are printed.

    scikit-learn validates its inputs five times over and takes ~35 ms for 1,800 items;
    a simulated round prints one report, so that cost would dwarf a round's fit. The
    tests compare this text with scikit-learn's on random inputs.
    """
    labels, counts = pair_counts(y_true, y_pred)
    tp, support, predicted = np.diag(counts), counts.sum(axis=1), counts.sum(axis=0)
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    names = [str(label) if class_names is None else class_names[label] for label in labels]
    shown = support.astype(float) if tp.sum() == 0 else support  # as scikit-learn prints it
    width = max(*(len(name) for name in names), len("weighted avg"), digits)
    row = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    text = ("{:>{width}s} " + " {:>9}" * 4).format(
        "", "precision", "recall", "f1-score", "support", width=width) + "\n\n"
    for values in zip(names, precision, recall, f1, shown):
        text += row.format(*values, width=width, digits=digits)
    total = shown.sum()
    text += "\n" + ("{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f} {:>9}\n").format(
        "accuracy", "", "", float(tp.sum() / total), total, width=width, digits=digits)
    for name, weights in (("macro avg", None), ("weighted avg", support)):
        averages = [np.average(v, weights=weights) for v in (precision, recall, f1)]
        text += row.format(name, *averages, total, width=width, digits=digits)
    return text


def format_confusion(matrix: np.ndarray, names: list[str]) -> str:
    """A confusion matrix with its classes named on both axes (rows: true class, columns:
    predicted class)."""
    width = max(max(len(name) for name in names), len(str(int(np.max(matrix, initial=0)))))
    corner = "true \\ predicted"
    first = max(width, len(corner))
    lines = [f"{corner:>{first}} " + " ".join(f"{name:>{width}}" for name in names)]
    for name, row in zip(names, matrix):
        lines.append(f"{name:>{first}} " + " ".join(f"{count:>{width}}" for count in row))
    return "\n".join(lines)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0.0 where the denominator is 0 (scikit-learn's default)."""
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)),
                     where=denominator > 0)
