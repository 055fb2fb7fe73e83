"""A pool's features as row chunks held by the workers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cluster import send

# The most rows a chunk of the search holds: each chunk is searched with every item, so
# fewer, larger chunks cost less search (one chunk per worker while under this).
MAX_CHUNK_ROWS = 1_000_000


def chunk_rows_for(n_items: int, n_workers: int) -> int:
    """Rows per chunk: the pool split evenly over the workers, at most MAX_CHUNK_ROWS."""
    return max(1, min(MAX_CHUNK_ROWS, -(-n_items // max(n_workers, 1))))


@dataclass
class RowChunks:
    """A pool's features in consecutive row ranges: chunk ``i`` holds rows ``starts[i]`` to
    ``starts[i + 1]`` as float32.

    A pool the client sent is held by the workers (``futures``: no other copy exists). A
    stored pool (``source``: the dask array it is read from) is held by nobody: each task
    that reads a chunk reads it from the store (:meth:`parts`, :func:`rows_in`) and lets
    it go when it ends. Read once and held, a lone worker's 4,000,000 x 64 pool (1,000
    MB) sat under its whole neighbour search, whose target was 2,001 MB in all; a search
    reads each chunk again for each wave of indexes, 1.1 s for 1,000,000 x 64 against
    minutes of searching (docs/benchmarks.md)."""

    futures: list
    starts: np.ndarray
    n_features: int
    source: object = None

    @property
    def n_chunks(self) -> int:
        """How many chunks."""
        return len(self.starts) - 1

    def parts(self) -> list:
        """What a task is given for each chunk, to take its rows with :func:`rows_in`: the
        workers' futures, or the store's chunks to read."""
        if self.source is None:
            return self.futures
        # (the store's own chunks kept, so that a task can read a few rows of the chunk
        # without the whole: :func:`pieces_of`)
        return [StoredRows.of(self.source[start:stop])
                for start, stop in zip(self.starts[:-1], self.starts[1:])]

    def rows(self, client, items: np.ndarray) -> np.ndarray:
        """The rows ``items`` (pool indices, ascending) on the client: from the workers'
        chunks, or read from the store by a worker."""
        if self.source is None:
            return rows_of(self.futures, self.starts, items, client)
        return client.submit(rows_in, StoredRows.of(self.source[items])).result()

    @property
    def n_items(self) -> int:
        """Rows over all chunks."""
        return int(self.starts[-1])

    def sample(self, client, size: int, seed: int = 0) -> np.ndarray:
        """``size`` rows drawn without replacement, brought to the client (for the
        coarse clusters)."""
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(self.n_items, min(size, self.n_items), replace=False))
        return self.rows(client, picked)


@dataclass(frozen=True)
class StoredRows:
    """Rows of a stored pool, read by the task they are given to. The store is read in
    that task's thread: none of its reads is a task of the cluster's scheduler, whose
    results a worker would hold (and whose keys, submitted again in another shape of
    graph, made the scheduler warn that a key changed its task, which can deadlock)."""

    rows: object  # a dask array of them, with the graph of its own reads alone

    @classmethod
    def of(cls, rows) -> "StoredRows":
        """The rows of the dask array ``rows``."""
        import dask

        return cls(*dask.optimize(rows))

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def read(self, rows: slice = slice(None)) -> np.ndarray:
        """The rows (or those of ``rows``), read from the store in this thread, as
        float32."""
        return as_float32(self.rows[rows].compute(scheduler="synchronous"))


def rows_in(part) -> np.ndarray:
    """A chunk's rows inside a task: the array its future gave, or stored rows read now
    (held while the task holds them)."""
    return part.read() if isinstance(part, StoredRows) else part


def pieces_of(part, n_rows: int):
    """A chunk's rows (as :func:`rows_in` takes them) in consecutive pieces of at most
    ``n_rows``; stored rows are read a piece at a time, so that only one piece is held."""
    for start in range(0, len(part), n_rows):
        rows = slice(start, start + n_rows)
        yield part.read(rows) if isinstance(part, StoredRows) else part[rows]


def rows_of(lists: list, starts: np.ndarray, items: np.ndarray, client) -> np.ndarray:
    """The rows ``items`` (pool indices, ascending) of per-chunk arrays, on the client."""
    chunk = np.searchsorted(starts, items, side="right") - 1
    parts = [client.submit(np.take, future, items[chunk == i] - starts[i], axis=0)
             for i, future in enumerate(lists) if np.any(chunk == i)]
    return np.concatenate(client.gather(parts))


def _starts(sizes) -> np.ndarray:
    """Each chunk's first row, and the rows in all, from the chunks' sizes."""
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def as_float32(rows) -> np.ndarray:
    """Rows as a C-contiguous float32 array (what faiss reads)."""
    return np.ascontiguousarray(rows, dtype=np.float32)


def row_chunks(client, X, chunk_rows: int) -> RowChunks:
    """The features ``X`` in chunks of ``chunk_rows``: a dask array's are read by the
    tasks that use them (never gathered), a numpy array's rows are sent to the workers.
    Columns are never split."""
    if hasattr(X, "to_delayed"):  # a dask array, e.g. a Zarr store read lazily
        sizes = X.rechunk({0: chunk_rows}).chunks[0]
        return RowChunks([], _starts(sizes), int(X.shape[1]), X)
    X = np.asarray(X)
    bounds = list(range(0, len(X), chunk_rows)) + [len(X)]
    futures = send(client, [as_float32(X[a:b]) for a, b in zip(bounds, bounds[1:])])
    return RowChunks(list(futures), _starts(np.diff(bounds)), int(X.shape[1]))
