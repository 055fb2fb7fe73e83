"""Tables as items a person reads: each row's values under its columns' names, from the
dataset through the project store to the labeler's API, terminal and notebook widget."""

import io
import json
import re
import sqlite3

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_iris

from activeprop import terminal
from activeprop.datasets import Pool, load_pool
from activeprop.errors import UserError
from activeprop.labeling import LabelingSession
from activeprop.project import init_project
from activeprop.store import ProjectStore
from activeprop.web.app import create_app

HOSTILE_COLUMN = '<img src=x onerror="window.pwned=1">'


@pytest.fixture
def table(tmp_path):
    """Iris as a CSV file: a hostile first column name, its values as written."""
    iris = load_iris()
    path = tmp_path / "iris.csv"
    names = [HOSTILE_COLUMN, *iris.feature_names[1:]]
    rows = [",".join(f'"{n}"' if "," in n or '"' in n else n for n in
                     [name.replace('"', '""') for name in names] + ["species"])]
    rows += [",".join([*map(str, values), str(iris.target_names[target])])
             for values, target in zip(iris.data, iris.target)]
    path.write_text("\n".join(rows) + "\n")
    return path, names, iris.data


def test_a_csv_names_its_columns(table):
    path, names, values = table
    pool = load_pool(str(path), label_column="species")
    assert pool.feature_names == names
    np.testing.assert_array_equal(pool.X, values)
    assert pool.take([3, 1]).feature_names == names
    assert pool.with_features(pool.X).feature_names == names
    assert pool.with_features(pool.X[:, :2].copy()).feature_names is None


def test_bundled_tables_and_npz_files_name_their_columns(tmp_path):
    assert load_pool("iris").feature_names == load_iris().feature_names
    assert load_pool("digits").feature_names is None  # pictures: shown as pictures
    np.savez(tmp_path / "t.npz", X=np.ones((4, 2)), feature_names=np.array(["a", "b"]))
    assert load_pool(str(tmp_path / "t.npz")).feature_names == ["a", "b"]
    np.savez(tmp_path / "bad.npz", X=np.ones((4, 2)), feature_names=np.array(["a"]))
    with pytest.raises(UserError, match="feature_names must name each of the 2 features"):
        load_pool(str(tmp_path / "bad.npz"))


def test_the_labeler_shows_a_rows_values_under_its_columns_names(table, tmp_path):
    path, names, values = table
    init_project(tmp_path / "p", str(path), label_column="species")
    session = LabelingSession(tmp_path / "p")
    queued = session.queue(3, "ann")
    for item in queued:
        assert [field["name"] for field in item.fields] == names
        assert [field["value"] for field in item.fields] == values[item.id].tolist()
    assert session.item(7)["fields"] == [{"name": n, "value": v}
                                         for n, v in zip(names, values[7].tolist())]
    # the API carries them, in the columns' order
    client = TestClient(create_app(session), base_url="http://127.0.0.1")
    answer = client.post("/api/queue", json={"n": 2, "client": "bob"}).json()
    assert all([f["name"] for f in entry["fields"]] == names for entry in answer["items"])
    assert client.get("/api/items/7").json()["fields"][1] == {"name": names[1],
                                                               "value": values[7, 1]}
    # the terminal: a name and a value a line, the hostile name as plain characters
    screen = []
    terminal.run(session, "t", stdin=io.StringIO("q\n"), write=screen.append)
    shown = "\n".join(screen)
    first = next(i for i in range(len(values)) if f"item #{i} " in shown)
    assert f"{HOSTILE_COLUMN}"[:30] in shown
    value = re.escape(terminal._number(values[first, 1]))
    assert re.search(rf"^{re.escape(names[1])} +{value}$", shown, re.MULTILINE)
    assert "(no image)" not in shown


def test_a_wide_row_is_cut_on_the_terminal():
    fields = [{"name": f"column {j}", "value": float(j)} for j in range(20)]
    lines = terminal._field_lines(fields).splitlines()
    assert lines[0] == "column 0   0" and lines[9] == "column 9   9"
    assert lines[11] == "column 11  11" and lines[-1] == "(+8 more)" and len(lines) == 13
    assert terminal._number(2.5) == "2.5" and terminal._number(1e-7) == "1e-07"


def test_reduced_and_older_projects_show_no_fields(tmp_path):
    """Values a person could read only where the project keeps the table's own columns:
    not after a reduction to principal components, not in a project made before the
    names were kept; and a damaged list of names is a clear error."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 300))
    pool = Pool(X, np.full(300, -1), [], feature_names=[f"c{j}" for j in range(300)])
    from activeprop.project import create_project

    create_project(tmp_path / "wide", pool).close()
    assert LabelingSession(tmp_path / "wide").source(0)["fields"] is None

    init_project(tmp_path / "old", "iris")
    database = tmp_path / "old" / "project.db"
    connection = sqlite3.connect(database)
    connection.execute("DELETE FROM meta WHERE key = 'feature_names'")
    connection.commit()
    assert LabelingSession(tmp_path / "old").source(0)["fields"] is None
    connection.execute("INSERT INTO meta VALUES ('feature_names', ?)", (json.dumps(["a"]),))
    connection.commit()
    connection.close()
    with pytest.raises(UserError, match="damaged.*feature names that do not fit"):
        ProjectStore(tmp_path / "old").load_pool()


def test_the_notebook_widget_shows_a_data_frames_columns(tmp_path):
    pytest.importorskip("anywidget")
    pandas = pytest.importorskip("pandas")
    from activeprop.notebook import Labeler

    iris = load_iris(as_frame=True)
    labeler = Labeler.from_arrays(iris.data, project=tmp_path / "nb", y=iris.target,
                                  classes=list(iris.target_names))
    card = labeler.items[0]
    assert [field["name"] for field in card["fields"]] == list(iris.data.columns)
    assert [field["value"] for field in card["fields"]] == \
        iris.data.iloc[card["id"]].tolist()
    assert isinstance(iris.data, pandas.DataFrame)
