"""The label propagation engine: scikit-learn's iteration step for step, and converged
solvers (conjugate gradients) for large graphs, on a graph built once per pool.

:class:`GraphLabeling` turns a pool's partial labels into label distributions; the
scikit-learn drop-ins of :mod:`activeprop.estimators` and the active learner's graph
models both run on it.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from .abandon import stop_if_abandoned
from .calibration import machine_costs
from .column_room import empty_like, spare_view, widened, zeros
from .errors import UserError
from .graph import Graph, ThreadedMatrix, in_row_blocks, on_every_core, row_blocks
from .numerics import GUARD, ExactProducts, flush_negligible_in_rows
from .operator_powers import OperatorPowers
from .params import check_params
from .priors import check_model, class_offsets, shares_for
from .recycle import copy_into_spare
from .row_steps import row_steps
from .row_versions import RowVersion


def power_columns(graph) -> "PowerColumns":
    """The :class:`PowerColumns` of a dense graph's spreading operator, kept with the graph
    (created empty: the powers are bought when they pay)."""
    return graph.cached("power-columns",
                        lambda: PowerColumns(dense_products(graph, "spreading")))


def dense_products(graph, variant: str) -> ExactProducts:
    """Products with a dense graph's ``variant`` operator free of subnormal arithmetic,
    equal to the plain ones to rounding (:mod:`activeprop.numerics`), kept with the graph."""
    return graph.cached(f"exact-products-{variant}",
                        lambda: ExactProducts(graph.operator(variant)))


def iterate(operator, Y, *, variant: str, alpha: float | None, max_iter: int, tol: float,
            columns: "PowerColumns | None" = None):
    """scikit-learn's fixed-point iteration, step for step.

    Parameters
    ----------
    operator : matrix or ExactProducts
        ``graph.operator(variant)``, or :func:`dense_products` of it; only
        ``operator @ F`` is used.
    Y : ndarray of shape (n_items, n_classes)
        One-hot rows for labeled items, zero rows for unlabeled ones.
    variant : {"spreading", "propagation"}
    alpha : float
        Clamping factor (spreading only).
    max_iter, tol : int, float
        Stop after ``max_iter`` steps or once the summed absolute change is below ``tol``.
    columns : PowerColumns, optional
        Cached power columns of ``operator`` (spreading): the first steps are read off them.

    Returns
    -------
    F : ndarray of shape (n_items, n_classes)
        Unnormalised label scores.
    n_iter : int
        Number of iterations run (scikit-learn's ``n_iter_``).
    converged : bool
    """
    early = columns.iterates(Y, alpha) if columns is not None else None
    F, n_iter, converged = _iterate(operator, Y, variant, alpha, max_iter, tol, early)
    if early is not None:
        columns.record(n_iter)
    return F, n_iter, converged


def _iterate(operator, Y, variant, alpha, max_iter, tol, early):
    """:func:`iterate`'s loop; its first ``len(early)`` steps are read off ``early``."""
    labeled = Y.sum(axis=1) > 0
    static = Y * (1 - alpha) if variant == "spreading" else Y
    F = Y.copy()
    previous = np.zeros_like(F)
    for n_iter in range(max_iter):
        if np.abs(F - previous).sum() < tol:
            return F, n_iter, True
        previous = F
        if early is not None and n_iter < len(early):
            F = early[n_iter]
            continue
        F = _product(operator, F, labeled if n_iter == 0 else None)
        if variant == "propagation":
            F = _normalize_rows(F)
            F[labeled] = static[labeled]
        else:
            F *= alpha
            F += static
    return F, max_iter, False


# Powers of a dense operator pay for themselves only after many fits on the same graph;
# the operator, its square and their products' copies take 288 MB at this many items, so
# larger pools iterate plainly.
MAX_POWER_ITEMS = 3000
POWER_DEPTH = 8  # steps read off the columns; later steps (rarely needed) iterate plainly
MAX_CACHED_ITEMS = 512  # items whose columns are kept before the cache starts over


class PowerColumns:
    """The columns ``S^k e_i`` (k = 1..8) of a dense spreading operator's powers, per item.

    scikit-learn's iteration ``F <- alpha S F + (1 - alpha) Y`` from ``F = Y`` is linear in
    the labels: after ``t`` steps ``F`` is a weighted sum of ``P_k = S^k Y`` for
    ``k <= t``, and ``P_k`` is the sum of the labeled items' columns ``S^k e_i``, each
    times its one-hot label. With every labeled item's columns cached, a fit is column sums
    and an 8 x 9 coefficient product instead of ``n_iter`` products of the n x n operator
    with the label block; refits on subsets of the labels cost no product at all, and the
    held-out predictions of folds of the labels are read straight off the columns
    (:meth:`held_out`). Results equal the plain iteration's to rounding.

    A new item's columns come from ``powers`` (:class:`activeprop.operator_powers.
    OperatorPowers`: rented products, or the operator's powers once they pay).
    """

    def __init__(self, operator: "np.ndarray | ExactProducts"):
        self.powers = OperatorPowers(operator)
        self.operator = self.powers.operator
        # How far any entry of S^k (k = 1..8) as read off the powers or the cached columns
        # can be from the exact one (negligible entries were dropped on the way)
        self.errors = np.zeros(POWER_DEPTH)
        self.slots: dict[int, int] = {}
        self.columns: list[np.ndarray] = []  # per item slot, (k - 1, n): kept, never copied
        self.between = np.empty((0, POWER_DEPTH, 0))  # (slot j, k - 1, slot i) of the columns
        self._labels, self._sums = None, None  # the last call's labels and column sums
        self._steps = None  # steps the last fit on ``_labels`` ran

    @property
    def nbytes(self) -> int:
        """Memory held by the powers and the columns."""
        held = sum(c.nbytes for c in self.columns) + self.between.nbytes
        return held + self.powers.nbytes

    def plan(self, n_fits: int) -> None:
        """Announce ``n_fits`` more fits on this graph (a runner that knows its rounds)."""
        self.powers.plan(n_fits)

    def record(self, n_iter: int) -> None:
        """Note the steps the fit just read off :meth:`iterates` ran (for :meth:`held_out`)."""
        self._steps = n_iter

    def iterates(self, Y: np.ndarray, alpha: float) -> "_Iterates | None":
        """The first :data:`POWER_DEPTH` iterates ``F_1 ..`` of label spreading from
        ``F_0 = Y`` (``[t - 1]`` is ``F_t``, shape (n_items, n_classes)); None when more
        items are labeled than the cache holds."""
        items = np.flatnonzero(Y.any(axis=1))
        if len(items) > MAX_CACHED_ITEMS:
            return None
        self.powers.start_fit()
        self._ensure(items)
        labels = dict(zip((self.slots[i] for i in items), np.argmax(Y[items], axis=1).tolist()))
        sums = self._label_sums(labels, Y.shape[1])  # (class, k - 1, item): S^k Y, k = 1..8
        return _Iterates(sums, _step_coefficients(alpha), Y, self.errors * len(items),
                         self.operator)

    def held_out(self, Y: np.ndarray, folds: list[np.ndarray], alpha: float) -> np.ndarray | None:
        """Each labeled item's scores from the iteration on the labels of the other folds,
        run for as many steps as the last fit on all of ``Y`` ran.

        ``folds`` split the positions of the labeled items (in item order). A held-out item
        is unlabeled in its fold's fit, so after ``t`` steps its scores are
        ``sum_k c_tk (S^k Y_rest)[item]``: entries of the other labeled items' cached
        columns (``S`` is symmetric), no product with the operator. Returns an
        (n_labeled, n_classes) array, or None unless the last fit ran on exactly these
        labels within the columns' depth (then refit instead).
        """
        items = np.flatnonzero(Y.any(axis=1))
        slots = [self.slots.get(int(i)) for i in items]
        labels = dict(zip(slots, np.argmax(Y[items], axis=1).tolist()))
        if None in slots or labels != self._labels or not 0 < (self._steps or 0) <= POWER_DEPTH:
            return None
        weights = _step_coefficients(alpha)[self._steps, 1:]
        # influence[j, i]: what item j's label adds to item i's scores after the steps
        cached = len(self.slots)  # weigh the steps over every cached pair, then pick the pairs
        influence = np.einsum("k,jki->ji", weights, self.between[:cached, :, :cached])
        influence = influence[np.ix_(slots, slots)]
        scores = np.zeros((len(items), Y.shape[1]))
        for fold in folds:
            rest = np.ones(len(items), dtype=bool)
            rest[fold] = False
            scores[fold] = influence[np.ix_(rest, fold)].T @ Y[items[rest]]
        error = float(np.abs(weights) @ self.errors[:len(weights)]) * len(items)
        if error and scores.sum(axis=1).min() * GUARD < error:
            return None  # an item far from the other folds' labels: refit (numerics)
        return scores

    def _label_sums(self, labels: dict[int, int], n_classes: int) -> np.ndarray:
        """For every class, the sum of the columns of the items labeled with it
        (``labels``: slot -> class index). Only added: a round that adds labels to the
        last call's adds their columns; anything else is summed afresh, because taking
        columns away would cancel digits, and far from every label the scores are tiny
        sums whose every digit counts once rows are normalised."""
        last = self._labels
        grows = (last is not None and self._sums.shape[0] == n_classes
                 and all(labels.get(slot) == c for slot, c in last.items()))
        sums = self._sums if grows else np.zeros((n_classes, self.columns[0].size))
        for slot, c in labels.items():
            if not grows or slot not in last:
                sums[c] += self.columns[slot].ravel()
        self._labels, self._sums, self._steps = labels, sums, None
        return sums.reshape(n_classes, POWER_DEPTH, -1)

    def _ensure(self, items: np.ndarray) -> None:
        """Compute the columns of the ``items`` not cached yet, and their entries at the
        other cached items (:meth:`held_out` reads those)."""
        new = [int(i) for i in items if int(i) not in self.slots]
        if len(self.slots) + len(new) > MAX_CACHED_ITEMS:
            self.slots, self.columns, new = {}, [], [int(i) for i in items]
            self._labels, self._sums = None, None
        if not new:
            return
        first, last = len(self.slots), len(self.slots) + len(new)
        fresh = self._new_columns(new)
        self.columns.extend(fresh)
        self.between = _room(self.between, last, axes=(0, 2))
        self.slots.update({item: first + j for j, item in enumerate(new)})
        cached = np.fromiter(self.slots, dtype=np.int64, count=last)  # the item of each slot
        self.between[first:last, :, :last] = fresh[:, :, cached]
        # The old items' columns at the new items: S^k is symmetric, so these are the new
        # columns at the old items (the old columns stay untouched in memory).
        self.between[:first, :, first:last] = fresh[:, :, cached[:first]].transpose(2, 1, 0)

    def _new_columns(self, new: list[int]) -> np.ndarray:
        """(len(new), depth, n): ``S^k e_i`` for the ``new`` items, k = 1..8."""
        fresh, errors = self.powers.columns(new, POWER_DEPTH)
        np.maximum(self.errors, errors, out=self.errors)
        return fresh


class _Iterates:
    """The iterates ``F_1 .. F_8`` of :meth:`PowerColumns.iterates`, each summed from the
    power sums when read: a fit reads them in order and stops near step 7, and eight
    small sums on demand cost less than one product that wakes BLAS's threads.

    ``errors[k - 1]`` bounds how far any row's sum of the cached ``S^k Y`` can be from the
    exact one (negligible entries were dropped on the way: :mod:`activeprop.numerics`).
    A row whose sum is not far above that bound (an item far from every label, whose
    scores are all tiny) is recomputed from the exact operator's row and the row's
    ``S^(k-1) Y``, so every row is the plain iteration's to rounding.
    """

    def __init__(self, sums: np.ndarray, coefficients: np.ndarray, Y: np.ndarray,
                 errors: np.ndarray, operator: np.ndarray):
        self._sums, self._coefficients, self._Y = sums, coefficients, Y
        self._errors, self._operator = errors, operator
        self._powers = [Y]  # S^k Y for k = 0, 1, ..., each row exact to rounding

    def __len__(self) -> int:
        return POWER_DEPTH

    def __getitem__(self, step: int) -> np.ndarray:
        """``F_(step + 1)``, shape (n_items, n_classes)."""
        weights = self._coefficients[step + 1]
        F = weights[0] * self._Y
        for k in range(1, step + 2):
            F = F + weights[k] * self._power(k)
        return F

    def _power(self, k: int) -> np.ndarray:
        while len(self._powers) <= k:
            depth = len(self._powers)
            power = self._sums[:, depth - 1, :].T.copy()
            error = self._errors[depth - 1]
            unsure = np.flatnonzero(power.sum(axis=1) * GUARD < error) if error else ()
            if len(unsure):
                power[unsure] = self._operator[unsure] @ self._powers[-1]
            self._powers.append(power)
        return self._powers[k]


def _room(array: np.ndarray, size: int, axes: tuple[int, ...]) -> np.ndarray:
    """``array``, or a copy grown by doubling along ``axes`` so that they hold ``size``
    (few copies over a run)."""
    if array.shape[axes[0]] >= size:
        return array
    shape = list(array.shape)
    for axis in axes:
        shape[axis] = max(2 * shape[axis], size)
    grown = np.empty(shape)
    grown[tuple(slice(0, array.shape[axis]) if axis in axes else slice(None)
                for axis in range(array.ndim))] = array
    return grown


def _step_coefficients(alpha: float) -> np.ndarray:
    """Row t: the weights of ``S^0 Y .. S^8 Y`` in spreading's iterate ``F_t`` from ``F_0 = Y``
    (``c_0 = e_0``, ``c_(t+1) = alpha shift(c_t) + (1 - alpha) e_0``)."""
    coefficients = np.zeros((POWER_DEPTH + 1, POWER_DEPTH + 1))
    coefficients[0, 0] = 1.0
    for t in range(POWER_DEPTH):
        coefficients[t + 1, 0] = 1 - alpha
        coefficients[t + 1, 1:] = alpha * coefficients[t, :-1]
    return coefficients


def conjugate_gradient(apply, B: np.ndarray | None, X0: np.ndarray, *, diagonal: np.ndarray,
                       rtol: float, max_iter: int, R0: np.ndarray | None = None,
                       overshoot: float = 1.0, rhs_norms: np.ndarray | None = None,
                       squares0: np.ndarray | None = None):
    """Solve ``A X = B`` for a symmetric positive definite ``A``, column by column.

    Each column runs its own Jacobi-preconditioned conjugate gradient; the columns still
    short of the tolerance share one ``apply(P) = A @ P`` per iteration, which is the only
    way the graph is touched. A column that already meets the tolerance (after a warm start,
    every class the new labels did not touch) costs nothing.

    Parameters
    ----------
    apply : callable
        ``apply(P, out=None) -> A @ P`` for an (n, k) block, any k; written into ``out``
        when it can (an (n, k) array whose contents the solver no longer needs), else into
        a new array.
    B, X0 : ndarray of shape (n, k)
        Right-hand sides and starting point (a previous solution warm-starts the solve).
        ``X0`` is taken over: the solve updates it in place and returns it as ``X``.
        ``B`` may be None when ``R0`` and ``rhs_norms`` are given.
    diagonal : ndarray of shape (n,)
        The diagonal of ``A`` (the preconditioner); zero entries mark rows to leave out.
    rtol : float
        Stop when every column has ``||B - A X|| <= rtol * ||B||``.
    max_iter : int
    R0 : ndarray of shape (n, k), optional
        ``B - A X0`` when the caller knows it (saves one product); taken over as ``X0``.
    overshoot : float
        Every column iterates down to ``overshoot`` times the tolerance (room for local
        updates before the next global solve); ``converged`` is judged at the tolerance.
    rhs_norms : ndarray of shape (k,), optional
        The norms of B's columns, when the caller knows them (a one-hot B's are the square
        roots of its label counts: at 1,000,000 x 10, writing B and reading it for its
        norms took 9 ms of a labeler's refit).
    squares0 : ndarray of shape (k,), optional
        The squared norms of ``R0``'s columns, when the caller keeps them up to date (a
        local update does; reading R0 for them took 11-19 ms of a labeler's refit at
        1,000,000 x 10). Taken over: the returned ``squares`` is this array.

    Returns
    -------
    X, R : ndarray of shape (n, k)
        The solution and its residual ``B - A X``.
    n_iter : int
    converged : bool
    squares : ndarray of shape (k,)
        The squared norms of R's columns.
    """
    mask = (diagonal != 0)[:, None]
    identity = bool(np.all(diagonal[mask[:, 0]] == 1.0))  # Jacobi would be a no-op
    inverse = mask if identity else np.divide(1.0, diagonal, out=np.zeros_like(diagonal),
                                              where=mask[:, 0])[:, None]
    # In place, and no copies of the columns below while all of them iterate: at 1,000,000
    # x 10 each (n, k) array is 80 MB, and a cold solve held ten of them (a lone cluster
    # worker's peak, 1,555 MB; the same bits as with the copies).
    # Where every row takes part the mask is all ones: multiplying by it would change no
    # bit, and took two passes (10 ms a refit of the labeler at 1,000,000 x 5).
    everywhere = bool(mask.all())
    X = X0
    if not everywhere:
        X *= mask
    if R0 is None:
        R = apply(X, out=empty_like(X))  # with X's room for more classes (column_room)
        np.subtract(B, R, out=R)
    else:
        R = R0
        if not everywhere:
            R *= mask
    threshold = rtol * (np.sqrt(_pool_column_dots(B, B)) if rhs_norms is None else rhs_norms)
    B = None  # read: let it go (a caller that passes it inline holds no other reference)
    # (a local update's running sums can end a hair below zero where a column is all but
    # met: clipped, as its norm's round-off)
    squares = _pool_column_dots(R, R) if squares0 is None or R0 is None else \
        np.maximum(squares0, 0.0, out=squares0)
    # (a column between the two would make the local update after this solve fail at once)
    active = np.flatnonzero(np.sqrt(squares) > overshoot * threshold)
    n_iter = 0
    if len(active):  # else R is unchanged (a local update met the tolerance): no new pass
        # (the other columns of R do not change: their squares stand)
        n_iter = _cg_columns(apply, X, R, active, inverse, identity, overshoot * threshold,
                             max_iter, squares)
    converged = bool(np.all(np.sqrt(squares) <= threshold))
    return X, R, n_iter, converged, squares


def _cg_columns(apply, X, R, active, inverse, identity, threshold, max_iter,
                squares) -> int:
    """Conjugate gradients on the ``active`` columns of X and R, in place; a column leaves
    the block as soon as it meets its threshold. Returns the iterations run, and writes
    the active columns' final squared residual norms into ``squares`` (those the loop
    stopped on: reading R again for them took a pass over the pool).

    Besides ``apply``, an iteration makes three passes over n x k arrays (dot products;
    the x, r, z update with the next dot products; the new direction). Each runs on row
    blocks on every core: with k about 10, numpy's column-scaled updates are far from
    memory speed on one core, and they cost as much as the product."""
    # compiled (numba): imported by the solves that iterate, not with this module
    from .columns import keep_columns, take_columns

    x, r = (X, R) if len(active) == X.shape[1] else \
        (take_columns(X, active), take_columns(R, active))
    z = r if identity else r * inverse
    p = z.copy()
    rz = _pool_column_dots(r, z)
    rr = rz if identity else _pool_column_dots(r, r)
    limit = threshold[active]
    n = len(x)
    # The products are written into a buffer reused every iteration (columns only leave),
    # and the scaled directions the update adds into a small one (_add_steps): at
    # 1,000,000 x 10, fresh memory for them each iteration cost 40,000 page faults and
    # 0.5-1.4 s of system time in a cold solve here (/tmp script, docs/benchmarks.md).
    products = np.empty(p.size)
    for n_iter in range(max_iter):
        stop_if_abandoned()  # a background job's answer may no longer be wanted
        done = np.sqrt(rr) <= limit
        if done.any():
            if x is not X:  # (while every column iterates they are X's and R's already:
                # the copies written back were two more arrays the size of X at once)
                _put_back(X, R, active[done], x, r, np.flatnonzero(done))
            squares[active[done]] = rr[done]
            keep = ~done
            if not keep.any():
                return n_iter
            # the copies drop the columns within their own memory (X and R are copied)
            x, r = (take_columns(X, active[keep]), take_columns(R, active[keep])) \
                if x is X else (keep_columns(x, keep), keep_columns(r, keep))
            p = keep_columns(p, keep)
            z = r if identity else keep_columns(z, keep)
            active, limit, rz, rr = active[keep], limit[keep], rz[keep], rr[keep]
        ap = apply(p, out=products[:p.size].reshape(p.shape))
        curvature = in_row_blocks(lambda rows: _column_dots(p[rows], ap[rows]), n, p.shape[1])
        step = np.divide(rz, curvature, out=np.zeros_like(rz), where=curvature > 0)

        def advance(rows):
            _add_steps(x, r, p, ap, step, rows)
            block_squares = _column_dots(r[rows], r[rows])
            if identity:
                return np.concatenate([block_squares, block_squares])
            z[rows] = r[rows] * inverse[rows]
            return np.concatenate([_column_dots(r[rows], z[rows]), block_squares])

        sums = in_row_blocks(advance, n, p.shape[1])
        rz_next, rr = sums[:len(rz)], sums[len(rz):]
        beta = np.divide(rz_next, rz, out=np.zeros_like(rz), where=rz > 0)

        def turn(rows):
            p[rows] *= beta
            p[rows] += z[rows]

        in_row_blocks(turn, n, p.shape[1])
        rz = rz_next
    if x is not X:
        _put_back(X, R, active, x, r, np.arange(len(active)))
    squares[active] = rr
    return max_iter


def _put_back(X, R, columns, x, r, which) -> None:
    """Columns ``which`` of the copies ``x`` and ``r`` back into ``columns`` of X and R."""
    from .columns import put_columns

    put_columns(X, columns, x, which)
    put_columns(R, columns, r, which)


# Rows of the step added at a time: the scaled directions go through a buffer of this
# many rows, not one the size of the solution (at 1,000,000 x 10, 80 MB more of a cold
# solve's peak, a lone cluster worker's above its target; the same bits).
STEP_ROWS = 16384


def _add_steps(x, r, p, ap, step, rows: slice) -> None:
    """``x += step p`` and ``r -= step ap`` on ``rows``, in place."""
    buffer = np.empty((min(STEP_ROWS, rows.stop - rows.start), p.shape[1]))
    for part in row_steps(rows.stop, STEP_ROWS, start=rows.start):
        steps = buffer[:part.stop - part.start]
        np.multiply(p[part], step, out=steps)
        x[part] += steps
        np.multiply(ap[part], step, out=steps)
        r[part] -= steps


def _column_dots(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The dot product of each column of A with the same column of B."""
    return np.einsum("ij,ij->j", A, B)


def _pool_column_dots(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """:func:`_column_dots` of two pool-sized arrays, on the row blocks of every core (at
    1,000,000 x 10, 12.8 ms in one einsum, 7.0 ms on two cores). Not inside a task that
    runs on the cores already (:func:`in_row_blocks` would wait on itself)."""
    return in_row_blocks(lambda rows: _column_dots(A[rows], B[rows]), len(A), A.shape[1])


@dataclass
class WarmStart:
    """A converged solve to start the next one from (same graph and system; the same classes,
    or more). A spreading solve that starts from it takes its arrays over and updates them
    in place (at 1,000,000 x 10 each fresh copy of an (items x classes) array costs 10-25 ms
    of a labeler's refit): once taken, it is no longer :meth:`usable`."""

    graph: object
    classes: np.ndarray
    system: tuple  # (variant, alpha, reached mask as bytes): the matrix A
    codes: np.ndarray  # each item's label as a column of X (-1: none), in graph order
    X: np.ndarray | None  # solution before any post-processing, in graph order
    R: np.ndarray | None  # its residual B - A X
    norms2: np.ndarray | None = None  # the squared norms of R's columns
    pause: int = 0  # rounds to go before trying a local update again (push)
    solve_seconds: float | None = None  # the last global solve's time (CG, then the fill)
    backoff: int | None = None  # the next pause's length (None: PUSH_PAUSE)
    # seconds the deeper solve that ended the last pause cost beyond a global round, not yet
    # won back by the local updates after it (see _next_path)
    debt: float = 0.0
    fill: "KeptFill | None" = None  # spreading's fill on a sparse graph (kept_fill)
    # whether a label of a new class is pushed, or solved globally (_after_new_class)
    pushes_new_classes: bool = True

    def usable(self, graph, classes, system, new_classes: bool = False) -> bool:
        """Whether this solve is a starting point for one on ``graph`` with ``system`` and
        ``classes``: the same classes, or with ``new_classes`` more of them (see
        :meth:`for_classes`)."""
        if self.X is None or self.graph is not graph or self.system[:2] != system[:2]:
            return False
        if not new_classes or self.classes is None or classes is None:
            return np.array_equal(self.classes, classes)
        return bool(np.isin(self.classes, classes).all())

    def for_classes(self, classes: np.ndarray | None) -> "WarmStart":
        """This solve with a zero column for each of ``classes`` (sorted) it did not have.
        The residual carries over exactly: a new class had zero scores and a zero
        right-hand side. (Early in labeling new classes keep coming; each used to restart
        the solve cold: 17-18 iterations, 3.5-4.4 s a label at 1,000,000 items.) The arrays
        widen in place when they have the room (:mod:`activeprop.column_room`): this
        WarmStart is then used up."""
        if classes is None or np.array_equal(self.classes, classes):
            return self
        columns = np.searchsorted(classes, self.classes)

        def widen(block):  # in place where it has the room (activeprop.column_room)
            return widened(block, columns, len(classes))

        codes = np.where(self.codes >= 0, columns[self.codes], -1).astype(self.codes.dtype)
        norms2 = None
        if self.norms2 is not None:
            norms2 = np.zeros(len(classes))
            norms2[columns] = self.norms2
        # the fill too: a zero column changes no row's layer nor the other columns' scores
        X, R, F = _widened_together(widen, [self.X, self.R,
                                            None if self.fill is None else self.fill.F])
        wider = replace(self, classes=classes, codes=codes, X=X, R=R, norms2=norms2,
                        fill=None if self.fill is None else self.fill.widened(F))
        self.X = self.R = self.norms2 = self.fill = None  # their memory may be the wider's
        return wider

    def copy(self, into: WarmStart | None = None) -> "WarmStart":
        """A copy whose arrays a solve may take over while this one's stay as they are;
        written into the arrays of the warm start ``into`` that nothing else holds
        (:func:`activeprop.recycle.copy_into_spare`; ``into`` is then used up)."""
        return replace(self, X=copy_into_spare(self.X, into, "X"),
                       R=copy_into_spare(self.R, into, "R"),
                       norms2=None if self.norms2 is None else self.norms2.copy(),
                       fill=None if self.fill is None else
                       self.fill.copy(into.fill if into is not None else None))

    def shallow_copy(self) -> "WarmStart":
        """A new WarmStart (and KeptFill) over the same arrays. A solve that takes this one
        over sets this one's arrays to None, not the copy's: the labeler reads the copy
        (:meth:`copy`) without holding its lock."""
        return replace(self, fill=None if self.fill is None else copy.copy(self.fill))

    def take_solution(self) -> np.ndarray:
        """This solution, taken over (a solve updates it in place); this WarmStart is then
        used up."""
        X, self.X, self.R, self.norms2 = self.X, None, None, None
        return X

    def take_fill(self) -> "KeptFill | None":
        """The kept fill, taken over (the next solve updates it in place)."""
        fill, self.fill = self.fill, None
        return fill

    def take_with_labels(self, codes: np.ndarray, scale: float):
        """This solution and its residual for the right-hand side ``scale`` times the
        one-hot rows of ``codes`` (graph order), taken over: the residual is updated in
        place on the rows whose label changed, and the squared norms with it. Returns
        (X, R, norms2, the changed rows); this WarmStart is then used up."""
        changed = np.flatnonzero(codes != self.codes)
        X, R, norms2 = self.X, self.R, self.norms2
        if norms2 is not None:
            norms2 = norms2 - _column_dots(R[changed], R[changed])
        _add_label_rows(R, changed, self.codes[changed], -scale)
        _add_label_rows(R, changed, codes[changed], scale)
        if norms2 is not None:
            norms2 += _column_dots(R[changed], R[changed])
        self.X = self.R = self.norms2 = None
        return X, R, norms2, changed


def _widened_together(widen, blocks: list) -> list:
    """``widen(block)`` of each of ``blocks`` (None stays None), the blocks in threads when
    they are large enough to pay for one. Widening in place is a loop over the rows on one
    core, last row first (:mod:`activeprop.column_room`): the solution, the residual and
    the fill took 25-66 ms of a labeler's refit at 1,000,000 items for each label that
    brought a new class. From 9 to 10 columns the three took 54-56 ms one after the other
    and 41-50 ms in threads on an Intel Xeon's two cores, where memory is the bound, the
    same bits (issue 18; docs/benchmarks.md)."""
    present = [block for block in blocks if block is not None]
    per_row = 2 * present[0].shape[1] * machine_costs().stream_item  # read, then written
    apart = len(present) > 1 and len(row_blocks(len(present[0]), per_row)) > 1
    wide = iter(on_every_core(widen, present) if apart else [widen(b) for b in present])
    return [None if block is None else next(wide) for block in blocks]


def _add_label_rows(R: np.ndarray, rows: np.ndarray, codes: np.ndarray, value: float) -> None:
    """Add ``value`` to ``R[rows[i], codes[i]]`` where ``codes[i]`` is a label (not -1)."""
    labeled = codes >= 0
    R[rows[labeled], codes[labeled]] += value


def class_codes(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Each item's label as its position in the sorted ``classes`` (-1: unlabeled)."""
    codes = np.full(len(y), -1, dtype=np.int64)
    labeled = y != -1
    codes[labeled] = np.searchsorted(classes, y[labeled])
    return codes


def one_hot_codes(codes: np.ndarray, n_classes: int, value: float = 1.0,
                  room: int = 0) -> np.ndarray:
    """(n_items, n_classes): ``value`` in column ``codes[i]`` of row i, a zero row where
    -1 (written where labeled only: scaling the whole array afterwards took a pass); with
    room for ``room`` classes (:mod:`activeprop.column_room`)."""
    Y = zeros(len(codes), n_classes, room)
    labeled = np.flatnonzero(codes >= 0)
    Y[labeled, codes[labeled]] = value
    return Y


def _reached(graph, labeled: np.ndarray) -> np.ndarray:
    """Items (graph order) in a connected component that holds a label. (Looked up per
    component: ``np.isin`` over the pool took 5 ms of a labeler's refit at 1,000,000.)"""
    components = graph.components()
    holds_label = np.zeros(int(components.max(initial=-1)) + 1, dtype=np.bool_)
    holds_label[components[labeled]] = True
    return holds_label[components]


def _reach_kept(warm: WarmStart, reached: np.ndarray) -> bool:
    """Whether every item ``warm``'s solve reached is still reached. Then its residual
    carries over exactly: a component a new label reaches had zero scores and zero
    right-hand side, so its residual is the new right-hand side. (A label in an unreached
    component is what the labeler asks for first, unreached items being the most
    uncertain; each such label used to restart global conjugate gradients.)"""
    before = np.unpackbits(np.frombuffer(warm.system[2], dtype=np.uint8),
                           count=len(reached)).astype(bool)
    return not np.any(before & ~reached)


def _spreading_system(graph, alpha: float):
    """``P -> (I - alpha S) P`` on the normalised symmetric affinity."""
    S = graph.operator("symmetric-spreading")

    def apply(P, out=None):
        def finish(rows, product):  # S P on these rows -> P - alpha S P
            product *= -alpha
            product += P[rows]

        return _multiply(S, P, finish, out)

    return apply


def _laplacian_system(graph, mask: np.ndarray):
    """``P -> (D - W) P`` restricted to the rows of ``mask`` (a 0/1 column), and its
    diagonal."""
    W, degrees = graph.operator("symmetric"), graph.operator("degrees")

    def apply(P, out=None):
        def finish(rows, product):  # W P on these rows -> mask (D P - W P)
            product *= -1.0
            product += degrees[rows, None] * P[rows]
            product *= mask[rows]

        return _multiply(W, P, finish, out)

    return apply, mask[:, 0] * (degrees - W.diagonal())


def _multiply(matrix, P: np.ndarray, finish, out: np.ndarray | None = None) -> np.ndarray:
    """``matrix @ P`` then ``finish(rows, product_rows)`` in place: per row block on every
    core for a sparse graph (while the rows are in cache; into ``out`` when given, see
    :meth:`ThreadedMatrix.multiply`), in one go for a dense one."""
    if isinstance(matrix, ThreadedMatrix):
        return matrix.multiply(P, finish, out)
    # A dense (rbf) graph's far-off items give the solver's vectors tiny entries: dropped
    # per column where negligible (numerics), for the product only; its cost is n^2 k,
    # the copy's n k.
    product = np.asarray(matrix @ flush_negligible_in_rows(P.T.copy()).T)
    finish(slice(None), product)
    return product


def solve_converged(graph, codes: np.ndarray, *, variant: str, alpha: float | None,
                    rtol: float, max_iter: int, classes: np.ndarray,
                    warm: WarmStart | None = None, leaves_room: bool = True,
                    class_room: int = 0):
    """The fixed point the iteration converges to, by conjugate gradients.

    Spreading: ``(I - alpha S) F = (1 - alpha) Y`` with ``S`` the normalised symmetric
    affinity. Propagation (harmonic): ``(D - W)_uu F_u = W_ul Y_l`` on the unlabeled items
    of components that hold a label; labeled rows stay their one-hot labels. Items in a
    component without any label keep a zero row (the caller flags them). ``Y`` is the
    one-hot form of ``codes`` (:func:`class_codes`: each pool item's label as its position
    in ``classes``, -1 where unlabeled).

    With ``warm`` (the previous round's :class:`WarmStart`) the solve starts from the last
    solution; for spreading the residual is carried over exactly (the matrix is unchanged,
    only the right-hand side moved), so the classes the new labels did not touch cost
    nothing.

    ``leaves_room`` (spreading): a local update goes below the tolerance, leaving room for
    the next one; else it stops at the tolerance, and the next round starts with a deeper
    solve, which a caller may run before the next labels come (:meth:`GraphLabeling.
    deepened`).

    ``class_room`` (spreading): the solve's arrays have room for this many classes, to
    widen in place when new ones come (:mod:`activeprop.column_room`).

    Returns F in the graph's order (:meth:`Graph.to_pool_order` puts it in the pool's),
    n_iter, converged (as :func:`iterate`) and the WarmStart for the next round.
    """
    codes = graph.labels_to_graph_order(codes)  # the operators' cache-friendly order
    labeled = codes >= 0
    reached = _reached(graph, labeled)
    system = (variant, alpha, np.packbits(reached).tobytes())
    usable = warm is not None and warm.usable(graph, classes, system, new_classes=True)
    new_class = usable and len(classes) > len(warm.classes)
    warm = warm.for_classes(classes) if usable else None
    if variant == "spreading":
        # the push and the fill are timed (the next path's choice): not their compiling
        load_compiled_loops(graph)
        pushes_new_classes = warm.pushes_new_classes if warm is not None else True
        X, R, norms2, n_iter, converged, timing, moved = _solve_spreading(
            graph, codes, len(classes), alpha, reached, rtol, max_iter, warm, leaves_room,
            class_room, new_class, pushes_new_classes)
        start = time.perf_counter()
        F, kept = _fill_spreading(graph, X, reached, rtol, warm, moved)
        fill_seconds = time.perf_counter() - start
        if new_class:
            *path, pushes_new_classes = _after_new_class(timing, fill_seconds,
                                                         pushes_new_classes)
        else:
            path = _next_path(timing, fill_seconds)
        return F, n_iter, converged, WarmStart(graph, classes, system, codes, X, R, norms2,
                                               *path, fill=kept,
                                               pushes_new_classes=pushes_new_classes)
    else:
        Y = one_hot_codes(codes, len(classes))
        free = (reached & ~labeled).astype(np.float64)[:, None]
        apply, diagonal = _laplacian_system(graph, free)
        B = free * (graph.operator("symmetric") @ Y)
        X, R, n_iter, converged, _ = conjugate_gradient(
            apply, B, (warm.X if usable else Y) * free, diagonal=diagonal, rtol=rtol,
            max_iter=max_iter)
        F = X * free + Y
    # Below zero is round-off (the exact solution is non-negative); far rows get filled.
    from .fill import fill_below_precision  # compiled: imported by the solves that fill

    F = fill_below_precision(graph.operator("symmetric"), F, reached, floor=rtol * F.max())
    return F, n_iter, converged, WarmStart(graph, classes, system, codes, X, R)


def load_compiled_loops(graph) -> None:
    """Load the compiled loops that spreading's converged solves walk a sparse ``graph``
    with (the push, the kept fill and the solver's column copies: numba's import and its
    disk cache, 0.45 s here), and margin's (:mod:`activeprop.top_two`, which queries use
    once numba is loaded), or compile them after an install; once per process and index
    type. The labeler does it while it loads the graph, not in the first refit or query
    after opening."""
    if not graph.is_sparse:
        return
    from .columns import compile_loops as column_loops
    from .kept_fill import compile_for as fill_loops
    from .push import compile_for as push_loops
    from .top_two import top_two_gaps

    column_loops()
    top_two_gaps(np.zeros((1, 2)))
    index_dtype = _spreading_matrix(graph).indices.dtype
    fill_loops(index_dtype)
    push_loops(index_dtype)


def _fill_spreading(graph, X: np.ndarray, reached: np.ndarray, rtol: float,
                    warm: WarmStart | None, moved: np.ndarray | None):
    """Spreading's scores with the far rows filled (:mod:`activeprop.fill`), and the fill
    kept for the next solve on a sparse graph. After a local update that changed ``X`` on
    the rows ``moved`` only, the last solve's kept fill is updated there when that pays;
    else it is filled again from the last one's layers and parents when that can be done
    (reading again only the rows ``moved``, when known: :meth:`KeptFill.refill`;
    :mod:`activeprop.kept_fill`; each gives the same scores as filling afresh). Returns
    the scores (a later fit may update them in place) and the kept fill (or None)."""
    from .kept_fill import KeptFill

    floor = rtol * X.max()
    matrix = _spreading_matrix(graph) if graph.is_sparse else None
    if matrix is None or not graph.cached("keeps-fill", lambda: KeptFill.suits(matrix)):
        return spreading_fill(graph, X, reached, floor), None
    roots = graph.spreading_roots()
    kept = warm.take_fill() if warm is not None else None
    if moved is not None and kept is not None and kept.matches(reached, floor) and \
            kept.update(matrix, X, reached, moved, roots) is not None:
        return kept.F, kept
    refilled = kept.refill(matrix, X, reached, floor, roots, moved) \
        if kept is not None else None
    kept = refilled or KeptFill.fill(matrix, X, reached, floor, roots)
    return kept.F, kept


def spreading_fill(graph, X: np.ndarray, reached: np.ndarray, floor: float) -> np.ndarray:
    """Spreading's scores ``X`` with the far rows filled afresh
    (:func:`activeprop.fill.fill_below_precision`). On a sparse graph the fill weighs the
    normalised affinity the solve multiplies with, by the square roots of the degrees
    (the affinity's weights, row by row): a spreading model holds one matrix, not two."""
    from .fill import fill_below_precision  # compiled: imported by the solves that fill

    if not graph.is_sparse:
        return fill_below_precision(graph.operator("symmetric"), X, reached, floor)
    return fill_below_precision(_spreading_matrix(graph), X, reached, floor,
                                graph.spreading_roots())


def _solve_spreading(graph, codes: np.ndarray, n_classes: int, alpha: float,
                     reached: np.ndarray, rtol: float, max_iter: int,
                     warm: WarmStart | None, leaves_room: bool = True, class_room: int = 0,
                     new_class: bool = False, pushes_new_classes: bool = True):
    """Spreading's solve from ``warm`` (usable for these classes, or None): the carried-over
    residual pushed through the graph where the new labels are, while that pays, and a
    global conjugate-gradient solve otherwise (after a short push, its head start: see
    :data:`HEAD_START_BUDGET`). Returns X, R, the squared norms of R's
    columns, n_iter, converged, the timing the next round decides by (for
    :func:`_next_path`, or :func:`_after_new_class` when the labels bring a
    ``new_class``) and the rows where X changed when only a push moved it (else
    None). ``leaves_room``, ``class_room``: as :func:`solve_converged`'s;
    ``pushes_new_classes``: whether a new class is pushed (else it is solved globally,
    as the last round of a pause; the known classes' pushes go on after it)."""
    pause = max(warm.pause - 1, 0) if warm is not None else 0
    solve_seconds = warm.solve_seconds if warm is not None else None
    backoff = warm.backoff if warm is not None and warm.backoff is not None else PUSH_PAUSE
    debt = warm.debt if warm is not None else 0.0
    moved = np.empty(0, dtype=np.int64)  # the rows where X changed, while only a push moved it
    gave_up = False  # a push of a new class gave up within its budget
    if warm is not None and _reach_kept(warm, reached):
        X, R, norms2, changed = warm.take_with_labels(codes, 1 - alpha)
    else:
        X, R, norms2, changed = (warm.take_solution() if warm is not None else
                                 one_hot_codes(codes, n_classes, room=class_room)), None, None, None
    pushes = norms2 is not None and graph.is_sparse
    # the round after a new class solved globally pushes again: the solve leaves it room
    end_of_pause = 1 if leaves_room else DEEPER_SOLVE_NEXT
    if pushes and new_class and not pause and not pushes_new_classes:
        pause = end_of_pause
    start = time.perf_counter()  # of the global path, its head start included
    rhs_norms = _rhs_norms(codes, n_classes, alpha)  # what the push and the solve aim below
    room = _depth(alpha, pause) if graph.is_sparse else 1.0
    if pushes:
        # A local update goes as deep as a global solve before one. A head start aims at the
        # tolerance, also before the pause's last solve, which goes deeper: a push aimed
        # there gave up before its first row, since the other classes' residuals, which it
        # does not move, stood above that depth (at 1,000,000 items and alpha 0.9 that
        # solve then started from the new label's whole residual, 4,000-10,000 times the
        # tolerance: 15-17 iterations of every class, 0.8-1.6 s; docs/benchmarks.md).
        # A local update that leaves no room stops at the tolerance: at 1,000,000 items and
        # alpha 0.9 such pushes took a median of 71 ms (11-301), against 201 ms (26-700)
        # for the same labels' pushes aimed below it (docs/benchmarks.md, twenty-eighth
        # session).
        shallow = not pause and not leaves_room
        met, moved = _push_new_labels(graph, alpha, X, R, norms2, changed, rhs_norms,
                                      (1.0 if pause or shallow else room) * rtol,
                                      HEAD_START_BUDGET if pause else PUSH_BUDGET)
        if met and (not pause or room == 1.0):  # a global solve would not iterate
            # (a head start that met it: not a local update's cost, the pause goes on; before
            # the pause's last solve, that solve still goes deeper)
            path = None if pause else "shallow push" if shallow else "push"
            timing = (pause, solve_seconds, path, time.perf_counter() - start, backoff, debt)
            return X, R, _pool_column_dots(R, R), 0, True, timing, moved
        if not pause:  # a local update that gave up: what it cost is not the global path's
            if new_class:  # (the known classes' pushes go on after it: _after_new_class)
                pause, gave_up = end_of_pause, True
            else:
                pause, backoff, debt = backoff, _longer(backoff), 0.0
            room, start = _depth(alpha, pause), time.perf_counter()
    # B = (1 - alpha) Y, passed inline (the solve lets it go once read: 80 MB of a cold
    # solve at 1,000,000 x 10); none with the residual carried over (only its columns'
    # norms are read)
    X, R, n_iter, converged, squares = conjugate_gradient(
        _spreading_system(graph, alpha),
        one_hot_codes(codes, n_classes, 1 - alpha) if R is None else None, X,
        diagonal=reached.astype(np.float64), rtol=rtol, max_iter=max_iter, R0=R,
        overshoot=room, rhs_norms=rhs_norms, squares0=norms2)
    # The global path's cost to judge a push by: a warm solve to the tolerance, as while
    # pushing pauses. Not one that goes below it for the push after it (that is the local
    # path's cost: at 1,000,000 items and alpha 0.9, 17 iterations against 3-5 after a head
    # start), nor a cold one: a labeler reopened at 1,000,000 items timed its opening
    # solve (1-2 s), then pushed every label for a median of 470 ms, against about 220 ms
    # on the global path (/tmp script).
    # The deeper solve that ends a pause is timed too: what it costs beyond a global round
    # is the price of the local updates after it. (Not one that starts without the carried
    # residual, as after a label in a component no label reached: a cold solve's cost.)
    if warm is None:
        path = None
    elif room < 1.0:
        path = "deeper solve" if pushes else None
    else:
        path = "solve" if n_iter else None
    if new_class:  # not the known classes' global path (_after_new_class)
        path = "gave up" if gave_up else None
    timing = (pause, solve_seconds, path, time.perf_counter() - start if path else None,
              backoff, debt)
    # a push that gave up still moved X; a global solve of no iteration moved nothing more
    return X, R, squares, n_iter, converged, timing, None if n_iter else moved


def _depth(alpha: float, pause: int) -> float:
    """How far below the tolerance a solve goes (a fraction of it), ``pause`` rounds
    before the next local update: room for that update, :func:`local_room`, when it comes
    next round (the last solve of a pause too: one left at the tolerance made the push
    that ends the pause fail at once, and pause again, for good); else the tolerance."""
    return local_room(alpha) if pause <= 1 else 1.0


def _rhs_norms(codes: np.ndarray, n_classes: int, alpha: float) -> np.ndarray:
    """The norms of the columns of spreading's right-hand side ``B = (1 - alpha) Y``: the
    square roots of the label counts, scaled."""
    return (1 - alpha) * np.sqrt(np.bincount(codes[codes >= 0], minlength=n_classes))


# A global solve goes below the tolerance, so that the rounds after it can update locally
# (push) for a while before the residual they leave calls for the next one: this far, and
# one hop of the push further (local_room).
LOCAL_ROOM = 0.25


def local_room(alpha: float) -> float:
    """How far below the tolerance a push, and the global solve before one, take the
    residual: :data:`LOCAL_ROOM`, and one hop of the push further (a residual pushed one
    hop shrinks by ``alpha``), so that the deeper target costs a push about one more hop at
    any ``alpha``. At alpha 0.2, LOCAL_ROOM alone left the solver's error deciding the
    entropy queries of 6 of 20 rounds on digits-aug:20000 and 2 of 20 at 70,000 x 784
    (against an exact solve's, filled below the same floor); with the hop, none of them,
    at 2 ms more a round (issue 18 item 4; ``bench/bench_query_agreement.py``)."""
    return LOCAL_ROOM * alpha


# A local update gives up after reading this many times the graph's entries (two global
# products; a global solve takes ten or more), and after one that gave up or took longer
# than the last global solve, the next rounds go global for this many before trying again;
# twice as many after each further one that loses, up to MAX_PUSH_PAUSE (the global solve
# that ends a pause goes deeper, and a push that loses costs more than a global round: at
# 1,000,000 items and alpha 0.9 the pair took 1.2-1.6 s every 10 labels, against about
# 0.2 s a label on the global path; /tmp script, docs/benchmarks.md). The lengths start
# over once the pushes after a pause have paid for the deeper solve that ended it
# (_next_path).
PUSH_BUDGET, PUSH_PAUSE, MAX_PUSH_PAUSE = 2.0, 8, 64
# The pause a round leaves when the next round's solve must go deeper (the last round of a
# pause): the next round counts it down to 1 (_depth).
DEEPER_SOLVE_NEXT = 2


def _longer(pause: int) -> int:
    """The pause after one of length ``pause`` that ended in a push that lost again."""
    return max(pause, min(2 * pause, MAX_PUSH_PAUSE))


# While pushing pauses, the new labels' residual is still pushed a little before the global
# solve: the first passes of a push take most of a new label's residual off the rows near
# it for a small part of a product, and the solve then starts from a residual that norm
# smaller. The labeler at 1,000,000 items and alpha 0.9, first 15 labels: conjugate
# gradients of 13-16 iterations without it, 9-11 / 6-8 / 3-5 with a push of 0.03 / 0.1 /
# 0.3 times the graph's entries (5-10 / 16-29 / 50-82 ms); a refit's median 452 / 407 /
# 364 / 372 ms (``/tmp`` script, docs/benchmarks.md). The smaller of the two best budgets
# costs least where the head start does not help.
HEAD_START_BUDGET = 0.1


def keeps_pushing(met: bool, push_seconds: float, solve_seconds: float | None) -> bool:
    """Whether the next round updates locally again: the push met the tolerance, and it
    took no longer than the last global solve on this graph (both timed on this machine,
    each with the fill after it; on a small pool a few global products cost less than the
    push's bookkeeping)."""
    return met and push_seconds <= (np.inf if solve_seconds is None else solve_seconds)


def _next_path(timing: tuple, fill_seconds: float) -> tuple[int, float | None, int, float]:
    """The next round's pause before pushing again, the last global solve's seconds, the
    next pause's length and the debt of the local updates, from this round's ``timing``
    (:func:`_solve_spreading`: the pause so far, the last global solve's seconds, the path
    this round took and its seconds, the next pause's length, the debt so far) and its
    fill's.

    Each path is judged with the fill after it. After a global solve the far rows are
    filled again from the last fill (or afresh); after a push the kept fill is updated
    where the push moved the scores, or filled again when that would not pay. Early in
    labeling at alpha 0.9 the push alone beat the global solve but its fill did not: at
    1,000,000 items, the first 15 labels' refits took a median of 510 ms choosing by the
    push alone, 452 ms solving globally every time (``/tmp`` script, docs/benchmarks.md).

    A push that stopped at the tolerance (``"shallow push"``) is followed by a deeper solve,
    as the end of a pause (:data:`DEEPER_SOLVE_NEXT`; see :func:`_after_shallow_push`).

    The local updates after a pause are paid for by the deeper solve that ends it: what
    that solve costs beyond a global round is their debt, and each push that beats the
    global path pays back what it saves. The lengths of the pauses start over only once
    the debt is paid. At 1,000,000 items and alpha 0.9 that solve took 1-2 s, the pushes
    after it saved about 0.13 s each and a few of them paid before one lost. The refits of
    labels 16-60 took a mean of 380-420 ms starting the lengths over after any push that
    paid (the deeper solve every 8-16 labels), 340-351 ms once the debt is paid, 284 ms
    never pushing again (the same labels replayed; ``/tmp`` script, docs/benchmarks.md).
    """
    pause, solve_seconds, path, seconds, backoff, debt = timing
    if path in ("push", "shallow push"):
        if solve_seconds is None:  # no warm global solve timed yet: pause, and time one
            # (after a push that stopped at the tolerance, one global round times it: the
            # deeper solve after that round is run while nobody waits)
            return DEEPER_SOLVE_NEXT + 1 if path == "shallow push" else backoff, None, \
                backoff, 0.0
        wins = keeps_pushing(True, seconds + fill_seconds, solve_seconds)
        if path == "shallow push":
            return _after_shallow_push(wins, solve_seconds - seconds - fill_seconds,
                                       solve_seconds, backoff, debt)
        if wins:
            debt = max(debt - (solve_seconds - seconds - fill_seconds), 0.0)
            return 0, solve_seconds, backoff if debt else PUSH_PAUSE, debt
        return backoff, solve_seconds, _longer(backoff), 0.0
    if path == "solve":
        return pause, seconds + fill_seconds, backoff, debt
    if path == "deeper solve" and solve_seconds is not None:
        return pause, solve_seconds, backoff, max(seconds + fill_seconds - solve_seconds, 0.0)
    return pause, solve_seconds, backoff, debt


def _after_new_class(timing: tuple, fill_seconds: float,
                     pushes: bool) -> tuple[int, float | None, int, float, bool]:
    """:func:`_next_path`'s results after a round whose labels brought a new class, and
    whether the next new class is pushed (``pushes``: whether this one was tried).

    A new class's column is solved from zero, a cost no global round of the known
    classes was timed on: at 1,000,000 items and alpha 0.9 its push took 200-270 ms
    against 110-190 ms for a head start and conjugate gradients to the tolerance, and as
    a push that lost it paused the pushes of the known classes for eight labels. So such
    a round leaves the known classes' pause, lengths and debt as they were; a push of a
    new class that loses to the last global round (or gives up) has the next new classes
    solved globally, as the last round of a pause (:func:`_solve_spreading`). There the
    labels of new classes took a median of 356-431 ms against 473 (all pushed), and the
    slowest label after reopening 426-457 ms against 699-1,209 (docs/benchmarks.md,
    thirty-first session). At alpha 0.2 a new class's push stays near its label, and new
    classes go on being pushed."""
    pause, solve_seconds, path, seconds, backoff, debt = timing
    if path in ("push", "shallow push"):
        pushes = keeps_pushing(True, seconds + fill_seconds, solve_seconds)
        if path == "shallow push":  # (a push comes at pause 0, and leaves it there)
            pause = DEEPER_SOLVE_NEXT
    elif path == "gave up":
        pushes = False
    return pause, solve_seconds, backoff, debt, pushes


def _after_shallow_push(wins: bool, saved: float, solve_seconds: float, backoff: int,
                        debt: float) -> tuple[int, float, int, float]:
    """:func:`_next_path` after a push that stopped at the tolerance, and ``wins`` or not
    against the last global solve (``solve_seconds``), by ``saved`` seconds. Its deeper
    solve is run while nobody waits (:meth:`GraphLabeling.deepened`), so a push that loses
    costs only what it lost: the pushes keep a balance, what they lost less what they
    saved (the debt, down to minus one global round), and a push that loses pauses
    pushing once the balance is above one global round (a push that wins never does).
    At 1,000,000 items and alpha 0.9 about one push in four lost by 30-60 ms, when it
    moved the fill of too many rows for an update and the fill was weighed again;
    pausing for eight labels after each such push, the refits of labels 16-60 took a
    median of 300 ms, the pushes 110-240 ms (docs/benchmarks.md, twenty-eighth session)."""
    debt -= saved
    if wins or debt <= solve_seconds:
        return DEEPER_SOLVE_NEXT, solve_seconds, backoff if debt > 0 else PUSH_PAUSE, \
            max(debt, -solve_seconds)
    return backoff, solve_seconds, _longer(backoff), 0.0


def _push_new_labels(graph, alpha: float, X: np.ndarray, R: np.ndarray, norms2: np.ndarray,
                     changed: np.ndarray, rhs_norms: np.ndarray, rtol: float,
                     budget: float):
    """Update the solution ``X``, residual ``R`` and its squared column norms ``norms2``
    locally, in place, from the rows ``changed`` where the labels changed
    (:mod:`activeprop.push`), reading at most ``budget`` times the graph's entries.
    Returns whether the residual meets the relative tolerance ``rtol`` of the norms
    ``rhs_norms`` of B's columns (as a global solve's), and the rows where X moved."""
    from .push import push_residual

    matrix = _spreading_matrix(graph)
    met, _, moved = push_residual(matrix, alpha, X, R, norms2, rtol * rhs_norms, changed,
                                  max_edges=int(budget * matrix.nnz))
    return met, moved


def _spreading_matrix(graph):
    """The CSR matrix of spreading's normalised affinity ``S``, which the push walks."""
    S = graph.operator("symmetric-spreading")
    return S.matrix if isinstance(S, ThreadedMatrix) else S


def green_columns(graph, Y: np.ndarray, items: np.ndarray, alpha: float,
                  rtol: float = 1e-6, max_iter: int = 1000):
    """Spreading scores and the Green's function columns of ``items``, in one block solve.

    Solves ``(I - alpha S) [F G] = (1 - alpha) [Y E]`` with ``E`` the unit columns of
    ``items``: F are the scores of the labels Y, and column k of G is what labeling
    ``items[k]`` adds to its class's scores (the solution is linear in the labels).
    Returns F (n_items, n_classes) and G (n_items, len(items)), in pool order.
    """
    units = np.zeros((len(Y), len(items)))
    units[items, np.arange(len(items))] = 1.0
    B = (1 - alpha) * graph.to_graph_order(np.hstack([Y, units]))
    X, *_ = conjugate_gradient(_spreading_system(graph, alpha), B, B.copy(),
                               diagonal=np.ones(len(B)), rtol=rtol, max_iter=max_iter)
    X = graph.to_pool_order(np.maximum(X, 0.0))
    return X[:, :Y.shape[1]], X[:, Y.shape[1]:]


def solve_poisson(graph, codes: np.ndarray, *, rtol: float, max_iter: int,
                  classes: np.ndarray, warm: WarmStart | None = None):
    """Poisson learning (Calder, Cook, Thorpe & Slepcev, ICML 2020).

    Solves ``L u = b`` with ``L = D - W`` the graph Laplacian and ``b`` each label's one-hot
    row minus the mean label row (per connected component, so every component's sources sum
    to zero and the system is consistent), then fixes the free constant of each component
    by a degree-weighted mean of zero. Unlike Laplace propagation its solution does not
    flatten to a constant between very few labels, so it stays accurate at one label per
    class. Items of components without labels keep zero scores. The labels are ``codes``,
    as :func:`solve_converged`'s.

    Returns u (n_items, n_classes) in pool order, n_iter, converged and a WarmStart.
    """
    codes = graph.labels_to_graph_order(codes)
    Y = one_hot_codes(codes, len(classes))
    components, degrees = graph.components(), graph.operator("degrees")
    labeled = codes >= 0
    B = np.zeros_like(Y)
    for component in np.unique(components[labeled]):
        members = labeled & (components == component)
        B[members] = Y[members] - Y[members].mean(axis=0)
    reached = _reached(graph, labeled)
    mask = reached.astype(np.float64)[:, None]
    system = ("poisson", None, np.packbits(reached).tobytes())
    # A new class restarts cold, as before: starting warm moved the real-data suite's
    # predictions at the solver's tolerance (mnist-5k, 10 seeds), not yet judged on 20.
    start = warm.X * mask if warm is not None and warm.usable(graph, classes, system) \
        else np.zeros_like(B)
    apply, diagonal = _laplacian_system(graph, mask)
    X, R, n_iter, converged, _ = conjugate_gradient(apply, B, start, diagonal=diagonal,
                                                    rtol=rtol, max_iter=max_iter)
    U = X.copy()
    for component in np.unique(components[reached]):
        members = components == component
        weights = degrees[members][:, None]
        U[members] -= (weights * U[members]).sum(axis=0) / weights.sum()
        if not B[members].any():
            # Every label of this component is one class: the sources cancel and Poisson
            # learning has nothing to say but that class, for the whole component.
            U[members] = Y[members & labeled].mean(axis=0)
    return graph.to_pool_order(U), n_iter, converged, WarmStart(graph, classes, system, codes, X,
                                                                 R)


def _product(operator, F: np.ndarray, nonzero_rows: np.ndarray | None) -> np.ndarray:
    """``operator @ F``; when only ``nonzero_rows`` of F are non-zero (the first step, where
    F is the one-hot labels) a dense operator needs only those columns."""
    if isinstance(operator, ExactProducts):
        return operator.multiply(F, nonzero_rows)
    if nonzero_rows is not None and isinstance(operator, np.ndarray):
        return operator[:, nonzero_rows] @ F[nonzero_rows]
    return np.asarray(operator @ F)


def _poisson_distributions(U: np.ndarray) -> np.ndarray:
    """Poisson scores (any sign, mean zero) as distributions: a softmax at the scale of the
    scores' spread, so the argmax is Poisson learning's and the confidence reflects how far
    the best class is ahead. Rows that are exactly zero (unreached) stay zero."""
    zero = ~U.any(axis=1)
    return poisson_softmax(U, float(U[~zero].std()) if (~zero).any() else 1.0)


def poisson_softmax(U: np.ndarray, scale: float, out: np.ndarray | None = None) -> np.ndarray:
    """The softmax of :func:`_poisson_distributions` at a given spread ``scale`` (the pool's,
    when ``U`` is a part of it), into ``out`` (``U`` itself for a softmax in place). Rows
    that are exactly zero stay zero."""
    zero = ~U.any(axis=1)
    P = np.subtract(U, U.max(axis=1, keepdims=True), out=out)
    P /= scale / 4 or 1.0
    np.exp(P, out=P)
    P[zero] = 0.0
    return P


def one_hot(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(n_items, n_classes): 1 where item i is labeled ``classes[c]``, 0 elsewhere."""
    return (y[:, None] == classes[None, :]).astype(np.float64)


def distributions(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative scores as row distributions, and the mask of all-zero (unreached)
    rows, which become uniform."""
    unreached = F.sum(axis=1) == 0
    P = _normalize_rows(F)
    P[unreached] = 1.0 / F.shape[1]
    return P, unreached


def _normalize_rows(F: np.ndarray) -> np.ndarray:
    """Divide each row by its sum; all-zero rows stay zero."""
    sums = F.sum(axis=1, keepdims=True)
    sums[sums == 0] = 1
    return F / sums


VARIANTS = ("spreading", "propagation", "poisson")


def validate_params(variant: str, *, kernel, gamma, n_neighbors, alpha, max_iter, tol,
                    solver, rtol) -> None:
    """Check a graph model's parameters (:func:`activeprop.params.check_params`); alpha
    only for spreading, where it is used."""
    check_params(kernel=kernel, gamma=gamma, n_neighbors=n_neighbors, max_iter=max_iter,
                 tol=tol, solver=solver, rtol=rtol)
    if variant == "spreading":
        check_params(alpha=alpha)


class Deepened(NamedTuple):
    """A deeper solve run between two fits (:meth:`GraphLabeling.deepened`): its warm
    start, and (kept fill, its version, pool distributions, True) for the next fit to
    update, in place (True: nobody else holds them)."""

    warm: WarmStart
    distributions: tuple | None


class GraphLabeling:
    """Label distributions of a pool from its partial labels, on a graph already built.

    The engine behind the scikit-learn estimators (:mod:`activeprop.estimators`) and the
    active learner's graph models; it needs no scikit-learn, so a command that only runs
    rounds does not pay for importing it.

    Parameters
    ----------
    variant : {"spreading", "propagation", "poisson"}
    alpha : float or None
        Clamping factor of spreading.
    max_iter, tol, solver, rtol :
        As :class:`activeprop.estimators.LabelSpreading`'s.
    warm_start : bool
        Iterate from the graph's cached power columns (dense spreading graphs).
    class_priors : "uniform" or dict, optional
        Poisson learning only: how common each class is (class -> share), declared by the
        user; the predictions are shifted per class to match (:mod:`activeprop.priors`).

    After :meth:`fit`: ``classes_``, ``label_distributions_``, ``transduction_``,
    ``confidence_`` (each item's probability of its predicted class), ``unreached_``,
    ``n_iter_``, ``converged_``, ``scores_`` (before normalisation),
    ``class_offsets_`` (what the class priors added to each class's scores; zeros without
    priors), ``warm_`` (the solve a later fit on the same graph can start from) and
    ``distributions_version_`` (a :class:`activeprop.row_versions.RowVersion`: which rows
    of the distributions may differ from an earlier fit's).

    ``leaves_room`` (True unless a caller sets it): whether spreading's local updates go
    below the tolerance, so that the next one can follow; a caller that runs the deeper
    solve between fits instead (:meth:`deepened`, as the labeler does while the person
    looks) sets it to False.

    ``class_room`` (0 unless a caller sets it): how many classes a converged spreading
    solve's (items x classes) arrays have room for, so that a new class widens them in
    place (:mod:`activeprop.column_room`); the labeler sets it to the project's classes.
    """

    def __init__(self, variant: str, *, alpha: float | None, max_iter: int, tol: float,
                 solver: str, rtol: float, warm_start: bool, class_priors=None):
        check_model(variant, class_priors)
        self.variant, self.alpha, self.max_iter, self.tol = variant, alpha, max_iter, tol
        self.solver, self.rtol, self.warm_start = solver, rtol, warm_start
        self.class_priors = class_priors
        self.warm_: WarmStart | None = None
        self.leaves_room = True  # see the class's docstring
        self.class_room = 0  # see the class's docstring
        # (kept fill, its version, distributions, whether only this object holds them): what
        # the last fit's came from
        self._last_distributions = None
        self._spare = None  # the distributions before the last ones (_spare_distributions)
        self._spare_warm = None  # the warm start the last adopt() replaced (take_spare_warm)
        self._writes_over = None  # distributions the next fit may write over (follows)

    def fit(self, graph: Graph, y: np.ndarray, warm: WarmStart | None = None) -> "GraphLabeling":
        """Fit on the partial labels ``y`` (-1 = unlabeled) of the graph's pool; ``warm``
        is a previous fit's ``warm_`` (cg and Poisson start from its solution)."""
        self.classes_ = np.unique(y[y != -1])
        if len(self.classes_) == 0:
            raise UserError("y has no labeled item: mark at least one item with its class "
                            "(unlabeled items are -1)")
        in_order_of = None  # F's rows are the pool's, or the graph's order's
        if self.variant == "poisson":
            F, self.n_iter_, self.converged_, self.warm_ = solve_poisson(
                graph, class_codes(y, self.classes_), rtol=self.rtol, max_iter=self.max_iter,
                warm=warm, classes=self.classes_)
        elif self.solver == "cg":
            F, self.n_iter_, self.converged_, self.warm_ = self._solve_converged(graph, y, warm)
            in_order_of = graph  # the converged solve's scores are in the graph's order
        else:
            Y = one_hot(y, self.classes_)
            columns = power_columns(graph) if self.reuses_powers(graph) else None
            operator = graph.operator(self.variant) if graph.is_sparse else \
                dense_products(graph, self.variant)
            F, self.n_iter_, self.converged_ = iterate(
                operator, Y, variant=self.variant, alpha=self.alpha,
                max_iter=self.max_iter, tol=self.tol, columns=columns)
        self._scores = (F, in_order_of)
        self._set_distributions(F, in_order_of)
        return self

    @property
    def scores_(self) -> np.ndarray:
        """The fit's scores before normalisation, in pool order."""
        F, graph = self._scores
        return F if graph is None else graph.to_pool_order(F)

    @property
    def confidence_(self) -> np.ndarray:
        """Each item's probability of its predicted class."""
        if self._confidence is None:
            self._confidence = self.label_distributions_.max(axis=1)
        return self._confidence

    def can_deepen(self) -> bool:
        """Whether the next fit starts with a deeper solve that :meth:`deepened` can run
        before it: the last fit solved spreading by conjugate gradients and left the next
        round a deeper solve (after a local update that stopped at the tolerance, or at the
        end of a pause in pushing)."""
        warm = self.warm_
        return (self.variant == "spreading" and self.solver == "cg" and warm is not None
                and warm.R is not None and warm.pause == DEEPER_SOLVE_NEXT)

    def deepened(self, graph: Graph, y: np.ndarray, warm: WarmStart) -> "Deepened":
        """The deeper solve the next fit would start with (:meth:`can_deepen`), run now from
        ``warm``, a copy of the last fit's warm start (:meth:`WarmStart.copy`, taken while no
        fit runs), on the labels ``y`` of the last fit; for :meth:`adopt`. The next fit then
        updates locally from it: a labeler runs this while the person looks at the next
        item, and at 1,000,000 items and alpha 0.9 its refits went the local path after
        nearly every label (docs/benchmarks.md, twenty-eighth session). The last fit's
        results are not touched."""
        from .pool_distributions import pool_distributions

        debt = warm.debt
        F, _, _, deeper = self._solve_converged(graph, y, warm)
        deeper = replace(deeper, debt=debt)  # it cost nobody's time: nothing to pay back
        kept = deeper.fill
        if kept is None:
            return Deepened(deeper, None)
        results = pool_distributions(F, graph.pool_positions())  # held by nobody else
        return Deepened(deeper, (kept, kept.version, results, True))

    def _solve_converged(self, graph: Graph, y: np.ndarray, warm: WarmStart | None) -> tuple:
        """:func:`solve_converged` of this model's system on the labels ``y``, from
        ``warm``."""
        return solve_converged(graph, class_codes(y, self.classes_), variant=self.variant,
                               alpha=self.alpha, rtol=self.rtol, max_iter=self.max_iter,
                               classes=self.classes_, warm=warm, leaves_room=self.leaves_room,
                               class_room=self.class_room)

    def adopt(self, deepened: "Deepened") -> None:
        """Start the next fit from ``deepened`` (:meth:`deepened`, with no fit since the one
        it started from): its solve, its kept fill and the distributions that fill gave."""
        self._spare_warm = self.warm_  # its arrays are free once no result holds them
        self.warm_, self._last_distributions = deepened.warm, deepened.distributions

    def follows(self, distributions: np.ndarray, version: RowVersion,
                writes_over: bool = False) -> None:
        """Let the next fit name the rows it moves from ``distributions``, an earlier fit's
        with their ``version`` (``distributions_version_``), held elsewhere: a cluster's
        lone block keeps them between its fits, not this object. With ``writes_over`` the
        next fit writes its own over them when they have its shape (nothing else reads
        them any more: the lone block's next fit replaces them)."""
        self.label_distributions_, self.distributions_version_ = distributions, version
        self._writes_over = distributions if writes_over else None

    def take_spare_warm(self) -> WarmStart | None:
        """The warm start the last :meth:`adopt` replaced, taken: a :meth:`WarmStart.copy`
        of the next one for :meth:`deepened` goes into those of its arrays that no result
        holds any more (after the next fit, all of them), instead of fresh memory."""
        spare, self._spare_warm = self._spare_warm, None
        return spare

    def held_out(self, graph: Graph, y: np.ndarray,
                 folds: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """The labeled items' distributions from fits without their fold (``folds`` split
        the positions of the labeled items), read off the power columns without refitting;
        None when the last fit on the graph was not this one's iteration on ``y`` (refit).
        Returns the classes and an (n_labeled, n_classes) array."""
        if not self.reuses_powers(graph):
            return None
        classes = np.unique(y[y != -1])
        scores = power_columns(graph).held_out(one_hot(y, classes), folds, self.alpha)
        return None if scores is None else (classes, distributions(scores)[0])

    def reuses_powers(self, graph: Graph) -> bool:
        """Whether a fit iterates from power columns kept with the graph: a warm-started
        spreading fit on a dense graph small enough to hold the powers."""
        return (self.warm_start and self.variant == "spreading" and self.solver == "iterate"
                and not graph.is_sparse and graph.n_items <= MAX_POWER_ITEMS)

    def _pool_distributions(self, F: np.ndarray, graph: Graph,
                            previous: np.ndarray | None) -> tuple:
        """:func:`activeprop.pool_distributions.pool_distributions` of a converged solve's
        scores; when the last fit's scores were a kept fill (:mod:`activeprop.kept_fill`)
        and this fit updated it once, only the rows that update changed are computed
        again (the rest of the pool's 1,000,000 x 10 took 25-250 ms of a labeler's refit),
        in place when nothing else holds them (a deeper solve's, :meth:`adopt`: copying
        the rest took 15-20 ms more). Otherwise they are computed afresh, over the
        ``previous`` ones when the caller gave them up (:meth:`follows`). Returns the
        results and the rows that moved since the ``previous`` distributions (the last
        fit's; None when unknown: every row)."""
        from .pool_distributions import (moved_rows, pool_distributions,
                                         pool_distributions_over, update_pool_distributions)

        kept = self.warm_.fill if self.warm_ is not None else None
        last, self._last_distributions = self._last_distributions, None
        out = self._spare_distributions(F.shape)
        results, moved = None, None
        if kept is not None and last is not None and last[0] is kept and \
                last[1] == kept.version - 1:
            items = graph.order[kept.changed]
            results = update_pool_distributions(F, kept.changed, items, last[2], out,
                                                in_place=last[3])
            if results is not None and not last[3]:  # (else updated from a deeper solve's)
                moved = items
        writes_over, self._writes_over = self._writes_over, None
        if results is None and previous is not None and previous is writes_over and \
                previous.shape == F.shape and previous.flags.c_contiguous:
            results, moved = pool_distributions_over(F, graph.pool_positions(), previous)
        if results is None:
            results = pool_distributions(F, graph.pool_positions(), out)
        if moved is None and previous is not None and previous.shape == results[0].shape \
                and previous is not results[0]:
            moved = moved_rows(results[0], previous)
        if kept is not None:  # (the caller holds these: not changed in place)
            self._last_distributions = (kept, kept.version, results, False)
        return results, moved

    def _spare_distributions(self, shape: tuple) -> np.ndarray | None:
        """The distributions of the fit before the last one, to write this fit's into,
        when nothing but this object holds them any more (a labeler's last ones, a
        caller's, are never written over); else None. The last fit's become the next
        fit's spare. Fresh memory for them (80 MB at 1,000,000 x 10, above what the
        allocator recycles) took page faults on every other refit of the labeler, and at
        times 250-350 ms of the kernel compacting memory for huge pages (``/tmp`` script,
        docs/benchmarks.md). A spare with room for more classes also takes the
        distributions of a fit with more classes (:func:`activeprop.column_room.spare_view`)."""
        out = spare_view(self, "_spare", shape, np.float64)
        self._spare = getattr(self, "label_distributions_", None)
        return out

    def _set_distributions(self, F: np.ndarray, in_order_of: Graph | None = None) -> None:
        """Normalise scores into distributions; flag and uniformise unreached rows. Scores
        in ``in_order_of``'s order (a converged spreading or propagation solve's: no class
        offsets) are put in pool order in the same compiled pass."""
        self.class_offsets_ = np.zeros(F.shape[1])
        last_version = getattr(self, "distributions_version_", None)
        self.distributions_version_ = RowVersion.new()  # unless the rows moved are known
        if in_order_of is not None:
            (self.label_distributions_, self.unreached_, best, self._confidence), moved = \
                self._pool_distributions(F, in_order_of,
                                         getattr(self, "label_distributions_", None))
            self.transduction_ = self.classes_[best]
            if last_version is not None:
                self.distributions_version_ = last_version.after(moved, len(F))
            return
        if self.variant == "poisson":
            if self.class_priors is not None:
                self.class_offsets_ = class_offsets(F, shares_for(self.class_priors,
                                                                  self.classes_))
                F = np.where(F.any(axis=1, keepdims=True), F + self.class_offsets_, 0.0)
            F = _poisson_distributions(F)
        self.label_distributions_, self.unreached_ = distributions(F)
        self.transduction_ = self.classes_[np.argmax(self.label_distributions_, axis=1)]
        self._confidence = None  # read off the distributions when asked
