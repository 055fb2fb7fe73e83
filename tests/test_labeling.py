"""The labeling session: queue, leases, labels, undo, export, terminal loop."""

import io
import json
import threading
import time

import numpy as np
import pytest

from activeprop import terminal
from activeprop.errors import UserError
from activeprop.labeling import LabelingSession
from activeprop.project import init_project


@pytest.fixture
def session(tmp_path):
    init_project(tmp_path / "p", "digits")
    return LabelingSession(tmp_path / "p")


def test_queue_leases_items_to_one_client(session):
    first = [item.id for item in session.queue(5, client="ann")]
    second = [item.id for item in session.queue(5, client="bob")]
    assert len(first) == 5 and len(second) == 5 and not set(first) & set(second)
    assert [item.id for item in session.queue(5, client="ann")] == first  # same client: same


def test_labels_refit_and_resume_after_reopening(session, tmp_path):
    truth = session.pool.y
    for item in range(30):
        session.add_label(item, int(truth[item]), "ann")
    version = session.model_version
    assert version == 30 and session.n_labeled == 30
    assert session.learning_curve()[-1]["source"] == "ground truth" and session.learning_curve()[-1]["accuracy"] > 0.7
    # the accuracy on the 1,767 unlabeled items, to the bit
    predicted = session.predictions()[0]
    assert session.learning_curve()[-1]["accuracy"] == np.mean(predicted[30:] == truth[30:])
    # The estimate without ground truth is on the page's state, near the true accuracy.
    estimate = session.state()["estimated_accuracy"]
    assert session.state()["classes_labeled"] == len(np.unique(truth[:30]))
    assert abs(estimate - session.learning_curve()[-1]["accuracy"]) < 0.1
    reopened = LabelingSession(tmp_path / "p")
    assert reopened.state()["estimated_accuracy"] == pytest.approx(estimate, abs=1e-3)
    assert reopened.n_labeled == 30 and reopened.model_version == version
    np.testing.assert_array_equal(reopened.labels, session.labels)
    assert reopened.learning_curve() == session.learning_curve()
    # The reopened model is solved cold, the running one was warm-started label by label:
    # the same solution up to the solver's tolerance.
    same = np.argmax(reopened.proba, axis=1) == np.argmax(session.proba, axis=1)
    assert same.mean() > 0.995


def test_second_opinion_and_undo(session):
    session.add_label(10, "3", "ann")
    answer = session.add_label(10, "5", "bob")
    assert answer["second_opinion"] is True
    assert session.item(10)["label"] == "5" and len(session.item(10)["events"]) == 2
    undone = session.undo("bob")
    assert undone["item_id"] == 10 and undone["label"] == "3"
    assert session.undo("bob") is None


@pytest.mark.parametrize("bad,error", [("eleven", ValueError), (10, ValueError),
                                       (True, ValueError)])
def test_bad_labels(session, bad, error):
    with pytest.raises(error, match="not a class"):
        session.add_label(1, bad)


def test_unknown_item(session):
    with pytest.raises(LookupError, match="no item"):
        session.add_label(5000, "1")


def test_export_formats_and_threshold(session, tmp_path):
    for item in range(20):
        session.add_label(item, int(session.pool.y[item]))
    rows = [json.loads(line) for line in session.export("jsonl").decode().splitlines()]
    assert len(rows) == 1797
    assert sum(r["source"] == "human" for r in rows) == 20
    assert rows[0]["human_labels"][0]["kind"] == "label"
    confident = session.export_rows(min_confidence=0.9)
    assert len(confident) == 1797  # rows are kept; the labels below the threshold are blank
    blank = [r for r in confident if r["label"] is None]
    assert 0 < len(blank) < 1797 - 20
    assert all(r["confidence"] < 0.9 and r["source"] == "propagated" for r in blank)
    assert all(r["confidence"] >= 0.9 for r in confident if r["label"] is not None)
    csv_text = session.export("csv").decode()
    assert csv_text.splitlines()[0] == "id,path,label,source,confidence,human_labels"
    (tmp_path / "e.npz").write_bytes(session.export("npz"))
    archive = np.load(tmp_path / "e.npz")
    assert len(archive["id"]) == 1797 and set(archive["source"]) == {"human", "propagated"}
    with pytest.raises(ValueError, match="export format"):
        session.export("xml")


def test_terminal_loop(session):
    lines = []
    saved = terminal.run(session, "term", stdin=io.StringIO("3\ns\nu\n7\n1\nx\nq\n"),
                         write=lines.append)
    text = "\n".join(lines)
    assert saved == 3 and "Undone" in text and "Unknown key 'x'" in text
    assert "█" in text or "▓" in text
    assert session.n_labeled == 2
    # The figure is ground-truth accuracy, labelled as the page labels it, once two
    # classes have labels (with one, the model guesses nothing to measure).
    headers = [line for line in lines if line.startswith("item #")]
    assert all("accuracy" not in h for h in headers if "labeled 2/" not in h)
    assert all(h.endswith("(ground truth)") for h in headers if "labeled 2/" in h)
    assert "est. accuracy" not in text


def test_drawing_downsamples_large_images():
    picture = terminal.draw(np.ones((64, 64)), 1.0)
    assert picture.splitlines()[0] == "█" * 32 and len(picture.splitlines()) == 16


def test_image_folder_project(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, level in (("cat", 40), ("dog", 200)):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(rng.normal(level, 20, (20, 30)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / name / f"{i}.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "imgs" / "loose.jpg")
    store = init_project(tmp_path / "p", str(tmp_path / "imgs"), image_size=8, n_neighbors=3,
                         image_features="pixels")
    pool = store.load_pool()
    assert store.class_names == ["cat", "dog"] and pool.X.shape == (13, 64)
    assert (pool.y == -1).sum() == 1
    session = LabelingSession(tmp_path / "p")
    session.add_label(0, "cat")
    session.add_label(6, "dog")
    assert session.item(5)["prediction"] == "cat" and session.item(11)["prediction"] == "dog"
    assert session.item(5)["path"] == "cat/5.png" and session.item(12)["path"] == "loose.jpg"


def test_bad_image_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        init_project(tmp_path / "p", str(tmp_path / "empty"))
    (tmp_path / "broken" / "a").mkdir(parents=True)
    (tmp_path / "broken" / "a" / "x.png").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read image in .*broken: a/x.png \\(cannot "
                                         "identify image file .*\\); fix or remove them$"):
        init_project(tmp_path / "p2", str(tmp_path / "broken"))
    # every broken file is named at once (the first five, then how many more)
    from PIL import Image

    Image.new("L", (4, 4)).save(tmp_path / "broken" / "a" / "good.png")
    for i in range(6):
        (tmp_path / "broken" / "a" / f"y{i}.jpg").write_bytes(b"truncated")
    with pytest.raises(ValueError) as raised:
        init_project(tmp_path / "p3", str(tmp_path / "broken"))
    message = str(raised.value)
    assert message.startswith("cannot read images in ") and "\n" not in message
    assert message.count("cannot identify image file") == 5 and "; and 2 more; " in message
    assert "good.png" not in message and not (tmp_path / "p3").exists()


def test_large_pools_default_to_spreading(tmp_path, monkeypatch):
    from activeprop import project

    monkeypatch.setattr(project, "POISSON_MAX_ITEMS", 100)
    assert init_project(tmp_path / "big", "digits-aug:300").meta("settings")["model"] == "spreading"
    chosen = init_project(tmp_path / "chosen", "digits-aug:300", model="poisson")
    assert chosen.meta("settings")["model"] == "poisson"
    small = init_project(tmp_path / "small", "digits-aug:50")
    assert small.meta("settings")["model"] == "poisson"



def test_a_project_can_declare_its_class_priors(tmp_path):
    init_project(tmp_path / "p", "digits", class_priors="uniform")
    balanced = LabelingSession(tmp_path / "p")
    assert balanced.settings["class_priors"] == "uniform"
    truth = balanced.pool.y
    for label in range(10):  # two labels per class; the prior evens out the predicted sizes
        for item in np.flatnonzero(truth == label)[:2]:
            balanced.add_label(int(item), label, "ann")
    sizes = np.bincount(balanced.model.labeling.transduction_, minlength=10) / len(truth)
    assert np.all(np.abs(sizes - 0.1) <= 0.1 * 0.05 + 1e-12)
    with pytest.raises(ValueError, match="applies to the poisson model"):
        init_project(tmp_path / "q", "digits", model="spreading", class_priors="uniform")
    with pytest.raises(ValueError, match="needs 10 positive shares"):
        init_project(tmp_path / "r", "digits", class_priors="1,2")


def test_the_graph_is_kept_and_read_back_when_the_project_reopens(tmp_path, monkeypatch):
    import activeprop.models

    init_project(tmp_path / "p", "digits")
    assert len(list((tmp_path / "p").glob("graph-*.npz"))) == 1  # searched once, at init
    first = LabelingSession(tmp_path / "p")
    first.add_label(3, "3")
    assert len(list((tmp_path / "p").glob("graph-*.npz"))) == 1

    def no_search(*args, **kwargs):
        raise AssertionError("the neighbours were searched again")

    monkeypatch.setattr(activeprop.models, "build_knn_graph", no_search)
    again = LabelingSession(tmp_path / "p")
    assert (again.model.graph.affinity != first.model.graph.affinity).nnz == 0
    assert again.model.graph.describe() == first.model.graph.describe()
    np.testing.assert_array_equal(again.proba, first.proba)
    # The pool's neighbours are searched again only to place new items (inductive).
    new_item = again.pool.X[:2] + 0.5
    np.testing.assert_array_equal(again.model.graph.affinity_to(new_item),
                                  first.model.graph.affinity_to(new_item))


def labeled_session(project, items=(3, 5, 8, 13)):
    """A session on ``project`` with ``items`` labeled with their true classes."""
    session = LabelingSession(project)
    for item in items:
        session.add_label(item, str(session.pool.y[item]))
    return session


def derived_arrays(project) -> set:
    """The names of the derived arrays the project's graph file holds."""
    (kept,) = project.glob("graph-*.npz")
    with np.load(kept) as arrays:
        return set(arrays.files) - {"data", "indices", "indptr", "facts"}


def without_derived_arrays(project) -> None:
    """Make the project's graph file one written before graph files kept the operators."""
    (kept,) = project.glob("graph-*.npz")
    with np.load(kept) as arrays:
        parts = {name: arrays[name] for name in ("data", "indices", "indptr", "facts")}
    np.savez(kept, **parts)


def test_the_solvers_operators_are_read_back_with_the_graph(tmp_path, monkeypatch):
    """Reopening a project does not derive its solvers' operators again (at 1,000,000 items
    5 of the 7 s the first label waited): the graph file keeps them, the same to the bit."""
    import shutil

    import activeprop.graph

    init_project(tmp_path / "p", "digits-aug:2000")
    assert {"order", "components", "symmetric.data",
            "symmetric-spreading.data"} <= derived_arrays(tmp_path / "p")
    labeled_session(tmp_path / "p").close()
    shutil.copytree(tmp_path / "p", tmp_path / "q")
    without_derived_arrays(tmp_path / "q")
    derived = labeled_session(tmp_path / "q", items=())
    derived._graph_loaded()
    derived.model.graph.operator("symmetric-spreading")  # (the small pool's solver needs none)

    def derived_again(*args, **kwargs):
        raise AssertionError("an operator was derived again")

    for name in ("_symmetrize", "_spreading_operator"):
        monkeypatch.setattr(activeprop.graph, name, derived_again)
    read_back = labeled_session(tmp_path / "p", items=())
    read_back._graph_loaded()
    for variant in ("symmetric", "symmetric-spreading"):
        for part in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(
                getattr(read_back.model.graph.operator(variant).matrix, part),
                getattr(derived.model.graph.operator(variant).matrix, part))
    np.testing.assert_array_equal(read_back.model.graph.order, derived.model.graph.order)
    np.testing.assert_array_equal(read_back.proba, derived.proba)
    derived.close()
    read_back.close()


def test_a_graph_file_without_the_operators_gets_them_once_derived(tmp_path):
    """A project made before graph files kept the operators derives them on opening, as
    before, and keeps them from then on."""
    init_project(tmp_path / "p", "digits-aug:2000")
    labeled_session(tmp_path / "p").close()
    without_derived_arrays(tmp_path / "p")
    first = labeled_session(tmp_path / "p", items=())
    first._graph_loaded()
    # what this project's solver derived (poisson learning: no normalised operator)
    assert {"order", "components", "symmetric.data"} <= derived_arrays(tmp_path / "p")
    again = labeled_session(tmp_path / "p", items=())
    np.testing.assert_array_equal(again.proba, first.proba)
    first.close()
    again.close()


def test_the_compiled_loops_are_loaded_with_the_graph():
    """A spreading model's graph comes with the push's and the fill's compiled loops loaded
    (the labeler loads its graph while the person looks at the first item; its first refit
    waited 0.45 s for them). In a fresh process, where nothing compiled them before."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from activeprop import push, kept_fill\n"
        "from activeprop.models import make_model\n"
        "X = np.random.default_rng(0).normal(size=(300, 5))\n"
        "model = make_model('spreading', X, kernel='knn', n_neighbors=5, alpha=0.9,\n"
        "                   solver='cg')\n"
        "loops = (push._push, kept_fill._fill_layers, kept_fill._lower_layers)\n"
        "before = [len(loop.signatures) for loop in loops]\n"
        "model.build_graph()\n"
        "print(before, [len(loop.signatures) for loop in loops])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 0, 0] [1, 1, 1]", done.stdout


def test_a_damaged_graph_file_is_rebuilt_not_fatal(tmp_path):
    init_project(tmp_path / "p", "digits")
    LabelingSession(tmp_path / "p").add_label(3, "3")
    (kept,) = (tmp_path / "p").glob("graph-*.npz")
    kept.write_bytes(b"not a graph")
    session = LabelingSession(tmp_path / "p")
    assert session.model.graph.n_items == 1797 and session.n_labeled == 1
    assert kept.stat().st_size > 1000  # written again


def test_without_ground_truth_the_curve_is_cross_validated_in_the_background(tmp_path):
    init_project(tmp_path / "p", "digits")
    session = LabelingSession(tmp_path / "p")
    truth = session.pool.y.copy()
    session.pool.y[:] = -1  # as a project whose pool has no known classes
    rng = np.random.default_rng(0)
    for item in rng.choice(len(truth), 15, replace=False):
        answer = session.add_label(int(item), str(truth[item]))  # answered before the point
    session.wait_for_estimates()
    last = session.learning_curve()[-1]
    assert last["source"] == "cross-validation" and last["n_labeled"] == 15
    assert 0 <= last["accuracy"] <= 1
    rounds = session.store.rounds()
    assert rounds[-1]["model_version"] == answer["model_version"]
    assert rounds[-1]["accuracy"] == last["accuracy"]  # stored with its refit
    assert all(point["source"] == "cross-validation" for point in session.learning_curve())


def test_the_curves_point_waits_for_a_quiet_moment(tmp_path, monkeypatch):
    """While labels keep coming, the curve's cross-validation does not run (its refits
    would slow the ones the person waits for); a pause brings the newest point."""
    import activeprop.labeling as labeling

    # long enough that a refit of digits never takes it, even on a loaded machine
    monkeypatch.setattr(labeling, "QUIET_SECONDS", 3.0)
    init_project(tmp_path / "p", "digits")
    session = LabelingSession(tmp_path / "p")
    truth = session.pool.y.copy()
    session.pool.y[:] = -1
    validated = []
    monkeypatch.setattr(session, "_cross_validate",
                        lambda labels, version: validated.append(version))
    for item in range(12):
        session.add_label(item, str(truth[item]))
    assert validated == []  # the labels came faster than the quiet moment
    time.sleep(3.5)
    session.wait_for_estimates()
    assert validated == [session.model_version]  # the newest refit's point only
    session.close()


def test_a_curves_point_is_given_up_inside_a_fold_once_a_newer_label_came(tmp_path,
                                                                          monkeypatch):
    """A fold's refit takes seconds on a large pool: a point that a newer label made stale
    stops at the next iteration of the fold's solve instead of sharing the cores with the
    person's refits, and stores nothing."""
    import activeprop.labeling as labeling

    monkeypatch.setattr(labeling, "QUIET_SECONDS", 60.0)  # no point computed on its own
    session, _ = _labeled_without_truth(tmp_path, 12)
    version, labels = session.model_version, session.labels.copy()
    spare, fits = session._spare_model(), []
    fit = spare.fit

    def fit_then_a_label_comes(y):
        fits.append(len(fits))
        session._validation_wanted = None  # as the refit of a newer label does
        fit(y)
        fits.append("finished")

    monkeypatch.setattr(spare, "fit", fit_then_a_label_comes)
    monkeypatch.setattr(session, "_spare_model", lambda: spare)
    session._cross_validate(labels, version)
    assert fits == [0]  # given up within the first fold's solve
    assert session.store.rounds()[-1]["accuracy"] is None  # no point stored
    session.close()


def _labeled_without_truth(tmp_path, n_labels: int):
    """A digits project whose pool's classes are unknown (as a real pool's), its first
    ``n_labels`` items labeled from the truth. Returns the session and the truth."""
    init_project(tmp_path / "p", "digits")
    session = LabelingSession(tmp_path / "p")
    truth = session.pool.y.copy()
    session.pool.y[:] = -1
    for item in range(n_labels):
        session.add_label(item, str(truth[item]))
    return session, truth


def test_closing_waits_for_the_background_point_then_closes(tmp_path):
    session, _ = _labeled_without_truth(tmp_path, 10)
    session.close()  # a point may be computing: it is finished (or dropped) first
    reopened = LabelingSession(tmp_path / "p")
    assert reopened.n_labeled == 10 and len(reopened.store.rounds()) == 10


def test_the_stores_predictions_cache_follows_the_refits_after_the_answer(session, tmp_path,
                                                                          monkeypatch):
    """The cache is written in the background once labels pause, newest refit only, and
    before closing: a burst of labels neither waits for it nor writes it each time."""
    truth = session.pool.y
    session.background.quiet_seconds = 600  # labels that come faster than the pause
    writes = []
    cache_predictions = session.store.cache_predictions
    monkeypatch.setattr(session.store, "cache_predictions",
                        lambda *args: writes.append(args[0]) or cache_predictions(*args))
    for item in range(3):
        session.add_label(item, int(truth[item]))
    assert session.store.predictions() is None and writes == []
    session.wait_for_estimates()  # (as at the pause)
    assert writes == [3]
    version, predicted, confidence = session.store.predictions()
    assert version == session.model_version == 3
    np.testing.assert_array_equal(predicted, session.predictions()[0])
    np.testing.assert_array_equal(confidence, session.predictions()[1])
    session.add_label(3, int(truth[3]))
    expected = session.predictions()
    session.close()
    version, predicted, confidence = LabelingSession(tmp_path / "p").store.predictions()
    assert version == 4
    np.testing.assert_array_equal(predicted, expected[0])
    np.testing.assert_array_equal(confidence, expected[1])


def test_init_keeps_the_first_items_to_offer(tmp_path):
    from activeprop.project import cold_start_order

    init_project(tmp_path / "p", "digits")
    session = LabelingSession(tmp_path / "p")
    kept = session.store.meta("cold_start_order")
    assert kept == cold_start_order(session.model, session.pool.X, 10).tolist()
    assert sorted(kept) == list(range(1797))
    assert [item.id for item in session.queue(5, "ann")] == kept[:5]


def test_the_warm_up_queue_reads_the_density_computed_in_the_background(session, tmp_path):
    from activeprop import strategies

    assert session.settings["strategy"] == "typical-margin" and session._density_job is None
    truth = session.pool.y
    for item in (int(np.flatnonzero(truth == 0)[0]), int(np.flatnonzero(truth == 1)[0])):
        session.add_label(item, str(truth[item]))
    # Two labels of two classes: the warm-up, whose queue weights margin by density.
    queued = [item.id for item in session.queue(5)]
    expected = strategies.density(strategies.QueryContext(
        labeled=session.labels != -1, rng=np.random.default_rng(0), X=session.pool.X))
    np.testing.assert_allclose(session._density_job.result(), expected, rtol=1e-5)
    assert session.cache["density"] is session._density_job.result()
    assert len(queued) == 5 and not set(queued) & set(np.flatnonzero(session.labels != -1))
    # Past the warm-up (a project reopened with 1.5 labels per class) nothing is computed.
    for item in [i for i in np.flatnonzero(truth < 2) if session.labels[i] == -1][:2]:
        session.add_label(int(item), str(truth[item]))
    reopened = LabelingSession(tmp_path / "p")
    assert reopened.n_labeled == 4 and reopened.proba.shape[1] == 2
    assert reopened._density_job is None


def test_learning_curve_after_undo_has_no_stray_point(tmp_path):
    init_project(tmp_path / "p", "digits")
    session = LabelingSession(tmp_path / "p")
    for item in range(5):  # digits 0 to 4: a point from the second label (two classes) on
        session.add_label(item, int(session.pool.y[item]))
    assert [p["n_labeled"] for p in session.state()["curve"]] == [2, 3, 4, 5]
    session.undo()
    curve = session.state()["curve"]
    assert [p["n_labeled"] for p in curve] == [2, 3, 4]
    assert curve[-1]["n_labeled"] == session.state()["n_labeled"]
    session.add_label(7, int(session.pool.y[7]))
    assert [p["n_labeled"] for p in session.state()["curve"]] == [2, 3, 4, 5]


def test_no_accuracy_is_measured_while_one_class_is_labeled(tmp_path):
    """With one class labeled the model guesses nothing: no 0% against ground truth, and
    no 100% cross-validated on labels that are all the same class."""
    init_project(tmp_path / "p", "digits")
    session = LabelingSession(tmp_path / "p")
    zeros, ones = (np.flatnonzero(session.pool.y == digit) for digit in (0, 1))
    session.add_label(int(zeros[0]), "0")
    assert session.state()["curve"] == [] and session.state()["estimated_accuracy"] is None
    session.pool.y[:] = -1  # no ground truth: from ten labels on they are cross-validated
    for item in zeros[1:11]:
        session.add_label(int(item), "0")
    session.wait_for_estimates()
    assert session.state()["curve"] == []
    session.add_label(int(ones[0]), "1")
    session.wait_for_estimates()
    assert [(p["n_labeled"], p["source"]) for p in session.state()["curve"]] == \
        [(12, "cross-validation")]


def test_export_of_a_fresh_project_writes_every_item(tmp_path):
    init_project(tmp_path / "p", "digits-aug:200")
    rows = LabelingSession(tmp_path / "p").export_rows()
    assert len(rows) == 200 and {r["source"] for r in rows} == {"none"}
    assert all(r["label"] is None for r in rows)


def test_a_project_keeps_its_edge_weights(tmp_path):
    with pytest.raises(UserError, match="graph weights.*allowed: connectivity, rbf, local"):
        init_project(tmp_path / "bad", "digits-aug:200", graph_weights="gaussian")
    assert not (tmp_path / "bad").exists()  # nothing written
    store = init_project(tmp_path / "p", "digits-aug:200", graph_weights="local")
    assert store.meta("settings")["graph_weights"] == "local"
    weights = LabelingSession(tmp_path / "p").model.build_graph().affinity.data
    assert np.isclose(weights.min(), np.exp(-4)) and weights.max() == 1.0
    # A project made before weights were a setting opens with unweighted edges.
    settings = store.meta("settings")
    del settings["graph_weights"]
    old = init_project(tmp_path / "old", "digits-aug:200")
    old.set_meta("settings", settings)
    assert set(LabelingSession(tmp_path / "old").model.build_graph().affinity.data) == {1.0}


def test_a_project_weighs_its_edges_from_enough_labels(tmp_path):
    init_project(tmp_path / "p", "digits", local_from=2)
    session = LabelingSession(tmp_path / "p")
    truth = session.pool.y
    for item in [int(np.flatnonzero(truth == c)[0]) for c in range(10)]:
        session.add_label(item, int(truth[item]), "ann")
    assert session.model.weights == "connectivity"  # one label per class
    for item in [int(np.flatnonzero(truth == c)[1]) for c in range(10)]:
        session.add_label(item, int(truth[item]), "ann")
    assert session.model.weights == "local" and session.state()["edge_weights"] == "local"
    # Another process on the project fits the same labels on the same graph.
    assert LabelingSession(tmp_path / "p").model.weights == "local"
    with pytest.raises(UserError, match="local-from must be >= 0"):
        init_project(tmp_path / "bad", "digits", local_from=-1)


def test_a_queue_waiting_for_the_density_never_waits_on_its_own_lock(tmp_path):
    """A queue holds the session's lock while it waits for the pool's density. Background
    work that needs the lock (caching the predictions) must not stand in the density's
    way, or the two wait on each other for ever: here the density is first wanted when a
    new class arrives, while an earlier label's cache write still waits for the
    background worker (busy, say, importing scikit-learn)."""
    init_project(tmp_path / "p", "digits", strategy="typical-margin")
    session = LabelingSession(tmp_path / "p")
    truth = session.pool.y
    first = [int(np.flatnonzero(truth == c)[0]) for c in range(10)]
    for item in [first[0], first[1], int(np.flatnonzero(truth == 0)[1])]:
        session.add_label(item, int(truth[item]))  # 1.5 labels a class: no density wanted
    session.close()
    session = LabelingSession(tmp_path / "p")  # nothing in the background
    busy = threading.Event()
    session.background.submit(busy.wait, 30)
    session.add_label(int(np.flatnonzero(truth == 1)[1]), 1)  # its cache write waits
    for c in (2, 3, 4):  # new classes: warming up again, the density wanted at the third
        session.add_label(first[c], c)
    assert session._density_job is not None
    queued = []
    worker = threading.Thread(target=lambda: queued.append(session.queue(5)), daemon=True)
    worker.start()
    time.sleep(0.2)
    busy.set()
    worker.join(timeout=20)
    assert not worker.is_alive(), "the queue and the background worker wait on each other"
    assert len(queued[0]) == 5
    session.close()


def test_a_session_opened_before_any_label_loads_the_graph_meanwhile(tmp_path, monkeypatch):
    """The first label's refit finds the graph loaded (at 1,000,000 items loading it and
    its operators was 4.6 of the first label's 7.8 s) and does not build it again."""
    init_project(tmp_path / "p", "digits")
    session = LabelingSession(tmp_path / "p")
    assert session._graph_job is not None
    session._graph_job.result(timeout=60)
    assert session.model.graph is not None  # before any label
    builds = []
    build = session.model.build_graph
    monkeypatch.setattr(session.model, "build_graph", lambda: builds.append(1) or build())
    truth = session.pool.y
    session.add_label(0, int(truth[0]))
    assert builds == [] and session.n_labeled == 1
    session.close()
    reopened = LabelingSession(tmp_path / "p")  # with a label: its opening refit loads it
    assert reopened._graph_job is None and reopened.model.graph is not None
    reopened.close()


def _pushes_judged_on_meeting(monkeypatch):
    """Pushing goes on while the pushes meet the tolerance, not by this small pool's
    timings, nor by its budget: on digits-aug:3000 at alpha 0.5 a push reaches nearly
    every row and reads 0.5-2.1 times the graph's entries, by the label (which the queue
    picks off the last fit)."""
    from activeprop import propagation

    monkeypatch.setattr(propagation, "keeps_pushing", lambda met, *_: met)
    monkeypatch.setattr(propagation, "PUSH_BUDGET", 4.0)


def test_the_labeler_deepens_the_solve_while_the_person_looks(tmp_path, monkeypatch):
    """Issue 18 item 5: after a label the session runs, in the background, the deeper solve
    the next refit would start with, so that the next label is pushed locally; the refits
    stay a converged solve's (the same predictions as a cold fit of the same labels), and
    a deeper solve that a newer label made useless is not taken."""
    from activeprop import propagation
    from activeprop.project import project_model

    _pushes_judged_on_meeting(monkeypatch)
    adopted = []
    adopt = propagation.GraphLabeling.adopt
    monkeypatch.setattr(propagation.GraphLabeling, "adopt",
                        lambda self, deepened: (adopted.append(1), adopt(self, deepened)))
    init_project(tmp_path / "p", "digits-aug:3000", model="spreading", alpha=0.5)
    session = LabelingSession(tmp_path / "p")
    truth, pushed = session.pool.y, []
    for _ in range(25):
        item = session.queue(1, "ann")[0].id
        session.add_label(item, str(truth[item]), "ann")
        pushed.append(session.model.labeling.n_iter_ == 0)
        session.wait_for_estimates()  # as a person's look at the next item
    assert len(adopted) >= 10 and sum(pushed[-10:]) >= 9, pushed
    cold = project_model(session.settings, session.pool).fit(session.labels)
    same = np.argmax(cold.proba_, axis=1) == np.argmax(session.proba, axis=1)
    assert same.mean() > 0.995
    # a label came before it started: the deeper solve is dropped, not taken
    before = len(adopted)
    session._deepening_wanted = object()
    session._deepen(object())
    assert len(adopted) == before
    session.close()


def test_a_label_that_comes_during_the_deeper_solve_waits_for_it(tmp_path, monkeypatch):
    """Issue 18 item 5: a label given while the deeper solve is still running waits for it
    and takes it up, then is pushed locally, rather than give it up and solve globally
    itself (the deeper solve is the work that refit would do first); the refits stay a
    converged solve's."""
    from activeprop import propagation
    from activeprop.project import project_model

    _pushes_judged_on_meeting(monkeypatch)
    started, taken_by = threading.Event(), []
    deepened, adopt = propagation.GraphLabeling.deepened, propagation.GraphLabeling.adopt

    def slow_deepened(self, *args):
        started.set()
        time.sleep(0.2)  # still running when the next label comes
        return deepened(self, *args)

    def adopt_on(self, result):
        taken_by.append(threading.current_thread() is threading.main_thread())
        adopt(self, result)

    monkeypatch.setattr(propagation.GraphLabeling, "deepened", slow_deepened)
    monkeypatch.setattr(propagation.GraphLabeling, "adopt", adopt_on)
    init_project(tmp_path / "p", "digits-aug:3000", model="spreading", alpha=0.5)
    session = LabelingSession(tmp_path / "p")
    truth, pushed = session.pool.y, []
    for _ in range(25):
        item = session.queue(1, "ann")[0].id
        started.clear()
        session.add_label(item, str(truth[item]), "ann")
        pushed.append(session.model.labeling.n_iter_ == 0)
        if session._deepening_wanted is not None:  # one was asked for
            started.wait(5)  # the next label comes while it runs
    assert sum(taken_by) >= 10 and sum(pushed[-10:]) >= 9, (taken_by, pushed)
    cold = project_model(session.settings, session.pool).fit(session.labels)
    same = np.argmax(cold.proba_, axis=1) == np.argmax(session.proba, axis=1)
    assert same.mean() > 0.995
    session.close()
