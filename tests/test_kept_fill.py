"""The fill kept between solves (issue 18, item 5): after a local update it is filled again
only where the scores changed, and must give what filling afresh gives, to the bit."""

import numpy as np
import pytest
from scipy import sparse

from activeprop import pool_distributions as pool_distributions_module
from activeprop import propagation
from activeprop.datasets import load_pool
from activeprop.fill import fill_below_precision, fill_with_layers
from activeprop.graph import build_knn_graph
from activeprop.kept_fill import KeptFill
from activeprop.pool_distributions import pool_distributions
from activeprop.propagation import GraphLabeling

FLOOR = 0.1


def _random_graph(n, rng, n_components):
    """A symmetric graph of ``n_components`` blocks of rows, about 8 positive edges a row."""
    size = n // n_components
    heads = np.repeat(np.arange(n), 4)
    tails = (heads // size) * size + rng.integers(0, size, len(heads))
    weights = rng.random(len(heads)) + 0.01
    matrix = sparse.csr_matrix((weights, (heads, tails)), shape=(n, n))
    W = (matrix + matrix.T).tocsr()
    W.setdiag(0)
    W.eliminate_zeros()
    return W


def _normalised(W):
    """Spreading's normalised form of ``W`` and the square roots of its degrees: the fill's
    weights as a spreading model gives them (``S_ij`` times the column's root)."""
    roots = np.sqrt(np.ravel(W.sum(axis=1)))
    S = sparse.diags(1 / roots) @ W @ sparse.diags(1 / roots)
    return S.tocsr(), roots


def _weighed(W, normalised: bool):
    """The matrix and column scale a fill is given: ``W`` itself, or its normalised form."""
    return _normalised(W) if normalised else (W, None)


def test_a_fill_of_the_normalised_graph_by_the_degrees_roots_is_the_affinitys():
    """Each row's weights are the affinity's divided by the row's root, which the fill's
    rescaling takes out: the same layers and, to round-off, the same scores."""
    rng = np.random.default_rng(0)
    n = 3_000
    W = _random_graph(n, rng, 2)
    reached = np.ones(n, dtype=bool)
    scores = np.where(rng.random((n, 3)) < 0.02, rng.random((n, 3)), 0.0)
    F, layers = fill_with_layers(W, scores, reached, FLOOR)
    S, roots = _normalised(W)
    F_scaled, layers_scaled = fill_with_layers(S, scores, reached, FLOOR, roots)
    assert np.array_equal(layers, layers_scaled) and (layers > 1).sum() > n // 2
    np.testing.assert_allclose(F_scaled, F, rtol=1e-12, atol=0)
    assert not np.array_equal(F_scaled, F)  # (the scale was applied: different round-off)


def test_a_fill_in_place_is_the_copys_in_the_scores_own_memory():
    rng = np.random.default_rng(1)
    n = 3_000
    S, roots = _normalised(_random_graph(n, rng, 2))
    reached = np.ones(n, dtype=bool)
    scores = np.where(rng.random((n, 3)) < 0.02, rng.random((n, 3)) - 0.1, 0.0)
    F, layers = fill_with_layers(S, scores, reached, FLOOR, roots)
    F_in_place, layers_in_place = fill_with_layers(S, scores, reached, FLOOR, roots,
                                                   in_place=True)
    assert F_in_place is scores
    np.testing.assert_array_equal(F_in_place, F)
    np.testing.assert_array_equal(layers_in_place, layers)
    with pytest.raises(ValueError, match="C-contiguous float64"):
        fill_with_layers(S, np.asfortranarray(scores), reached, FLOOR, roots, in_place=True)


def test_spreadings_fill_of_a_knn_graph_is_its_affinitys():
    """A kNN graph's affinity has a diagonal (each item is its own neighbour), which
    spreading's normalisation leaves out of the degrees: the roots are those degrees', and
    the fill of the normalised operator by them is the affinity's to round-off."""
    graph = build_knn_graph(load_pool("digits-aug:6000").X, 10, backend="flat")
    W = graph.operator("symmetric").matrix
    assert np.count_nonzero(W.diagonal()) == graph.n_items
    rng = np.random.default_rng(0)
    X = np.where(rng.random((graph.n_items, 10)) < 0.01, rng.random((graph.n_items, 10)), 0.0)
    reached = np.ones(graph.n_items, dtype=bool)
    F, layers = fill_with_layers(W, X, reached, FLOOR)
    spread = propagation.spreading_fill(graph, X, reached, FLOOR)
    assert (layers > 0).sum() > graph.n_items // 2
    np.testing.assert_allclose(spread, F, rtol=1e-12, atol=0)


def _lenient_updates(monkeypatch):
    """Let an update lay out again up to half the filled rows, on any number of cores: how
    many it may is a choice of costs, which on the tests' small graphs would send most
    updates to a refill (the rounds above half still give up, unchanged)."""
    monkeypatch.setattr(KeptFill, "most_laid_out", lambda self: self.n_filled // 2)


@pytest.mark.parametrize("normalised", [False, True])
@pytest.mark.parametrize("n_components", [1, 2])
@pytest.mark.parametrize("seed", range(5))
def test_an_update_gives_the_fresh_fill_to_the_bit(n_components, seed, normalised,
                                                   monkeypatch):
    """Ten rounds of scores changed on a few rows (rising above the floor, falling below
    it, round-off below zero): the kept fill updated there equals a fresh fill, scores and
    layers, and the rows it reports cover every row whose fill changed."""
    _lenient_updates(monkeypatch)
    rng = np.random.default_rng(seed)
    n = 2_000
    W, scale = _weighed(_random_graph(n, rng, n_components), normalised)
    reached = np.ones(n, dtype=bool)
    reached[:n // 2] = n_components == 1  # the first component has no label
    scores = np.where(rng.random((n, 3)) < 0.02, rng.random((n, 3)), 0.0)
    scores[~reached] = 0.0
    kept = KeptFill.fill(W, scores, reached, FLOOR, scale)
    updated_rows = updates = 0
    for _ in range(10):
        touched = np.unique(rng.integers(0, n, rng.integers(1, 30)))
        touched = touched[reached[touched]]
        before = kept.F.copy()
        new = np.where(rng.random((len(touched), 3)) < 0.3,
                       rng.random((len(touched), 3)) * 3 * FLOOR, 0.0)
        new[rng.random(new.shape) < 0.1] -= 1e-12
        scores[touched] = new
        reported = kept.update(W, scores, reached, touched, scale)
        if reported is None:  # too many rows to pay: unchanged, the caller fills afresh
            assert np.array_equal(kept.F, before)
            kept = KeptFill.fill(W, scores, reached, FLOOR, scale)
            continue
        fresh, layers = fill_with_layers(W, scores, reached, FLOOR, scale)
        assert np.array_equal(kept.F, fresh) and np.array_equal(kept.layers, layers)
        moved = np.flatnonzero(np.any(kept.F != before, axis=1))
        assert np.isin(moved, reported).all()
        updated_rows += len(reported)
        updates += 1
    assert 0 < updated_rows < 10 * n // 2 and updates > 5  # local: most rows are left alone


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("normalised", [False, True])
@pytest.mark.parametrize("n_components", [1, 3])
@pytest.mark.parametrize("seed", range(5))
def test_a_refill_after_a_global_change_gives_the_fresh_fill_to_the_bit(n_components, seed,
                                                                         normalised,
                                                                         index_dtype):
    """Rounds in which every row's scores move a little (a global solve) and a few rows
    rise above the floor or fall below it, some of them local updates in between: the
    fill made again from the last one's layers and parents equals a fresh fill, scores and
    layers. One component starts with no row above the floor, another ends with none. The
    parent lists number rows and parents in the graph's own integer types."""
    rng = np.random.default_rng(seed)
    n = 3_000
    W, scale = _weighed(_random_graph(n, rng, n_components), normalised)
    W.indptr, W.indices = W.indptr.astype(index_dtype), W.indices.astype(index_dtype)
    reached = np.ones(n, dtype=bool)
    scores = np.where(rng.random((n, 3)) < 0.02, rng.random((n, 3)), 0.0)
    size = n // n_components
    if n_components > 1:
        scores[:size] *= 1e-3  # below the floor: no row of the first component has scores
    kept = KeptFill.fill(W, scores, reached, FLOOR, scale)
    refills = 0
    for round_ in range(12):
        scores *= 1 + 1e-6 * rng.standard_normal(scores.shape)  # every row moves
        touched = rng.integers(0, n, rng.integers(1, 40))
        scores[touched] = np.where(rng.random((len(touched), 3)) < 0.4,
                                   rng.random((len(touched), 3)) * 3 * FLOOR, 0.0)
        scores[rng.random(n) < 0.001] -= 1e-12  # round-off below zero
        if n_components > 1 and round_ == 6:
            scores[size:2 * size] = 0.0  # the second component loses every row with scores
        if round_ % 4 == 3:  # a local update: the rows near it are listed again after it
            moved = np.unique(touched)
            listed = kept.parents is not None
            if kept.update(W, scores, reached, moved, scale) is not None:
                assert not listed or kept.stale[moved].all()
                continue
        floor = FLOOR * (1 + 0.01 * rng.random())  # the floor moves with the largest score
        refilled = kept.refill(W, scores, reached, floor, scale)
        fresh, layers = fill_with_layers(W, scores, reached, floor, scale)
        if refilled is None:  # too many rows change layer: the caller fills afresh
            kept = KeptFill.fill(W, scores, reached, floor, scale)
            continue
        assert np.array_equal(refilled.F, fresh) and np.array_equal(refilled.layers, layers)
        assert refilled.parents is not None and refilled.n_filled == (layers > 0).sum()
        parents = refilled.parents
        assert parents.order.dtype == parents.position.dtype == index_dtype
        assert parents.ptr.dtype == index_dtype
        kept, refills = refilled, refills + 1
    assert refills >= 6


@pytest.mark.parametrize("normalised", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_a_refill_after_a_push_reads_only_the_rows_it_moved(seed, normalised):
    """After a push whose update gave up, the refill is given the rows the push moved: at
    the same floor it reads only their scores (the other rows' are NaN here) and gives the
    fresh fill of the whole scores, to the bit, round after round; at another floor (the
    largest score moved) it reads every row."""
    rng = np.random.default_rng(seed)
    n = 3_000
    W, scale = _weighed(_random_graph(n, rng, 1), normalised)
    reached = np.ones(n, dtype=bool)
    scores = np.where(rng.random((n, 3)) < 0.02, rng.random((n, 3)), 0.0)
    kept = KeptFill.fill(W, scores, reached, FLOOR, scale)
    refills = 0
    for round_ in range(12):
        moved = np.unique(rng.integers(0, n, rng.integers(1, 40)))
        scores[moved] = np.where(rng.random((len(moved), 3)) < 0.4,
                                 rng.random((len(moved), 3)) * 3 * FLOOR, 0.0)
        scores[moved[rng.random(len(moved)) < 0.1]] -= 1e-12  # round-off below zero
        floor = kept.floor if round_ % 4 else FLOOR * (1 + 0.01 * rng.random())
        given = scores.copy()
        if floor == kept.floor:
            given[np.setdiff1d(np.arange(n), moved)] = np.nan
        refilled = kept.refill(W, given, reached, floor, scale, moved)
        fresh, layers = fill_with_layers(W, scores, reached, floor, scale)
        if refilled is None:  # too many rows change layer: the caller fills afresh
            kept = KeptFill.fill(W, scores, reached, floor, scale)
            continue
        assert np.array_equal(refilled.F, fresh) and np.array_equal(refilled.layers, layers)
        kept, refills = refilled, refills + 1
    assert refills >= 8


def test_an_update_that_would_lay_out_more_rows_than_its_bound_gives_up_unchanged(
        monkeypatch):
    """On a path whose one row with scores falls below the floor, every filled row is laid
    out again: above :meth:`KeptFill.most_laid_out` the update changes nothing (the caller
    refills), at it the update gives the fresh fill."""
    n = 50
    path = sparse.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1], format="csr")
    reached = np.ones(n, dtype=bool)
    scores = np.zeros((n, 2))
    scores[0] = [1.0, 0.5]
    kept = KeptFill.fill(path, scores, reached, FLOOR)
    before = kept.F.copy()
    scores[0] = [FLOOR / 2, 0.0]
    scores[n - 1] = [0.0, 1.0]
    moved = np.array([0, n - 1])
    monkeypatch.setattr(KeptFill, "most_laid_out", lambda self: n - 3)  # 48 rows to lay out
    assert kept.update(path, scores, reached, moved) is None
    assert np.array_equal(kept.F, before) and kept.version == 0
    monkeypatch.setattr(KeptFill, "most_laid_out", lambda self: n - 2)
    assert kept.update(path, scores, reached, moved) is not None
    fresh, layers = fill_with_layers(path, scores, reached, FLOOR)
    assert np.array_equal(kept.F, fresh) and np.array_equal(kept.layers, layers)


def test_a_refill_needs_the_same_reached_items():
    rng = np.random.default_rng(0)
    W = _random_graph(300, rng, 1)
    scores = np.where(rng.random((300, 2)) < 0.05, rng.random((300, 2)), 0.0)
    reached = np.ones(300, dtype=bool)
    kept = KeptFill.fill(W, scores, reached, FLOOR)
    reached[:10] = False
    assert kept.refill(W, scores, reached, FLOOR) is None


def test_a_graph_with_an_edge_of_zero_weight_keeps_no_fill():
    """Layers are distances only when every edge weighs something: a zero weight can leave
    a row next to a filled one empty, so such a graph is filled afresh every time."""
    W = sparse.csr_matrix(np.array([[0, 1, 0], [1, 0, 0.0], [0, 0, 0]]))
    assert KeptFill.suits(W)
    W.data[0] = 0.0
    assert not KeptFill.suits(W)


def test_a_new_class_widens_the_kept_fill_exactly():
    """A class the last solve did not have adds a zero column: the kept fill widened
    equals a fresh fill of the widened scores."""
    rng = np.random.default_rng(0)
    W = _random_graph(500, rng, 1)
    scores = np.where(rng.random((500, 2)) < 0.05, rng.random((500, 2)), 0.0)
    reached = np.ones(500, dtype=bool)
    kept = KeptFill.fill(W, scores, reached, FLOOR)
    widened = kept.widened(np.insert(kept.F, [1], 0.0, axis=-1))
    wide = np.insert(scores, [1], 0.0, axis=-1)
    assert np.array_equal(widened.F, fill_below_precision(W, wide, reached, FLOOR))


def test_refits_that_push_update_the_kept_fill_to_a_fresh_fills_scores(monkeypatch):
    """Rounds of label spreading with local updates on a kNN graph: every refit's scores
    are the fresh fill of its solution, and its distributions, predictions and confidences
    those of the whole pool's scores; the refits that pushed updated the kept fill (and the
    distributions of the rows it changed) instead of filling afresh."""
    pool = load_pool("digits-aug:6000")
    graph = build_knn_graph(pool.X, 10, backend="flat")
    monkeypatch.setattr(propagation, "keeps_pushing", lambda met, *_: met)
    _lenient_updates(monkeypatch)
    updates = []
    update = KeptFill.update

    def counted(self, matrix, *args):
        rows = update(self, matrix, *args)
        if matrix.shape[0] == len(pool.y):  # not the compile run on 3 rows (compile_for)
            updates.append(None if rows is None else len(rows))
        return rows

    monkeypatch.setattr(KeptFill, "update", counted)
    partial = []
    update_distributions = pool_distributions_module.update_pool_distributions

    def counted_distributions(*args, **options):
        partial.append(len(args[1]))
        return update_distributions(*args, **options)

    monkeypatch.setattr(pool_distributions_module, "update_pool_distributions",
                        counted_distributions)
    labeling = GraphLabeling("spreading", alpha=0.2, max_iter=2000, tol=1e-3, solver="cg",
                             rtol=1e-4, warm_start=True)
    rng = np.random.default_rng(0)
    labels = np.full(len(pool.y), -1)
    first = rng.choice(len(labels), 30, replace=False)
    labels[first] = pool.y[first]
    for _ in range(8):  # a label a refit, as the labeler's
        new = rng.choice(np.flatnonzero(labels < 0))
        labels[new] = pool.y[new]
        if labeling.warm_ is not None and labeling.warm_.solve_seconds is None:
            labeling.warm_.solve_seconds = 1.0  # as if a warm global solve had been timed
        labeling.fit(graph, labels, labeling.warm_)
        X = labeling.warm_.X
        reached = propagation._reached(graph, labeling.warm_.codes >= 0)
        fresh = propagation.spreading_fill(graph, X, reached, labeling.rtol * X.max())
        assert np.array_equal(labeling.scores_, graph.to_pool_order(fresh))
        P, unreached, best, confidence = pool_distributions(fresh, graph.pool_positions())
        assert np.array_equal(labeling.label_distributions_, P)
        assert np.array_equal(labeling.unreached_, unreached)
        assert np.array_equal(labeling.transduction_, labeling.classes_[best])
        assert np.array_equal(labeling.confidence_, confidence)
    assert len(updates) == 7  # all but the first refit pushed
    assert sum(rows is not None for rows in updates) >= 4  # and most of them updated
    # a refit that updated the kept fill computes the distributions of its rows alone
    assert len(partial) >= 3 and max(partial) < len(pool.y)


def test_a_push_that_gives_up_before_a_solve_of_no_iteration_still_updates_its_rows(
        monkeypatch):
    """A push that moved the solution but reported failure (its target is deeper than the
    tolerance), then a global solve that needs no iteration: the rows the push moved are
    filled again (they used to be reported unchanged, and the fill went stale)."""
    pool = load_pool("digits-aug:6000")
    graph = build_knn_graph(pool.X, 10, backend="flat")
    push = propagation._push_new_labels

    def gives_up(*args):
        _, moved = push(*args)
        return False, moved

    monkeypatch.setattr(propagation, "_push_new_labels", gives_up)
    monkeypatch.setattr(propagation, "PUSH_PAUSE", 0)  # a push that gives up: push again
    labeling = GraphLabeling("spreading", alpha=0.2, max_iter=2000, tol=1e-3, solver="cg",
                             rtol=1e-4, warm_start=True)
    labels = np.full(len(pool.y), -1)
    labels[:30] = pool.y[:30]
    labeling.fit(graph, labels)
    no_iteration = 0
    for item in range(30, 36):
        labels[item] = pool.y[item]
        labeling.fit(graph, labels, labeling.warm_)
        no_iteration += labeling.n_iter_ == 0
        X = labeling.warm_.X
        reached = propagation._reached(graph, labeling.warm_.codes >= 0)
        fresh = propagation.spreading_fill(graph, X, reached, labeling.rtol * X.max())
        assert np.array_equal(labeling.scores_, graph.to_pool_order(fresh))
    assert no_iteration >= 3
