"""Typical items of a pool held by the workers: the first items to offer a person before
any label, found without bringing the features to the client.

As on one machine (:func:`activeprop.strategies.initial_items` with ``typical``), the item
nearest the centre of each of k k-means clusters, each centre taking the nearest item no
earlier centre took. The centres are k-means centroids of a sample (faiss); each chunk
sends, for every centre, its k nearest rows, enough for the client to resolve clashes.
"""

from __future__ import annotations

import numpy as np

from .chunks import RowChunks, as_float32, rows_in
from .layout import SAMPLE_PER_CLUSTER, coarse_centroids


def nearest_rows(chunk, start: int, centroids: np.ndarray, k: int):
    """For each centroid, the ``k`` rows of this chunk
    (:func:`activeprop.distributed.chunks.rows_in`) nearest to it, as (squared distances,
    pool indices), each of shape (n_centroids, k)."""
    import faiss

    rows = rows_in(chunk)

    index = faiss.IndexFlatL2(rows.shape[1])
    index.add(as_float32(rows))
    distances, found = index.search(as_float32(centroids), min(k, len(rows)))
    return distances, found.astype(np.int64) + start


def typical_items(client, chunks: RowChunks, k: int, seed: int = 0) -> np.ndarray:
    """The ``k`` typical items of the pool in ``chunks`` (pool indices, one per centre)."""
    k = min(k, chunks.n_items)
    sample = chunks.sample(client, SAMPLE_PER_CLUSTER * k, seed)
    centroids = coarse_centroids(sample, k, seed)
    found = client.gather([client.submit(nearest_rows, part, int(start), centroids,
                                         len(centroids))
                           for part, start in zip(chunks.parts(), chunks.starts)])
    distances = np.concatenate([d for d, _ in found], axis=1)
    ids = np.concatenate([i for _, i in found], axis=1)
    chosen: list[int] = []
    for centre in range(len(centroids)):
        order = np.lexsort((ids[centre], distances[centre]))  # nearest; ties: lower index
        chosen.append(next(int(i) for i in ids[centre][order] if int(i) not in chosen))
    return np.array(chosen, dtype=np.int64)
