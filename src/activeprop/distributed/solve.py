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


def spreading_product(S, alpha: float, own: np.ndarray, *parts: np.ndarray) -> np.ndarray:
    """A block's rows of ``(I - alpha S) P``."""
    product = np.asarray(S @ stacked(own, *parts))
    product *= -alpha
    product += own
    return product


def laplacian_product(W, degrees: np.ndarray, mask: np.ndarray, own: np.ndarray,
                      *parts: np.ndarray) -> np.ndarray:
    """A block's rows of ``mask (D - W) P``."""
    product = np.asarray(W @ stacked(own, *parts))
    product *= -1.0
    product += degrees[:, None] * own
    product *= mask[:, None]
    return product


def with_curvature(product, n_extras: int, matrix, *arguments):
    """``product(matrix, *arguments)`` for one block, and its columns' dot products with
    the direction it multiplied (the block's share of the CG step's denominator)."""
    direction = arguments[n_extras]
    applied = product(matrix, *arguments)
    return applied, column_dots(direction, applied)


def advance(state, p, applied, step, inverse):
    """One CG update of a block's (x, r, z), with the sums (r.z, r.r) per column."""
    x, r = state[0], state[1]
    x = x + p * step
    r = r - applied[0] * step
    z = r * inverse[:, None]
    return x, r, z, np.concatenate([column_dots(r, z), column_dots(r, r)])


def join_state(x, started):
    """(x, r, z) from x and :func:`start_state`'s result."""
    return x, started[0], started[1]


def turn(p, state, beta):
    """The next search direction of a block."""
    return p * beta + state[2]


def start_state(B, AX, inverse):
    """A block's (x, r, z) before the first iteration, and its sums (r.z, r.r), given its
    rows of B and of A X; x is taken as it was multiplied."""
    r = B - AX[0]
    z = r * inverse[:, None]
    return r, z, np.concatenate([column_dots(r, z), column_dots(r, r)])


def masked(X, inverse):
    """A block's rows of X, zero where the system leaves a row out."""
    return X * (inverse != 0)[:, None]


def preconditioned(R, inverse):
    """A block's rows of the preconditioned residual."""
    return R * inverse[:, None]


class BlockSolver:
    """Runs the CG iterations for one system ``A`` given as a block product."""

    def __init__(self, client, exchange, product, matrices: list, extras: list[list]):
        self.client, self.exchange = client, exchange
        self.product, self.matrices, self.extras = product, matrices, extras

    def apply(self, vectors: list) -> list:
        """``A @ P`` as blocks, each with its columns' dot products with P."""
        n_extras = len(self.extras)
        return [self.client.submit(with_curvature, self.product, n_extras, matrix,
                                   *(extra[b] for extra in self.extras), vectors[b],
                                   *self.exchange.parts(vectors, b))
                for b, matrix in enumerate(self.matrices)]

    def total(self, futures: list, index: int) -> np.ndarray:
        """Item ``index`` of each block's result, summed over the blocks on the client
        (only these few numbers per column travel)."""
        return sum(self.client.gather([self.client.submit(getitem, f, index)
                                       for f in futures]))

    def dots(self, A: list, B: list) -> np.ndarray:
        """Column dot products summed over the blocks."""
        return sum(self.client.gather([self.client.submit(column_dots, a, b)
                                       for a, b in zip(A, B)]))

    def solve(self, B: list, X0: list, inverse: list, *, rtol: float, max_iter: int):
        """Solve ``A X = B`` from ``X0``; ``inverse`` holds each block's inverse diagonal
        (zero on rows left out). Returns X blocks, n_iter and whether it converged."""
        submit = self.client.submit
        X = [submit(masked, x, i) for x, i in zip(X0, inverse)]
        started = [submit(start_state, b, ax, i) for b, ax, i in zip(B, self.apply(X), inverse)]
        threshold = rtol * np.sqrt(self.dots(B, B))
        state = [submit(join_state, x, s) for x, s in zip(X, started)]
        P = [submit(getitem, s, 1) for s in started]
        sums = self.total(started, 2)
        rz, rr = sums[:len(threshold)], sums[len(threshold):]
        done = np.sqrt(rr) <= threshold
        n_iter = 0
        while not done.all() and n_iter < max_iter:
            applied = self.apply(P)
            curvature = self.total(applied, 1)
            step = np.divide(rz, curvature, out=np.zeros_like(rz), where=curvature > 0)
            step[done] = 0.0  # a column that met its tolerance stays as it is
            state = [submit(advance, s, p, a, step, i)
                     for s, p, a, i in zip(state, P, applied, inverse)]
            sums = self.total(state, 3)
            rz_next, rr_next = sums[:len(rz)], sums[len(rz):]
            beta = np.divide(rz_next, rz, out=np.zeros_like(rz), where=rz > 0)
            beta[done] = 0.0
            P = [submit(turn, p, s, beta) for p, s in zip(P, state)]
            rz = np.where(done, rz, rz_next)
            rr = np.where(done, rr, rr_next)
            done = np.sqrt(rr) <= threshold
            n_iter += 1
        return [submit(getitem, s, 0) for s in state], n_iter, bool(done.all())
