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
    """Futures of consecutive row ranges of the features: chunk ``i`` holds rows
    ``starts[i]`` to ``starts[i + 1]`` as float32.

    ``source`` is the dask array the chunks were read from (a pool stored on disk), or
    None when the client sent them. A stored pool's chunks can be let go once the graph is
    built (:meth:`let_go`) and read from the store again when needed."""

    futures: list
    starts: np.ndarray
    n_features: int
    source: object = None

    def let_go(self) -> None:
        """Drop the workers' copies when the store can give the rows again. Once the graph
        is built only a diverse batch's few rows are read: a lone worker kept a 1,000,000
        x 64 pool, 256 MB of its 1,452 MB peak, for them. Chunks the client sent are kept
        (no other copy exists)."""
        if self.source is not None:
            self.futures = []

    def rows(self, client, items: np.ndarray) -> np.ndarray:
        """The rows ``items`` (pool indices, ascending) on the client: from the workers'
        chunks, or read from the store again once they were let go."""
        if self.futures:
            return rows_of(self.futures, self.starts, items, client)
        return as_float32(client.compute(_read_again(self.source)[items]).result())

    def chunk_futures(self, client) -> tuple[list, np.ndarray]:
        """Futures of the pool's rows in chunks, and each chunk's first row: the workers'
        chunks, or the store's read again once they were let go (a pass over the pool)."""
        if self.futures:
            return self.futures, self.starts
        return _read_on_workers(client, _read_again(self.source))

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


def rows_of(lists: list, starts: np.ndarray, items: np.ndarray, client) -> np.ndarray:
    """The rows ``items`` (pool indices, ascending) of per-chunk arrays, on the client."""
    chunk = np.searchsorted(starts, items, side="right") - 1
    parts = [client.submit(np.take, future, items[chunk == i] - starts[i], axis=0)
             for i, future in enumerate(lists) if np.any(chunk == i)]
    return np.concatenate(client.gather(parts))


def _read_again(source):
    """``source`` under keys of its own. The first read's keys are released once the
    graph is built; submitting them again in another shape of graph makes the scheduler
    warn that a key changed its task (which can deadlock)."""
    from dask.graph_manipulation import clone

    return clone(source)


def _read_on_workers(client, array) -> tuple[list, np.ndarray]:
    """Futures of a dask array's row chunks as float32, each read by a worker, and each
    chunk's first row."""
    futures = [client.submit(as_float32, client.compute(array.blocks[i]))
               for i in range(array.numblocks[0])]
    return futures, _starts(array.chunks[0])


def _starts(sizes) -> np.ndarray:
    """Each chunk's first row, and the rows in all, from the chunks' sizes."""
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def as_float32(rows) -> np.ndarray:
    """Rows as a C-contiguous float32 array (what faiss reads)."""
    return np.ascontiguousarray(rows, dtype=np.float32)


def row_chunks(client, X, chunk_rows: int) -> RowChunks:
    """Put the features ``X`` on the workers in chunks of ``chunk_rows``: a dask array's
    chunks are read by the workers (never gathered), a numpy array's rows are sent.
    Columns are never split."""
    if hasattr(X, "to_delayed"):  # a dask array, e.g. a Zarr store read lazily
        futures, starts = _read_on_workers(client, X.rechunk({0: chunk_rows, 1: -1}))
        return RowChunks(futures, starts, int(X.shape[1]), X)
    X = np.asarray(X)
    bounds = list(range(0, len(X), chunk_rows)) + [len(X)]
    futures = send(client, [as_float32(X[a:b]) for a, b in zip(bounds, bounds[1:])])
    return RowChunks(list(futures), _starts(np.diff(bounds)), int(X.shape[1]))
