"""Pools stored in row chunks on disk, for pools larger than memory.

Two layouts, both read lazily:

* a Zarr group (``name.zarr``): arrays ``features`` (float32, chunked by rows), ``labels``
  (int64 class indices, -1 where unknown) and optionally ``paths``, ``texts`` and
  ``images`` (float32 pictures to show, chunked by rows); the class names and how to show
  the items in its attributes. Zarr stores chunks as files (or objects in a bucket)
  that workers read directly (needs the ``distributed`` extra);
* a folder of ``.npy`` shards (``features-00000.npy``, ``labels-00000.npy``, optional
  ``paths-``, ``texts-`` and ``images-00000.npy``) with a ``pool.json`` naming them and
  saying how to show the items, read with numpy's memory maps.

Items are shown as the pool showed them: its pictures (read one at a time from the
shards), or for a folder of image files, each file, found under the folder the pool was
read from (``image_root``) and made a thumbnail when shown.

:func:`write_sharded` writes either from any :class:`activeprop.datasets.Pool`
(``activeprop shard``); :func:`open_sharded` opens one. In one process the features are
memory-mapped (a one-shard folder) or read chunk by chunk into float32; on a cluster they
become a dask array whose chunks the workers read themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import npy_files
from .datasets import Pool, UNLABELED
from .errors import UserError

FORMAT_VERSION = 1
MANIFEST = "pool.json"
SHARD_ROWS = 100_000


def is_sharded(path: str | Path) -> bool:
    """Whether ``path`` is a pool written by :func:`write_sharded`."""
    path = Path(path)
    return (path / MANIFEST).is_file() or (path.suffix == ".zarr" and path.is_dir())


def write_sharded(pool: Pool, out: str | Path, shard_rows: int = SHARD_ROWS) -> Path:
    """Write ``pool`` to ``out`` in row shards of ``shard_rows``: a Zarr group when ``out``
    ends in ``.zarr``, else a folder of ``.npy`` files. Refuses to overwrite anything."""
    out = Path(out)
    if shard_rows < 1:
        raise UserError(f"shard rows must be >= 1, got {shard_rows}")
    if out.is_file() or (out.is_dir() and any(out.iterdir())):
        raise UserError(f"{out} already exists and is not empty; give a new folder")
    bounds = list(range(0, len(pool), shard_rows)) + [len(pool)]
    spans = list(zip(bounds, bounds[1:]))
    (_write_zarr if out.suffix == ".zarr" else _write_npy)(pool, out, spans)
    return out


def _row_arrays(pool: Pool) -> dict:
    """Every per-item array a shard holds, by name (those the pool has)."""
    arrays = {"features": np.asarray(pool.X, dtype=np.float32), "labels": pool.y}
    for name in ("paths", "texts"):
        if getattr(pool, name) is not None:
            arrays[name] = np.array(getattr(pool, name), dtype=str)
    if pool.images is not None:
        arrays["images"] = np.asarray(pool.images, dtype=np.float32)
    return arrays


def _display(pool: Pool) -> dict:
    """How the items are shown: the pictures' style, or where the image files are."""
    style = None if pool.images is None else {
        "max": float(pool.images.max()) or 1.0,
        "invert": pool.name.startswith("digits")}  # ink on paper: high values dark
    root = str(Path(pool.name).resolve()) if pool.thumbnails is not None else None
    return {"image_style": style, "image_root": root}


def _write_npy(pool: Pool, out: Path, spans) -> None:
    out.mkdir(parents=True, exist_ok=True)
    arrays = _row_arrays(pool)
    shards = []
    for number, (start, stop) in enumerate(spans):
        shard = {"rows": stop - start}
        for name, values in arrays.items():
            shard[name] = f"{name}-{number:05d}.npy"
            np.save(out / shard[name], values[start:stop])
        shards.append(shard)
    manifest = {"activeprop_pool": FORMAT_VERSION, "n_items": len(pool),
                "n_features": int(pool.X.shape[1]), "class_names": list(pool.class_names),
                **_display(pool), "shards": shards}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))


def _zarr():
    try:
        import zarr
    except ImportError:
        raise UserError("Zarr pools need zarr: pip install 'activeprop[distributed]' (or "
                        "write a folder of .npy shards: an output name without .zarr)") \
            from None
    return zarr


def _write_zarr(pool: Pool, out: Path, spans) -> None:
    zarr = _zarr()
    group = zarr.open_group(str(out), mode="w-")
    rows = spans[0][1] - spans[0][0]
    for name, values in _row_arrays(pool).items():
        stored = group.create_array(name, shape=values.shape, chunks=(rows, *values.shape[1:]),
                                    dtype=str if values.dtype.kind == "U" else values.dtype)
        for start, stop in spans:
            stored[start:stop] = values[start:stop]
    group.attrs["activeprop_pool"] = {"version": FORMAT_VERSION,
                                      "class_names": list(pool.class_names), **_display(pool)}


def _load_rows(path: str) -> np.ndarray:
    """One ``.npy`` shard's rows (run by whichever process reads them)."""
    return npy_files.load(path, mmap_mode="r")


@dataclass
class ShardedPool:
    """A pool on disk, opened without reading its features.

    ``labels`` and ``paths`` are read (one entry per item); ``features`` stay on disk until
    :meth:`in_memory` or :meth:`lazy` reads them."""

    path: Path
    n_items: int
    n_features: int
    class_names: list[str]
    labels: np.ndarray
    paths: list[str] | None
    shard_files: list[Path] | None  # .npy layout; None for Zarr
    shard_rows: list[int] | None
    texts: list[str] | None = None
    image_files: list[Path] | None = None  # .npy layout's pictures
    image_shape: tuple | None = None  # of one picture held in the shards
    image_style: dict | None = None
    image_root: str | None = None  # the folder of the image files the paths name

    def picture(self, item: int) -> np.ndarray | bytes | None:
        """What to show of one item: its picture (a float array) read from the shards, a
        PNG thumbnail of its image file, or None."""
        if self.image_shape is not None:
            if self.image_files is None:
                return np.asarray(self._zarr_array("images")[item])
            shard = int(np.searchsorted(np.cumsum(self.shard_rows), item, side="right"))
            first = int(np.sum(self.shard_rows[:shard]))
            return np.array(_load_rows(str(self.image_files[shard]))[item - first])
        if self.image_root is not None and self.paths is not None:
            return _thumbnail_of(Path(self.image_root), self.paths[item])
        return None

    def _zarr_array(self, name: str):
        """The Zarr layout's array ``name``, opened read-only (read as it is indexed)."""
        return _zarr().open_array(str(self.path / name), mode="r")

    def in_memory(self) -> np.ndarray:
        """The features for one process: a read-only memory map when the pool is one
        ``.npy`` shard, else read shard by shard into one float32 array."""
        if self.shard_files is not None and len(self.shard_files) == 1:
            return _load_rows(str(self.shard_files[0]))
        X = np.empty((self.n_items, self.n_features), dtype=np.float32)
        if self.shard_files is not None:
            start = 0
            for file in self.shard_files:
                rows = _load_rows(str(file))
                X[start:start + len(rows)] = rows
                start += len(rows)
            return X
        features = self._zarr_array("features")
        step = features.chunks[0]
        for start in range(0, self.n_items, step):
            X[start:start + step] = features[start:start + step]
        return X

    def lazy(self):
        """The features as a dask array, one chunk per shard; each chunk is read by the
        worker that computes it (so a lost worker's chunks are read again)."""
        import dask
        import dask.array as da

        if self.shard_files is None:
            return da.from_zarr(str(self.path), component="features")
        parts = [da.from_delayed(dask.delayed(_load_rows)(str(file)),
                                 shape=(rows, self.n_features), dtype=np.float32)
                 for file, rows in zip(self.shard_files, self.shard_rows)]
        return da.concatenate(parts)

    def to_pool(self, lazy: bool = False) -> Pool:
        """The :class:`Pool` of these items, features read in one process or lazy."""
        return Pool(self.lazy() if lazy else self.in_memory(), self.labels, self.class_names,
                    None if lazy else self._pictures(), name=str(self.path), paths=self.paths,
                    texts=self.texts)

    def _pictures(self) -> np.ndarray | None:
        """Every item's picture, read into this process (None without pictures)."""
        if self.image_shape is None:
            return None
        if self.image_files is None:
            return self._zarr_array("images")[:]
        return np.concatenate([_load_rows(str(file)) for file in self.image_files])


def open_sharded(path: str | Path) -> ShardedPool:
    """Open a pool written by :func:`write_sharded` (either layout)."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return _open_npy(path)
    zarr = _zarr()
    try:
        group = zarr.open_group(str(path), mode="r")
        meta = group.attrs["activeprop_pool"]
        features, labels = group["features"], group["labels"]
    except (KeyError, FileNotFoundError, ValueError) as error:
        raise UserError(f"{path} is not an activeprop Zarr pool (write one with "
                        f"`activeprop shard`): {error}") from None
    paths, texts = (group[name][:].tolist() if name in group else None
                    for name in ("paths", "texts"))
    return ShardedPool(path, features.shape[0], features.shape[1], list(meta["class_names"]),
                       _checked_labels(labels[:], meta["class_names"], path), paths, None, None,
                       texts, None, group["images"].shape[1:] if "images" in group else None,
                       meta.get("image_style"), meta.get("image_root"))


def _listed(path: Path, shards: list[dict], name: str) -> list | None:
    """The entries of every shard's ``name`` file (paths or texts), in order; None when the
    shards have none."""
    if not shards or name not in shards[0]:
        return None
    return [entry for shard in shards for entry in npy_files.load(path / shard[name]).tolist()]


def _open_npy(path: Path) -> ShardedPool:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        shards = manifest["shards"]
        names = list(manifest["class_names"])
        files = [path / shard["features"] for shard in shards]
        labels = np.concatenate([npy_files.load(path / shard["labels"]) for shard in shards])
        paths, texts = (_listed(path, shards, name) for name in ("paths", "texts"))
        images = [path / shard["images"] for shard in shards] \
            if shards and "images" in shards[0] else None
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise UserError(f"{path / MANIFEST} does not describe a readable pool ({error})") \
            from None
    for file, shard in zip(files, shards):
        rows = _load_rows(str(file))
        if rows.shape != (shard["rows"], manifest["n_features"]):
            raise UserError(f"{file} holds {rows.shape}, {MANIFEST} says "
                            f"({shard['rows']}, {manifest['n_features']})")
    return ShardedPool(path, int(manifest["n_items"]), int(manifest["n_features"]), names,
                       _checked_labels(labels, names, path), paths, files,
                       [shard["rows"] for shard in shards], texts, images,
                       _load_rows(str(images[0])).shape[1:] if images else None,
                       manifest.get("image_style"), manifest.get("image_root"))


def _thumbnail_of(root: Path, relative: str) -> bytes | None:
    """A PNG thumbnail of the image file ``relative`` under ``root``; None when it is gone,
    unreadable, or names a place outside ``root`` (the paths come from a data file)."""
    from PIL import UnidentifiedImageError

    from .datasets import read_image, thumbnail

    file = (root / relative).resolve()
    if not file.is_relative_to(root.resolve()):
        return None
    try:
        return thumbnail(read_image(file))
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def _checked_labels(labels: np.ndarray, names: list, path: Path) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) and (labels.min() < UNLABELED or labels.max() >= len(names)):
        raise UserError(f"{path}: labels must be -1 (unknown) or class indices below "
                        f"{len(names)}")
    return labels
