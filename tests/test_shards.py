"""Pools stored in row shards (Zarr or .npy files): written from any dataset, read back
the same in one process (memory-mapped) and lazily as a dask array (issue 19, item 1)."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from activeprop.datasets import load_pool
from activeprop.errors import UserError
from activeprop.shards import is_sharded, open_sharded, write_sharded

LAYOUTS = ["pool.zarr", "npy-shards"]


@pytest.fixture
def image_pool(tmp_path):
    """A folder of 7 small images in two classes and one unlabeled: paths and -1 labels."""
    rng = np.random.default_rng(0)
    for i in range(7):
        folder = tmp_path / "images" / ("cat" if i < 3 else "dog" if i < 6 else "")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"item{i}.png")
    return load_pool(str(tmp_path / "images"), image_features="pixels")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_pool_comes_back_as_it_was_written(tmp_path, image_pool, layout):
    if layout.endswith(".zarr"):
        pytest.importorskip("zarr")
    out = write_sharded(image_pool, tmp_path / layout, shard_rows=3)
    assert is_sharded(out)
    stored = open_sharded(out)
    assert (stored.n_items, stored.n_features) == image_pool.X.shape
    assert stored.class_names == image_pool.class_names
    np.testing.assert_array_equal(stored.labels, image_pool.y)
    assert -1 in stored.labels.tolist()
    assert stored.paths == image_pool.paths
    X = stored.in_memory()
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X, image_pool.X.astype(np.float32))
    pool = load_pool(str(out))  # a sharded pool is a dataset like any other
    np.testing.assert_array_equal(pool.X, X)
    assert pool.paths == image_pool.paths


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_lazy_features_are_a_dask_array_of_the_shards(tmp_path, image_pool, layout):
    pytest.importorskip("dask")
    if layout.endswith(".zarr"):
        pytest.importorskip("zarr")
    stored = open_sharded(write_sharded(image_pool, tmp_path / layout, shard_rows=3))
    lazy = stored.lazy()
    assert lazy.chunks[0] == (3, 3, 1)
    np.testing.assert_array_equal(lazy.compute(), stored.in_memory())


def test_one_shard_is_memory_mapped_not_read(tmp_path, image_pool):
    stored = open_sharded(write_sharded(image_pool, tmp_path / "one", shard_rows=100))
    assert isinstance(stored.in_memory(), np.memmap)


def test_nothing_is_overwritten(tmp_path, image_pool):
    out = write_sharded(image_pool, tmp_path / "pool", shard_rows=3)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(UserError, match="already exists"):
        write_sharded(image_pool, out, shard_rows=3)
    assert sorted(p.name for p in out.iterdir()) == before


def test_a_damaged_manifest_is_one_line(tmp_path, image_pool):
    out = write_sharded(image_pool, tmp_path / "pool", shard_rows=3)
    manifest = json.loads((out / "pool.json").read_text())
    manifest["shards"][0]["rows"] = 5
    (out / "pool.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="features-00000.npy holds"):
        open_sharded(out)
    (out / "pool.json").write_text("{")
    with pytest.raises(UserError, match="does not describe a readable pool"):
        open_sharded(out)


def test_labels_outside_the_classes_are_refused(tmp_path, image_pool):
    out = write_sharded(image_pool, tmp_path / "pool", shard_rows=3)
    np.save(out / "labels-00000.npy", np.array([0, 7, 0]))
    with pytest.raises(UserError, match="class indices below 2"):
        open_sharded(out)


def test_the_shard_command_writes_a_dataset_simulate_reads(tmp_path):
    pytest.importorskip("zarr")
    out = tmp_path / "digits.zarr"
    command = [sys.executable, "-m", "activeprop.cli"]
    done = subprocess.run([*command, "shard", str(out), "--dataset", "digits",
                           "--shard-rows", "500"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1797 items x 64 features" in done.stdout
    runs = [subprocess.run([*command, "simulate", "--dataset", dataset, "--json"],
                           capture_output=True, text=True) for dataset in ("digits", str(out))]
    rounds = [[(r["accuracy"], r["queried"]) for r in json.loads(run.stdout)["rounds"]]
              for run in runs]
    assert rounds[0] == rounds[1]  # digits are whole numbers: float32 keeps them exactly
    reduced = tmp_path / "wide"  # 784 pixels, stored as 12 principal components
    done = subprocess.run([*command, "shard", str(reduced), "--dataset", "digits-aug:400:28",
                           "--components", "12"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert open_sharded(reduced).n_features == 12 and open_sharded(reduced).image_shape == \
        (28, 28)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_items_are_shown_as_the_pool_showed_them(tmp_path, image_pool, layout):
    """Pictures of an array pool come back one at a time from the shards; an image
    folder's files are found under the folder it was read from; texts come back."""
    if layout.endswith(".zarr"):
        pytest.importorskip("zarr")
    digits = load_pool("digits").take(np.arange(50))
    stored = open_sharded(write_sharded(digits, tmp_path / ("a-" + layout), shard_rows=20))
    assert stored.image_shape == (8, 8) and stored.image_style == {"max": 16.0, "invert": True}
    for item in (0, 19, 20, 49):
        np.testing.assert_array_equal(stored.picture(item), digits.images[item])
    folder = open_sharded(write_sharded(image_pool, tmp_path / ("f-" + layout), shard_rows=3))
    assert folder.image_shape is None
    assert folder.picture(4) == image_pool.thumbnails[4]  # the file's thumbnail, made again
    folder.paths[4] = "../../outside.png"  # a data file naming a place outside its folder
    (tmp_path / "outside.png").write_bytes((tmp_path / "images" / "cat" / "item0.png")
                                           .read_bytes())
    assert folder.picture(4) is None
    texts = dataclasses.replace(load_pool("digits").take(np.arange(6)),
                                texts=[f"<b>item {i}</b>" for i in range(6)])
    assert open_sharded(write_sharded(texts, tmp_path / ("t-" + layout), 4)).texts == texts.texts


def test_a_project_on_a_sharded_pool_keeps_its_items_in_the_shards(tmp_path):
    """Without a cluster too: the project records where the shards are (features used as
    stored are not copied), its session reads them, and its page shows their pictures;
    features it reduces are copied as any dataset's."""
    from activeprop.labeling import LabelingSession
    from activeprop.project import init_project

    digits = load_pool("digits")
    out = write_sharded(digits, tmp_path / "digits", shard_rows=700)
    store = init_project(tmp_path / "p", str(out))
    assert store.meta("features_at") == str(out.resolve())
    np.testing.assert_array_equal(store.image(5), digits.images[5])
    session = LabelingSession(tmp_path / "p")
    np.testing.assert_array_equal(session.pool.X, digits.X.astype(np.float32))
    assert session.picture_png(5).startswith(b"\x89PNG")
    wide = write_sharded(load_pool("digits-aug:300:28"), tmp_path / "wide", shard_rows=100)
    reduced = init_project(tmp_path / "q", str(wide), components=20)
    assert reduced.meta("features_at") is None and reduced.meta("n_features") == 20
    assert reduced.image(3).shape == (28, 28)  # copied with the features
