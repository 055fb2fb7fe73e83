"""The kNN graph of a pool held in row chunks, built and kept on the workers.

Each chunk's rows are searched against every chunk with an exact faiss index (one task per
pair), the partial top-k lists are merged per chunk, and the edges are sent to the row
blocks of :class:`activeprop.distributed.layout.BlockLayout`: block ``b`` receives the
edges that start in it and, transposed, those that end in it, which is all it needs for
its rows of ``(W + W^T) / 2``. The graph is never gathered on one machine.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


def search_pair(queries: np.ndarray, database: np.ndarray, offset: int, k: int):
    """The ``k`` nearest rows of ``database`` (pool indices from ``offset``) to each query,
    by exact L2 search; fewer than ``k`` columns when the database is smaller."""
    import faiss

    index = faiss.IndexFlatL2(database.shape[1])
    index.add(database)
    squared, found = index.search(queries, min(k, len(database)))
    return squared, found.astype(np.int64) + offset


def merge_candidates(k: int, *pairs) -> np.ndarray:
    """The ``k`` nearest of the candidates found in every chunk (ties to the lower index),
    as pool indices, one row per query."""
    squared = np.hstack([pair[0] for pair in pairs])
    found = np.hstack([pair[1] for pair in pairs])
    order = np.lexsort((found, squared), axis=-1)[:, :k]
    return np.take_along_axis(found, order, axis=1)


def edges_into(neighbours: np.ndarray, start: int, block_of: np.ndarray, block: int):
    """The edges of one chunk's neighbour lists (rows from ``start``) that ``block``'s rows
    of the symmetrised graph need: those leaving its items, and those entering them, turned
    round. Returns (rows, columns) in pool indices, each edge once per direction."""
    k = neighbours.shape[1]
    rows = np.repeat(np.arange(start, start + len(neighbours), dtype=np.int64), k)
    columns = neighbours.ravel()
    leaving = block_of[rows] == block
    entering = block_of[columns] == block
    return (np.concatenate([rows[leaving], columns[entering]]),
            np.concatenate([columns[leaving], rows[entering]]))


def block_affinity(block: int, members: np.ndarray, block_of: np.ndarray,
                   position: np.ndarray, *edge_parts):
    """``block``'s rows of the symmetrised connectivity ``(W + W^T) / 2``.

    Columns are the block's own items first (in ``members`` order), then its halo: the
    other blocks' items its rows reach, ordered by block and then by index. Returns the
    CSR matrix and the halo's pool indices."""
    rows = np.concatenate([part[0] for part in edge_parts])
    columns = np.concatenate([part[1] for part in edge_parts])
    inside = block_of[columns] == block
    outside = np.unique(columns[~inside])  # ascending
    by_block = np.lexsort((outside, block_of[outside]))
    halo = outside[by_block]
    place_in_halo = np.empty(len(halo), dtype=np.int64)
    place_in_halo[by_block] = np.arange(len(halo))
    local_column = np.empty(len(columns), dtype=np.int64)
    local_column[inside] = position[columns[inside]]
    local_column[~inside] = len(members) + place_in_halo[
        np.searchsorted(outside, columns[~inside])]
    shape = (len(members), len(members) + len(halo))
    matrix = sparse.csr_matrix((np.full(len(rows), 0.5), (position[rows], local_column)),
                               shape=shape)
    matrix.sum_duplicates()
    return matrix, halo


def halo_of(built) -> np.ndarray:
    """The halo's pool indices from :func:`block_affinity`'s result."""
    return built[1]


def matrix_of(built):
    """The matrix from :func:`block_affinity`'s result."""
    return built[0]


def neighbour_lists(client, chunks, k: int) -> list:
    """Futures of each chunk's ``k`` nearest neighbours (pool indices), exact."""
    merged = []
    for query in chunks.futures:
        pairs = [client.submit(search_pair, query, database, int(chunks.starts[j]), k)
                 for j, database in enumerate(chunks.futures)]
        merged.append(client.submit(merge_candidates, k, *pairs))
    return merged
