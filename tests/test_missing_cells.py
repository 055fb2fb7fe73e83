"""A table's missing cells: read as missing, kept missing, shown as missing, and filled
with their columns' medians only where the graph is built."""

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from activeprop import terminal
from activeprop.cli import main
from activeprop.datasets import Pool, load_pool
from activeprop.errors import UserError
from activeprop.labeling import LabelingSession
from activeprop.missing_cells import count_missing, filled_in, is_missing
from activeprop.project import create_project, init_project
from activeprop.store import ProjectStore
from activeprop.web.app import create_app


def test_the_spellings_of_a_missing_cell():
    for cell in ["", "  ", "NA", "na", "N/A", "NaN", "null", "NULL", "None", "?", "#N/A", " ? "]:
        assert is_missing(cell), cell
    for cell in ["0", "-", "missing value", "nan5", "n"]:
        assert not is_missing(cell), cell


def test_a_csv_reads_missing_cells_and_labels(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,kind\n1,2,cat\nNA,3,NA\n\n4,,dog\n5, ? ,\n")
    pool = load_pool(str(path), label_column="kind")
    np.testing.assert_array_equal(pool.X, [[1, 2], [np.nan, 3], [4, np.nan], [5, np.nan]])
    assert pool.class_names == ["cat", "dog"] and pool.y.tolist() == [0, -1, 1, -1]
    assert count_missing(pool.X) == 3


def test_only_a_tables_features_may_miss_cells():
    X = np.array([[1.0, np.nan], [2.0, 3.0]])
    assert Pool(X, np.array([0, 1]), ["a", "b"], feature_names=["x", "y"]).is_table
    with pytest.raises(UserError, match="NaN or infinite.*may miss values when they are named"):
        Pool(X, np.array([0, 1]), ["a", "b"])
    with pytest.raises(UserError, match="infinite values.*numbers, or missing"):
        Pool(np.array([[np.inf, 1.0]]), np.array([0]), ["a"], feature_names=["x", "y"])


def test_filled_in_takes_each_columns_median_in_a_copy():
    X = np.array([[1.0, np.nan, np.nan], [3.0, 10.0, np.nan], [np.nan, 20.0, np.nan],
                  [8.0, 40.0, np.nan]])
    filled = filled_in(X)
    np.testing.assert_array_equal(filled, [[1, 20, 0], [3, 10, 0], [3, 20, 0], [8, 40, 0]])
    assert np.isnan(X[0, 1])  # the table itself keeps its holes
    complete = np.ones((3, 2))
    assert filled_in(complete) is complete


@pytest.fixture
def holed_iris(tmp_path):
    """Iris as a CSV with a hole in every seventh row (column by turn) and one row empty."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    X = iris.data.copy()
    for i in range(0, len(X), 7):
        X[i, (i // 7) % 4] = np.nan
    X[5] = np.nan
    rows = [",".join([*("sl", "sw", "pl", "pw"), "species"])]
    rows += [",".join(["NA" if np.isnan(v) else repr(float(v)) for v in x] +
                      [str(iris.target_names[t])]) for x, t in zip(X, iris.target)]
    path = tmp_path / "holed.csv"
    path.write_text("\n".join(rows) + "\n")
    return path, X


def test_a_project_keeps_the_holes_shows_them_and_fills_them_for_the_graph(
        holed_iris, tmp_path, capsys):
    path, X = holed_iris
    assert main(["init", "--project", str(tmp_path / "p"), "--dataset", str(path),
                 "--label-column", "species"]) == 0
    printed = capsys.readouterr().out
    n_missing = int(np.isnan(X).sum())
    assert f"{n_missing} cells of the table are missing: the graph fills each with its " \
           "column's median, and the labeler shows it as missing." in printed
    stored = ProjectStore(tmp_path / "p").load_pool()
    np.testing.assert_array_equal(stored.X, X)  # NaN where the file had NA
    session = LabelingSession(tmp_path / "p")
    assert not np.isnan(session.pool.X).any()  # the graph's features are filled in
    assert [f["value"] for f in session.source(5)["fields"]] == [None] * 4
    assert session.source(7)["fields"][1] == {"name": "sw", "value": None}
    assert session.source(1)["fields"][0] == {"name": "sl", "value": X[1, 0]}
    # The API says null (JSON has no NaN); the terminal says "missing".
    client = TestClient(create_app(session), base_url="http://127.0.0.1")
    assert client.get("/api/items/7").json()["fields"][1] == {"name": "sw", "value": None}
    assert terminal._field_lines(session.source(7)["fields"]).splitlines()[1] == \
        "sw  missing"
    # Every item is predicted, and a second process predicts the same, to the bit.
    for item in session.queue(4, "a"):
        session.add_label(item.id, session.class_names[int(stored.y[item.id])])
    predicted, confidence = session.predictions()
    assert (predicted >= 0).all() and np.isfinite(confidence).all()
    again = LabelingSession(tmp_path / "p")
    assert np.array_equal(again.predictions()[0], predicted)
    assert np.array_equal(again.predictions()[1], confidence)


def test_a_tables_holes_are_filled_before_it_is_standardised(tmp_path):
    """Columns in different units with holes: the graph's features are the filled columns,
    standardised; the project stores the holes."""
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(0, 1, 60), rng.normal(5000, 800, 60)])
    X[::9, 1] = np.nan
    pool = Pool(X, np.repeat([0, 1, 2], 20), ["a", "b", "c"], feature_names=["mm", "g"])
    create_project(tmp_path / "p", pool).close()
    session = LabelingSession(tmp_path / "p")
    assert session.settings["scale"] == "standard"
    filled = filled_in(X)
    np.testing.assert_allclose(session.pool.X, (filled - filled.mean(0)) / filled.std(0))


def test_simulate_says_how_many_cells_were_missing(holed_iris, capsys):
    path, X = holed_iris
    args = ["simulate", "--dataset", str(path), "--label-column", "species",
            "--initial", "6", "--batch", "5", "--rounds", "2"]
    assert main(args + ["--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["missing_cells"] == int(np.isnan(X).sum())
    assert all(0 <= r["accuracy"] <= 1 for r in document["rounds"])
    assert main(args) == 0
    assert f"{int(np.isnan(X).sum())} cells of the table are missing" in capsys.readouterr().out


def test_the_terminal_shows_a_missing_value():
    screen = io.StringIO()
    screen.write(terminal._field_lines([{"name": "a", "value": None},
                                        {"name": "bb", "value": 2.0}]))
    assert screen.getvalue().splitlines() == ["a   missing", "bb  2"]


def test_the_queue_carries_a_missing_value_as_null(holed_iris, tmp_path):
    path, X = holed_iris
    init_project(tmp_path / "p", str(path), label_column="species")
    client = TestClient(create_app(LabelingSession(tmp_path / "p")), base_url="http://127.0.0.1")
    answer = client.post("/api/queue", json={"n": 50, "client": "bob"})
    assert answer.status_code == 200
    shown = {entry["id"]: [f["value"] for f in entry["fields"]] for entry in answer.json()["items"]}
    assert len(shown) == 50 and any(None in values for values in shown.values())
    assert all(v is None if np.isnan(x) else v == x
               for i, values in shown.items() for v, x in zip(values, X[i]))
