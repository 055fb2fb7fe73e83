"""The project store: append-only label log, and no acknowledged label lost to kill -9."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from activeprop.project import init_project
from activeprop.store import SCHEMA_VERSION, ProjectStore


@pytest.fixture
def project(tmp_path):
    init_project(tmp_path / "p", "digits-aug:300")
    return tmp_path / "p"


def test_creation_keeps_items_truth_and_images(project):
    store = ProjectStore(project)
    pool = store.load_pool()
    assert len(pool) == 300 and pool.X.shape == (300, 64) and pool.images.shape == (300, 8, 8)
    assert store.class_names == [str(k) for k in range(10)]
    assert pool.has_ground_truth
    journal = store.connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"
    np.testing.assert_array_equal(pool.images[7], store.image(7))
    # A labeling session reads the features and truth only; each image when it is shown.
    light = store.load_pool(images=False)
    assert light.images is None
    np.testing.assert_array_equal(light.X, pool.X)
    np.testing.assert_array_equal(light.y, pool.y)


def test_log_is_append_only(project):
    store = ProjectStore(project)
    first = store.add_label(5, 3, "ann")
    store.add_label(5, 4, "bob")  # a relabel / second opinion is a new event
    store.add_label(7, 1, "ann")
    undo = store.undo_last("ann")
    assert undo.undoes is not None and undo.item_id == 7
    assert store.current_labels() == {5: 4}
    events = store.events()
    assert [e.kind for e in events] == ["label", "label", "label", "undo"]
    assert events[0] == first  # nothing was overwritten
    assert store.undo_last("nobody") is None


def test_latest_predictions_are_one_row_read_back_whole(project):
    store = ProjectStore(project)
    assert store.predictions() is None
    for version in (1, 2):
        labels, confidence = np.arange(300) % 10 + version, np.linspace(0, 1, 300) / version
        assert store.record_round(5, [], {"accuracy": None, "source": None}) == version
        store.cache_predictions(version, labels, confidence)
    version, stored_labels, stored_confidence = ProjectStore(project).predictions()
    assert version == 2
    np.testing.assert_array_equal(stored_labels, labels)
    np.testing.assert_array_equal(stored_confidence, confidence)
    assert store.connection.execute("SELECT COUNT(*) FROM latest_predictions").fetchone()[0] == 1


def test_an_older_refits_predictions_never_replace_a_newer_ones(project):
    """Processes sharing a project cache their refits' predictions in the background: a
    write that comes late leaves the newer refit's in place."""
    store = ProjectStore(project)
    store.cache_predictions(7, np.full(300, 7), np.full(300, 0.7))
    store.cache_predictions(6, np.full(300, 6), np.full(300, 0.6))
    version, labels, confidence = store.predictions()
    assert version == 7 and np.all(labels == 7) and np.all(confidence == 0.7)


def test_an_older_project_loses_only_its_row_per_item_prediction_cache(project):
    store = ProjectStore(project)
    store.add_label(4, 2, "ann")
    with store.connection:  # the table projects made before latest_predictions had
        store.connection.execute("DROP TABLE latest_predictions")
        store.connection.execute("CREATE TABLE predictions (item_id INTEGER PRIMARY KEY, "
                                 "label INTEGER, confidence REAL, model_version INTEGER)")
    store.connection.execute("PRAGMA user_version = 0")  # before schemas had versions
    reopened = ProjectStore(project)
    tables = {row[0] for row in reopened.connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "latest_predictions" in tables and "predictions" not in tables
    assert reopened.current_labels() == {4: 2}
    assert reopened.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert reopened.item_source(4) == (None, None)  # version 2's columns, empty for old items


def test_creating_over_a_project_is_refused(project):
    with pytest.raises(ValueError, match="already holds a project"):
        init_project(project, "digits")


def test_a_creation_that_fails_midway_leaves_no_project(tmp_path):
    """The items go in as one transaction: a pool that fails at its sixth item (or an
    interrupt) leaves nothing behind, so the same directory takes the project next time."""
    from dataclasses import replace

    from activeprop.datasets import load_pool

    class TextsThatFail(list):
        def __getitem__(self, i):
            if i == 5:
                raise KeyboardInterrupt
            return super().__getitem__(i)

    pool = load_pool("digits-aug:300")
    failing = replace(pool, texts=TextsThatFail(f"item {i}" for i in range(len(pool))))
    with pytest.raises(KeyboardInterrupt):
        ProjectStore.create(tmp_path / "p", failing, {})
    assert list((tmp_path / "p").iterdir()) == []
    store = ProjectStore.create(tmp_path / "p", pool, {})
    assert len(store.load_pool()) == 300


def test_opening_a_non_project_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not an activeprop project"):
        ProjectStore(tmp_path)


WRITER = textwrap.dedent("""
    import sys
    from activeprop.store import ProjectStore
    store = ProjectStore(sys.argv[1])
    for i in range(100000):
        event = store.add_label(i % 300, i % 10, "writer")
        print(event.id, i % 300, i % 10, flush=True)  # acknowledged only after the commit
""")


@pytest.mark.parametrize("acks_before_kill", [1, 37, 150])
def test_sigkill_loses_no_acknowledged_label(project, acks_before_kill):
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(project)],
                               stdout=subprocess.PIPE, text=True)
    acknowledged = []
    for line in process.stdout:
        acknowledged.append(tuple(map(int, line.split())))
        if len(acknowledged) == acks_before_kill:
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL
    stored = {(e.id, e.item_id, e.label) for e in ProjectStore(project).events()}
    assert set(acknowledged) <= stored


def test_a_version_1_project_gains_item_paths(project):
    """A project made before items had paths (schema 1) is migrated when opened."""
    import sqlite3

    connection = sqlite3.connect(project / "project.db")
    connection.execute("ALTER TABLE items DROP COLUMN path")
    connection.execute("ALTER TABLE items DROP COLUMN text")
    connection.execute("PRAGMA user_version = 1")
    connection.commit()
    connection.close()
    store = ProjectStore(project)
    assert store.item_source(3) == (None, None) and store.paths()[:2] == [None, None]
    assert store.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
