"""Features from raw items: image descriptors, text vectors, and the user's own files.

The graph is only as good as the distances between the items' features. Raw pixels are a
poor distance for photos; this module gives every kind of item a better one:

* images: :func:`image_features` — grey pixels, HOG (scikit-image's histogram of oriented
  gradients: edges and shapes, robust to small shifts), colour histograms (hue, saturation
  and value: what a photo is made of), or HOG and colour together;
* texts: :func:`text_features` — TF-IDF followed by a truncated SVD (latent semantic
  analysis), rows scaled to unit length, with scikit-learn;
* anything else: :func:`read_features_file` — a table of embeddings the user already has
  (.npy, .npz, .csv, .parquet), matched to the items by path or by order;
* and for any of them with many dimensions: :func:`principal_components`, the leading
  components, on which neighbours are nearer to the same class than on every dimension.

Pretrained embeddings (optional extras) live in :mod:`activeprop.embeddings`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from . import npy_files
from .errors import UserError

IMAGE_FEATURES = ("pixels", "hog", "colour", "hog+colour")
HOG_SIZE = 64  # images are resized to HOG_SIZE x HOG_SIZE before HOG
COLOUR_BINS = (12, 4, 4)  # hue, saturation, value
# Chosen on real texts (bench/bench_text_features.py, docs/benchmarks.md): 200 beat 100 on
# Rotten Tomatoes at 50 and 100 labels on seeds 0-9 and again on seeds 10-19; 500 was no
# better and took twice as long; on Commons speeches no choice differed.
TEXT_DIMENSIONS = 200
FEATURE_SUFFIXES = (".npy", ".npz", ".csv", ".parquet")
# Features of more dimensions than this are reduced when a run asks for components (the
# recommended settings ask for 48). Chosen on real data (docs/benchmarks.md): raw MNIST
# pixels (784) and their HOG (1,764) gain from it; texts (200, already an SVD), digits
# (64) and tables keep their features.
COMPONENTS_ABOVE = 256


def image_features(images: list, kind: str, pixel_size: int = 16) -> np.ndarray:
    """Features of Pillow images (any mode and size), one row per image.

    ``kind``: ``"pixels"`` (grey, resized to ``pixel_size`` x ``pixel_size``, in [0, 1]),
    ``"hog"``, ``"colour"`` or ``"hog+colour"``. Blocks of a combined descriptor are each
    scaled to unit length, so that neither outweighs the other in a distance.
    """
    if kind not in IMAGE_FEATURES:
        raise UserError(f"unknown image features {kind!r}; allowed: {', '.join(IMAGE_FEATURES)}")
    if kind == "pixels":
        return np.stack([_grey(image, pixel_size).ravel() for image in images]) / 255.0
    blocks = []
    if "hog" in kind:
        blocks.append(_unit_rows(np.stack([_hog(image) for image in images])))
    if "colour" in kind:
        blocks.append(_unit_rows(np.stack([_colour_histogram(image) for image in images])))
    return np.hstack(blocks)


def _grey(image, size: int) -> np.ndarray:
    return np.asarray(image.convert("L").resize((size, size)), dtype=np.float64)


def _hog(image) -> np.ndarray:
    from skimage.feature import hog

    return hog(_grey(image, HOG_SIZE), orientations=9, pixels_per_cell=(8, 8),
               cells_per_block=(2, 2), feature_vector=True)


def _colour_histogram(image) -> np.ndarray:
    hsv = np.asarray(image.convert("RGB").convert("HSV").resize((HOG_SIZE, HOG_SIZE)))
    histogram, _ = np.histogramdd(hsv.reshape(-1, 3), bins=COLOUR_BINS,
                                  range=((0, 256), (0, 256), (0, 256)))
    return np.sqrt(histogram.ravel() / histogram.sum())  # Hellinger: distances of shares


def _unit_rows(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def text_features(texts: list[str], dimensions: int = TEXT_DIMENSIONS,
                  seed: int = 0) -> np.ndarray:
    """TF-IDF (words and word pairs, sublinear counts) reduced by a truncated SVD to at most
    ``dimensions`` dimensions, rows scaled to unit length (cosine geometry)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not any(text.strip() for text in texts):
        raise UserError("every text is empty: name the column that holds them with "
                        "--text-column")
    vectors = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2 if
                              len(texts) >= 50 else 1, max_features=200_000).fit_transform(texts)
    components = min(dimensions, vectors.shape[1] - 1, len(texts) - 1)
    if components < 1:
        return _unit_rows(vectors.toarray())
    reduced = TruncatedSVD(components, random_state=seed).fit_transform(vectors)
    return _unit_rows(reduced)


def reduces(shape: tuple, n_components: int) -> bool:
    """Whether :func:`principal_components` reduces features of ``shape`` (items,
    dimensions) to ``n_components``; raises on a negative count."""
    if n_components < 0:
        raise UserError(f"components must be >= 0 (0 keeps the features), got {n_components}")
    n_items, n_features = shape
    # as many components as items would be a rotation, no reduction
    return 0 < n_components < n_items and n_features > max(COMPONENTS_ABOVE, n_components)


EXACT_UP_TO = 1000  # dimensions: principal components from the covariance up to here


def principal_components(X: np.ndarray, n_components: int) -> np.ndarray:
    """``X`` projected on its leading ``n_components`` principal components (scikit-learn's
    PCA, seeded, so a pool always gets the same features) when it has more than
    :data:`COMPONENTS_ABOVE` dimensions and more items than components; otherwise ``X``
    itself.

    Raw pixels and long descriptors are mostly noise dimensions, which bring unrelated items
    as near as related ones; the leading components keep what varies most. On 5,000 MNIST
    digits a 10-NN classifier gets 0.921 of the items right on all 784 pixels, 0.936 on
    30 components and 0.934 on 50 (5-fold cross-validation).
    """
    if not reduces(X.shape, n_components):
        return X
    # Only here: importing scikit-learn costs a command that does not reduce 1.4 s.
    from sklearn.decomposition import PCA

    # Up to EXACT_UP_TO dimensions the exact components, from the eigenvectors of the
    # covariance, are also the fastest: 0.10 s at 5,000 x 784 against 0.42 s for the
    # randomized solver, whose projection was up to 9% off the exact one. At 5,000 x 1,764
    # the two take the same time (0.74 s) and the covariance grows as d^2: randomized there.
    solver = "covariance_eigh" if X.shape[1] <= EXACT_UP_TO else "randomized"
    return PCA(n_components, svd_solver=solver, random_state=0).fit_transform(X) \
        .astype(np.float64)


def read_features_file(path: str | Path, n_items: int,
                       item_paths: list[str] | None = None) -> np.ndarray:
    """The user's features for the pool's ``n_items`` items, one row each.

    Rows are matched to items by path when the file has paths (a ``path`` column or
    array) and the pool has them (an image folder), else by order. A mismatch names the
    first missing or extra item.
    """
    path = Path(path)
    if path.suffix.lower() not in FEATURE_SUFFIXES or not path.is_file():
        raise UserError(f"features file {str(path)!r} must be an existing "
                        f"{', '.join(FEATURE_SUFFIXES)} file")
    X, rows = _read_table(path)
    if rows is not None and item_paths is not None:
        return _match_by_path(X, rows, item_paths, path)
    if len(X) != n_items:
        raise UserError(f"{path} has {len(X)} rows for {n_items} items; give one row per "
                        "item in the pool's order, or a path column to match them by")
    return X


def _read_table(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """Features and, when the file names them, each row's item path."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return _numeric(npy_files.load(path, allow_pickle=False), path), None
        if suffix == ".npz":
            with npy_files.opened(path, allow_pickle=False) as arrays:
                key = "X" if "X" in arrays.files else arrays.files[0]
                rows = [str(p) for p in arrays["path"]] if "path" in arrays.files else None
                return _numeric(arrays[key], path), rows
        if suffix == ".parquet":
            return _parquet(path)
        with open(path, newline="") as handle:
            table = list(csv.reader(handle))
    except (OSError, ValueError, IndexError) as error:
        raise UserError(f"cannot read features from {path} ({error})") from None
    header, body = table[0], table[1:]
    at = header.index("path") if "path" in header else None
    columns = [i for i in range(len(header)) if i != at]
    try:
        X = np.array([[float(row[i]) for i in columns] for row in body])
    except (ValueError, IndexError) as error:
        raise UserError(f"{path}: every column but 'path' must be numeric ({error})") from None
    return _numeric(X, path), None if at is None else [row[at] for row in body]


def _parquet(path: Path) -> tuple[np.ndarray, list[str] | None]:
    try:
        import pandas as pd

        table = pd.read_parquet(path)
    except ImportError:
        raise UserError("reading .parquet needs pandas and pyarrow: pip install pandas "
                        "pyarrow (or give .npy, .npz or .csv)") from None
    rows = table.pop("path").astype(str).tolist() if "path" in table.columns else None
    if len(table.columns) == 1 and table[table.columns[0]].dtype == object:
        X = np.stack(table[table.columns[0]].to_numpy())  # one column of vectors
    else:
        X = table.to_numpy()
    return _numeric(X, path), rows


def _numeric(X, path: Path) -> np.ndarray:
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{path}: features must be numbers") from None
    if X.ndim != 2:
        raise UserError(f"{path}: features must be a 2-D table (items x features), got shape "
                        f"{X.shape}")
    return X


def _match_by_path(X: np.ndarray, rows: list[str], item_paths: list[str],
                   path: Path) -> np.ndarray:
    position = {name: i for i, name in enumerate(rows)}
    missing = next((p for p in item_paths if p not in position), None)
    if missing is not None:
        raise UserError(f"{path} has no row for {missing!r} (and the pool has "
                        f"{len(item_paths)} items); give one row per item")
    wanted = set(item_paths)
    extra = next((name for name in rows if name not in wanted), None)
    if extra is not None:
        raise UserError(f"{path} has a row for {extra!r}, which is not an item of the pool")
    return X[[position[p] for p in item_paths]]
