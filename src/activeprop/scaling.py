"""A table's columns put on one scale when they are in different units.

A graph links items by the distances between their features. In a table whose columns
are measured in different units (a penguin's body mass in grams beside its bill in
millimetres) the widest column decides every distance and the others count for nothing:
the recommended settings labeled 58-64% of the Palmer penguins right from 5 to 40 labels
on the raw columns, 91-100% on standardised ones. Where the columns share a unit,
standardising gives each the same weight whatever it says, and can cost: iris, in
centimetres, went from 0.93-0.99 to 0.70-0.95 (``docs/benchmarks.md``, nine real tables
over 20 seeds, confirmed on 20 others).

So by default (``auto``) a table's columns are standardised when their spreads differ by
more than :data:`SPREAD_RATIO` times, the mark of different units. Pictures, texts and
embeddings are never tables here (their features share one scale by construction).
"""

from __future__ import annotations

import numpy as np

from .errors import UserError
from .missing_cells import filled_in

SCALES = ("auto", "standard", "none")
# Chosen on nine real tables (docs/benchmarks.md): standardising won by 0.06-0.38 on the
# three whose largest and smallest column spreads differ 400-215,000 times (penguins, wine,
# breast cancer) and was level or behind on Pima diabetes (90 times) and iris (4 times);
# 200 lies between them.
SPREAD_RATIO = 200.0


def check_scale(scale: str) -> None:
    """Raise a one-line error unless ``scale`` is one of :data:`SCALES`."""
    if scale not in SCALES:
        raise UserError(f"unknown scale {scale!r}; allowed: {', '.join(SCALES)} (auto "
                        "standardises a table's columns when they are in different units)")


def standardises(X, scale: str, is_table: bool) -> bool:
    """Whether features ``X`` are standardised under ``scale``: always with
    ``"standard"``, never with ``"none"``; with ``"auto"`` when they are a table's columns
    (``is_table``) whose spreads differ by more than :data:`SPREAD_RATIO` times."""
    check_scale(scale)
    if scale != "auto":
        return scale == "standard"
    if not is_table:
        return False
    if isinstance(X, np.ndarray):  # a column missing in every row has no unit either
        X = X[:, ~np.isnan(X).all(axis=0)]
    spreads = np.asarray(np.nanstd(X, axis=0))  # (a missing cell has no spread)
    spreads = spreads[spreads > 0]  # a constant column has no unit to compare
    return bool(len(spreads) > 1 and spreads.max() > SPREAD_RATIO * spreads.min())


def standardised(X):
    """Each column less its mean, over its standard deviation (a constant column: zero).
    Works on a numpy or a dask array."""
    spreads = np.std(X, axis=0)
    return (X - np.mean(X, axis=0)) / np.where(spreads > 0, spreads, 1.0)


def scaled(X, scale: str, is_table: bool):
    """The features a table's own values ``X`` are worked on as: its missing cells filled
    (:func:`activeprop.missing_cells.filled_in`), then standardised when
    :func:`standardises` says so; ``X`` itself when neither changes it."""
    return worked_on(X, standardises(X, scale, is_table))


def worked_on(X, standardising: bool):
    """:func:`scaled` once :func:`standardises` has decided (``standardising``)."""
    filled = filled_in(X)
    return standardised(filled) if standardising else filled
