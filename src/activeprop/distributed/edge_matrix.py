"""A sparse matrix built from a block's edges a slice at a time.

A block's edges arrive as one part per chunk of the pool (:func:`activeprop.distributed.knn.
edges_into`), 160 B an item at k = 10. Built through scipy's coordinate format, they were
joined into one copy, mapped to the block's rows and columns in two more, and converted
with the matrix's arrays beside them: a lone worker's highest point while its graph was
built (3,076 MB at 4,000,000 items, against 2,001 allowed; docs/benchmarks.md). Here each
edge is counted, then written to its row's place, a slice of edges at a time: only the
matrix's arrays are the edges' size.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
from scipy import sparse

# Edges mapped and placed at a time: each slice's temporary arrays (its local rows and
# columns, their order, the places) are about 70 B an edge, 70 MB.
EDGES_AT_ONCE = 1 << 20

# (local rows, local columns or None) of each slice of the edges, one pass
Slices = Callable[[bool], Iterator[tuple[np.ndarray, np.ndarray | None]]]


def edge_matrix(shape: tuple[int, int], slices: Slices, index_dtype,
                kept: bool = False) -> sparse.csr_matrix:
    """The CSR matrix of ``shape`` whose entries count the edges between their row and
    column (int8: a pair's edges are its two directions, twice at most), indices sorted:
    what scipy's ``csr_matrix((ones, (rows, columns)))`` gives. ``slices(with_columns)``
    yields the edges' local rows (and columns, when asked; else None) a slice at a time,
    the same edges at each call; indices are in ``index_dtype`` (64 bits when the edges
    outnumber 32 bits). A matrix that will be ``kept`` holds its indices in memory of
    their own size."""
    n_rows = shape[0]
    counts = np.zeros(n_rows, dtype=np.int64)
    for rows, _ in slices(False):
        counts += np.bincount(rows, minlength=n_rows)
    if counts.sum() >= 2**31:
        index_dtype = np.int64
    indptr = np.zeros(n_rows + 1, dtype=index_dtype)
    np.cumsum(counts, out=indptr[1:])
    del counts
    indices = np.empty(int(indptr[-1]), dtype=index_dtype)
    free = indptr[:-1].astype(np.int64)  # each row's next place to write
    for rows, columns in slices(True):
        _place(rows, columns, free, indices)
    matrix = sparse.csr_matrix((np.ones(len(indices), dtype=np.int8), indices, indptr),
                               shape=shape)
    matrix.sum_duplicates()
    # scipy leaves the indices in the memory of every edge's (a view, when at least half
    # are left): 80 B an item held where 50 are used, at 1,000,000 items and k = 10
    if kept and matrix.indices.base is not None:
        matrix.indices = matrix.indices.copy()
    return matrix


def _place(rows: np.ndarray, columns: np.ndarray, free: np.ndarray,
           indices: np.ndarray) -> None:
    """Write one slice's ``columns`` to their ``rows``' next free places (in any order
    within a row: the matrix's indices are sorted once all are placed), and advance
    ``free``."""
    if not len(rows):
        return
    order = np.argsort(rows)
    rows = rows[order]
    starts = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
    lengths = np.diff(np.append(starts, len(rows)))
    rank = np.arange(len(rows)) - np.repeat(starts, lengths)  # within its row's run
    indices[free[rows] + rank] = columns[order]
    free[rows[starts]] += lengths


def slices_of(parts, local: Callable) -> Slices:
    """:data:`Slices` over edge ``parts`` ((rows, columns) pairs, in the pool's indices),
    :data:`EDGES_AT_ONCE` at a time, each mapped by ``local(rows, columns, with_columns)``
    to (local rows, local columns or None)."""
    def slices(with_columns: bool):
        for rows, columns in parts:
            for start in range(0, len(rows), EDGES_AT_ONCE):
                piece = slice(start, start + EDGES_AT_ONCE)
                yield local(rows[piece], columns[piece], with_columns)
    return slices
