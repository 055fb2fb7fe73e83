"""Data as people have it: image folders (colour, any size, many formats, nested, loose
files), their own features, and texts; every label maps back to its file."""

import csv
import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

from activeprop import terminal
from activeprop.cli import main
from activeprop.datasets import load_pool
from activeprop.features import image_features, read_features_file, text_features
from activeprop.labeling import LabelingSession
from activeprop.project import init_project

FORMATS = ("PNG", "JPEG", "WEBP", "TIFF")


@pytest.fixture
def photos(tmp_path):
    """Red wide pictures and blue tall ones in class folders (nested, four formats), and
    two loose pictures without a class."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for name, colour, size in (("red", (200, 30, 30), (60, 30)), ("blue", (30, 40, 210), (24, 48))):
        for i in range(8):
            folder = root / name / ("2024" if i % 2 else "")
            folder.mkdir(parents=True, exist_ok=True)
            pixels = np.clip(rng.normal(colour, 25, (size[1], size[0], 3)), 0, 255)
            fmt = FORMATS[i % 4]
            Image.fromarray(pixels.astype(np.uint8)).save(
                folder / f"{name}{i}.{fmt.lower()}", format=fmt)
    Image.fromarray(np.full((20, 20), 128, np.uint8)).save(root / "loose-grey.png")
    Image.fromarray(np.full((10, 40, 3), (200, 30, 30), np.uint8)).save(root / "loose-red.jpg")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.png").write_bytes(b"not read")
    return root


def test_image_folder_as_people_have_it(photos):
    pool = load_pool(str(photos))
    assert pool.class_names == ["blue", "red"] and len(pool) == 18
    assert pool.paths[0].startswith("blue/") and "red/2024/red1.jpeg" in pool.paths
    assert pool.y[pool.paths.index("loose-grey.png")] == -1
    assert {p.rsplit(".", 1)[1] for p in pool.paths} == {"png", "jpeg", "webp", "tiff", "jpg"}
    # Thumbnails keep colour and aspect ratio.
    wide = Image.open(io.BytesIO(pool.thumbnails[pool.paths.index("red/red0.png")]))
    tall = Image.open(io.BytesIO(pool.thumbnails[pool.paths.index("blue/blue0.png")]))
    assert wide.mode == "RGB" and wide.size == (60, 30) and tall.size == (24, 48)
    assert np.asarray(wide)[..., 0].mean() > 150 > np.asarray(wide)[..., 2].mean()


def test_loose_files_take_their_classes_from_the_command_line(photos, tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    for name in ("loose-grey.png", "loose-red.jpg"):
        (loose / name).write_bytes((photos / name).read_bytes())
    assert init_project(tmp_path / "none", str(loose)).class_names == []  # added later
    store = init_project(tmp_path / "p", str(loose), classes=["red", "grey"])
    assert store.class_names == ["red", "grey"]
    with pytest.raises(ValueError, match="class 'red', which --classes does not name"):
        load_pool(str(photos), classes=["blue", "green"])


def test_every_label_maps_back_to_its_file(photos, tmp_path, capsys):
    init_project(tmp_path / "p", str(photos))
    session = LabelingSession(tmp_path / "p")
    first = session.queue(1)[0]
    assert first.path is not None and session.item(first.id)["path"] == first.path
    session.add_label(first.id, "red")
    red = next(i for i in range(len(session.pool))
               if session.source(i)["path"].startswith("red/"))
    assert Image.open(io.BytesIO(session.picture_png(red))).mode == "RGB"
    for fmt in ("csv", "jsonl"):
        code = main(["export", "--project", str(tmp_path / "p"), "--format", fmt, "--out",
                     str(tmp_path / f"labels.{fmt}")])
        assert code == 0
    rows = list(csv.DictReader(open(tmp_path / "labels.csv")))
    assert [r["path"] for r in rows] == load_pool(str(photos)).paths
    assert next(r for r in rows if r["path"] == first.path)["label"] == "red"
    lines = [json.loads(line) for line in open(tmp_path / "labels.jsonl")]
    assert {r["path"] for r in lines} == set(load_pool(str(photos)).paths)
    main(["export", "--project", str(tmp_path / "p"), "--format", "npz", "--out",
          str(tmp_path / "labels.npz")])
    assert list(np.load(tmp_path / "labels.npz")["path"]) == load_pool(str(photos)).paths
    screen = []
    terminal.run(session, "t", stdin=io.StringIO("q\n"), write=screen.append)
    assert session.queue(1, "t")[0].path in "\n".join(screen)


def test_colour_features_tell_red_from_blue(photos):
    pool = load_pool(str(photos), image_features="colour")
    red, blue = pool.X[pool.y == 1], pool.X[pool.y == 0]
    within = np.linalg.norm(red - red.mean(0), axis=1).mean()
    between = np.linalg.norm(red.mean(0) - blue.mean(0))
    assert between > 3 * within
    noise = np.random.default_rng(1).integers(0, 255, (20, 30, 3)).astype(np.uint8)
    both = image_features([Image.fromarray(noise)], "hog+colour")
    assert np.allclose(np.linalg.norm(both, axis=1), np.sqrt(2))  # two unit blocks


@pytest.mark.parametrize("suffix", ["npy", "npz", "csv"])
def test_your_own_features(photos, tmp_path, suffix):
    pool = load_pool(str(photos))
    mine = np.arange(len(pool) * 3, dtype=float).reshape(len(pool), 3)
    order = np.random.default_rng(0).permutation(len(pool))  # a file in another order
    path = tmp_path / f"mine.{suffix}"
    if suffix == "npy":
        np.save(path, mine)
    elif suffix == "npz":
        np.savez(path, X=mine[order], path=np.array(pool.paths)[order])
    else:
        with open(path, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["path", "a", "b", "c"])
            for i in order:
                writer.writerow([pool.paths[i], *mine[i]])
    np.testing.assert_array_equal(load_pool(str(photos), features=str(path)).X, mine)


def test_a_features_file_that_does_not_match_names_the_item(photos, tmp_path):
    pool = load_pool(str(photos))
    np.savez(tmp_path / "short.npz", X=np.zeros((2, 3)), path=np.array(pool.paths[:2]))
    with pytest.raises(ValueError, match=f"no row for '{pool.paths[2]}'"):
        read_features_file(tmp_path / "short.npz", len(pool), pool.paths)
    np.savez(tmp_path / "extra.npz", X=np.zeros((len(pool) + 1, 3)),
             path=np.array(pool.paths + ["cat/ghost.png"]))
    with pytest.raises(ValueError, match="'cat/ghost.png', which is not an item"):
        read_features_file(tmp_path / "extra.npz", len(pool), pool.paths)
    np.save(tmp_path / "rows.npy", np.zeros((3, 2)))
    with pytest.raises(ValueError, match="3 rows for 18 items"):
        read_features_file(tmp_path / "rows.npy", len(pool), None)


TEXTS = {"sport": ["the team won the match with a late goal", "a great goal in the final",
                   "the coach praised the team after the match", "fans cheered the goal"],
         "food": ["bake the bread with butter and flour", "a recipe for bread and soup",
                  "add butter to the soup and stir", "fresh flour makes better bread"]}


@pytest.fixture
def texts(tmp_path):
    path = tmp_path / "texts.jsonl"
    with open(path, "w") as file:
        for topic, lines in TEXTS.items():
            for line in lines:
                file.write(json.dumps({"body": line, "topic": topic}) + "\n")
        file.write(json.dumps({"body": "<script>alert(1)</script> " + "long " * 200,
                               "topic": ""}) + "\n")
    return path


def test_texts_are_items(texts, tmp_path):
    pool = load_pool(str(texts), text_column="body", label_column="topic")
    assert pool.class_names == ["food", "sport"] and pool.y[-1] == -1
    assert pool.texts[0] == TEXTS["sport"][0]
    np.testing.assert_allclose(np.linalg.norm(pool.X, axis=1), 1)
    init_project(tmp_path / "p", str(texts), text_column="body", label_column="topic")
    session = LabelingSession(tmp_path / "p")
    assert session.item(8)["text"].startswith("<script>")
    screen = []
    session.add_label(0, "sport")
    session.add_label(4, "food")
    terminal.run(session, "t", stdin=io.StringIO("q\n"), write=screen.append)
    shown = "\n".join(screen)
    assert any(line in shown for lines in TEXTS.values() for line in lines) or "…" in shown


def test_text_topics_separate():
    X = text_features(TEXTS["sport"] + TEXTS["food"])
    similarity = X @ X.T
    same = (similarity[:4, :4].sum() - 4) / 12
    assert same > similarity[:4, 4:].mean()


def test_a_text_column_that_is_missing(texts):
    with pytest.raises(ValueError, match="no column 'text'"):
        load_pool(str(texts), text_column="text")


def test_classes_for_texts_without_labels(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("body\nthe invoice is wrong\nthe app crashes on start\nhow do I export?\n")
    pool = load_pool(str(path), text_column="body", classes=["billing", "bug", "question"])
    assert pool.class_names == ["billing", "bug", "question"] and set(pool.y) == {-1}
    labeled = tmp_path / "some.csv"
    labeled.write_text("body,kind\nthe invoice is wrong,billing\nit crashes,bug\nhow?,\n")
    pool = load_pool(str(labeled), text_column="body", label_column="kind",
                     classes=["question", "bug", "billing"])
    assert pool.class_names == ["question", "bug", "billing"]
    assert pool.y.tolist() == [2, 1, -1]


def test_classes_come_from_the_first_labels_given(photos, tmp_path):
    """A folder of loose pictures names no class: the project starts with none and the
    person adds them on the page as they meet them."""
    from fastapi.testclient import TestClient

    from activeprop.web.app import create_app

    loose = tmp_path / "loose"
    loose.mkdir()
    pictures = sorted(p for p in photos.rglob("*.png") if ".hidden" not in str(p))
    for i, path in enumerate(pictures):
        (loose / f"{i}.png").write_bytes(path.read_bytes())
    init_project(tmp_path / "p", str(loose))
    session = LabelingSession(tmp_path / "p")
    assert session.class_names == [] and len(session.queue(3)) == 3
    screen = []
    assert terminal.run(session, "t", stdin=io.StringIO("1\n"), write=screen.append) == 0
    assert "no classes yet" in screen[0]
    client = TestClient(create_app(session), base_url="http://127.0.0.1")
    assert client.post("/api/classes", json={"name": "red"}).status_code == 201
    assert client.post("/api/classes", json={"name": "blue"}).json()["class_names"] == \
        ["red", "blue"]
    assert client.post("/api/classes", json={"name": "red"}).status_code == 409
    assert client.post("/api/classes", json={"name": ""}).status_code == 422
    first, second = (item["id"] for item in
                     client.post("/api/queue", json={"n": 2}).json()["items"])
    assert client.post("/api/labels", json={"item_id": first, "label": "red"}).status_code == 201
    assert client.post("/api/labels", json={"item_id": second, "label": "blue"}).status_code == 201
    reopened = LabelingSession(tmp_path / "p")  # kept in the store
    assert reopened.class_names == ["red", "blue"] and reopened.n_labeled == 2


def test_many_dimensions_are_reduced_to_their_leading_components():
    """Only features above COMPONENTS_ABOVE dimensions are reduced; the projection is
    scikit-learn's PCA, the same every time: exact up to EXACT_UP_TO dimensions, the
    seeded randomized solver above."""
    from sklearn.decomposition import PCA

    from activeprop.features import COMPONENTS_ABOVE, EXACT_UP_TO, principal_components

    rng = np.random.default_rng(0)
    wide = rng.normal(size=(300, COMPONENTS_ABOVE + 1))
    reduced = principal_components(wide, 32)
    assert reduced.shape == (300, 32)
    np.testing.assert_allclose(reduced, PCA(32, svd_solver="full").fit_transform(wide),
                               atol=1e-9)
    np.testing.assert_array_equal(reduced, principal_components(wide, 32))
    wider = rng.normal(size=(300, EXACT_UP_TO + 1))
    np.testing.assert_array_equal(principal_components(wider, 8), PCA(
        8, svd_solver="randomized", random_state=0).fit_transform(wider))
    narrow = wide[:, :COMPONENTS_ABOVE]
    assert principal_components(narrow, 32) is narrow
    assert principal_components(wide, 0) is wide


def test_a_negative_number_of_components_is_refused(capsys):
    code = main(["simulate", "--subset", "50", "--initial", "5", "--rounds", "1",
                 "--components", "-1"])
    assert code == 2
    assert "components must be >= 0" in capsys.readouterr().err


def test_recommended_runs_and_projects_work_on_the_components(tmp_path):
    """A 784-pixel pool: --recommended simulates on 48 components with 7 neighbours, and a
    project keeps the components it was made with (opening it again does not reduce
    anything); features kept as they are get 15 neighbours."""
    from activeprop.experiments import RECOMMENDED, SimulationConfig, simulate

    pool = load_pool("digits-aug:400:28")
    assert pool.X.shape[1] == 784
    config = SimulationConfig(subset=0, initial=10, batch=5, rounds=2, **RECOMMENDED)
    result = simulate(config, pool.shuffled(0))
    assert result.pool.X.shape == (400, 48) and result.config.n_neighbors == 7
    store = init_project(tmp_path / "p", "digits-aug:400:28")
    assert store.meta("settings")["components"] == 48
    assert store.meta("settings")["n_neighbors"] == 7
    session = LabelingSession(tmp_path / "p")
    assert session.pool.X.shape == (400, 48)
    store = init_project(tmp_path / "kept", "digits-aug:400:28", components=0)
    assert store.meta("settings")["n_neighbors"] == 15
    assert LabelingSession(tmp_path / "kept").pool.X.shape == (400, 784)
    narrow = simulate(dataclasses.replace(config, rounds=1), load_pool("digits").shuffled(0))
    assert narrow.pool.X.shape[1] == 64 and narrow.config.n_neighbors == 15


def test_recommended_weighs_edges_locally_on_pictures_only(tmp_path):
    """--recommended switches to local edge weights from 4 labels per class where the items
    are pictures under Poisson learning; texts and tables, other models, other weights and
    a cluster's graph keep plain edges. A project stores the choice it was made with."""
    from activeprop.experiments import RECOMMENDED, SimulationConfig

    recommended = SimulationConfig(subset=0, initial=10, **RECOMMENDED)
    digits, iris = load_pool("digits").shuffled(0), load_pool("iris").shuffled(0)
    config, pool = recommended.working(digits)
    assert config.local_from == 4
    model = config.model_for(pool)
    y = np.full(len(pool), -1)
    for per_class in (3, 4):
        for c in range(10):
            y[np.flatnonzero(pool.y == c)[:per_class]] = c
        model.fit(y)
        assert model.weights == ("local" if per_class == 4 else "connectivity")
    assert recommended.working(iris)[0].local_from == 0
    assert recommended.working(digits, on_cluster=True)[0].local_from == 0
    for other in ({"model": "spreading"}, {"graph_weights": "rbf"}, {"local_from": 0.0}):
        assert dataclasses.replace(recommended, **other).working(digits)[0].local_from == 0
    with pytest.raises(ValueError, match="working"):
        recommended.model_for(digits)  # a caller's bug: the weights are not chosen yet
    assert init_project(tmp_path / "d", "digits").meta("settings")["local_from"] == 4
    assert init_project(tmp_path / "i", "iris").meta("settings")["local_from"] == 0
    chosen = init_project(tmp_path / "s", "digits", model="spreading", local_from=None)
    assert chosen.meta("settings")["local_from"] == 0
    assert init_project(tmp_path / "z", "digits", local_from=0).meta("settings")["local_from"] == 0


def test_a_comparison_reports_the_settings_chosen_for_its_pool():
    """compare --recommended records the neighbours and edge weights its runs used, not
    the unset values of the preset."""
    from activeprop.comparison import CompareConfig, compare
    from activeprop.experiments import RECOMMENDED, SimulationConfig

    base = SimulationConfig(subset=200, initial=10, rounds=1, **RECOMMENDED)
    summary = compare(CompareConfig(base, ["margin"], ["poisson"], repeats=1, jobs=1)).summary
    assert summary["config"]["base"]["n_neighbors"] == 15
    assert summary["config"]["base"]["local_from"] == 4
