"""A table's columns in different units, standardised (activeprop.scaling): the rule, and
the same choice in simulate, in a project at creation and at every opening."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine

from activeprop.cli import main
from activeprop.errors import UserError
from activeprop.experiments import SimulationConfig, simulate
from activeprop.labeling import LabelingSession
from activeprop.project import create_project, init_project
from activeprop.datasets import Pool
from activeprop.scaling import SPREAD_RATIO, standardised, standardises


def test_the_rule():
    wine, iris = load_wine().data, load_iris().data
    assert standardises(wine, "auto", is_table=True)  # proline beside hue: 2,530 times
    assert not standardises(iris, "auto", is_table=True)  # all in centimetres: 4 times
    assert not standardises(wine, "auto", is_table=False)  # pixels, embeddings: never
    assert standardises(iris, "standard", False) and not standardises(wine, "none", True)
    columns = np.array([[0.0, 1.0, 5.0], [1.0, 1.0, 5.0 + SPREAD_RATIO * 1.01]])
    assert standardises(columns, "auto", True)  # the constant column has no say
    assert not standardises(columns[:, :2], "auto", True)
    Z = standardised(columns)
    np.testing.assert_allclose(Z, [[-1, 0, -1], [1, 0, 1]])
    with pytest.raises(UserError, match="unknown scale 'z'; allowed: auto, standard, none"):
        standardises(wine, "z", True)


def rounds(**settings):
    config = SimulationConfig(subset=0, initial=10, rounds=3, batch=5, **settings)
    return simulate(config).rounds


def test_simulate_standardises_a_table_in_different_units():
    auto, raw = rounds(dataset="wine"), rounds(dataset="wine", scale="none")
    # the example's settings on wine: about 0.68 on the raw columns, 0.95 standardised
    assert all(a.accuracy > r.accuracy + 0.15 for a, r in zip(auto, raw))
    iris, iris_raw = rounds(dataset="iris"), rounds(dataset="iris", scale="none")
    assert [r.accuracy for r in iris] == [r.accuracy for r in iris_raw]
    assert [r.queried for r in iris] == [r.queried for r in iris_raw]


def test_a_project_keeps_a_tables_values_and_works_on_them_standardised(tmp_path):
    wine = load_wine()
    store = init_project(tmp_path / "p", "wine")
    assert store.meta("settings")["scale"] == "standard" and store.meta("standardised")
    np.testing.assert_array_equal(store.load_pool().X, wine.data)  # its own values
    session = LabelingSession(tmp_path / "p")
    np.testing.assert_array_equal(session.pool.X, standardised(wine.data))
    assert session.item(0)["fields"][-1] == {"name": "proline", "value": 1065.0}
    for item in range(0, 178, 15):
        session.add_label(item, session.class_names[wine.target[item]])
    assert session.learning_curve()[-1]["accuracy"] > 0.85  # raw columns: about 0.7
    predictions = session.predictions()[0].copy()
    reopened = LabelingSession(tmp_path / "p")  # opened again: the same model's answers
    np.testing.assert_array_equal(reopened.predictions()[0], predictions)
    assert not init_project(tmp_path / "i", "iris").meta("standardised")


def test_a_wide_table_is_standardised_once_then_reduced(tmp_path):
    """Standardised, then reduced to principal components: the project keeps the
    components (no values to show, nothing to standardise again on opening)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 300)) * np.geomspace(1, 1e4, 300)
    pool = Pool(X, np.full(300, -1), [], feature_names=[f"c{j}" for j in range(300)])
    store = create_project(tmp_path / "wide", pool)
    assert store.meta("settings")["scale"] == "standard" and not store.meta("standardised")
    session = LabelingSession(tmp_path / "wide")
    assert session.pool.X.shape == (300, 48) and session.source(0)["fields"] is None


def test_simulate_says_when_it_standardises(capsys):
    arguments = ["simulate", "--subset", "0", "--initial", "10", "--rounds", "1"]
    assert main([*arguments, "--dataset", "wine"]) == 0
    assert capsys.readouterr().out.startswith("The table's columns are standardised (their "
                                              "spreads differ over 200 times: different "
                                              "units); --scale none keeps them as they are.\n")
    assert main([*arguments, "--dataset", "wine", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["standardised"] is True
    assert main([*arguments, "--dataset", "iris", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["standardised"] is False


def test_init_says_when_it_standardises(capsys, tmp_path):
    assert main(["init", "--project", str(tmp_path / "w"), "--dataset", "wine"]) == 0
    assert "Its columns are standardised (--scale none keeps them as they are)." in \
        capsys.readouterr().out
    assert main(["init", "--project", str(tmp_path / "i"), "--dataset", "iris"]) == 0
    assert "standardised" not in capsys.readouterr().out


def test_a_bad_scale_is_one_line(capsys, tmp_path):
    assert main(["simulate", "--scale", "unit"]) == 2
    assert main(["init", "--project", str(tmp_path / "p"), "--dataset", "wine",
                 "--scale", "unit"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith("activeprop:")]  # (init says first what it is reading)
    assert errors == ["activeprop: error: unknown scale 'unit'; allowed: auto, standard, none "
                      "(auto standardises a table's columns when they are in different "
                      "units)"] * 2
    assert not (tmp_path / "p").exists()
