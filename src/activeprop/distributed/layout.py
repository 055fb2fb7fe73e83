"""Which row block each item of the pool belongs to.

Blocks are cut from the pool ordered by coarse clusters (k-means centroids of a sample,
themselves ordered along their leading principal axis), so that most of an item's
neighbours sit in its own block and the rows a block needs from the others (its halo)
stay few. Items keep their pool index everywhere; only their grouping changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Coarse clusters per block, and training points per cluster (faiss' own advice is 39-256).
CLUSTERS_PER_BLOCK, SAMPLE_PER_CLUSTER = 16, 64


@dataclass
class BlockLayout:
    """``members[b]``: the pool indices of block ``b`` in the order of its rows;
    ``block_of[i]`` and ``position[i]``: item ``i``'s block and its place in that block's
    rows."""

    members: list[np.ndarray]
    block_of: np.ndarray
    position: np.ndarray

    @property
    def n_blocks(self) -> int:
        """How many row blocks the pool is cut into."""
        return len(self.members)

    @classmethod
    def from_groups(cls, group: np.ndarray, n_blocks: int) -> "BlockLayout":
        """Items ordered by ``group`` (ties by index) and cut into ``n_blocks`` of equal
        size."""
        order = np.argsort(group, kind="stable")
        return cls.of_members([np.sort(part) for part in np.array_split(order, n_blocks)])

    @classmethod
    def of_members(cls, members: list[np.ndarray]) -> "BlockLayout":
        """The layout whose block ``b`` holds ``members[b]``, in that order."""
        n = sum(len(rows) for rows in members)
        block_of = np.empty(n, dtype=np.int32)
        position = np.empty(n, dtype=np.int64)
        for b, rows in enumerate(members):
            block_of[rows] = b
            position[rows] = np.arange(len(rows))
        return cls(members, block_of, position)

    def reordered(self, orders: list[np.ndarray]) -> "BlockLayout":
        """The same blocks, block ``b``'s rows taken in ``orders[b]`` (positions in it)."""
        return self.of_members([rows[order] for rows, order in zip(self.members, orders)])


def coarse_centroids(sample: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """k-means centroids of ``sample`` (faiss), ordered along their leading principal axis
    so that consecutive centroids, and the blocks cut from them, are near one another."""
    import faiss

    data = np.ascontiguousarray(sample, dtype=np.float32)
    n_clusters = max(1, min(n_clusters, len(data) // 2))
    # (min_points_per_centroid=1: faiss otherwise prints a WARNING on a small pool's
    # stderr, with the same centroids)
    kmeans = faiss.Kmeans(data.shape[1], n_clusters, niter=10, seed=seed, verbose=False,
                          min_points_per_centroid=1)
    kmeans.train(data)
    centroids = kmeans.centroids
    centred = centroids - centroids.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0] if len(centroids) > 1 \
        else np.zeros(centroids.shape[1])
    return np.ascontiguousarray(centroids[np.argsort(centred @ axis, kind="stable")])


def nearest_centroid(chunk, centroids: np.ndarray) -> np.ndarray:
    """The index of each row's nearest centroid, for a chunk's rows
    (:func:`activeprop.distributed.chunks.rows_in`: a task run on the worker that holds
    them, or that reads them)."""
    import faiss

    from .chunks import rows_in

    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(centroids)
    _, found = index.search(np.ascontiguousarray(rows_in(chunk), dtype=np.float32), 1)
    return found[:, 0].astype(np.int32)
