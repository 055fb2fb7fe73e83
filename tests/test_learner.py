import numpy as np
import pytest

from activeprop import ActiveLearner, make_model
from activeprop.oracles import GroundTruthOracle


@pytest.fixture
def digits_pool(small_datasets):
    X, y, _ = small_datasets["digits400"]
    labels = np.full(len(y), -1)
    labels[:20] = y[:20]
    return X, y, labels


@pytest.mark.parametrize("model_name", ["spreading", "propagation", "logistic",
                                        "sklearn.naive_bayes:GaussianNB",
                                        "sklearn.ensemble:RandomForestClassifier"])
def test_query_teach_loop_improves_and_never_requeries(digits_pool, model_name):
    X, y, labels = digits_pool
    model = make_model(model_name, X, gamma=0.02, max_iter=200)
    learner = ActiveLearner(model, "margin", labels=labels, seed=1)
    oracle = GroundTruthOracle(y)
    seen = set(np.flatnonzero(labels != -1))
    first = np.mean(learner.predict() == y)
    for _ in range(6):
        picked = learner.query(5)
        assert len(picked) == 5 and not seen & set(picked.tolist())
        seen |= set(picked.tolist())
        learner.teach(picked, oracle(picked))
    assert learner.n_labeled == 50
    assert len(learner.history) == 6
    assert [r.n_labeled for r in learner.history] == [20, 25, 30, 35, 40, 45]
    if ":" not in model_name:  # naive Bayes may get worse from biased samples; these must not
        assert np.mean(learner.predict() == y) >= first
    assert learner.proba.shape[0] == len(X)


def test_graph_models_build_the_graph_once(digits_pool):
    X, y, labels = digits_pool
    model = make_model("spreading", X, gamma=0.02)
    learner = ActiveLearner(model, "entropy", labels=labels)
    learner.query(5)
    graph = model.graph
    learner.teach([100], [y[100]])
    learner.query(5)
    assert model.graph is graph


def test_query_stops_when_the_pool_runs_out():
    X = np.random.RandomState(0).rand(12, 2)
    labels = np.r_[[0, 1] * 5, -1, -1]
    learner = ActiveLearner(make_model("logistic", X), "entropy", labels=labels)
    assert sorted(learner.query(5).tolist()) == [10, 11]


@pytest.mark.parametrize("name", ["nope", "sklearn.cluster:KMeans", "sklearn.svm:Nope"])
def test_bad_models_are_named(name):
    with pytest.raises(ValueError, match="model"):
        make_model(name, np.zeros((3, 2)))


def test_teach_checks_its_input(digits_pool):
    X, _, labels = digits_pool
    learner = ActiveLearner(make_model("logistic", X), labels=labels)
    with pytest.raises(ValueError, match="indices"):
        learner.teach([10_000], [1])
    with pytest.raises(ValueError, match="labels"):
        learner.teach([1, 2], [1])
    with pytest.raises(ValueError, match="batch size"):
        learner.query(0)


def test_oracle_needs_ground_truth():
    with pytest.raises(ValueError, match="ground-truth"):
        GroundTruthOracle(np.array([0, -1]))


def test_models_of_one_pool_share_a_graph(digits_pool):
    X, y, labels = digits_pool
    cache = {}
    spreading = make_model("spreading", X, gamma=0.02, graph_cache=cache).fit(labels)
    propagation = make_model("propagation", X, gamma=0.02, graph_cache=cache).fit(labels)
    other = make_model("spreading", X, gamma=0.5, graph_cache=cache).fit(labels)
    assert spreading.graph is propagation.graph and other.graph is not spreading.graph


def test_edges_weighted_locally_from_enough_labels_per_class():
    """local_from=2: plain edges below two labels per class seen, local weights from
    there (derived from the plain graph's neighbours), plain again if labels go."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    model = make_model("poisson", X, kernel="knn", n_neighbors=10,
                       graph_options={"backend": "flat", "local_from": 2})
    labels = np.full(len(y), -1)
    first = [np.flatnonzero(y == c)[:2] for c in range(10)]
    labels[[f[0] for f in first]] = y[[f[0] for f in first]]  # one per class
    model.fit(labels)
    assert set(model.graph.affinity.data) == {1.0}
    plain = model.graph
    labels[[f[1] for f in first]] = y[[f[1] for f in first]]  # two per class
    model.fit(labels)
    assert model.weights == "local" and model.graph.affinity.data.min() < 0.2
    assert (model.graph.affinity != 0).nnz == (plain.affinity != 0).nnz
    fresh = make_model("poisson", X, kernel="knn", n_neighbors=10,
                       graph_options={"backend": "flat", "weights": "local"}).fit(labels)
    np.testing.assert_array_equal(model.predict(), fresh.predict())
    labels[first[0][1]] = -1  # a label taken back: below two per class again
    assert model.fit(labels).graph is plain
