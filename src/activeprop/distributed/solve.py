"""Conjugate gradients on a graph held in row blocks, and the steps around the solve.

The same algorithm as :func:`activeprop.propagation.conjugate_gradient`, column for column:
Jacobi-preconditioned CG per label column, a column frozen once it meets its tolerance.
Per iteration a block receives its halo of the search direction, and the client receives
one number per column and block (the dot products); vectors never leave the workers.
"""

from __future__ import annotations

from operator import getitem

import numpy as np

from .halo import stacked


def column_dots(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The dot product of each column of A with the same column of B."""
    return np.einsum("ij,ij->j", A, B)


def spreading_product(S, alpha: float, own: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """A block's rows of ``(I - alpha S) P``, given its rows of P (``own``) and them followed
    by its halo's (``whole``, the columns of S)."""
    product = np.asarray(S @ whole)
    product *= -alpha
    product += own
    return product


def laplacian_product(W, degrees: np.ndarray, mask: np.ndarray, own: np.ndarray,
                      whole: np.ndarray) -> np.ndarray:
    """A block's rows of ``mask (D - W) P`` (``own`` and ``whole`` as
    :func:`spreading_product`'s)."""
    product = np.asarray(W @ whole)
    product *= -1.0
    product += degrees[:, None] * own
    product *= mask[:, None]
    return product


def with_curvature(product, n_extras: int, matrix, *arguments):
    """``product`` for one block, given its extras, its rows of a direction and the halo's
    rows of it (``arguments``), and its columns' dot products with the direction (the
    block's share of the CG step's denominator)."""
    extras, direction, parts = (arguments[:n_extras], arguments[n_extras],
                                arguments[n_extras + 1:])
    return _applied(product, matrix, extras, direction, stacked(direction, *parts))


def _applied(product, matrix, extras, direction, whole):
    """(``product`` of ``direction``, its columns' dot products with the direction)."""
    applied = product(matrix, *extras, direction, whole)
    return applied, column_dots(direction, applied)


def turned_rows(p, state, scalars: dict, positions: np.ndarray) -> np.ndarray:
    """The rows ``positions`` of a block's next search direction (:func:`turn`, on those
    rows only): what another block's halo needs of it."""
    direction = np.multiply(np.take(p, positions, axis=0), scalars["beta"])
    direction += np.take(state[2], positions, axis=0)
    return direction


def turn_and_apply(product, n_extras: int, matrix, *arguments):
    """A block's next search direction (from its last one, its state and the scalars,
    given after the ``n_extras`` extras) and, with the halo's rows of it, ``A`` applied to
    it: (direction, product, curvature). One task where there were two."""
    extras, (p, state, scalars), parts = (arguments[:n_extras], arguments[n_extras:n_extras + 3],
                                          arguments[n_extras + 3:])
    whole = turn(p, state, scalars, parts)
    direction = whole[:len(p)]
    applied, curvature = _applied(product, matrix, extras, direction, whole)
    return direction, applied, curvature


def preconditioned(r: np.ndarray, inverse: np.ndarray, unit_diagonal: bool) -> np.ndarray:
    """``z``: a block's residual times its inverse diagonal. With ``unit_diagonal`` (the
    system's diagonal is 1 on the rows it keeps, 0 on those it leaves out, as spreading's)
    it is ``r`` itself: the rows left out hold no label and no edge to a row kept, so their
    residual is zero and ``r * inverse`` is ``r``, bit for bit. Not storing it saves one
    array per block in every iteration's generation (40 MB at 500,000 x 10)."""
    return r if unit_diagonal else r * inverse[:, None]


def start_state(B, AX, inverse, unit_diagonal: bool):
    """A block's (r, z) before the first iteration, its sums (r.z, r.r) and ``B.B``,
    given its rows of B and of A X."""
    r = B - AX[0]
    z = preconditioned(r, inverse, unit_diagonal)
    return r, z, np.concatenate([column_dots(r, z), column_dots(r, r)]), column_dots(B, B)


def join_state(x, started):
    """(x, r, z) from x and :func:`start_state`'s result."""
    return x, started[0], started[1]


def partial_sums(started) -> np.ndarray:
    """A block's (r.z, r.r, B.B) from :func:`start_state`'s result: what the reduction
    needs, without the block's vectors."""
    return np.concatenate([started[2], started[3]])


def first_scalars(rtol: float, partials: list) -> dict:
    """The numbers CG carries between iterations, summed over the blocks: ``rz``, ``rr``,
    each column's ``threshold`` and whether it is ``done``."""
    total = sum(partials)
    k = len(total) // 3
    sums = total[:2 * k]
    threshold = rtol * np.sqrt(total[2 * k:])
    rz, rr = sums[:k], sums[k:]
    # beta 0: the first direction is z itself (0 * p + z is z, bit for bit)
    return {"rz": rz, "rr": rr, "threshold": threshold, "done": np.sqrt(rr) <= threshold,
            "beta": np.zeros(k)}


def step_of(scalars: dict, curvatures: list) -> np.ndarray:
    """Each column's step length from the blocks' shares of ``p.Ap``; zero for a column
    that met its tolerance (it stays as it is, as when the single-process solver drops
    it)."""
    curvature = sum(curvatures)
    rz = scalars["rz"]
    step = np.divide(rz, curvature, out=np.zeros_like(rz), where=curvature > 0)
    step[scalars["done"]] = 0.0
    return step


def advance(state, applied, scalars: dict, curvatures: list, inverse, unit_diagonal: bool):
    """One CG update of a block's (x, r, z) along ``applied``'s direction, with the sums
    (r.z, r.r) per column. Every block works out the step from the (small) curvatures
    itself, rather than waiting for a task that would. New arrays (Dask may still hand
    the old ones to another task), made with as few passes over the block as numpy
    allows."""
    p, Ap = applied[0], applied[1]
    step = step_of(scalars, curvatures)
    x = np.multiply(p, step)
    x += state[0]
    r = np.multiply(Ap, -step)
    r += state[1]
    z = preconditioned(r, inverse, unit_diagonal)
    return x, r, z, np.concatenate([column_dots(r, z), column_dots(r, r)])


def next_scalars(scalars: dict, partials: list) -> dict:
    """The carried numbers after an update (from the blocks' (r.z, r.r)), and ``beta`` for
    the next direction."""
    sums = sum(partials)
    k = len(sums) // 2
    done, rz = scalars["done"], scalars["rz"]
    rz_next, rr_next = sums[:k], sums[k:]
    beta = np.divide(rz_next, rz, out=np.zeros_like(rz), where=rz > 0)
    beta[done] = 0.0
    rr = np.where(done, scalars["rr"], rr_next)
    return {"rz": np.where(done, rz, rz_next), "rr": rr, "beta": beta,
            "threshold": scalars["threshold"],
            "done": np.sqrt(rr) <= scalars["threshold"]}


def turn(p, state, scalars: dict, halo: tuple = ()) -> np.ndarray:
    """The next search direction of a block, followed by the ``halo`` rows of it that the
    other blocks sent (its matrix's columns), in one array: stacking them afterwards
    copied the direction, one more array of the block in every iteration (40 MB a block
    at 1,000,000 x 10 on two workers, whose peak is in the iterations)."""
    whole = np.empty((len(p) + sum(len(part) for part in halo), p.shape[1]))
    direction = whole[:len(p)]
    np.multiply(p, scalars["beta"], out=direction)
    direction += state[2]
    if halo:
        np.concatenate(halo, out=whole[len(p):])
    return whole


def all_done(scalars: dict) -> bool:
    """Whether every column met its tolerance."""
    return bool(np.all(scalars["done"]))


def masked(X, inverse):
    """A block's rows of X, zero where the system leaves a row out."""
    return X * (inverse != 0)[:, None]


# Iterations submitted ahead of the last one whose convergence the client knows. An extra
# iteration changes nothing (a converged column is frozen on the workers) but costs a whole
# one, and rounds after a warm start take one to four: at 300,000 items a look-ahead of one
# cost more in wasted iterations than it saved in waiting, so none.
LOOKAHEAD = 0


class BlockSolver:
    """Runs the CG iterations for one system ``A`` given as a block product.

    Every number an iteration needs is reduced on the workers from the blocks' partial
    sums: beta and which columns are done by a task, the step by each block itself from
    the others' curvatures. An iteration costs six stages of task hand-offs (halo rows,
    turn and apply, curvature, update, sums, scalars), not round trips to the client; the
    client looks at whether the solve has converged ``LOOKAHEAD`` iterations behind (none:
    it waits for each verdict).
    """

    def __init__(self, client, exchange, product, matrices: list, extras: list[list],
                 unit_diagonal: bool = False):
        self.client, self.exchange = client, exchange
        self.product, self.matrices, self.extras = product, matrices, extras
        self.unit_diagonal = unit_diagonal  # see preconditioned
        # products submitted (each solve's first, then one an iteration, the iterations
        # run ahead of the verdicts included): what the halo moves is per product
        self.products = 0

    def apply(self, vectors: list) -> list:
        """``A @ P`` as blocks, each with its columns' dot products with P."""
        n_extras = len(self.extras)
        self.products += 1
        return [self.client.submit(with_curvature, self.product, n_extras, matrix,
                                   *(extra[b] for extra in self.extras), vectors[b],
                                   *self.exchange.parts(vectors, b))
                for b, matrix in enumerate(self.matrices)]

    def turn_and_apply(self, P: list, state: list, scalars) -> list:
        """The next directions and ``A`` applied to them, as blocks of (direction,
        product, curvature); a block's halo receives only its rows of the directions."""
        n_extras, exchange = len(self.extras), self.exchange
        self.products += 1
        return [self.client.submit(
            turn_and_apply, self.product, n_extras, matrix,
            *(extra[b] for extra in self.extras), P[b], state[b], scalars,
            *(self.client.submit(turned_rows, P[c], state[c], scalars, positions)
              for c, positions in exchange.needs[b]))
            for b, matrix in enumerate(self.matrices)]

    def solve(self, B: list, X0: list, inverse: list, *, rtol: float, max_iter: int):
        """Solve ``A X = B`` from ``X0``; ``inverse`` holds each block's inverse diagonal
        (zero on rows left out). Returns X blocks, n_iter and whether it converged.

        The lists ``B`` and ``X0`` are taken over: emptied once the start is made, so that
        the workers let their blocks go (a caller that needs B afterwards passes a copy).
        Held through the iterations with the start's own x and r, they were five vectors
        of the pool's (400 B an item at ten classes) beside the iterations' own."""
        submit = self.client.submit
        X = [submit(masked, x, i) for x, i in zip(X0, inverse)]
        started = [submit(start_state, b, ax, i, self.unit_diagonal)
                   for b, ax, i in zip(B, self.apply(X), inverse)]
        state = [submit(join_state, x, s) for x, s in zip(X, started)]
        P = [submit(getitem, s, 1) for s in started]  # turned with beta 0: z
        # Reductions read only the small per-block sums (getitem tasks run where the block
        # is); handing them the blocks themselves would move whole vectors between workers.
        history = [submit(first_scalars, rtol, [submit(partial_sums, s) for s in started])]
        B.clear()
        X0.clear()
        del X, started
        if not history[0].result()["done"].all():
            while len(history) <= max_iter:
                if len(history) > LOOKAHEAD and history[-1 - LOOKAHEAD].result()["done"].all():
                    break
                scalars = history[-1]
                applied = self.turn_and_apply(P, state, scalars)
                curvatures = [submit(getitem, a, 2) for a in applied]
                state = [submit(advance, s, a, scalars, curvatures, i, self.unit_diagonal)
                         for s, a, i in zip(state, applied, inverse)]
                history.append(submit(next_scalars, scalars,
                                      [submit(getitem, s, 3) for s in state]))
                P = [submit(getitem, a, 0) for a in applied]
        verdicts = self.client.gather([submit(all_done, s) for s in history])
        n_iter = verdicts.index(True) if True in verdicts else len(history) - 1
        return [submit(getitem, s, 0) for s in state], n_iter, verdicts[-1]
