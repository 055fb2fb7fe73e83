"""The best rows of a pool's scores, kept from one query to the next (issue 18, item 4).

After a local round most of the pool's scores are unchanged, bit for bit, so a query need
not rank the whole pool again. :class:`KeptRanking` keeps a set of leading rows and a bar:
every queryable row outside the set scores below the bar. A query updates only the rows
whose scores moved or whose exclusion changed, and takes the best of the leaders; when the
n-th of them falls below the bar (or too few are left), the leaders are chosen again from
the whole pool. The answer is :func:`activeprop.strategies.select_top`'s, ties to the lower
id: a row outside the set scores strictly below the bar, so below the n-th leader.
"""

from __future__ import annotations

import numpy as np

# Leaders kept for each item a query asks for. More leaders, fewer passes over the pool;
# ranking them costs a sort of a few hundred scores.
LEADERS_PER_ITEM = 16


class KeptRanking:
    """The leading rows of one score array that changes a few rows at a time."""

    def __init__(self):
        self._leader: np.ndarray | None = None  # mask of the leading rows
        self._bar = -np.inf  # every queryable row outside the leaders scores below it
        self._excluded: np.ndarray | None = None  # the exclusions the leaders were kept for
        self.passes = 0  # how many times the leaders were chosen from the whole pool

    def forget(self) -> None:
        """Rank the whole pool at the next query (the scores changed everywhere)."""
        self._leader = None

    def best(self, scores: np.ndarray, excluded: np.ndarray, n: int, moved: np.ndarray,
             ids: np.ndarray | None = None) -> np.ndarray:
        """Positions of the ``n`` (at least 1) highest ``scores`` among the rows not
        ``excluded``, best first, ties to the lower of ``ids`` (the positions by default).

        ``moved``: the positions whose scores changed since the last call (every other
        score must be as it was then; repeats allowed); ignored after :meth:`forget`.
        """
        if self._leader is None or len(self._leader) != len(scores):
            return self._choose_leaders(scores, excluded, n, ids)
        touched = np.concatenate([moved, np.flatnonzero(excluded != self._excluded)])
        self._leader[touched] = ~excluded[touched] & (scores[touched] >= self._bar)
        self._excluded = excluded.copy()
        leaders = np.flatnonzero(self._leader)
        if len(leaders) >= n:
            picked = leaders[best_positions(scores[leaders], _ids_of(leaders, ids), n)]
            if scores[picked[-1]] >= self._bar:
                return picked
        return self._choose_leaders(scores, excluded, n, ids)

    def _choose_leaders(self, scores: np.ndarray, excluded: np.ndarray, n: int,
                        ids: np.ndarray | None) -> np.ndarray:
        """Choose the leaders from the whole pool, and answer from them."""
        self.passes += 1
        free = np.flatnonzero(~excluded)
        size = LEADERS_PER_ITEM * n
        if len(free) > size:
            free_scores = scores[free]
            self._bar = np.partition(free_scores, len(free) - size)[len(free) - size]
            leaders = free[free_scores >= self._bar]  # ties with the bar included
        else:
            self._bar, leaders = -np.inf, free
        self._leader = np.zeros(len(scores), dtype=bool)
        self._leader[leaders] = True
        self._excluded = excluded.copy()
        return leaders[best_positions(scores[leaders], _ids_of(leaders, ids), n)]


def _ids_of(rows: np.ndarray, ids: np.ndarray | None) -> np.ndarray:
    """The ids that break ties between ``rows``: their positions when no ids are given."""
    return rows if ids is None else ids[rows]


def best_positions(scores: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` highest ``scores``, best first, ties to the lower of ``ids``."""
    positions = np.arange(len(scores))
    if len(scores) > 4 * n:
        # Keep every candidate scoring at least the n-th best (ties included), then sort.
        cutoff = np.partition(scores, len(scores) - n)[len(scores) - n]
        positions = np.flatnonzero(scores >= cutoff)
    order = np.lexsort((ids[positions], -scores[positions]))
    return positions[order[:n]]
