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
    ``starts[i]`` to ``starts[i + 1]`` as float32."""

    futures: list
    starts: np.ndarray
    n_features: int

    @property
    def n_items(self) -> int:
        """Rows over all chunks."""
        return int(self.starts[-1])

    def sample(self, client, size: int, seed: int = 0) -> np.ndarray:
        """``size`` rows drawn without replacement, brought to the client (for the
        coarse clusters)."""
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(self.n_items, min(size, self.n_items), replace=False))
        return rows_of(self.futures, self.starts, picked, client)


def rows_of(lists: list, starts: np.ndarray, items: np.ndarray, client) -> np.ndarray:
    """The rows ``items`` (pool indices, ascending) of per-chunk arrays, on the client."""
    chunk = np.searchsorted(starts, items, side="right") - 1
    parts = [client.submit(np.take, future, items[chunk == i] - starts[i], axis=0)
             for i, future in enumerate(lists) if np.any(chunk == i)]
    return np.concatenate(client.gather(parts))


def as_float32(rows) -> np.ndarray:
    """Rows as a C-contiguous float32 array (what faiss reads)."""
    return np.ascontiguousarray(rows, dtype=np.float32)


def row_chunks(client, X, chunk_rows: int) -> RowChunks:
    """Put the features ``X`` on the workers in chunks of ``chunk_rows``: a dask array's
    chunks are read by the workers (never gathered), a numpy array's rows are sent.
    Columns are never split."""
    if hasattr(X, "to_delayed"):  # a dask array, e.g. a Zarr store read lazily
        X = X.rechunk({0: chunk_rows, 1: -1})
        blocks = [X.blocks[i] for i in range(X.numblocks[0])]
        futures = [client.submit(as_float32, client.compute(block)) for block in blocks]
        sizes = X.chunks[0]
    else:
        X = np.asarray(X)
        bounds = list(range(0, len(X), chunk_rows)) + [len(X)]
        futures = send(client, [as_float32(X[a:b]) for a, b in zip(bounds, bounds[1:])])
        sizes = np.diff(bounds)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return RowChunks(list(futures), starts, int(X.shape[1]))
