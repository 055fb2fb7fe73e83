"""Some columns of an (items x classes) array, copied out of it and back, with no memory
but their own.

Conjugate gradients iterate on the columns of the classes still short of the tolerance
(:func:`activeprop.propagation.conjugate_gradient`): after one label, one column of ten.
They work on copies of those columns, put each back as it meets the tolerance, and drop it
from the copies. With numpy's fancy indexing, at 1,000,000 x 10 a column of the solution
and the residual took 10 ms to copy out and 23 ms to put back, in a labeler's refit of
about 290 ms; and several columns went through temporaries the size of the copies: a
solve of seven columns spent 45-380 ms at a time putting columns back and dropping them,
mostly in page faults (``/tmp`` script, docs/benchmarks.md). Here compiled loops copy each
row's entries directly, on the row blocks of every core, and a copy drops columns within
its own memory.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

from .calibration import machine_costs
from .graph import on_every_core, row_blocks


def take_columns(A: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``A[:, columns]`` (a new C-contiguous array) of a C-contiguous float64 ``A``."""
    columns = np.ascontiguousarray(columns, dtype=np.int64)
    out = np.empty((len(A), len(columns)))
    _on_row_blocks(A, lambda rows: _take(A, columns, out, rows.start, rows.stop))
    return out


def put_columns(A: np.ndarray, columns: np.ndarray, B: np.ndarray, which: np.ndarray) -> None:
    """``A[:, columns] = B[:, which]``, in place, without a temporary."""
    columns = np.ascontiguousarray(columns, dtype=np.int64)
    which = np.ascontiguousarray(which, dtype=np.int64)
    _on_row_blocks(A, lambda rows: _put(A, columns, B, which, rows.start, rows.stop))


def keep_columns(A: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``A[:, keep]`` (a boolean mask) as a C-contiguous array in ``A``'s own memory,
    which it overwrites: the caller lets ``A`` go. (One pass on one core: the rows move
    towards the start of the memory, each to a place no later row still has to read.)"""
    kept = np.flatnonzero(keep)
    flat = A.reshape(-1)  # a view: A is C-contiguous
    _keep(flat, A.shape[1], kept)
    return flat[:len(A) * len(kept)].reshape(len(A), len(kept))


def _on_row_blocks(A: np.ndarray, task) -> None:
    """``task(rows)`` on the row blocks of every core, for a pass that reads a row of ``A``
    and writes one."""
    per_row = 2 * A.shape[1] * machine_costs().stream_item
    on_every_core(task, row_blocks(len(A), per_row))


@lru_cache(maxsize=None)
def compile_loops() -> None:
    """Compile the loops (or load them from the disk cache), once per process, on arrays of
    two rows: a caller that times a solve to choose the next one's path calls this first
    (compiling, the first process after an install, is not what a solve costs)."""
    A = np.arange(6.0).reshape(2, 3)
    taken = take_columns(A, np.array([2, 0]))
    put_columns(A, np.array([1]), taken, np.array([0]))
    assert keep_columns(taken, np.array([False, True])).tolist() == [[0.0], [3.0]]


# Compiled on first use and cached on disk for the next process.

@njit(cache=True, nogil=True)
def _take(A, columns, out, start, stop):
    for row in range(start, stop):
        for j in range(len(columns)):
            out[row, j] = A[row, columns[j]]


@njit(cache=True, nogil=True)
def _put(A, columns, B, which, start, stop):
    for row in range(start, stop):
        for j in range(len(columns)):
            A[row, columns[j]] = B[row, which[j]]


@njit(cache=True, nogil=True)
def _keep(flat, width, kept):
    """Row ``i``'s entries ``kept`` of a (n, width) array laid out in ``flat`` are written
    to ``flat[i * len(kept):]``. Forwards, each write lands at or before what it reads and
    behind every read still to come (``kept`` is increasing, ``len(kept) <= width``)."""
    n, m = len(flat) // width, len(kept)
    for row in range(n):
        for j in range(m):
            flat[row * m + j] = flat[row * width + kept[j]]
