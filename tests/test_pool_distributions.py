"""The compiled pass from a converged solve's scores (graph order) to the pool's
distributions gives numpy's numbers bit for bit."""

import numpy as np
import pytest

from activeprop.pool_distributions import (moved_rows, pool_distributions,
                                          pool_distributions_over, update_pool_distributions)
from activeprop.propagation import distributions


@pytest.mark.parametrize("n_classes", [1, 7, 8, 10, 21, 130, 300])
def test_the_compiled_pass_is_numpys_reorder_normalise_argmax_and_max(n_classes):
    """The row sums too: numpy adds in an order of its own from 8 values on (entries of
    very different sizes make any other order round differently)."""
    rng = np.random.default_rng(n_classes)
    F = rng.random((5000, n_classes)) * 10.0 ** rng.integers(-12, 3, size=(5000, n_classes))
    F[rng.random(5000) < 0.05] = 0.0  # unreached rows
    F[:50, -1] = F[:50, 0] = F[:50].max(axis=1)  # ties: the first column wins, as np.argmax
    rows = rng.permutation(5000)
    P, unreached, best, confidence = pool_distributions(F, rows)
    expected, expected_unreached = distributions(np.take(F, rows, axis=0))
    np.testing.assert_array_equal(P, expected)
    np.testing.assert_array_equal(unreached, expected_unreached)
    np.testing.assert_array_equal(best, np.argmax(expected, axis=1))
    np.testing.assert_array_equal(confidence, expected.max(axis=1))
    assert unreached.any() and np.all(P[unreached] == 1 / n_classes)


def test_an_update_in_place_gives_a_fresh_pass_and_one_that_copies_leaves_the_last_alone():
    """After the scores moved on some rows, the update computes those rows again: into a
    copy of the last results, or into them (a caller that holds them alone); both are the
    fresh pass's numbers."""
    rng = np.random.default_rng(0)
    F = rng.random((3000, 10))
    rows = rng.permutation(3000)
    last = pool_distributions(F, rows)
    kept = tuple(array.copy() for array in last)
    moved = rng.choice(3000, 200, replace=False)
    F[moved] = rng.random((200, 10))
    items = np.argsort(rows)[moved]  # where those rows' items sit in the results
    fresh = pool_distributions(F, rows)
    copied = update_pool_distributions(F, moved, items, last)
    for array, before in zip(last, kept):
        np.testing.assert_array_equal(array, before)  # the last results as they were
    in_place = update_pool_distributions(F, moved, items, last, in_place=True)
    assert all(new is old for new, old in zip(in_place, last))
    for new, copy, expected in zip(in_place, copied, fresh):
        np.testing.assert_array_equal(new, expected)
        np.testing.assert_array_equal(copy, expected)


@pytest.mark.parametrize("n_classes", [3, 10, 130])
def test_a_pass_written_over_the_last_results_is_a_fresh_pass_and_names_the_moved_rows(
        n_classes):
    """Written over the last fit's distributions (a lone cluster block, which gives them
    up), the pass gives the fresh pass's numbers bit for bit and the rows that differ
    from the last ones, as comparing a fresh pass with them would."""
    rng = np.random.default_rng(n_classes)
    F = rng.random((4000, n_classes))
    F[rng.random(4000) < 0.05] = 0.0  # unreached rows
    rows = rng.permutation(4000)
    last = pool_distributions(F, rows)[0]
    F[rng.choice(4000, 300, replace=False)] *= rng.random((300, 1)) ** 3  # same ratios
    F[rng.choice(4000, 300, replace=False)] = rng.random((300, n_classes))
    fresh = pool_distributions(F, rows)
    expected_moved = moved_rows(fresh[0], last)
    assert 250 < len(expected_moved) < 600  # (scaled rows may round to other numbers)
    results, moved = pool_distributions_over(F, rows, last)
    assert results[0] is last
    for found, expected in zip(results, fresh):
        np.testing.assert_array_equal(found, expected)
    np.testing.assert_array_equal(moved, expected_moved)


def test_a_lone_blocks_fit_writes_over_the_last_fits_distributions():
    """A cluster's lone block gives its last fit's distributions up to the next fit
    (:func:`activeprop.distributed.lone.fit`): written over them, they are that fit's
    numbers, and its version names the rows that moved, as a fit beside them would."""
    from dataclasses import replace

    from activeprop.datasets import load_pool
    from activeprop.graph import build_knn_graph
    from activeprop.propagation import GraphLabeling

    pytest.importorskip("distributed")
    from activeprop.distributed import lone

    pool = load_pool("digits-aug:20000")
    graph = build_knn_graph(pool.X, 10, backend="flat")
    engine = lone.engine_graph(graph.operator("symmetric-spreading"),
                               graph.spreading_roots(), graph.components(), 10)
    model = {"variant": "spreading", "alpha": 0.2, "max_iter": 1000, "rtol": 1e-4}
    labels = np.full(len(pool.y), -1)
    labels[:30] = pool.y[graph.order[:30]]
    last, warm = lone.fit(engine, labels, model, None)[:2]
    named = []  # whether each fit's version names the rows it moved
    for item in range(30, 36):
        labels[item] = pool.y[graph.order[item]]
        before = last[0].copy()
        beside = GraphLabeling(solver="cg", tol=0.0, warm_start=False, **model)
        beside.follows(before, last[2])
        beside.fit(engine, labels, replace(warm.copy(), graph=engine))  # as lone.fit does
        result, warm = lone.fit(engine, labels, model, warm, last)[:2]
        assert result[0] is last[0]  # written over
        np.testing.assert_array_equal(result[0], beside.label_distributions_)
        moved = result[2].rows_changed_since(last[2].stamp)
        expected = beside.distributions_version_.rows_changed_since(last[2].stamp)
        named.append(moved is not None)
        if moved is None:  # (more than half the rows moved: every row is new)
            assert expected is None
        else:
            np.testing.assert_array_equal(moved, expected)
            np.testing.assert_array_equal(moved, moved_rows(result[0], before))
        last = result
    assert any(named)


def test_a_fit_writes_into_the_distributions_before_the_last_only_when_nobody_holds_them():
    """Refits of a converged solve write their distributions into the array of the fit
    before the last one (no fresh 80 MB at 1,000,000 x 10), but never into distributions
    a caller still holds: those keep their numbers. Every fit's distributions are those
    of its own scores."""
    import weakref

    from activeprop.datasets import load_pool
    from activeprop.graph import build_knn_graph
    from activeprop.propagation import GraphLabeling

    pool = load_pool("digits-aug:3000")
    graph = build_knn_graph(pool.X, 10, backend="flat")
    labeling = GraphLabeling("spreading", alpha=0.9, max_iter=2000, tol=1e-3, solver="cg",
                             rtol=1e-4, warm_start=True)
    labels = np.full(len(pool.y), -1)
    labels[:20] = pool.y[:20]
    fits, reused, held = [], [], None  # (weak references: they hold nothing)
    for item in range(20, 28):
        labels[item] = pool.y[item]
        labeling.fit(graph, labels, labeling.warm_)
        P = labeling.label_distributions_
        expected = pool_distributions(labeling._scores[0], graph.pool_positions())[0]
        np.testing.assert_array_equal(P, expected)
        if len(fits) >= 2:
            reused.append(fits[-2]() is P)
        fits.append(weakref.ref(P))
        if item == 23:
            held, numbers = P, P.copy()  # a caller keeps these
        del P
    assert np.array_equal(held, numbers)
    assert reused[3] is False  # the fit after next did not write into the held ones
    assert sum(reused) >= 4
