"""The project store: one SQLite database (WAL mode) per labeling project.

Tables:

* ``meta``: settings of the project (dataset, class names, model settings), JSON values;
* ``items``: the pool (features, an image for display, the ground truth when known);
* ``label_events``: an append-only log of what people did. A label, a relabel and an undo
  are each a new row; nothing is updated or deleted, so no label is ever lost;
* ``rounds``: one row per model refit (version, number of labels, estimated accuracy);
* ``latest_predictions``: one row, the latest refit's prediction and confidence of every
  item as two arrays (a cache; one row so that writing it after every label stays cheap:
  at 70,000 items a row per item took 0.3 s a label). A labeling session writes it in
  the background once labels pause for a moment (at 1,000,000 items the 16 MB took
  150 ms of a label's refit, then of the next label's wait), and before it closes: a
  process killed meanwhile leaves it behind by the labels since the last pause;
* ``leases``: items handed to a client for labeling, so two people get different items.

Every write commits before it returns, with ``synchronous=FULL``: a label that the page or
the terminal has shown as saved survives the process being killed at any moment.

The schema's version is kept in ``PRAGMA user_version`` (:data:`SCHEMA_VERSION`); an older
project is migrated step by step when it is opened (:data:`MIGRATIONS`), a newer one is
refused. A file that is not an activeprop database, is truncated or whose contents do not
decode is refused with one line (:class:`~activeprop.errors.UserError`); the graph kept
beside it is a cache, checked in full when read and built again when it fails the check.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import npy_files
from .datasets import Pool
from .errors import UserError

DATABASE = "project.db"
# Version 1 replaced the row-per-item ``predictions`` cache with ``latest_predictions``.
LATEST_PREDICTIONS = """
CREATE TABLE IF NOT EXISTS latest_predictions (
    id INTEGER PRIMARY KEY CHECK (id = 0), model_version INTEGER NOT NULL,
    labels BLOB NOT NULL, confidence BLOB NOT NULL);"""


def _latest_predictions(cursor) -> None:
    """Version 1: one row of latest predictions instead of a row per item."""
    cursor.execute(LATEST_PREDICTIONS)
    cursor.execute("DROP TABLE IF EXISTS predictions")


def _item_sources(cursor) -> None:
    """Version 2: every item's path (image folders) and text (text datasets)."""
    columns = {row[1] for row in cursor.execute("PRAGMA table_info(items)")}
    for column in ("path", "text"):
        if column not in columns:
            cursor.execute(f"ALTER TABLE items ADD COLUMN {column} TEXT")


# Each entry takes a project from version i to i + 1 (projects from before versioning
# are version 0).
MIGRATIONS = [_latest_predictions, _item_sources]
SCHEMA_VERSION = len(MIGRATIONS)
REQUIRED_TABLES = {"meta", "items", "label_events", "rounds", "leases"}
SCHEMA = LATEST_PREDICTIONS + """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, features BLOB NOT NULL, image BLOB, truth INTEGER, path TEXT,
    text TEXT);
CREATE TABLE IF NOT EXISTS label_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL REFERENCES items(id),
    kind TEXT NOT NULL CHECK (kind IN ('label', 'undo')),
    label INTEGER,
    undoes INTEGER REFERENCES label_events(id),
    annotator TEXT NOT NULL,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS label_events_item ON label_events(item_id);
CREATE TABLE IF NOT EXISTS rounds (
    model_version INTEGER PRIMARY KEY, created REAL NOT NULL, n_labeled INTEGER NOT NULL,
    queried TEXT NOT NULL, metrics TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
    item_id INTEGER PRIMARY KEY REFERENCES items(id), client TEXT NOT NULL,
    expires REAL NOT NULL);
"""


@dataclass(frozen=True)
class LabelEvent:
    """One row of the label log."""

    id: int
    item_id: int
    kind: str
    label: int | None
    undoes: int | None
    annotator: str
    created: float


class ProjectStore:
    """Read and append to one project's database. Thread-safe for one process."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._sharded = None  # the sharded pool the items stay in, if any, once opened
        path = self.directory / DATABASE
        if not path.is_file():
            raise UserError(f"{self.directory} is not an activeprop project (no {DATABASE}); "
                            "create one with: activeprop init --project DIR --dataset SPEC")
        _check_not_truncated(path)
        try:
            self.connection = _connect(path)
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise _damaged(path, error) from None

    def _migrate(self) -> None:
        """Check the schema's version and bring an older project up to date."""
        version = self.connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UserError(f"{self.directory} was made by a newer activeprop (project schema "
                            f"{version}; this one reads up to {SCHEMA_VERSION}): upgrade "
                            "activeprop to open it")
        tables = {row[0] for row in self.connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not REQUIRED_TABLES <= tables:
            raise UserError(f"{self.directory / DATABASE} is an SQLite database but not an "
                            f"activeprop project (it lacks the tables "
                            f"{', '.join(sorted(REQUIRED_TABLES - tables))})")
        for step in range(version, SCHEMA_VERSION):
            with self._transaction() as cursor:
                MIGRATIONS[step](cursor)
                cursor.execute(f"PRAGMA user_version = {step + 1}")

    # ------------------------------------------------------------------ creation

    @staticmethod
    def check_free(directory: str | Path) -> None:
        """Raise unless ``directory`` can take a new project (it holds none yet)."""
        if (Path(directory) / DATABASE).exists():
            raise UserError(f"{directory} already holds a project; choose another --project "
                            "directory (nothing was changed)")

    @classmethod
    def create(cls, directory: str | Path, pool: Pool, settings: dict,
               features_at: str | Path | None = None) -> "ProjectStore":
        """Create a project directory holding ``pool`` and the model ``settings``.

        ``features_at``: the sharded pool (:mod:`activeprop.shards`) the features stay in,
        for pools too large to copy: the project keeps only where they are."""
        directory = Path(directory)
        cls.check_free(directory)
        directory.mkdir(parents=True, exist_ok=True)
        connection = _connect(directory / DATABASE)
        try:
            cls._fill(connection, pool, settings, features_at)
        except BaseException:  # interrupted, or a bad pool: leave no half-made project
            connection.close()
            for suffix in ("", "-wal", "-shm"):  # the files this call made (none were there)
                (directory / (DATABASE + suffix)).unlink(missing_ok=True)
            raise
        connection.close()
        return cls(directory)

    @staticmethod
    def _fill(connection: sqlite3.Connection, pool: Pool, settings: dict,
              features_at: str | Path | None) -> None:
        """Write a new project's tables, settings and items, in one transaction: committed
        one by one (each commit syncs the log to disk), the items of a 1,000,000-item pool
        took 150 s of its 545 s of creation."""
        with _transaction(connection, SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};"):
            meta = {"class_names": pool.class_names, "dataset": pool.name,
                    "n_features": int(pool.X.shape[1]), "settings": settings,
                    "image_shape": None if pool.images is None else list(pool.images.shape[1:]),
                    "image_format": "png" if pool.thumbnails is not None else
                    "array" if pool.images is not None else None,
                    "created": time.time(), "features_at": None,
                    # the columns' names, where the stored features are a table's columns
                    "feature_names": pool.feature_names if features_at is None else None}
            if features_at is not None:
                meta.update(_referenced_meta(Path(features_at).resolve()))
            connection.executemany("INSERT INTO meta VALUES (?, ?)",
                                   [(k, json.dumps(v)) for k, v in meta.items()])
            pictures = pool.thumbnails if pool.thumbnails is not None else \
                None if pool.images is None else [image.astype(np.float32).tobytes()
                                                  for image in pool.images]
            connection.executemany(
                "INSERT INTO items (id, features, image, truth, path, text) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                ((i, b"" if features_at is not None else pool.X[i].astype(np.float64).tobytes(),
                  None if pictures is None else pictures[i],
                  None if pool.y[i] < 0 else int(pool.y[i]),
                  None if pool.paths is None else pool.paths[i],
                  None if pool.texts is None else pool.texts[i]) for i in range(len(pool))))

    # ------------------------------------------------------------------ reading

    def meta(self, key: str):
        """A project setting."""
        try:
            row = self.connection.execute("SELECT value FROM meta WHERE key = ?",
                                          (key,)).fetchone()
            return None if row is None else json.loads(row[0])
        except (sqlite3.DatabaseError, ValueError) as error:
            raise _damaged(self.directory / DATABASE, error) from None

    def set_meta(self, key: str, value) -> None:
        """Store a project setting (JSON-serialisable)."""
        with self._transaction() as cursor:
            cursor.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def class_names(self) -> list[str]:
        """The classes a label can take, in index order."""
        return self.meta("class_names")

    def n_items(self) -> int:
        """Pool size."""
        return self.connection.execute("SELECT COUNT(*) FROM items").fetchone()[0]

    # ------------------------------------------------------------------ graphs

    def save_graph(self, recipe: tuple, graph) -> None:
        """Keep a sparse (kNN) graph beside the database, so that reopening the project does
        not search the neighbours again (about 18 s at 70,000 x 784), with what the solvers
        derived from it so far (:meth:`Graph.derived_arrays`: 5 s at 1,000,000 items).
        Written to a temporary file and renamed, so a crash leaves the old file or none.
        Dense graphs are not kept: rebuilding one is fast and storing one is n^2."""
        if not graph.is_sparse:
            return
        affinity = graph.affinity.tocsr()
        facts = {"recipe": list(recipe), "kernel": graph.kernel, "gamma": graph.gamma,
                 "n_neighbors": graph.n_neighbors, "backend": graph.backend,
                 "recall": graph.recall, "build_seconds": graph.build_seconds}
        path = self._graph_path(recipe)
        temporary = path.with_name(path.name + ".tmp")
        try:
            with open(temporary, "wb") as file:
                np.savez(file, data=affinity.data, indices=affinity.indices,
                         indptr=affinity.indptr, facts=np.array(json.dumps(facts)),
                         **graph.derived_arrays())
            temporary.replace(path)
        except OSError:  # a read-only project still opens: the graph is only a cache
            temporary.unlink(missing_ok=True)

    def load_graph(self, recipe: tuple, X: np.ndarray):
        """The graph :meth:`save_graph` kept for ``recipe`` over the pool ``X``, or None
        (never built, or a file that does not fit this pool: it is then built anew)."""
        from scipy import sparse

        from .graph import CSR_PARTS, Graph, check_sparse_graph

        path = self._graph_path(recipe)
        if not path.is_file():
            return None
        try:
            with npy_files.opened(path, allow_pickle=False) as arrays:
                facts = json.loads(str(arrays["facts"]))
                if facts["recipe"] != json.loads(json.dumps(list(recipe))):
                    return None
                affinity = sparse.csr_matrix(
                    (arrays["data"], arrays["indices"], arrays["indptr"]),
                    shape=(len(X), len(X)))
                check_sparse_graph(affinity)
                graph = Graph(kernel=facts["kernel"], gamma=facts["gamma"],
                              n_neighbors=facts["n_neighbors"], X=X, affinity=affinity,
                              build_seconds=facts["build_seconds"], backend=facts["backend"],
                              recall=facts["recall"])
                derived = {name: arrays[name] for name in arrays.files
                           if name not in (*CSR_PARTS, "facts")}
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            return None  # damaged: built anew (and saved over it)
        try:
            graph.adopt_derived(derived)
        except (ValueError, TypeError):  # (TypeError: arrays of a kind scipy refuses)
            pass  # damaged operators: derived again from the affinity on first use
        return graph

    def _graph_path(self, recipe: tuple) -> Path:
        digest = hashlib.sha1(json.dumps(list(recipe)).encode()).hexdigest()[:12]
        return self.directory / f"graph-{digest}.npz"

    # ------------------------------------------------------------------ pool

    def load_pool(self, images: bool = True, lazy: bool = False) -> Pool:
        """The pool as stored: features, ground truth (-1 unknown), and images unless
        ``images`` is False (a labeling session reads each one with :meth:`image` when it
        is shown, so it need not hold them all: 220 MB and ~0.8 s at 70,000 x 28 x 28).

        A project whose features stay in a sharded pool reads them from it: into this
        process, or with ``lazy`` as a dask array for a cluster's workers to read."""
        features_at = self.meta("features_at")
        try:
            # a sharded pool's pictures stay in it: shown one at a time (image())
            shape = self.meta("image_shape") if images and not features_at else None
            columns = "features, truth" + (", image" if shape is not None else "")
            rows = self.connection.execute(f"SELECT {columns} FROM items ORDER BY id").fetchall()
            X = None if features_at else _joined([r[0] for r in rows], np.float64).reshape(
                len(rows), self.meta("n_features"))
            y = np.array([-1 if r[1] is None else r[1] for r in rows], dtype=np.int64)
            pictures = None
            if shape is not None:
                pictures = _joined([r[2] for r in rows], np.float32).reshape(len(rows), *shape)
        except (sqlite3.DatabaseError, ValueError, TypeError) as error:
            raise _damaged(self.directory / DATABASE, error) from None
        names = self.meta("feature_names")  # (none in projects made before they were kept)
        if X is None:
            X = self._referenced_features(features_at, len(y), lazy)
        elif np.isinf(X).any() or (names is None and np.isnan(X).any()):
            # (a table's missing cells are NaN: activeprop.missing_cells)
            raise _damaged(self.directory / DATABASE, "features that are not numbers")
        if np.any((y < -1) | (y >= len(self.class_names))):
            raise _damaged(self.directory / DATABASE, "labels of no class")
        if names is not None and (not isinstance(names, list) or len(names) != X.shape[1]
                                  or not all(isinstance(name, str) for name in names)):
            raise _damaged(self.directory / DATABASE, "feature names that do not fit the "
                           "features")
        return Pool(X, y, self.class_names, pictures, self.meta("dataset"),
                    feature_names=names)

    def _shards(self):
        """The sharded pool a project's items stay in (opened once)."""
        from .shards import open_sharded

        if self._sharded is None:
            path = self.meta("features_at")
            try:
                self._sharded = open_sharded(path)
            except (UserError, OSError) as error:
                raise UserError(f"{self.directory}'s features are in {path}, which cannot "
                                f"be read: {error}") from None
        return self._sharded

    def _referenced_features(self, path: str, n_items: int, lazy: bool):
        """The features of a project made from a sharded pool, from that pool."""
        sharded = self._shards()
        if (sharded.n_items, sharded.n_features) != (n_items, self.meta("n_features")):
            raise UserError(f"{path} holds {sharded.n_items} x {sharded.n_features} features; "
                            f"{self.directory} was made from {n_items} x "
                            f"{self.meta('n_features')}: it is not the pool this project "
                            "labels")
        return sharded.lazy() if lazy else sharded.in_memory()

    def image(self, item_id: int) -> np.ndarray | bytes | None:
        """The display image of one item: a float array (pools given as arrays), PNG bytes
        (image folders: ``meta("image_format") == "png"``), or None without images. A
        project whose items stay in a sharded pool reads it from there."""
        if self.meta("features_at"):
            return self._shards().picture(item_id) if self.has_item(item_id) else None
        row = self.connection.execute("SELECT image FROM items WHERE id = ?",
                                      (item_id,)).fetchone()
        if row is None or row[0] is None:
            return None
        if self.meta("image_format") == "png":
            return bytes(row[0])
        shape = self.meta("image_shape")
        return None if shape is None else np.frombuffer(row[0], dtype=np.float32).reshape(shape)

    def item_features(self, item_id: int) -> np.ndarray:
        """An item's features as stored (empty when they stay in a sharded pool)."""
        row = self.connection.execute("SELECT features FROM items WHERE id = ?",
                                      (item_id,)).fetchone()
        return np.frombuffer(row[0], dtype=np.float64) if row else np.empty(0)

    def item_source(self, item_id: int) -> tuple[str | None, str | None]:
        """An item's file path (relative to the dataset) and text, where it has them."""
        row = self.connection.execute("SELECT path, text FROM items WHERE id = ?",
                                      (item_id,)).fetchone()
        return (None, None) if row is None else (row[0], row[1])

    def paths(self) -> list[str | None]:
        """Every item's path (None where it has none), in item order."""
        return [row[0] for row in self.connection.execute(
            "SELECT path FROM items ORDER BY id")]

    def has_item(self, item_id: int) -> bool:
        """Whether ``item_id`` is in the pool."""
        return self.connection.execute("SELECT 1 FROM items WHERE id = ?",
                                       (item_id,)).fetchone() is not None

    def events(self, item_id: int | None = None) -> list[LabelEvent]:
        """The label log, oldest first (of one item when ``item_id`` is given)."""
        query = "SELECT id, item_id, kind, label, undoes, annotator, created FROM label_events"
        rows = (self.connection.execute(query + " WHERE item_id = ? ORDER BY id", (item_id,))
                if item_id is not None else self.connection.execute(query + " ORDER BY id"))
        return [LabelEvent(*row) for row in rows]

    def events_after(self, event_id: int) -> list[LabelEvent]:
        """The events appended after ``event_id`` (by any process), oldest first."""
        rows = self.connection.execute(
            "SELECT id, item_id, kind, label, undoes, annotator, created FROM label_events "
            "WHERE id > ? ORDER BY id", (event_id,))
        return [LabelEvent(*row) for row in rows]

    def current_labels(self, events: list[LabelEvent] | None = None) -> dict[int, int]:
        """Each labeled item's label: its latest label event that was not undone (in
        ``events``, all of an item's events, or else the whole log)."""
        events = self.events() if events is None else events
        undone = {e.undoes for e in events if e.kind == "undo"}
        labels: dict[int, int] = {}
        for event in events:
            if event.kind == "label" and event.id not in undone:
                labels[event.item_id] = event.label
        # An item whose every label was undone is unlabeled again.
        return labels

    def rounds(self) -> list[dict]:
        """Every refit: model version, labels, metrics; oldest first."""
        rows = self.connection.execute(
            "SELECT model_version, created, n_labeled, queried, metrics FROM rounds "
            "ORDER BY model_version")
        return [{"model_version": v, "created": c, "n_labeled": n, "queried": json.loads(q),
                 **json.loads(m)} for v, c, n, q, m in rows]

    def predictions(self) -> tuple[int, np.ndarray, np.ndarray] | None:
        """The latest refit's model version, predicted class index (-1: none) and
        confidence of every item; None before the first refit."""
        row = self.connection.execute(
            "SELECT model_version, labels, confidence FROM latest_predictions").fetchone()
        if row is None:
            return None
        return row[0], np.frombuffer(row[1], dtype=np.int64), np.frombuffer(row[2])

    # ------------------------------------------------------------------ writing

    def add_label(self, item_id: int, label: int, annotator: str) -> LabelEvent:
        """Append a label event; committed to disk before this returns."""
        return self._append(item_id, "label", label, None, annotator)

    def undo_last(self, annotator: str) -> LabelEvent | None:
        """Append an undo of ``annotator``'s latest label still in effect; None if none."""
        events = self.events()
        undone = {e.undoes for e in events if e.kind == "undo"}
        for event in reversed(events):
            if event.kind == "label" and event.annotator == annotator and event.id not in undone:
                return self._append(event.item_id, "undo", None, event.id, annotator)
        return None

    def _append(self, item_id, kind, label, undoes, annotator) -> LabelEvent:
        created = time.time()
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT INTO label_events (item_id, kind, label, undoes, annotator, created) "
                "VALUES (?, ?, ?, ?, ?, ?)", (item_id, kind, label, undoes, annotator, created))
            event_id = cursor.lastrowid
        return LabelEvent(event_id, item_id, kind, label, undoes, annotator, created)

    def record_round(self, n_labeled: int, queried: list[int], metrics: dict) -> int:
        """Store a refit; returns its model version, the next of the project's (allocated
        in the transaction, so that processes sharing the project never write the same
        one)."""
        with self._transaction() as cursor:
            version = cursor.execute(
                "SELECT COALESCE(MAX(model_version), 0) + 1 FROM rounds").fetchone()[0]
            cursor.execute("INSERT INTO rounds VALUES (?, ?, ?, ?, ?)",
                           (version, time.time(), n_labeled, json.dumps(queried),
                            json.dumps(metrics)))
        return version

    def cache_predictions(self, model_version: int, predictions: np.ndarray,
                          confidence: np.ndarray) -> None:
        """Replace the predictions cache with the refit of ``model_version``'s, unless it
        holds a newer refit's (another process's, or a write that overtook this one)."""
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT INTO latest_predictions VALUES (0, ?, ?, ?) ON CONFLICT(id) DO UPDATE "
                "SET model_version = excluded.model_version, labels = excluded.labels, "
                "confidence = excluded.confidence "
                "WHERE excluded.model_version > latest_predictions.model_version",
                (model_version, np.asarray(predictions, dtype=np.int64).tobytes(),
                 np.asarray(confidence, dtype=np.float64).tobytes()))

    def latest_model_version(self) -> int:
        """The newest model version any process recorded (0 before the first refit)."""
        return self.connection.execute(
            "SELECT COALESCE(MAX(model_version), 0) FROM rounds").fetchone()[0]

    def set_round_metrics(self, model_version: int, metrics: dict) -> None:
        """Give the refit of ``model_version`` metrics computed after it was recorded."""
        with self._transaction() as cursor:
            cursor.execute("UPDATE rounds SET metrics = ? WHERE model_version = ?",
                           (json.dumps(metrics), model_version))

    def record_queried(self, model_version: int, item_ids: list[int]) -> None:
        """Add items handed out for labeling to the round of ``model_version``."""
        row = self.connection.execute("SELECT queried FROM rounds WHERE model_version = ?",
                                      (model_version,)).fetchone()
        if row is None:
            return
        queried = list(dict.fromkeys(json.loads(row[0]) + list(item_ids)))
        with self._transaction() as cursor:
            cursor.execute("UPDATE rounds SET queried = ? WHERE model_version = ?",
                           (json.dumps(queried), model_version))

    def lease_batch(self, client: str, seconds: float,
                    choose: Callable[[set[int]], list[int]]) -> list[int]:
        """Lease to ``client`` the items ``choose(taken)`` picks, where ``taken`` holds the
        items other clients have an unexpired lease on. Reading the leases and writing the
        new ones is one write transaction: two processes never hand out the same item."""
        with self._transaction() as cursor:
            now = time.time()
            taken = {row[0] for row in cursor.execute(
                "SELECT item_id FROM leases WHERE client != ? AND expires > ?", (client, now))}
            picked = [int(item) for item in choose(taken)]
            cursor.executemany("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)",
                               [(item, client, now + seconds) for item in picked])
        return picked

    def release(self, item_id: int) -> None:
        """End the lease on an item (it was labeled)."""
        with self._transaction() as cursor:
            cursor.execute("DELETE FROM leases WHERE item_id = ?", (item_id,))

    def _transaction(self):
        return _transaction(self.connection)

    def close(self) -> None:
        """Close the database connection."""
        self.connection.close()


def _referenced_meta(path: Path) -> dict:
    """A project's facts about the sharded pool at ``path`` its items stay in: where it is
    and how its items are shown."""
    from .shards import open_sharded

    sharded = open_sharded(path)
    shape = None if sharded.image_shape is None else list(sharded.image_shape)
    return {"features_at": str(path), "image_shape": shape, "image_style": sharded.image_style,
            "image_format": "array" if shape else "png" if sharded.image_root else None}


def _check_not_truncated(path: Path) -> None:
    """Refuse a database file shorter than its header says (a cut-off copy). SQLite itself
    notices only when it reads a missing page, possibly long after the project opened."""
    with open(path, "rb") as file:
        header = file.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise UserError(f"{path} is not an activeprop project database (not an SQLite file)")
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    pages, valid_for = struct.unpack(">I", header[28:32])[0], header[92:96]
    if valid_for == header[24:28] and pages * page_size > path.stat().st_size:
        raise _damaged(path, f"{path.stat().st_size} bytes where the header says "
                             f"{pages * page_size}: truncated")


def _damaged(path: Path, error) -> UserError:
    return UserError(f"{path} is damaged and cannot be opened ({error}); restore it from a "
                     "backup (the label log is in its label_events table)")


def _joined(blobs: list[bytes], dtype) -> np.ndarray:
    """The rows' blobs as one writable flat array, copied once (joining into a bytearray:
    at 70,000 x 784 features 0.4 s instead of 1.2 s for a bytes join and a copy)."""
    return np.frombuffer(bytearray().join(blobs), dtype=dtype)


@contextmanager
def _transaction(connection: sqlite3.Connection, script: str = ""):
    """A cursor inside BEGIN IMMEDIATE ... COMMIT on ``connection``, rolled back on any
    exception; ``script`` (statements separated by semicolons) runs first, inside it."""
    cursor = connection.cursor()
    try:
        if script:  # one script (executescript commits a transaction already begun)
            cursor.executescript("BEGIN IMMEDIATE;" + script)
        else:
            cursor.execute("BEGIN IMMEDIATE")
        yield cursor
        cursor.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            cursor.execute("ROLLBACK")
        raise
    finally:
        cursor.close()


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                 timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection
