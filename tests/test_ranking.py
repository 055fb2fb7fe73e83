"""A ranking kept between queries answers as ranking the whole pool (issue 18, item 4)."""

import numpy as np
import pytest

from activeprop.ranking import LEADERS_PER_ITEM, KeptRanking
from activeprop.strategies import select_top


def local_changes(rng, scores, excluded, n_moved):
    """A round's changes: a few rows' scores (some rising to the top, some tied), a few
    rows labeled, and now and then a label taken back."""
    moved = rng.choice(len(scores), n_moved, replace=False)
    scores[moved] = rng.choice([rng.random(), 1.0, 0.5], n_moved) * rng.random(n_moved) ** 0.5
    scores[moved[:2]] = scores.max()  # a tie at the top
    labeled = rng.choice(np.flatnonzero(~excluded), 3, replace=False)
    excluded[labeled] = True
    if rng.random() < 0.3:
        excluded[rng.choice(np.flatnonzero(excluded))] = False
    return moved


@pytest.mark.parametrize("seed", range(5))
def test_a_kept_ranking_picks_what_ranking_the_whole_pool_picks(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(5000), 3)  # many ties
    excluded = rng.random(5000) < 0.1
    ranking = KeptRanking()
    moved = np.empty(0, dtype=np.int64)
    for round_ in range(60):
        n = int(rng.choice([1, 5, 10, 100]))
        picked = ranking.best(scores, excluded, n, moved)
        assert picked.tolist() == select_top(scores, excluded, n).tolist(), round_
        moved = local_changes(rng, scores, excluded, n_moved=20)
    # most queries ranked only the moved rows, not the pool
    assert ranking.passes < 10


def test_a_kept_ranking_breaks_ties_by_the_ids_it_is_given():
    scores = np.array([0.5, 0.9, 0.9, 0.1, 0.9])
    ids = np.array([40, 30, 20, 10, 50])
    ranking = KeptRanking()
    excluded = np.zeros(5, dtype=bool)
    assert ranking.best(scores, excluded, 2, np.empty(0, int), ids).tolist() == [2, 1]
    scores[2] = 0.0
    assert ranking.best(scores, excluded, 2, np.array([2]), ids).tolist() == [1, 4]


def test_a_kept_ranking_ranks_the_pool_again_when_its_leaders_fall():
    n, size = 3, 1000
    scores = np.linspace(0.0, 1.0, size)
    excluded = np.zeros(size, dtype=bool)
    ranking = KeptRanking()
    ranking.best(scores, excluded, n, np.empty(0, int))
    leaders = np.arange(size - LEADERS_PER_ITEM * n, size)
    scores[leaders] = -1.0  # every leader falls below the rows outside them
    picked = ranking.best(scores, excluded, n, leaders)
    assert picked.tolist() == select_top(scores, excluded, n).tolist()
    assert ranking.passes == 2


def test_fewer_queryable_rows_than_asked_for_are_all_returned():
    scores = np.array([0.2, 0.7, 0.4])
    excluded = np.array([False, True, False])
    ranking = KeptRanking()
    assert ranking.best(scores, excluded, 5, np.empty(0, int)).tolist() == [2, 0]
    excluded[1] = False  # a label taken back
    assert ranking.best(scores, excluded, 5, np.empty(0, int)).tolist() == [1, 2, 0]


@pytest.mark.parametrize("share_moved", [0.001, 0.5])
def test_pool_scores_rank_the_moved_rows_or_the_whole_pool_alike(share_moved):
    """Few moved rows are ranked one by one; past RANK_AGAIN_MOVED the pool is ranked
    again. Either way the answer is select_top's."""
    from activeprop.row_versions import RowVersion
    from activeprop.strategies import PoolScores, entropy

    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(4), 20000)
    excluded = np.zeros(len(proba), dtype=bool)
    pool_scores = PoolScores(entropy)
    version = RowVersion.new()
    for _ in range(6):
        scores = pool_scores(proba, None, version)
        np.testing.assert_array_equal(scores, entropy(proba, None))
        picked = pool_scores.best(excluded, 10)
        assert picked.tolist() == select_top(scores, excluded, 10).tolist()
        excluded[picked] = True
        moved = rng.random(len(proba)) < share_moved
        proba[moved] = rng.dirichlet(np.ones(4), int(moved.sum()))
        version = version.after(np.flatnonzero(moved), len(proba))
    passes = pool_scores._ranking.passes
    assert passes == 6 if share_moved > 0.25 else passes < 3


@pytest.mark.parametrize("name", ["entropy", "margin", "least-confident"])
def test_pool_scores_score_a_block_of_rows_at_a_time_to_the_same_bits(name, monkeypatch):
    """Every row scored in blocks (numpy's allocations then stay a block's, not the
    pool's) gives the scores of one pass over the pool, bit for bit."""
    import tracemalloc

    from activeprop import strategies
    from activeprop.row_versions import RowVersion

    proba = np.random.default_rng(2).dirichlet(np.ones(10), 40000)
    utility = strategies.STRATEGIES[name]
    whole = strategies.score_pool(utility, proba, None)
    monkeypatch.setattr(strategies, "SCORED_ROWS", 1000)
    tracemalloc.start()
    in_blocks = strategies.PoolScores(utility)(proba, None, RowVersion.new())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_array_equal(in_blocks, whole)
    assert peak < 3 * 8 * len(proba) + 4 * proba[:1000].nbytes  # scores, their copy, a block's
