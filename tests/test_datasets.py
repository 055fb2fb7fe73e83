import numpy as np
import pytest

from activeprop.datasets import Pool, encode_labels, load_pool


def test_digits():
    pool = load_pool("digits")
    assert pool.X.shape == (1797, 64) and pool.images.shape == (1797, 8, 8)
    assert pool.class_names == [str(k) for k in range(10)] and pool.has_ground_truth
    from sklearn.datasets import load_digits

    digits = load_digits()  # read from scikit-learn's file without importing it: the same
    np.testing.assert_array_equal(pool.X, digits.data)
    np.testing.assert_array_equal(pool.y, digits.target)
    np.testing.assert_array_equal(pool.images, digits.images)


def test_shuffle_matches_the_example():
    pool = load_pool("digits").shuffled(0, 330)
    indices = np.arange(1797)
    np.random.RandomState(0).shuffle(indices)
    np.testing.assert_array_equal(pool.X, load_pool("digits").X[indices[:330]])
    assert len(load_pool("digits").shuffled(0, 0)) == 1797


def test_digits_augmented_is_deterministic_and_sized():
    a, b = load_pool("digits-aug:500"), load_pool("digits-aug:500")
    np.testing.assert_array_equal(a.X, b.X)
    assert a.X.shape == (500, 64) and a.X.min() >= 0 and a.X.max() <= 16
    big = load_pool("digits-aug:50:28")
    assert big.X.shape == (50, 784) and big.images.shape == (50, 28, 28)
    # Distorted, but still close to their source digit.
    source = load_pool("digits")
    np.testing.assert_array_equal(a.y[:1797 % 500], source.y[:1797 % 500])
    distance_own = np.linalg.norm(a.X[:100] - source.X[:100], axis=1).mean()
    distance_other = np.linalg.norm(a.X[:100] - source.X[100:200], axis=1).mean()
    assert distance_own < 0.6 * distance_other


@pytest.mark.parametrize("spec", ["digits-aug:0", "digits-aug:x", "digits-aug:10:2",
                                  "digits-aug:10:8:1"])
def test_bad_augmented_spec(spec):
    with pytest.raises(ValueError, match="digits-aug:N"):
        load_pool(spec)


def test_npz_roundtrip(tmp_path):
    X = np.random.RandomState(0).rand(20, 4)
    y = np.r_[[3, 7] * 10]
    np.savez(tmp_path / "d.npz", X=X, y=y)
    pool = load_pool(str(tmp_path / "d.npz"))
    np.testing.assert_array_equal(pool.X, X)
    np.testing.assert_array_equal(pool.y, y)
    np.savez(tmp_path / "unlabeled.npz", X=X)
    assert not load_pool(str(tmp_path / "unlabeled.npz")).has_ground_truth


def test_csv_with_text_labels(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,kind\n1,2,cat\n3,4,dog\n5,6,cat\n")
    pool = load_pool(str(path), label_column="kind")
    assert pool.class_names == ["cat", "dog"] and pool.y.tolist() == [0, 1, 0]
    np.testing.assert_array_equal(pool.X, [[1, 2], [3, 4], [5, 6]])


@pytest.mark.parametrize("content,column,message", [
    ("a,b\n1,x\n", None, "column 'b' holds 'x' on line 2; every column but the label "
                          "column must hold finite numbers .*name it with --label-column"),
    ("a,b\n1,2\n", "label", "no column 'label'"),
    ("a,b\n", None, "header row and at least one data row"),
    ("a,b\n\n\n", None, "header row and at least one data row"),
    ("a,b\n1,inf\n", None, "column 'b' holds 'inf' on line 2"),
    ("a,b\n1,2\n\n3\n", None, "line 4 has 1 cells, the header 2"),
])
def test_bad_csv(tmp_path, content, column, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_pool(str(path), label_column=column)


def test_bad_npz(tmp_path):
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="cannot read"):
        load_pool(str(tmp_path / "junk.npz"))
    np.savez(tmp_path / "noX.npz", data=np.zeros(3))
    with pytest.raises(ValueError, match="no array named X"):
        load_pool(str(tmp_path / "noX.npz"))
    np.savez(tmp_path / "shape.npz", X=np.zeros((4, 2)), y=np.zeros(3))
    with pytest.raises(ValueError, match="one label per item"):
        load_pool(str(tmp_path / "shape.npz"))
    np.savez(tmp_path / "flat.npz", X=np.zeros(4))
    with pytest.raises(ValueError, match="2-D"):
        load_pool(str(tmp_path / "flat.npz"))


def test_missing_file_and_unknown_name():
    with pytest.raises(ValueError, match="does not exist"):
        load_pool("nowhere.npz")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_pool("mnist")


def test_labels_encoding():
    assert encode_labels(np.array([2, -1, 0]), 3)[0].tolist() == [2, -1, 0]
    with pytest.raises(ValueError, match=">= 0"):
        encode_labels(np.array([-3, 1]), 2)
    with pytest.raises(ValueError, match="2-D"):
        Pool(np.zeros(3), np.zeros(3, dtype=int), [])


@pytest.mark.parametrize("name,shape,classes", [("iris", (150, 4), 3), ("wine", (178, 13), 3),
                                                ("breast-cancer", (569, 30), 2)])
def test_bundled_tables(name, shape, classes):
    pool = load_pool(name)
    assert pool.X.shape == shape and len(pool.class_names) == classes and pool.has_ground_truth


def test_a_folder_named_like_a_bundled_dataset(tmp_path, monkeypatch):
    """A project made as `init --project digits --dataset digits` is a folder named
    digits beside the next command: the name still means the bundled digits (the
    folder holds no images), while a folder of that name with images is read."""
    from activeprop.project import init_project

    monkeypatch.chdir(tmp_path)
    init_project("digits", "digits")
    pool = load_pool("digits")
    assert len(pool) == 1797 and pool.paths is None
    (tmp_path / "wine" / "red").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(tmp_path / "wine" / "red" / "a.png")
    pool = load_pool("wine")
    assert pool.paths == ["red/a.png"] and pool.class_names == ["red"]
    assert load_pool("iris").feature_names is not None  # no folder: the bundled table
