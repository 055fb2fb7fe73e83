import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import semi_supervised

from activeprop import LabelPropagation, LabelSpreading, build_graph
from activeprop.calibration import MachineCosts
from activeprop.graph import _spreading_operator, rbf_kernel

KERNELS = [dict(kernel="rbf", gamma=0.25), dict(kernel="rbf", gamma=20),
           dict(kernel="knn", n_neighbors=7)]
VARIANTS = [("LabelSpreading", LabelSpreading), ("LabelPropagation", LabelPropagation)]


def _fit_both(name, ours, params, X, partial):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.seterr(invalid="ignore")  # scikit-learn divides 0 by 0 for unreached items
        reference = getattr(semi_supervised, name)(**params).fit(X, partial)
        mine = ours(**params).fit(X, partial)
    return reference, mine


@pytest.mark.parametrize("params", KERNELS, ids=lambda p: str(p))
@pytest.mark.parametrize("name,ours", VARIANTS, ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("dataset", ["digits400", "iris", "wine", "moons"])
def test_matches_scikit_learn(small_datasets, dataset, name, ours, params):
    X, _, partial = small_datasets[dataset]
    reference, mine = _fit_both(name, ours, params, X, partial)
    reached = ~mine.unreached_
    np.testing.assert_allclose(mine.label_distributions_[reached],
                               reference.label_distributions_[reached], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(mine.transduction_, reference.transduction_)
    np.testing.assert_array_equal(mine.classes_, reference.classes_)
    assert mine.n_iter_ == reference.n_iter_
    # Where scikit-learn leaves a zero row, we give a uniform one and flag it.
    assert np.all(reference.label_distributions_[mine.unreached_] == 0)
    np.testing.assert_allclose(mine.label_distributions_[mine.unreached_], 1 / len(mine.classes_))
    new = X[::7] + 0.01
    ours_proba, ref_proba = mine.predict_proba(new), reference.predict_proba(new)
    known = np.isfinite(ref_proba).all(axis=1) & (ref_proba.sum(axis=1) > 0)
    if params["kernel"] == "knn":  # knn sums neighbours' rows, which differ when unreached
        known &= ~mine.unreached_[mine.graph_.affinity_to(new)].any(axis=1)
    np.testing.assert_allclose(ours_proba[known], ref_proba[known], atol=1e-10)
    np.testing.assert_array_equal(mine.predict(new)[known], reference.predict(new)[known])
    truth = small_datasets[dataset][1]
    assert mine.score(X, truth) == pytest.approx(np.mean(mine.predict(X) == truth))


@pytest.mark.parametrize("dataset", ["digits400", "iris", "wine", "moons"])
def test_rbf_kernel_is_scikit_learns_to_the_bit(small_datasets, dataset):
    from sklearn.metrics.pairwise import rbf_kernel as sklearn_rbf

    X = small_datasets[dataset][0]
    np.testing.assert_array_equal(rbf_kernel(X, gamma=0.25), sklearn_rbf(X, X, gamma=0.25))
    new = X[::5] + 0.3
    np.testing.assert_array_equal(rbf_kernel(X, new, gamma=2.0), sklearn_rbf(X, new, gamma=2.0))


@pytest.mark.parametrize("handoff,blocks", [(1e-9, 2), (10.0, 1)])
def test_rbf_kernel_in_row_blocks_keeps_the_bits(monkeypatch, handoff, blocks):
    """The element-wise steps run on row blocks in threads when this machine's measured
    costs say a thread pays (a fake cheap hand-off), else in one: the same bits."""
    from sklearn.datasets import load_digits
    from sklearn.metrics.pairwise import rbf_kernel as sklearn_rbf

    from activeprop import graph

    costs = MachineCosts(exp_item=1e-9, thread_handoff=handoff)
    monkeypatch.setattr(graph, "machine_costs", lambda: costs)
    monkeypatch.setattr(graph.os, "cpu_count", lambda: 2)
    X = load_digits().data
    assert len(graph.row_blocks(len(X), costs.exp_item * len(X))) == blocks
    np.testing.assert_array_equal(rbf_kernel(X, gamma=0.25), sklearn_rbf(X, X, gamma=0.25))
    new = X[::3] + 0.3
    np.testing.assert_array_equal(rbf_kernel(X, new, gamma=0.5), sklearn_rbf(X, new, gamma=0.5))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 40), st.floats(0.0, 0.9))
def test_dense_spreading_operator_is_scipys_laplacian_to_the_bit(seed, n, zeros):
    """The dense spreading operator is computed without scipy.sparse.csgraph (a start-up
    cost); it must equal ``-laplacian(W, normed=True)`` with a zero diagonal bit for bit,
    for asymmetric W and items with no edges too."""
    from scipy.sparse.csgraph import laplacian

    rng = np.random.RandomState(seed)
    W = rng.exponential(size=(n, n)) * (rng.uniform(size=(n, n)) >= zeros)
    W[rng.uniform(size=n) < zeros / 3] = 0.0  # isolated rows
    expected = -laplacian(W.copy(), normed=True)
    np.fill_diagonal(expected, 0.0)
    ours = _spreading_operator(W)
    np.testing.assert_array_equal(ours, expected)
    assert (np.signbit(ours) == np.signbit(expected)).all()


def test_same_constructor_defaults_as_scikit_learn():
    for name, ours in VARIANTS:
        theirs = getattr(semi_supervised, name)().get_params()
        mine = ours().get_params()
        theirs.pop("alpha", None) if name == "LabelPropagation" else None
        extras = {key: mine.pop(key) for key in ("solver", "rtol", "warm_start")}
        assert mine == theirs
        assert extras == {"solver": "iterate", "rtol": 1e-6, "warm_start": False}


def test_graph_is_reused_and_gives_the_same_answer(small_datasets):
    X, _, partial = small_datasets["digits400"]
    graph = build_graph(X, "rbf", gamma=0.25)
    fresh = LabelSpreading(gamma=0.25).fit(X, partial)
    first = LabelSpreading(gamma=0.25).fit(X, partial, graph=graph)
    operator = graph.operator("spreading")
    more = partial.copy()
    more[np.flatnonzero(partial == -1)[:10]] = 3
    second = LabelSpreading(gamma=0.25).fit(X, more, graph=graph)
    assert graph.operator("spreading") is operator  # built once, reused
    np.testing.assert_array_equal(first.label_distributions_, fresh.label_distributions_)
    assert second.graph_ is graph


def test_graph_of_other_parameters_is_refused(small_datasets):
    X, _, partial = small_datasets["iris"]
    graph = build_graph(X, "rbf", gamma=1.0)
    with pytest.raises(ValueError, match="another pool or other kernel parameters"):
        LabelSpreading(gamma=0.5).fit(X, partial, graph=graph)
    with pytest.raises(ValueError, match="another pool"):
        LabelSpreading(gamma=1.0).fit(X[:-1], partial[:-1], graph=graph)


def test_unreached_component_is_uniform_and_flagged():
    # Two far-apart clusters; only the first has labels.
    X = np.vstack([np.random.RandomState(0).normal(0, 0.1, (10, 2)),
                   np.random.RandomState(1).normal(100, 0.1, (10, 2))])
    y = np.full(20, -1)
    y[0], y[1] = 0, 1
    model = LabelSpreading(kernel="knn", n_neighbors=3).fit(X, y)
    assert model.unreached_[10:].all() and not model.unreached_[:10].any()
    np.testing.assert_allclose(model.label_distributions_[10:], 0.5)


@pytest.mark.parametrize("params,message", [
    (dict(alpha=0.0), "alpha"), (dict(alpha=1.0), "alpha"), (dict(gamma=-1), "gamma"),
    (dict(kernel="poly"), "kernel"), (dict(max_iter=0), "max_iter"),
    (dict(n_neighbors=0), "n_neighbors"),
])
def test_bad_parameters_are_named(params, message):
    X, y = np.random.rand(20, 2), np.r_[0, 1, [-1] * 18]
    with pytest.raises(ValueError, match=message):
        LabelSpreading(**params).fit(X, y)


def test_no_label_at_all_is_an_error():
    with pytest.raises(ValueError, match="no labeled item"):
        LabelSpreading().fit(np.random.rand(5, 2), np.full(5, -1))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["rbf", "knn"]),
       st.sampled_from(VARIANTS))
def test_distributions_are_probabilities(seed, kernel, variant):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(30, 3))
    y = np.full(30, -1)
    y[rng.choice(30, 4, replace=False)] = [0, 1, 2, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = variant[1](kernel=kernel, gamma=1.0, n_neighbors=5).fit(X, y)
    np.testing.assert_allclose(model.label_distributions_.sum(axis=1), 1.0)
    assert (model.label_distributions_ >= 0).all()
    if variant[0] == "LabelPropagation":  # hard clamping keeps human labels
        labeled = y != -1
        np.testing.assert_array_equal(model.transduction_[labeled], y[labeled])


@pytest.mark.parametrize("kept_powers", [0, 2, 4])
@pytest.mark.parametrize("alpha,max_iter", [(0.2, 30), (0.2, 5), (0.9, 60)])
def test_warm_iteration_from_power_columns_matches_scikit_learn(small_datasets, monkeypatch,
                                                                alpha, max_iter, kept_powers):
    """A warm-started spreading fit reads its first steps off cached power columns; over
    rounds that add labels, folds that remove some, classes that come and go and a cache
    that starts over, every fit must still be scikit-learn's (and deeper than the columns
    reach, the plain iteration takes over)."""
    from activeprop import propagation

    monkeypatch.setattr(propagation, "MAX_CACHED_ITEMS", 60)
    X, y, _ = small_datasets["digits400"]
    graph = build_graph(X, "rbf", gamma=0.25)
    columns = graph.cached("power-columns",
                           lambda: propagation.PowerColumns(graph.operator("spreading")))
    powers = columns.powers
    # columns from the powers (free on this made-up machine), or by products (never paid);
    # with the square alone, or the fourth power too from the second fit on
    powers.costs = MachineCosts(square_madd=0.0 if kept_powers else 1.0, thin_madd=0.0)
    if kept_powers == 2:
        monkeypatch.setattr(powers, "_fourth_pays", lambda: False)
    params = dict(gamma=0.25, alpha=alpha, max_iter=max_iter)
    warm = LabelSpreading(**params, warm_start=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    label_sets = [order[:n] for n in (3, 8, 20, 35, 50, 70)]  # 70 > the cache: it starts over
    label_sets += [np.setdiff1d(order[:35], order[k:k + 7]) for k in (0, 7, 14)]  # folds
    label_sets += [order[:1], order[:75]]  # one class only; more than the cache holds
    for labeled in label_sets:
        partial = np.full(len(y), -1)
        partial[labeled] = y[labeled]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = semi_supervised.LabelSpreading(**params).fit(X, partial)
            warm.fit(X, partial, graph=graph)
        reached = ~warm.unreached_
        np.testing.assert_array_equal(reached, reference.label_distributions_.sum(axis=1) > 0)
        np.testing.assert_allclose(warm.label_distributions_[reached],
                                   reference.label_distributions_[reached], rtol=0, atol=1e-10)
        np.testing.assert_array_equal(warm.transduction_, reference.transduction_)
        assert warm.n_iter_ == reference.n_iter_
    assert len(powers.kept or ()) == kept_powers and len(columns.slots) <= 60


class _Clock:
    """A clock that moves 5 ms per reading: every rent of columns takes 5 ms."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 0.005
        return self.now


@pytest.fixture
def steady_clock(monkeypatch):
    """Rent measured the same on every run, whatever else the machine is doing."""
    from activeprop import operator_powers

    monkeypatch.setattr(operator_powers, "time", _Clock())


def test_powers_are_built_only_once_the_rounds_paid_for_them(small_datasets, steady_clock):
    X, y, partial = small_datasets["digits400"]
    graph = build_graph(X, "rbf", gamma=0.25)
    warm = LabelSpreading(gamma=0.25, warm_start=True)
    warm.fit(X, partial, graph=graph)
    columns = graph.cached("power-columns", lambda: None)
    powers = columns.powers
    assert powers.kept is None and powers.rented == 7  # the labeled items' columns
    assert len(columns.slots) == (partial != -1).sum()
    # a made-up machine on which the powers cost about ten rounds of rent
    powers.costs = MachineCosts(square_madd=5 * powers.rented_seconds / 2 / len(X) ** 3,
                                 thin_madd=0.0)
    warm.fit(X, partial, graph=graph)
    assert powers.rented == 7  # a refit on the same labels needs no new column
    unlabeled = iter(np.flatnonzero(partial == -1))
    while powers.rented_seconds < powers.worth:  # rounds adding one label each
        item = next(unlabeled)
        partial = partial.copy()
        partial[item] = y[item]
        warm.fit(X, partial, graph=graph)
    assert powers.kept is None
    warm.fit(X, partial, graph=graph)
    assert len(powers.kept) == 2 and len(columns.slots) == (partial != -1).sum()
    operator = graph.operator("spreading")
    np.testing.assert_allclose(powers.kept[1], operator @ operator, atol=1e-15)


def test_a_planned_long_run_buys_the_powers_at_its_second_fit(small_datasets, steady_clock):
    X, y, partial = small_datasets["digits400"]
    graph = build_graph(X, "rbf", gamma=0.25)
    warm = LabelSpreading(gamma=0.25, warm_start=True)
    from activeprop.propagation import power_columns

    columns = power_columns(graph)
    powers = columns.powers
    powers.costs = MachineCosts(square_madd=1e-9, thin_madd=0.0)  # the square: 0.03 s here
    columns.plan(3)  # three rounds of 7 thin products: far less than the powers cost
    for _ in range(2):
        warm.fit(X, partial, graph=graph)
    assert powers.kept is None and powers.planned == 1
    columns.plan(1000)  # a long run is announced: the next fit buys them
    warm.fit(X, partial, graph=graph)
    assert powers.kept is not None and powers.rented_seconds < powers.worth


def test_a_long_run_buys_the_fourth_power_once_the_square_alone_would_cost_more(
        small_datasets, steady_clock):
    """Rounds on the square alone time its three products a fit; the cube and the fourth
    power are bought once two thirds of that time, over the fits so far and the announced
    ones, reach what they cost; the columns then come from them."""
    X, y, partial = small_datasets["digits400"]
    graph = build_graph(X, "rbf", gamma=0.25)
    warm = LabelSpreading(gamma=0.25, warm_start=True)
    from activeprop.propagation import power_columns

    columns = power_columns(graph)
    powers = columns.powers
    # the cube and the fourth power: 0.1 ms here; the first fit's rent (5 ms on this clock)
    # pays for the square, which the second fit buys
    powers.costs = MachineCosts(square_madd=1e-12, thin_madd=0.0)
    unlabeled = iter(np.flatnonzero(partial == -1))

    def fit_with_one_more_label():
        nonlocal partial
        item = next(unlabeled)
        partial = partial.copy()
        partial[item] = y[item]
        warm.fit(X, partial, graph=graph)

    for _ in range(2):
        fit_with_one_more_label()
    assert len(powers.kept) == 2 and powers.squared_fits == 1
    assert powers.squared_seconds > 0  # the three products of the second fit's new item
    powers.costs = MachineCosts(square_madd=1.0, thin_madd=0.0)  # a machine where it never pays
    fit_with_one_more_label()
    assert len(powers.kept) == 2 and powers.squared_fits == 2
    powers.costs = MachineCosts(square_madd=1e-12, thin_madd=0.0)
    fit_with_one_more_label()
    assert len(powers.kept) == 4
    operator = graph.operator("spreading")
    np.testing.assert_allclose(powers.kept[2], operator @ powers.kept[1], atol=1e-15)
    np.testing.assert_allclose(powers.kept[3], powers.kept[1] @ powers.kept[1],
                               atol=1e-15)
    fit_with_one_more_label()  # the new item's columns from the four powers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = semi_supervised.LabelSpreading(gamma=0.25).fit(X, partial)
    np.testing.assert_allclose(warm.label_distributions_, reference.label_distributions_,
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("alpha,max_iter", [(0.2, 30), (0.5, 5), (0.9, 30)])
def test_held_out_folds_read_off_the_columns_are_refits(small_datasets, alpha, max_iter):
    """Each labeled item's held-out distribution, read off the cached columns, is what
    scikit-learn's iteration gives without its fold, run for the same number of steps."""
    from activeprop.models import make_model
    from activeprop.review import held_out_proba

    X, y, partial = small_datasets["digits400"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_model("spreading", X, gamma=0.25, alpha=alpha, max_iter=max_iter)
        model.fit(partial)
    steps = model.labeling.n_iter_
    items = np.flatnonzero(partial != -1)
    folds = np.array_split(np.random.default_rng(0).permutation(len(items)), 5)
    if steps > 8:  # deeper than the columns reach: refits
        assert model.held_out(partial, folds) is None
        return
    assert model.held_out(partial, folds) is not None  # no refit
    _, proba = held_out_proba(model, partial, 10, n_folds=5, seed=0)
    for fold in folds:
        held = partial.copy()
        held[items[fold]] = -1
        reference = semi_supervised.LabelSpreading(gamma=0.25, alpha=alpha, max_iter=steps,
                                                   tol=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # stopped by max_iter, as intended
            reference.fit(X, held)
        expected = np.zeros((len(fold), 10))
        expected[:, reference.classes_] = reference.label_distributions_[items[fold]]
        np.testing.assert_allclose(proba[fold], expected, rtol=0, atol=1e-10)
    other = partial.copy()
    other[np.flatnonzero(partial == -1)[0]] = 0
    model.fit(other)
    assert model.held_out(partial, folds) is None  # the columns moved on: refit instead


@pytest.mark.parametrize("handoff,threads", [(1e-9, True), (10.0, False)])
def test_a_new_class_widens_the_arrays_together_in_threads_or_not(monkeypatch, handoff,
                                                                  threads):
    """A new class widens the solution, the residual and the kept fill: in threads when
    this machine's measured costs say a thread pays (a fake cheap hand-off), else one after
    the other; the same bits, in place where there is room, and a missing array stays
    missing."""
    from activeprop import column_room, graph, propagation

    costs = MachineCosts(stream_item=1e-9, thread_handoff=handoff)
    monkeypatch.setattr(graph, "machine_costs", lambda: costs)
    monkeypatch.setattr(propagation, "machine_costs", lambda: costs)
    monkeypatch.setattr(graph.os, "cpu_count", lambda: 2)
    used_threads, on_every_core = [], propagation.on_every_core

    def counted(task, parts):
        used_threads.append(True)
        return on_every_core(task, parts)

    monkeypatch.setattr(propagation, "on_every_core", counted)
    rng = np.random.default_rng(0)
    values = [rng.random((10_000, 3)), rng.random((10_000, 3))]
    blocks = []
    for block in values:
        blocks.append(column_room.zeros(*block.shape, room=5))
        blocks[-1][:] = block
    places = [block.ctypes.data for block in blocks]
    positions = np.array([0, 2, 3])

    wide = propagation._widened_together(
        lambda block: column_room.widened(block, positions, 5), [blocks[0], None, blocks[1]])

    assert used_threads == ([True] if threads else []) and wide[1] is None
    for widened, block, place in zip([wide[0], wide[2]], values, places):
        expected = np.zeros((10_000, 5))
        expected[:, positions] = block
        np.testing.assert_array_equal(widened, expected)
        assert widened.ctypes.data == place
