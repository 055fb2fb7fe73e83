"""A fit names the rows its distributions moved since earlier fits' (row_versions), so a
kept strategy's scores are computed again only there, with no copy kept to compare."""

import numpy as np
import pytest

from activeprop import propagation
from activeprop.datasets import load_pool
from activeprop.graph import build_knn_graph
from activeprop.pool_distributions import moved_rows
from activeprop.propagation import GraphLabeling
from activeprop.row_versions import MOST_ROWS_SHARE, MOST_STEPS, RowVersion


def test_a_version_names_the_rows_moved_since_each_earlier_one_it_came_from():
    first = RowVersion.new()
    second = first.after(np.array([5, 1]), 100)
    third = second.after(np.array([1, 7]), 100)
    assert third.rows_changed_since(third.stamp).tolist() == []
    assert third.rows_changed_since(second.stamp).tolist() == [1, 7]
    assert third.rows_changed_since(first.stamp).tolist() == [1, 5, 7]
    assert third.rows_changed_since(None) is None
    assert third.rows_changed_since(RowVersion.new().stamp) is None  # another fit's
    assert first.after(None, 100).rows_changed_since(first.stamp) is None  # any row moved


def test_a_version_forgets_what_a_full_pass_would_do_as_fast():
    n = 100
    start = RowVersion.new()
    most = int(MOST_ROWS_SHARE * n)
    assert start.after(np.arange(most + 1), n).rows_changed_since(start.stamp) is None
    version = start
    for step in range(MOST_STEPS + 1):
        version = version.after(np.array([step]), n)
    assert version.rows_changed_since(start.stamp) is None  # one step too many
    later = version.after(np.arange(most), n)  # the steps before it are let go
    assert later.rows_changed_since(version.stamp) is not None
    assert later.rows_changed_since(start.stamp) is None


def test_moved_rows_are_the_rows_that_differ_in_any_entry():
    rng = np.random.default_rng(0)
    previous = rng.random((5000, 7))
    P = previous.copy()
    P[[3, 4000], 6] += 1e-16 * 3  # the last bit of one entry
    P[17] = rng.random(7)
    P[900, 0] = -0.0 if previous[900, 0] == 0.0 else previous[900, 0]  # equal values
    assert moved_rows(P, previous).tolist() == [3, 17, 4000]


@pytest.fixture(scope="module")
def pool_and_graph():
    pool = load_pool("digits-aug:6000")
    order = np.random.default_rng(0).permutation(len(pool.y))
    X, y = pool.X[order], pool.y[order]
    return y, build_knn_graph(X, 10, backend="flat")


@pytest.mark.parametrize("alpha", [0.2, 0.9])
def test_a_fit_names_every_row_its_distributions_moved(pool_and_graph, alpha):
    """Label after label (pushed, kept fills updated or refilled, global solves, a new
    class, a labeler's deeper solve adopted between labels), each fit's version names a
    superset of the rows that differ from every earlier fit's it remembers, bit for bit;
    and at alpha 0.2 some labels move few rows, which it names."""
    y, graph = pool_and_graph
    labeling = GraphLabeling("spreading", alpha=alpha, max_iter=2000, tol=1e-3,
                             solver="cg", rtol=1e-4, warm_start=True)
    labeling.leaves_room = False  # as a labeler's, which deepens its solves between labels
    labels = np.full(len(y), -1)
    first = np.flatnonzero(y < 8)[:30]
    labels[first] = y[first]
    labeling.fit(graph, labels)
    history = [(labeling.distributions_version_.stamp, labeling.label_distributions_.copy())]
    named, adopted = [], 0
    rng = np.random.default_rng(1)
    for step in range(14):
        item = rng.choice(np.flatnonzero(labels == -1))
        labels = labels.copy()
        labels[item] = y[item]
        labeling.fit(graph, labels, labeling.warm_)
        P, version = labeling.label_distributions_, labeling.distributions_version_
        for stamp, earlier in history:
            rows = version.rows_changed_since(stamp)
            if rows is not None and earlier.shape == P.shape:
                differ = np.flatnonzero((P != earlier).any(axis=1))
                assert np.isin(differ, rows).all(), (step, stamp)
        last_rows = version.rows_changed_since(history[-1][0])
        named.append(len(P) if last_rows is None else len(last_rows))
        history.append((version.stamp, P.copy()))
        if step % 2 and labeling.can_deepen():  # as a labeler does between labels
            warm = labeling.warm_.shallow_copy().copy()
            labeling.adopt(labeling.deepened(graph, labels, warm))
            adopted += 1
    if alpha == 0.2:  # (at 0.9 every label moves every row of this pool, solved globally)
        assert adopted and min(named) < len(y) / 2  # some fits moved few rows, said so


def test_scores_kept_between_fits_equal_scoring_every_row(pool_and_graph, monkeypatch):
    """A learner's kept scores, through fits that moved few rows and fits that moved all,
    are entropy's of every row, and fewer rows were scored than the pool's."""
    from activeprop import strategies
    from activeprop.learner import ActiveLearner
    from activeprop.models import make_model

    y, graph = pool_and_graph
    model = make_model("spreading", np.zeros((len(y), 1)), kernel="knn", n_neighbors=10,
                       solver="cg", alpha=0.2, rtol=1e-4, max_iter=500)
    model.graph = graph
    labels = np.full(len(y), -1)
    labels[:40] = y[:40]
    learner = ActiveLearner(model, "entropy", labels=labels)
    scored = []
    score_pool = strategies.score_pool
    monkeypatch.setattr(strategies, "score_pool", lambda utility, proba, context:
                        scored.append(len(proba)) or score_pool(utility, proba, context))
    for _ in range(12):
        picked = learner.query(3)
        np.testing.assert_array_equal(learner.scores._scores,
                                      strategies.entropy(learner.proba, None))
        learner.teach(picked, y[picked])
    assert scored[0] == len(y) and min(scored) < len(y) / 2
    assert propagation.RowVersion is RowVersion  # the engine's versions are these
