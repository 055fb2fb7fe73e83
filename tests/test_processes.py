"""Several processes on one project: the label log is the truth.

Two annotators in two processes (two `serve`s, or `serve` and `label`) label at the same
time; every label reaches the store, no item is handed to both, model versions never
collide, and each process sees the other's labels before it answers.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from activeprop.labeling import LabelingSession
from activeprop.project import init_project
from activeprop.store import ProjectStore

ANNOTATOR = textwrap.dedent("""
    import json, sys
    from activeprop.labeling import LabelingSession
    session = LabelingSession(sys.argv[1])
    truth = session.pool.y
    handed = []
    for _ in range(int(sys.argv[3])):
        items = session.queue(2, client=sys.argv[2])
        handed += [item.id for item in items]
        session.add_label(items[0].id, int(truth[items[0].id]), sys.argv[2])
    print(json.dumps({"handed": handed, "state": session.state()["n_labeled"]}))
""")


@pytest.fixture
def project(tmp_path):
    init_project(tmp_path / "p", "digits-aug:400")
    return tmp_path / "p"


def test_two_processes_label_concurrently(project):
    rounds = 15
    workers = [subprocess.Popen([sys.executable, "-c", ANNOTATOR, str(project), name,
                                 str(rounds)], stdout=subprocess.PIPE, text=True)
               for name in ("ann", "bob")]
    results = {}
    for name, worker in zip(("ann", "bob"), workers):
        out, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0
        results[name] = json.loads(out)
    # No item was handed to both: leases hold across processes.
    assert not set(results["ann"]["handed"]) & set(results["bob"]["handed"])
    store = ProjectStore(project)
    labels = store.current_labels()
    assert len(labels) == 2 * rounds
    assert {e.annotator for e in store.events()} == {"ann", "bob"}
    # Each process saw the other's labels: the last to finish counts all of them.
    assert max(r["state"] for r in results.values()) == 2 * rounds
    # One round per label, every version once.
    versions = [r["model_version"] for r in store.rounds()]
    assert versions == list(range(1, 2 * rounds + 1))
    rows = LabelingSession(project).export_rows()
    assert sum(r["source"] == "human" for r in rows) == 2 * rounds


def test_a_session_sees_labels_another_process_appended(project):
    server = LabelingSession(project)
    server.add_label(0, int(server.pool.y[0]), "ann")
    other = LabelingSession(project)  # as `activeprop label` in another terminal
    other.add_label(1, int(other.pool.y[1]), "bob")
    other.add_label(2, int(other.pool.y[2]), "bob")
    other.undo("bob")
    other.add_label(0, int(other.pool.y[0]), "bob")  # a second label of item 0: one item
    state = server.state()
    assert state["n_labeled"] == 2  # (a count kept with the labels, event by event)
    assert server.item(1)["label"] == str(server.pool.y[1])
    assert server.item(2)["label"] is None  # labeled, then undone, elsewhere
    assert not {item.id for item in server.queue(10, "ann")} & {0, 1}
    answer = server.add_label(3, int(server.pool.y[3]), "ann")
    assert answer["model_version"] == 6  # after the other's four rounds: no collision
    assert np.count_nonzero(server.labels != -1) == 3 == server.n_labeled
    other.undo("bob")  # bob's label of item 0 undone: ann's holds
    assert server.state()["n_labeled"] == 3
