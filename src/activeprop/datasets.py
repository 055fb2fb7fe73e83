"""Dataset loaders: every source becomes one :class:`Pool`.

Specs understood by :func:`load_pool`:

* ``digits``: scikit-learn's bundled 8 x 8 handwritten digits (1,797 items);
* ``iris``, ``wine``, ``breast-cancer``: scikit-learn's other bundled tables;
* ``digits-aug:N[:SIZE]``: N digits made by small random affine distortions and noise,
  ``SIZE`` x ``SIZE`` pixels (default 8; 28 gives the MNIST shape), deterministic;
* ``path.npz``: arrays ``X`` (n, d), optional ``y`` (n,) and ``images`` (n, h, w);
* ``path.csv``: a header row, one label column (``label_column``), numeric features;
* ``path.csv`` or ``path.jsonl`` with ``text_column``: one text per row (and an optional
  label column); features are TF-IDF + SVD vectors (:func:`activeprop.features.text_features`),
  or a sentence-transformers model's embeddings (``text_model``, an optional extra);
* ``pool.zarr`` or a folder with ``pool.json``: a pool stored in row shards
  (:mod:`activeprop.shards`, written by ``activeprop shard``);
* ``path/to/folder``: images (PNG, JPEG, WebP, TIFF, BMP, GIF; colour or grey, any size), in
  folders nested to any depth (a folder named like a bundled dataset, ``digits`` say, is
  read only if it holds images: else the name means the bundled dataset). The
  first-level subfolder an image sits in is its class;
  images directly in the folder are unlabeled. Features
  are :func:`activeprop.features.image_features` of ``image_features`` kind, or a pretrained
  network's embeddings (``image_model``, an optional extra); every item keeps
  its path relative to the folder and a colour thumbnail that keeps its aspect ratio.

``classes`` names the classes (and their order) where the data names none or not all;
any of them can take the user's own features instead (``features``: a file of one row per
item, matched by path or by order; :func:`activeprop.features.read_features_file`).
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import importlib.util
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import npy_files
from .errors import UserError
from .missing_cells import is_missing

UNLABELED = -1


@dataclass
class Pool:
    """The items to label: features, optional ground truth, optional images.

    Attributes
    ----------
    X : ndarray of shape (n_items, n_features), float64, finite
    y : ndarray of shape (n_items,), int
        Ground-truth class index per item, -1 where it is not known.
    class_names : list of str
        Name of each class; ``y`` indexes into it.
    images : ndarray of shape (n_items, height, width), optional
        Grayscale pictures of the items, for display.
    name : str
        The spec the pool was loaded from.
    paths : list of str, optional
        Each item's file, relative to the dataset's folder (image folders).
    texts : list of str, optional
        Each item's text (text datasets).
    thumbnails : list of bytes, optional
        Each item's picture as PNG, colour and aspect ratio kept (image folders).
    feature_names : list of str, optional
        The name of each column of ``X`` when the features are a table's own columns
        (a CSV file, scikit-learn's bundled tables, a .npz's ``feature_names``): the
        labeler shows a person each item's values under these names.
    """

    X: np.ndarray
    y: np.ndarray
    class_names: list[str]
    images: np.ndarray | None = None
    name: str = ""
    paths: list[str] | None = None
    texts: list[str] | None = None
    thumbnails: list[bytes] | None = None
    feature_names: list[str] | None = None

    def __post_init__(self):
        validate_arrays(self.X, self.y, self.images, missing_allowed=self.is_table)
        for what in ("paths", "texts", "thumbnails"):
            values = getattr(self, what)
            if values is not None and len(values) != len(self.X):
                raise UserError(f"{what} must have one entry per item ({len(self.X)}), got "
                                f"{len(values)}")
        if self.feature_names is not None and len(self.feature_names) != self.X.shape[1]:
            raise UserError(f"feature_names must name each of the {self.X.shape[1]} "
                            f"features, got {len(self.feature_names)} names")

    def __len__(self) -> int:
        return len(self.X)

    @property
    def has_ground_truth(self) -> bool:
        """True when every item's true class is known (simulation needs it)."""
        return bool(np.all(self.y != UNLABELED))

    @property
    def is_table(self) -> bool:
        """True when the features are a table's own columns (they have names)."""
        return self.feature_names is not None

    @property
    def holds_pictures(self) -> bool:
        """True when the items are pictures (digits, an image folder), whatever their
        features: pixels, a descriptor or an embedding of them."""
        return self.images is not None or self.thumbnails is not None

    def take(self, indices) -> "Pool":
        """A new pool of the items at ``indices``, in that order."""
        images = None if self.images is None else self.images[indices]

        def picked(values):
            return None if values is None else [values[i] for i in indices]

        return Pool(self.X[indices], self.y[indices], self.class_names, images, self.name,
                    picked(self.paths), picked(self.texts), picked(self.thumbnails),
                    self.feature_names)

    def with_features(self, X: np.ndarray) -> "Pool":
        """The same items with other features (the user's own, or an embedding); the
        columns' names stay only when ``X`` is this pool's own features."""
        names = self.feature_names if X is self.X else None
        return dataclasses.replace(self, X=X, feature_names=names)

    def with_classes(self, names: list[str]) -> "Pool":
        """The same items with the classes ``names``, in that order; it must include every
        class the pool's labels name (those without a label yet may be added)."""
        names = list(dict.fromkeys(names))
        missing = [name for name in self.class_names if name not in names]
        if missing:
            raise UserError(f"the data has the class {missing[0]!r}, which --classes does not "
                            f"name; give every class ({', '.join(self.class_names)})")
        index = np.array([names.index(name) for name in self.class_names] + [UNLABELED])
        return dataclasses.replace(self, y=index[self.y], class_names=names)

    def shuffled(self, seed: int, subset: int = 0) -> "Pool":
        """Shuffle with ``numpy.random.RandomState(seed)`` as the digits example does,
        then keep the first ``subset`` items (0 keeps all)."""
        if subset < 0:
            raise UserError(f"subset must be >= 0 (0 = the whole dataset), got {subset}")
        indices = np.arange(len(self))
        np.random.RandomState(seed).shuffle(indices)
        return self.take(indices[: subset or None])

    def display_images(self) -> np.ndarray | None:
        """Images to show: the stored ones, or square feature vectors reshaped."""
        if self.images is not None:
            return self.images
        side = int(round(np.sqrt(self.X.shape[1])))
        return self.X.reshape(len(self), side, side) if side * side == self.X.shape[1] else None


def validate_arrays(X, y, images=None, missing_allowed: bool = False) -> None:
    """Raise a one-line error naming what is wrong with a pool's arrays. NaN marks a
    missing cell where ``missing_allowed`` (a table's: :mod:`activeprop.missing_cells`)."""
    if X.ndim != 2:
        raise UserError(f"X must be 2-D (items x features), got shape {X.shape}")
    if len(X) == 0 or X.shape[1] == 0:
        raise UserError(f"X must have at least one item and one feature, got shape {X.shape}")
    if y.ndim != 1 or len(y) != len(X):
        raise UserError(f"y must be 1-D with one label per item: X has {len(X)} items, "
                        f"y has shape {y.shape}")
    if missing_allowed:
        if np.any(np.isinf(X)):
            bad = np.argwhere(np.isinf(X))[0]
            raise UserError(f"X contains infinite values (first at item {bad[0]}, feature "
                            f"{bad[1]}); a table's cells must be numbers, or missing")
    elif not np.all(np.isfinite(X)):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise UserError(f"X contains NaN or infinite values (first at item {bad[0]}, "
                        f"feature {bad[1]}); all features must be finite numbers (a "
                        "table's columns may miss values when they are named)")
    if images is not None and (images.ndim != 3 or len(images) != len(X)):
        raise UserError(f"images must have shape (n_items, height, width) with {len(X)} "
                        f"items, got {images.shape}")


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")
THUMBNAIL_SIZE = 160  # the longer side of a thumbnail, in pixels
SHOWN_UNREADABLE = 5  # unreadable images an error names (then how many more)
# Chosen by measurement on real images (docs/benchmarks.md, "Image features").
DEFAULT_IMAGE_FEATURES = "hog"


def load_pool(spec: str, *, label_column: str | None = None, image_size: int = 16,
              text_column: str | None = None, features: str | None = None,
              image_features: str | None = None, classes: list[str] | None = None,
              text_model: str | None = None, image_model: str | None = None,
              lazy: bool = False) -> Pool:
    """Load a dataset spec (see the module docstring) as a :class:`Pool`, with the user's
    own ``features`` file instead of the built-in features when given. ``lazy``: a sharded
    pool's features as a dask array (read where they are used, on a cluster)."""
    if image_model is not None and image_features is not None:
        raise UserError("give --image-features or --image-model, not both")
    pool = _load(spec, label_column, image_size, text_column,
                 image_model or image_features or DEFAULT_IMAGE_FEATURES, text_model, lazy)
    if classes:
        pool = pool.with_classes(classes)
    if features is not None:
        from .features import read_features_file

        pool = pool.with_features(read_features_file(features, len(pool), pool.paths))
    return pool


def _load(spec, label_column, image_size, text_column, image_features, text_model,
          lazy=False) -> Pool:
    from .shards import is_sharded, open_sharded

    if is_sharded(spec):
        return open_sharded(spec).to_pool(lazy)
    # A folder named like a bundled dataset is that dataset unless it holds images: a
    # project made with `init --project digits --dataset digits` is not a dataset, and
    # `simulate` (whose default is digits) run beside it read it as an empty image folder.
    if Path(spec).is_dir() and not (_names_a_bundled_dataset(spec) and
                                    not _image_files(Path(spec))):
        return _image_folder(Path(spec), image_size, image_features)
    if text_column is not None:
        return _text_table(Path(spec), text_column, label_column, text_model)
    if spec == "digits":
        return _digits()
    if spec in BUNDLED_TABLES:
        return _bundled_table(spec)
    if spec.startswith("digits-aug:"):
        return _digits_augmented(spec)
    path = Path(spec)
    if path.suffix.lower() in (".npz", ".csv"):
        if not path.is_file():
            raise UserError(f"dataset file {spec!r} does not exist or is not a file")
        return _npz(path) if path.suffix.lower() == ".npz" else _csv(path, label_column)
    raise UserError(f"unknown dataset {spec!r}; allowed: digits, digits-aug:N[:SIZE], "
                    f"{', '.join(BUNDLED_TABLES)}, a .npz file, a .csv file or a folder of "
                    "images")


def _names_a_bundled_dataset(spec: str) -> bool:
    """Whether ``spec`` is the name of a dataset that ships with activeprop."""
    return spec == "digits" or spec in BUNDLED_TABLES or spec.startswith("digits-aug:")


def _image_files(folder: Path) -> list[Path]:
    """The images below ``folder`` at any depth, in path order (hidden ones left out)."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                  and p.is_file() and not any(part.startswith(".") for part in
                                              p.relative_to(folder).parts))


def _image_folder(folder: Path, image_size: int, kind: str) -> Pool:
    """Images at any depth: the first-level subfolder is the class, loose ones unlabeled.
    ``kind``: a built-in descriptor (:data:`activeprop.features.IMAGE_FEATURES`) or else a
    pretrained model's folder or name (:func:`activeprop.embeddings.image_embeddings`)."""
    from PIL import Image, UnidentifiedImageError

    from .embeddings import image_embeddings
    from .features import IMAGE_FEATURES, image_features

    if not 2 <= image_size <= 256:
        raise UserError(f"image size must be from 2 to 256 pixels, got {image_size}")
    files = _image_files(folder)
    if not files:
        raise UserError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}), directly "
                        "or in subfolders")
    relative = [p.relative_to(folder) for p in files]
    names = sorted({r.parts[0] for r in relative if len(r.parts) > 1})
    loaded, thumbnails, unreadable = [], [], []
    for path in files:
        try:
            loaded.append(read_image(path))
        except (OSError, UnidentifiedImageError, ValueError) as error:
            # every broken file named in one error: a truncated download among 50,000
            # photos is not found one run at a time
            unreadable.append(f"{path.relative_to(folder)} ({error})")
            continue
        thumbnails.append(thumbnail(loaded[-1]))
    if unreadable:
        raise UserError(f"cannot read image{'s' if len(unreadable) > 1 else ''} in {folder}: "
                        f"{'; '.join(unreadable[:SHOWN_UNREADABLE])}" +
                        (f"; and {len(unreadable) - SHOWN_UNREADABLE} more"
                         if len(unreadable) > SHOWN_UNREADABLE else "") +
                        "; fix or remove them")
    y = np.array([names.index(r.parts[0]) if len(r.parts) > 1 else UNLABELED
                  for r in relative], dtype=np.int64)
    X = image_features(loaded, kind, image_size) if kind in IMAGE_FEATURES else \
        image_embeddings(loaded, kind)
    return Pool(X, y, names, None, str(folder), paths=[r.as_posix() for r in relative],
                thumbnails=thumbnails)


def read_image(path: Path):
    """An image file, read whole, as a grey or RGB PIL image (raises PIL's errors)."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.convert("RGB") if image.mode not in ("L", "RGB") else image


def thumbnail(image) -> bytes:
    """A PNG of the image whose longer side is at most THUMBNAIL_SIZE, colour and aspect
    ratio kept."""
    small = image.copy()
    small.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    return buffer.getvalue()


def _text_table(path: Path, text_column: str, label_column: str | None,
                text_model: str | None) -> Pool:
    """A CSV or JSON-lines file of texts, one per row, with an optional label column;
    features from ``text_model`` (a sentence-transformers model) or TF-IDF + SVD."""
    from .embeddings import text_embeddings
    from .features import text_features

    if path.suffix.lower() not in (".csv", ".jsonl") or not path.is_file():
        raise UserError(f"a text dataset is an existing .csv or .jsonl file, got {str(path)!r}")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle)) if path.suffix.lower() == ".csv" else \
                [json.loads(line) for line in handle if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"cannot read {path} ({error})") from None
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise UserError(f"{path} needs one object (JSON lines) or row (CSV) per text")
    for column in filter(None, (text_column, label_column)):
        if column not in rows[0]:
            raise UserError(f"{path} has no column {column!r}; columns: {', '.join(rows[0])}")
    texts = [str(row.get(text_column) or "") for row in rows]
    labels = None if label_column is None else \
        np.array([str(row.get(label_column) or "").strip() for row in rows])
    y, names = encode_labels(labels, len(texts))
    X = text_embeddings(texts, text_model) if text_model else text_features(texts)
    return Pool(X, y, names, None, str(path), texts=texts)


BUNDLED_TABLES = ("iris", "wine", "breast-cancer")


def _bundled_table(name: str) -> Pool:
    """One of scikit-learn's small bundled classification tables."""
    from sklearn import datasets

    loader = getattr(datasets, "load_" + name.replace("-", "_"))
    data = loader()
    return Pool(data.data.astype(np.float64), data.target.astype(np.int64),
                [str(n) for n in data.target_names], None, name,
                feature_names=[str(n) for n in data.feature_names])


def _digits() -> Pool:
    """scikit-learn's bundled digits, read from its file as ``load_digits`` reads it (a test
    compares); importing scikit-learn would cost a command a second of start-up."""
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    if path.is_file():
        with gzip.open(path, mode="rt", encoding="utf-8") as file:
            data = np.loadtxt(file, delimiter=",")
        X, y = data[:, :-1], data[:, -1].astype(np.int64)
    else:  # a future scikit-learn may move its data
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
    return Pool(X.astype(np.float64), y.astype(np.int64), [str(c) for c in range(10)],
                X.reshape(-1, 8, 8), "digits")


def _digits_augmented(spec: str) -> Pool:
    parts = spec.split(":")
    try:
        n_items = int(parts[1])
        size = int(parts[2]) if len(parts) > 2 else 8
        if len(parts) > 3 or n_items < 1 or not 4 <= size <= 64:
            raise ValueError
    except ValueError:
        raise UserError(f"bad dataset {spec!r}; allowed: digits-aug:N or digits-aug:N:SIZE "
                        "with N >= 1 items and SIZE from 4 to 64 pixels") from None
    digits = _digits()
    images = distort_images(digits.images, n_items, size, seed=0)
    y = digits.y[np.arange(n_items) % len(digits)]
    return Pool(images.reshape(n_items, -1).astype(np.float64), y, digits.class_names,
                images, spec)


def distort_images(sources: np.ndarray, n_items: int, size: int, seed: int,
                   chunk: int = 50_000) -> np.ndarray:
    """Make ``n_items`` images of ``size`` x ``size`` from ``sources`` (cycled in order),
    each by its own small random affine map (rotation, scale, shear, shift) with bilinear
    resampling, upsampled to ``size`` and given Gaussian noise; values stay within the
    sources' range.

    Deterministic for ``seed``. The warp runs at the sources' resolution and the upsampling
    is one matrix product, so a million items take seconds.
    """
    rng = np.random.default_rng(seed)
    high = float(sources.max())
    height, width = sources.shape[1:]
    upsample = np.kron(_interpolation_matrix(height, size), _interpolation_matrix(width, size))
    out = np.empty((n_items, size, size), dtype=np.float32)
    for start in range(0, n_items, chunk):
        stop = min(start + chunk, n_items)
        picked = sources[np.arange(start, stop) % len(sources)]
        maps, shifts = _random_affine(rng, stop - start)
        warped = _warp_bilinear(picked, maps, shifts).reshape(stop - start, -1)
        resized = (warped @ upsample.T).reshape(-1, size, size)
        noisy = resized + rng.normal(0.0, 0.03 * high, resized.shape)
        out[start:stop] = np.clip(noisy, 0.0, high)
    return out


def _interpolation_matrix(source: int, target: int) -> np.ndarray:
    """Linear interpolation from ``source`` to ``target`` samples (pixel centres aligned)."""
    position = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0, source - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, source - 1)
    weight = position - low
    matrix = np.zeros((target, source))
    np.add.at(matrix, (np.arange(target), low), 1 - weight)
    np.add.at(matrix, (np.arange(target), high), weight)
    return matrix


def _random_affine(rng: np.random.Generator, n: int):
    """Near-identity 2 x 2 maps and shifts (in source pixels): small, label-preserving."""
    angle = rng.uniform(-0.2, 0.2, n)  # radians, about +-11 degrees
    scale = rng.uniform(0.9, 1.1, n)
    shear = rng.uniform(-0.15, 0.15, n)
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    maps = np.stack([np.stack([cos, -sin + shear], -1), np.stack([sin, cos], -1)], -2)
    shifts = rng.uniform(-0.6, 0.6, (n, 2))
    return maps, shifts


def _warp_bilinear(images: np.ndarray, maps: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Resample each image at its affinely mapped pixel grid (bilinear, zero outside)."""
    n, height, width = images.shape
    padded = np.zeros((n, height + 2, width + 2), dtype=np.float64)
    padded[:, 1:-1, 1:-1] = images
    centre = np.array([(height - 1) / 2, (width - 1) / 2])
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    grid = np.stack([rows.ravel(), cols.ravel()], -1) - centre
    source = np.einsum("nij,pj->npi", maps, grid) + centre + shifts[:, None, :] + 1
    source[..., 0] = np.clip(source[..., 0], 0, height + 1 - 1e-9)
    source[..., 1] = np.clip(source[..., 1], 0, width + 1 - 1e-9)
    top, left = np.floor(source[..., 0]).astype(int), np.floor(source[..., 1]).astype(int)
    bottom, right = np.minimum(top + 1, height + 1), np.minimum(left + 1, width + 1)
    dy, dx = source[..., 0] - top, source[..., 1] - left
    item = np.arange(n)[:, None]
    value = (padded[item, top, left] * (1 - dy) * (1 - dx)
             + padded[item, top, right] * (1 - dy) * dx
             + padded[item, bottom, left] * dy * (1 - dx)
             + padded[item, bottom, right] * dy * dx)
    return value.reshape(n, height, width)


def _npz(path: Path) -> Pool:
    try:
        with npy_files.opened(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read {path} as a .npz file ({error})") from None
    if "X" not in arrays:
        raise UserError(f"{path} has no array named X; expected arrays X, optional y, "
                        f"images and feature_names (found: {', '.join(arrays) or 'none'})")
    X = _as_features(arrays["X"], str(path))
    y, names = encode_labels(arrays.get("y"), len(X))
    feature_names = arrays.get("feature_names")
    return Pool(X, y, names, arrays.get("images"), str(path),
                feature_names=None if feature_names is None else
                [str(name) for name in np.ravel(feature_names)])


def _csv(path: Path, label_column: str | None) -> Pool:
    try:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {path} as a CSV file ({error})") from None
    # each row with its line in the file (for errors); blank lines hold no row
    numbered = [(n, row) for n, row in enumerate(rows[1:], 2) if row]
    if not numbered:
        raise UserError(f"{path} needs a header row and at least one data row")
    header, (lines, body) = rows[0], zip(*numbered)
    if label_column is not None and label_column not in header:
        raise UserError(f"{path} has no column {label_column!r}; columns: {', '.join(header)}")
    label_at = header.index(label_column) if label_column is not None else None
    feature_at = [i for i in range(len(header)) if i != label_at]
    short = next((i for i, row in enumerate(body) if len(row) != len(header)), None)
    if short is not None:
        raise UserError(f"{path}: line {lines[short]} has {len(body[short])} cells, the "
                        f"header {len(header)}; every row needs one cell per column (an "
                        "empty cell for a missing value)")
    X = np.array([[_cell_number(row[i], path, header[i], n, label_column is None)
                   for i in feature_at] for n, row in zip(lines, body)])
    # a missing label is no label (R writes NA)
    labels = None if label_at is None else np.array(
        ["" if is_missing(row[label_at]) else row[label_at].strip() for row in body])
    y, names = encode_labels(labels, len(X))
    return Pool(_as_features(X, str(path)), y, names, None, str(path),
                feature_names=[header[i].strip() for i in feature_at])


def _cell_number(cell: str, path: Path, column: str, line: int, no_label_column: bool) -> float:
    """A CSV cell's number: NaN where it marks a missing value (:mod:`activeprop.missing_cells`);
    a one-line error naming the cell where it holds text."""
    if is_missing(cell):
        return np.nan
    try:
        number = float(cell)
    except ValueError:
        number = None
    if number is None or not np.isfinite(number):
        hint = "; if a column holds the labels, name it with --label-column" \
            if no_label_column else ""
        raise UserError(f"{path}: column {column.strip()!r} holds {cell.strip()[:40]!r} on "
                        f"line {line}; every column but the label column must hold finite numbers "
                        f"(an empty cell or NA for a missing one){hint}")
    return number


def _as_features(X, source: str) -> np.ndarray:
    try:
        return np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{source}: features X must be numeric") from None


def encode_labels(labels, n_items: int) -> tuple[np.ndarray, list[str]]:
    """Turn raw labels into class indices and class names.

    Non-negative integers keep their value (class ``k`` is named ``"k"``); other values
    (strings) are numbered in sorted order. ``-1``, empty strings and a missing array
    mean "not known".
    """
    if labels is None:
        return np.full(n_items, UNLABELED, dtype=np.int64), []
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n_items:
        raise UserError(f"y must be 1-D with one label per item: {n_items} items, "
                        f"got shape {labels.shape}")
    numeric = _as_integers(labels)
    if numeric is not None:
        if numeric.min(initial=0) < UNLABELED:
            raise UserError("integer labels must be >= 0 (-1 marks an unknown label)")
        return numeric, [str(k) for k in range(int(numeric.max(initial=-1)) + 1)]
    text = labels.astype(str)
    known = (text != "") & (text != str(UNLABELED))
    names = sorted(set(text[known]))
    index = {name: k for k, name in enumerate(names)}
    return np.array([index.get(t, UNLABELED) for t in text], dtype=np.int64), names


def _as_integers(labels: np.ndarray) -> np.ndarray | None:
    """Labels as int64 when every one is an integral number, else None."""
    try:
        values = labels.astype(np.float64)
    except ValueError:
        return None
    if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        return None
    return values.astype(np.int64)
