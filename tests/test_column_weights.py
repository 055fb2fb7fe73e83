"""A table's columns weighed by what the labels say about them (activeprop.column_weights)."""

import numpy as np
import pytest

from activeprop.column_weights import (MOST_ROWS, PRIOR_LABELS, eta_squared, label_weights,
                                       recommended)
from activeprop.datasets import Pool
from activeprop.errors import UserError
from activeprop.experiments import RECOMMENDED, SimulationConfig, simulate
from activeprop.labeling import LabelingSession
from activeprop.models import make_model
from activeprop.project import create_project


def test_eta_squared_by_hand():
    X = np.array([[0.0, 5.0, 1.0], [2.0, 1.0, 1.0], [10.0, 3.0, 1.0], [12.0, 3.0, 1.0],
                  [99.0, 99.0, 99.0]])
    y = np.array([0, 0, 1, 1, -1])  # the last row is not labeled: not counted
    # column 0: class means 1 and 11 around 6: between 4 * 25 = 100 of a total 104
    # column 1: class means 3 and 3: nothing between; column 2: constant, 0
    np.testing.assert_allclose(eta_squared(X, y), [100 / 104, 0.0, 0.0])
    assert eta_squared(X, np.array([0, 0, -1, -1, -1])) is None  # one class: no say


def test_label_weights_grow_from_equal_with_the_labels():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    X = np.column_stack([y + rng.normal(0, 0.3, 100), rng.normal(0, 1, 100)])
    few = np.full(100, -1)
    few[[0, 1, 50, 51]] = y[[0, 1, 50, 51]]
    many = y.copy()
    assert np.array_equal(label_weights(X, np.full(100, -1)), [1.0, 1.0])
    light, heavy = label_weights(X, few), label_weights(X, many)
    eta = eta_squared(X, many)
    np.testing.assert_allclose(heavy, (100 * eta / eta.mean() + PRIOR_LABELS) / (100 + PRIOR_LABELS))
    assert 1 < light[0] < heavy[0] and heavy[1] < light[1] < 1  # the mean weight stays 1
    np.testing.assert_allclose([light.mean(), heavy.mean()], [1.0, 1.0])


def test_auto_weighs_a_tables_columns_only():
    assert recommended(True, 500, 8, False) == "labels"
    assert recommended(False, 500, 64, False) == "none"  # pictures, texts, embeddings
    assert recommended(True, MOST_ROWS + 1, 8, False) == "none"  # a graph built every label
    assert recommended(True, 500, 300, False) == "none"  # reduced to principal components
    assert recommended(True, 500, 8, True) == "none"  # a cluster's graph


def nuisance_table(n=300, seed=0):
    """Three classes told apart by one column, among four columns of noise as wide."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n // 3)
    X = np.column_stack([3.0 * y + rng.normal(0, 0.6, n), rng.normal(0, 3, (n, 4))])
    return Pool(X, y, ["a", "b", "c"], name="nuisance",
                feature_names=["signal", "n1", "n2", "n3", "n4"])


def test_weighed_columns_leave_the_noise_behind():
    pool = nuisance_table()
    final = {}
    for choice in ("none", "labels"):
        config = SimulationConfig(**{**RECOMMENDED, "dataset": "nuisance", "subset": 0,
                                     "initial": 6, "rounds": 6, "batch": 5, "seed": 1,
                                     "column_weights": choice})
        final[choice] = simulate(config, pool=pool).rounds[-1].accuracy
    assert final["labels"] > 0.95 > final["none"] + 0.1


def test_the_graph_is_a_function_of_the_labels():
    pool = nuisance_table()
    options = {"backend": "flat", "column_weights": "labels"}

    def model():
        return make_model("poisson", pool.X, kernel="knn", n_neighbors=10, solver="cg",
                          rtol=1e-8, max_iter=2000, graph_options=dict(options))

    one_class = np.full(len(pool), -1)
    one_class[[0, 1]] = 0
    first = model().fit(one_class)
    assert first.column_weights is None and first.X is pool.X  # the features as given
    labels = np.full(len(pool), -1)
    labeled = np.r_[0:8, 100:108, 200:208]  # eight of each class
    labels[labeled] = pool.y[labeled]
    fitted, again = first.fit(labels), model().fit(labels)
    assert fitted.column_weights[0] > 1 > fitted.column_weights[1:].max()
    assert np.array_equal(fitted.column_weights, again.column_weights)
    assert np.array_equal(fitted.proba_, again.proba_)  # however the model got there
    graph = fitted.graph
    assert fitted.fit(labels).graph is graph  # the same labels: the same graph, kept
    labels[150] = 1
    assert fitted.fit(labels).graph is not graph


def test_a_table_project_weighs_its_columns_and_reopens_alike(tmp_path):
    create_project(tmp_path / "t", nuisance_table()).close()
    session = LabelingSession(tmp_path / "t")
    assert session.settings["column_weights"] == "labels"
    for _ in range(3):
        for item in session.queue(3, "a"):
            session.add_label(item.id, session.class_names[session.pool.y[item.id]])
    assert session.model.column_weights is not None
    again = LabelingSession(tmp_path / "t")
    for got, expected in zip(again.predictions(), session.predictions()):
        assert np.array_equal(got, expected)
    create_project(tmp_path / "d", Pool(np.random.default_rng(0).random((50, 64)),
                                        np.full(50, -1), [])).close()
    assert LabelingSession(tmp_path / "d").settings["column_weights"] == "none"


def test_a_bad_choice_is_one_line():
    with pytest.raises(UserError, match="unknown column weights 'some'; allowed: auto, "
                                        "labels, none"):
        SimulationConfig(column_weights="some").validate()


def test_a_cluster_refuses_weights_from_the_labels():
    pytest.importorskip("distributed")
    from activeprop.distributed.model import check_cluster_config
    from activeprop.distributed.project import check_project_settings
    from activeprop.project import project_settings

    config = SimulationConfig(**{**RECOMMENDED, "initial_strategy": "first", "kernel": "knn",
                                 "column_weights": "labels"})
    with pytest.raises(UserError, match="--column-weights labels does not run on a cluster"):
        check_cluster_config(config)
    settings = project_settings({"column_weights": "labels", "strategy": "margin",
                                 "local_from": 0.0})
    with pytest.raises(UserError, match="column weights from the labels do not run on a "
                                        "cluster"):
        check_project_settings(settings)
    check_cluster_config(SimulationConfig(**{**RECOMMENDED, "initial_strategy": "first",
                                             "column_weights": "auto"}))  # none there


def test_init_and_simulate_say_when_they_weigh_the_columns(capsys, tmp_path):
    from activeprop.cli import main

    said = "weighed by what the labels say about them (--column-weights none keeps them equal)"
    assert main(["init", "--project", str(tmp_path / "w"), "--dataset", "wine"]) == 0
    assert said in capsys.readouterr().out
    assert main(["init", "--project", str(tmp_path / "n"), "--dataset", "wine",
                 "--column-weights", "none"]) == 0
    assert said not in capsys.readouterr().out
    arguments = ["simulate", "--dataset", "iris", "--subset", "0", "--initial", "6",
                 "--rounds", "1"]
    assert main([*arguments, "--recommended"]) == 0
    assert said in capsys.readouterr().out
    assert main(arguments) == 0  # the example's settings: the columns as given
    assert said not in capsys.readouterr().out
