"""Damaged project files: a clear one-line refusal for the database, a silent rebuild for
the graph cache, and never a crash (a product over out-of-range indices segfaults)."""

import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from scipy import sparse

from activeprop.cli import main
from activeprop.labeling import LabelingSession
from activeprop.project import init_project
from activeprop.store import SCHEMA_VERSION, ProjectStore


@pytest.fixture
def project(tmp_path):
    init_project(tmp_path / "p", "digits-aug:300")
    store = ProjectStore(tmp_path / "p")
    store.add_label(3, 1, "ann")
    store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the file
    store.close()
    return tmp_path / "p"


def database(project):
    return project / "project.db"


def refused(project, capsys, message):
    """The CLI's answer: exit 2 and one line naming the problem."""
    code = main(["export", "--project", str(project), "--out", str(project / "x.csv")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_truncated_database(project, capsys):
    data = database(project).read_bytes()
    database(project).write_bytes(data[: len(data) // 2])
    refused(project, capsys, "truncated")


def test_a_file_that_is_not_sqlite(project, capsys):
    database(project).write_bytes(b"PK\x03\x04 this is a zip file, not a database" * 50)
    refused(project, capsys, "not an SQLite file")


def test_an_sqlite_file_that_is_not_a_project(project, capsys):
    database(project).unlink()
    sqlite3.connect(database(project)).execute("CREATE TABLE songs (title TEXT)").connection.close()
    refused(project, capsys, "not an activeprop project (it lacks the tables")


def test_flipped_bytes_in_the_features(project, capsys):
    connection = sqlite3.connect(database(project))
    row = bytearray(connection.execute("SELECT features FROM items WHERE id = 5").fetchone()[0])
    row[6:8] = b"\xff\xff"  # the exponent of a float64: NaN
    connection.execute("UPDATE items SET features = ? WHERE id = 5", (bytes(row),))
    connection.commit()
    connection.close()
    refused(project, capsys, "is damaged")


def test_a_project_from_a_newer_activeprop(project, capsys):
    connection = sqlite3.connect(database(project))
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    refused(project, capsys, "made by a newer activeprop")


def graph_file(project):
    [path] = project.glob("graph-*.npz")
    return path


def test_a_graph_with_out_of_range_indices_is_rebuilt(project):
    """Run in a child process: before the check, the product over this graph segfaulted."""
    path = graph_file(project)
    with np.load(path) as arrays:
        parts = dict(arrays)
    parts["indices"] = parts["indices"].copy()
    parts["indices"][::7] = 10**8  # far outside the pool
    np.savez(path, **parts)
    code = ("import sys; from activeprop.labeling import LabelingSession;"
            "s = LabelingSession(sys.argv[1]); s.add_label(4, 2); print(s.n_labeled)")
    done = subprocess.run([sys.executable, "-c", code, str(project)], capture_output=True,
                          text=True)
    assert done.returncode == 0 and done.stdout.strip() == "2", done.stderr
    with np.load(path) as arrays:  # the rebuilt graph was saved over the damaged one
        rebuilt = sparse.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]))
    assert rebuilt.indices.max() < 300


@pytest.mark.parametrize("damage", ["truncate", "flip", "negative"])
def test_a_damaged_graph_file_is_rebuilt(project, damage):
    path = graph_file(project)
    with np.load(path) as arrays:
        recipe = tuple(json.loads(str(arrays["facts"]))["recipe"])
    X = ProjectStore(project).load_pool().X
    assert ProjectStore(project).load_graph(recipe, X) is not None
    session = LabelingSession(project)
    expected = session.predictions()[0].copy()
    session.close()
    if damage == "negative":
        with np.load(path) as arrays:
            parts = dict(arrays)
        parts["data"] = -parts["data"]
        np.savez(path, **parts)
    else:
        data = bytearray(path.read_bytes())
        if damage == "truncate":
            data = data[: len(data) // 3]
        else:
            data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
        path.write_bytes(bytes(data))
    assert ProjectStore(project).load_graph(recipe, X) is None
    reopened = LabelingSession(project)
    np.testing.assert_array_equal(reopened.predictions()[0], expected)


@pytest.mark.parametrize("damage", ["order", "indices", "spreading alone", "components",
                                    "text", "components alone"])
def test_damaged_operators_in_the_graph_file_are_derived_again(project, damage):
    """The graph file keeps the solvers' operators (graph.Graph.derived_arrays): damaged
    ones are not used; they are derived from the affinity again and saved over."""
    path = graph_file(project)
    expected = LabelingSession(project).predictions()[0].copy()
    with np.load(path) as arrays:
        parts = dict(arrays)
    if damage == "order":
        parts["order"] = np.zeros_like(parts["order"])  # every position the first item
    elif damage == "indices":
        parts["symmetric.indices"] = parts["symmetric.indices"] + 10**8
    elif damage == "spreading alone":
        for name in ("symmetric.data", "symmetric.indices", "symmetric.indptr"):
            del parts[name]
    elif damage == "components alone":  # in the order of operators that are not there
        for name in [name for name in parts if name.startswith("symmetric")]:
            del parts[name]
    elif damage == "components":
        parts["components"] = -np.ones_like(parts["components"])
    else:
        parts["symmetric.data"] = np.array(["a"] * len(parts["symmetric.data"]))
    np.savez(path, **parts)
    recipe = tuple(json.loads(str(parts["facts"]))["recipe"])
    X = ProjectStore(project).load_pool().X
    graph = ProjectStore(project).load_graph(recipe, X)
    assert graph is not None and graph.derived_arrays() == {}  # nothing adopted
    reopened = LabelingSession(project)
    reopened._graph_loaded()
    np.testing.assert_array_equal(reopened.predictions()[0], expected)
    reopened.close()
    with np.load(path) as arrays:  # saved over the damaged ones
        np.testing.assert_array_equal(np.sort(arrays["order"]), np.arange(300))
        assert arrays["symmetric.indices"].max() < 300 and arrays["components"].min() >= 0


def test_a_damaged_cold_start_order_is_computed_again(tmp_path):
    init_project(tmp_path / "p", "digits-aug:300")
    ProjectStore(tmp_path / "p").set_meta("cold_start_order", [10**9, -5, 3])
    session = LabelingSession(tmp_path / "p")
    assert len(session.queue(5)) == 5
