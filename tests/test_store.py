"""The project store: append-only label log, and no acknowledged label lost to kill -9."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from activeprop.labeling import init_project
from activeprop.store import ProjectStore


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


def test_creating_over_a_project_is_refused(project):
    with pytest.raises(ValueError, match="already holds a project"):
        init_project(project, "digits")


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
