"""Block products with halo exchange.

Block ``b`` holds its rows of a graph matrix whose columns are its own items followed by its
halo (:func:`activeprop.distributed.knn.block_affinity`). To multiply, it needs its own rows
of the vector and, from each other block, only the rows its halo names: one small ``take``
task per pair of blocks that share an edge, run where the rows live. Nothing else moves.
"""

from __future__ import annotations

import numpy as np

from .cluster import send


def stacked(own: np.ndarray, *parts: np.ndarray) -> np.ndarray:
    """A block's rows followed by its halo's, the column order of its matrix."""
    return np.concatenate([own, *parts]) if parts else own


def multiply(matrix, own: np.ndarray, *parts: np.ndarray) -> np.ndarray:
    """``matrix @ [own; halo]`` for one block."""
    return np.asarray(matrix @ stacked(own, *parts))


class HaloExchange:
    """Which rows each block needs from each other block, as futures kept on the cluster.

    Parameters
    ----------
    client : distributed.Client
    layout : BlockLayout
    halos : list of ndarray
        Block ``b``'s halo, as pool indices ordered by block and then by index.
    """

    def __init__(self, client, layout, halos: list[np.ndarray]):
        self.client = client
        self.sizes = [len(halo) for halo in halos]
        self.needs = []
        for halo in halos:
            sources = layout.block_of[halo]
            pairs = []
            for c in np.unique(sources):
                positions = layout.position[halo[sources == c]]
                pairs.append((int(c), send(client, positions)))
            self.needs.append(pairs)

    @property
    def halo_rows(self) -> int:
        """Rows received per product over all blocks (each times the vector's columns)."""
        return int(sum(self.sizes))

    def parts(self, vectors: list, block: int, take=None) -> list:
        """Futures of the halo rows of ``block`` taken from the other blocks' ``vectors``
        (by ``take(vector, positions)`` when the rows are to be found inside them)."""
        if take is None:
            return [self.client.submit(np.take, vectors[c], positions, axis=0)
                    for c, positions in self.needs[block]]
        return [self.client.submit(take, vectors[c], positions)
                for c, positions in self.needs[block]]

    def map(self, function, matrices: list, vectors: list, *per_block: list) -> list:
        """``function(matrix_b, *extras_b, vector_b, *halo_parts_b)`` on every block, as
        futures; ``per_block`` are further lists with one entry per block."""
        return [self.client.submit(function, matrix, *(extra[b] for extra in per_block),
                                   vectors[b], *self.parts(vectors, b))
                for b, matrix in enumerate(matrices)]
