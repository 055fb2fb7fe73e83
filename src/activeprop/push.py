"""Local updates of a converged spreading solve: rounds that touch only what a batch changed.

Label spreading solves ``(I - alpha S) F = (1 - alpha) Y``. After a round adds ``b`` labels,
only ``b`` rows of the right-hand side change, so the previous solution's residual
``R = B - A X`` is non-zero only there (plus what the last solve left, below its
tolerance). Instead of conjugate-gradient iterations over the whole pool, the new residual
is *pushed* through the graph (forward push, as for approximate personalised PageRank):
a row's residual moves into its solution and spreads to its neighbours times
``alpha S``, which shrinks it by ``alpha`` per hop. Rows are pushed while their residual
is above a threshold, lowered until the residual's norm meets the solver's tolerance,
so the answer is as converged as a global solve; the pair ``(X, R)`` stays exact the whole
time, and when pushing would touch too much of the graph (a large ``alpha``: a label's
influence reaches far) it stops and the caller's global solve goes on from there.

The push is a loop over single rows, compiled with numba. It was written first in numpy, as
sweeps pushing every row above the threshold at once: a sweep is a few hundred rows and a
push makes hundreds of them, so their fixed costs decided (16 ms of a 74 ms round at
70,000 x 784; 1.5 s of a 1.6 s push at 1,000,000 items and alpha 0.9). Pushing a row as
soon as its turn comes also uses the residual its neighbours pushed into it in the same
pass (Gauss-Seidel, not Jacobi), so a push reads fewer graph entries for the same tolerance.

After its first pass a push sweeps the rows above the threshold in the graph's order,
rather than taking them in the order they rose above it (a queue): the graph is stored in
a locality order (reverse Cuthill-McKee), so a sweep reads its rows' entries in the order
they lie in memory and finds their neighbours' residuals mostly in cache, where a queue's
frontier (a ball around each label) jumps across the pool. At alpha 0.9 on 1,000,000 rows,
fifteen pushes of a labeler's, replayed (1.8-13 million entries read, 1-2% more with
sweeps), took 26-222 ms in a queue and 23-153 ms with sweeps, 1,601 against 1,179 ms in all
(``/tmp`` script, an Intel Xeon; docs/benchmarks.md).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit
from scipy import sparse

EPSILON_STEP = 0.25  # each pass lowers the per-row threshold this much


def push_residual(S, alpha: float, X: np.ndarray, R: np.ndarray, norms2: np.ndarray,
                  targets: np.ndarray, seeds: np.ndarray,
                  max_edges: int) -> tuple[bool, int, np.ndarray]:
    """Push the residual ``R`` of ``(I - alpha S) X = B`` from the rows ``seeds`` outwards
    until every column's norm is at most its ``target``, in place.

    Parameters
    ----------
    S : scipy.sparse.csr_matrix, symmetric, zero diagonal
    X, R : ndarray of shape (n, k), C-contiguous float64
        Solution and its exact residual; both updated.
    norms2 : ndarray of shape (k,)
        The squared norms of R's columns; kept up to date.
    targets : ndarray of shape (k,)
        The norm each column must reach.
    seeds : ndarray of int
        The rows where the residual changed (the new labels).
    max_edges : int
        Give up once this many graph entries were read (the caller solves globally).

    Returns
    -------
    met : bool
        Whether every column met its target.
    edges : int
        Graph entries read.
    moved : ndarray of int
        The rows whose solution the push changed.
    """
    columns = np.flatnonzero(norms2 > targets**2)  # the others already meet their target
    rows = np.unique(seeds)
    if not len(columns):
        return True, 0, np.empty(0, dtype=np.int64)
    epsilon = targets[columns] / max(np.sqrt(len(rows)), 1.0)
    # R's pushed columns, in an array of their own when some are (see _push)
    residual = np.empty((len(R), len(columns))) if len(columns) < R.shape[1] else R
    met, edges, moved = _push(
        S.indptr, S.indices, np.asarray(S.data, dtype=np.float64), float(alpha), X, R, norms2,
        np.asarray(targets, dtype=np.float64)**2, columns, rows, epsilon, int(max_edges),
        residual)
    return bool(met), int(edges), moved


@lru_cache(maxsize=None)
def compile_for(index_dtype: np.dtype) -> None:
    """Compile the push for a graph whose indices are ``index_dtype`` (or load it from the
    disk cache), once per process, on a graph of two rows. A caller that times the push
    to decide whether pushing pays calls this first: the first process after an install
    compiles for seconds, and that is not what a push costs."""
    S = sparse.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    S.indptr, S.indices = S.indptr.astype(index_dtype), S.indices.astype(index_dtype)
    X, R = np.zeros((2, 1)), np.array([[1.0], [0.0]])
    push_residual(S, 0.5, X, R, np.ones(1), np.full(1, 0.5), np.zeros(1, dtype=np.int64),
                  max_edges=100)


# The loops below are compiled on first use and cached on disk for the next process.

@njit(cache=True, nogil=True)
def _push(indptr, indices, data, alpha, X, R, norms2, targets2, columns, seeds, epsilon,
          max_edges, residual):
    """The push: passes with a threshold lowered by ``EPSILON_STEP`` each, pushing every
    row whose residual is above it in some column, until the columns meet their targets.
    Returns (met, edges read, the rows whose solution moved).

    The first pass, from the seeds alone, pushes in a queue: the rows above the threshold,
    then each row as it rises above it, around every seed in turn, so that a push its
    budget cuts short (a head start) has taken residual off every seed. The later passes,
    from every row the residual reached, sweep the rows above the threshold in the graph's
    order: a row that rises above it ahead of the sweep is pushed in the same sweep, one
    behind it in the next. Every pass in sweeps, a head start of 5 labels a round took 12
    of 145 conjugate-gradient iterations off ten rounds on the tests' graph, against 26
    with a first pass in a queue (the seeds past the budget's cut in the graph's order
    kept their residual).

    When some of R's columns are pushed (a label of a known class: one), they are read
    into a compact array of their own as the residual first reaches each row, and written
    back at the end: every graph entry read adds to a neighbour's residual, and in R's rows
    (all the classes) each such entry was a cache line of its own. One column of ten, 13
    million entries read at alpha 0.9 on a graph of 1,000,000 rows: 217-229 -> 169-185 ms
    (``/tmp`` script); with every column pushed the copy cost a fifth more, and R is
    pushed in place. The same arithmetic in the same order: the same bits.
    ``residual``: an (n, len(columns)) array for the copy, or R itself when every column
    is pushed (chosen by the caller: an array picked inside the loop ran a sixth slower)."""
    # One loop, its counters in locals: split into a function per pass and one per row,
    # passing the arrays in tuples and the counters in an array, the same pushes ran half
    # as fast (1.8-13 million entries at 1,000,000 rows: 39-278 against 21-142 ms; /tmp
    # script).
    n = len(X)
    compact = residual.shape[1] < R.shape[1]  # (else residual is R)
    touched = np.zeros(n, dtype=np.bool_)
    touched_rows = np.empty(n, dtype=np.int64)  # every row the residual reached, in order
    for row in seeds:
        touched[row] = True
        if compact:
            _load(R, columns, row, residual)
    touched_rows[:len(seeds)] = seeds
    n_touched = len(seeds)
    flagged = np.zeros(n + 8 - n % 8, dtype=np.bool_)  # rows above the threshold, to push
    # read eight at a time where none is (a sweep crosses the gaps between pushed regions)
    flagged_words = flagged.view(np.uint64)
    queue = np.empty(n, dtype=np.int64)  # the first pass's, a ring: each row once at a time
    pushed = np.empty(len(columns))
    moved = np.zeros(n, dtype=np.bool_)
    moved_rows = np.empty(n, dtype=np.int64)  # the rows pushed (X changed), in order
    n_moved = 0
    edges = 0
    met = True
    in_queue = True  # the first pass
    while met and not _all_met(norms2, targets2, columns):
        epsilon *= EPSILON_STEP
        if not _outside_meets(residual, norms2, targets2, columns, touched_rows[:n_touched]):
            met = False
            break
        first, last = n, -1
        head = tail = 0
        for row in touched_rows[:n_touched]:
            if _above(residual, row, epsilon):
                flagged[row] = True
                first, last = min(first, row), max(last, row)
                if in_queue:
                    queue[tail] = row
                    tail += 1
        while first <= last:  # a sweep (in the queue: the whole pass)
            row, end = first, last
            first, last = n, -1  # the next sweep's: the rows raised behind this one
            while True:
                if in_queue:
                    if head == tail:
                        break
                    row = queue[head % n]
                    head += 1
                elif row > end:
                    break
                elif (row & 7) == 0 and flagged_words[row >> 3] == 0:
                    row += 8
                    continue
                elif not flagged[row]:
                    row += 1
                    continue
                flagged[row] = False
                _move_into_solution(X, residual, norms2, columns, row, pushed)
                if not moved[row]:
                    moved[row] = True
                    moved_rows[n_moved] = row
                    n_moved += 1
                for position in range(indptr[row], indptr[row + 1]):
                    neighbour = indices[position]
                    if not touched[neighbour]:
                        touched[neighbour] = True
                        touched_rows[n_touched] = neighbour
                        n_touched += 1
                        if compact:
                            _load(R, columns, neighbour, residual)
                    _spread(residual, norms2, columns, neighbour, alpha * data[position], pushed)
                    if not flagged[neighbour] and _above(residual, neighbour, epsilon):
                        flagged[neighbour] = True
                        if in_queue:
                            queue[tail % n] = neighbour
                            tail += 1
                        elif neighbour > row:  # pushed in this sweep
                            end = max(end, neighbour)
                        else:
                            first, last = min(first, neighbour), max(last, neighbour)
                edges += indptr[row + 1] - indptr[row]
                if edges > max_edges:
                    met = False
                    break
                row += 1
            if not met:
                break
        in_queue = False
    if compact:  # R's pushed columns back, where they moved
        for row in touched_rows[:n_touched]:
            for j in range(len(columns)):
                R[row, columns[j]] = residual[row, j]
    return met, edges, moved_rows[:n_moved].copy()


@njit(cache=True, nogil=True, inline="always")  # called per row reached
def _load(R, columns, row, residual):
    """Read ``row``'s pushed columns of R into ``residual``."""
    for j in range(len(columns)):
        residual[row, j] = R[row, columns[j]]


@njit(cache=True, nogil=True)
def _outside_meets(residual, norms2, targets2, columns, touched_rows):
    """Whether the residual outside the touched rows, which no push will move, meets
    every column's target on its own (``residual``: the pushed columns, as ``_push``
    holds them)."""
    for j in range(len(columns)):
        left = norms2[columns[j]]
        for row in touched_rows:
            left -= residual[row, j] ** 2
        if left > targets2[columns[j]]:
            return False
    return True


@njit(cache=True, nogil=True, inline="always")  # called per row or edge
def _move_into_solution(X, residual, norms2, columns, row, pushed):
    """Move ``row``'s residual into its solution; ``pushed`` receives what moved."""
    for j in range(len(columns)):
        pushed[j] = residual[row, j]
        X[row, columns[j]] += pushed[j]
        norms2[columns[j]] -= pushed[j] ** 2
        residual[row, j] = 0.0


@njit(cache=True, nogil=True, inline="always")  # called per row or edge
def _spread(residual, norms2, columns, neighbour, weight, pushed):
    """Add ``weight`` times ``pushed`` to ``neighbour``'s residual, keeping the norms."""
    for j in range(len(columns)):
        before = residual[neighbour, j]
        after = before + weight * pushed[j]
        norms2[columns[j]] += after * after - before * before
        residual[neighbour, j] = after


@njit(cache=True, nogil=True)
def _all_met(norms2, targets2, columns):
    """Whether every column's residual norm meets its target."""
    for j in range(len(columns)):
        if norms2[columns[j]] > targets2[columns[j]]:
            return False
    return True


@njit(cache=True, nogil=True, inline="always")  # called per row or edge
def _above(residual, row, epsilon):
    """Whether ``row``'s residual is above its column's threshold in some column."""
    for j in range(len(epsilon)):
        if abs(residual[row, j]) > epsilon[j]:
            return True
    return False
