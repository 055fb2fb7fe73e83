"""A table's missing cells: read as such, kept as such, filled only for the graph.

Real tables have holes: 11 of the 344 Palmer penguins miss a measurement, 16 of the 699
biopsies one score. Refusing such a file leaves the person to delete rows they may need
labeled; filling the holes in the file would show them values nobody measured. So a
missing cell is read as NaN (an empty cell or one of :data:`MARKERS`), the project keeps
it missing (the labeler shows "missing"), and the graph is built on a copy where it takes
its column's median: the value that moves the item least from the others along that
column.
"""

from __future__ import annotations

import numpy as np


# What a cell says when it has no value (compared without case or surrounding spaces):
# the spellings of R's, pandas' and spreadsheets' exports, and UCI's "?".
MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "#n/a"})


def is_missing(cell: str) -> bool:
    """Whether a table's ``cell`` (text) marks a missing value."""
    return cell.strip().lower() in MARKERS


def count_missing(X) -> int:
    """How many cells of ``X`` are missing (NaN); 0 for a dask array (a sharded pool)."""
    return int(np.count_nonzero(np.isnan(X))) if isinstance(X, np.ndarray) else 0


def filled_in(X):
    """``X`` with each missing cell (NaN) replaced by its column's median, in a copy; ``X``
    itself when it misses nothing (or is a dask array: a sharded pool holds no NaN). A
    column missing in every row (a subset's may) takes 0: the same everywhere, it tells no
    item from another."""
    if not isinstance(X, np.ndarray):
        return X
    holes = np.isnan(X)
    if not holes.any():
        return X
    known = ~holes.all(axis=0)
    medians = np.zeros(X.shape[1])
    medians[known] = np.nanmedian(X[:, known], axis=0)
    return np.where(holes, medians, X)
