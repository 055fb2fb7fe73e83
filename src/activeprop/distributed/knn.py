"""The kNN graph of a pool held in row chunks, built and kept on the workers.

Each chunk's rows are searched against every chunk with a faiss index, exact or HNSW (one
task per indexed chunk, which every chunk searches), the partial top-k lists are merged per
chunk, and the edges are sent to the row blocks of
:class:`activeprop.distributed.layout.BlockLayout`: block ``b`` receives the edges that
start in it and, transposed, those that end in it, which is all it needs for its rows of
``(W + W^T) / 2``. The graph is never gathered on one machine.
"""

from __future__ import annotations

from operator import getitem

# (loaded with this module: on_the_workers_threads sets the threads of the libraries
# loaded when it starts, faiss's OpenMP among them)
import faiss
import numpy as np

from ..graph import hnsw_index, hnsw_search_depth
from ..row_steps import row_steps
from .chunks import pieces_of, rows_in, rows_of
from .cluster import workers
from .edge_matrix import edge_matrix, slices_of
from .worker_threads import on_the_workers_threads


SEARCHES = ("flat", "hnsw")

def chunk_index(chunk, kind: str):
    """What a chunk (:func:`activeprop.distributed.chunks.rows_in`'s) is searched through:
    its rows (exact search), or an HNSW index over them, built once per chunk and kept by
    the worker that built it (faiss indexes pickle, so Dask can move one when a search runs
    elsewhere)."""
    database = rows_in(chunk)
    if kind == "flat":
        return database
    index = hnsw_index(database.shape[1])  # as the single-process graph's
    with on_the_workers_threads():
        index.add(database)
    return index


# Query rows searched at a time: one piece of a stored chunk is read and held (32 MB at
# 64 features) rather than the chunk (256 MB at 1,000,000 x 64), and faiss's 64-bit
# answer is a piece's, not the chunk's.
QUERY_ROWS = 131_072


def search_pair(queries, index, offset: int, k: int, kind: str = "flat"):
    """The ``k`` nearest rows of one chunk (pool indices from ``offset``) to each query
    (an array, or a chunk as :func:`activeprop.distributed.chunks.rows_in` takes; None
    for the chunk's own rows), through :func:`chunk_index`'s result; fewer than ``k``
    columns when the chunk is smaller. Returns squared distances and pool indices."""
    # The queries are read inside the faiss call's lock, a piece at a time: read before
    # it, each of a worker's threads held a chunk of queries (256 MB at 4,000,000 x 64)
    # while it waited for the other's search.
    with on_the_workers_threads():
        searcher = _searcher(index, k, kind)
        # a chunk against its own index: the queries are the index's vectors (no copy;
        # read again from the store they were 256 MB more, a lone worker's highest point
        # at 1,000,000 x 64, whose pool is one chunk: 1,352 MB against 1,268 allowed)
        rows = stored_vectors(searcher) if queries is None else queries
        n_found, n_indexed = min(k, searcher.ntotal), searcher.ntotal
        squared = np.empty((len(rows), n_found), dtype=np.float32)
        # In 32 bits while the pool's indices fit (faiss answers 64): every chunk's
        # candidates so far are kept through the search, 12 B a candidate in 64 bits (480
        # MB at 4,000,000 items and k = 10), 8 in 32.
        found = np.empty_like(squared, dtype=index_dtype(offset + n_indexed))
        start = 0
        for piece in pieces_of(rows, QUERY_ROWS):
            answer = slice(start, start + len(piece))
            # (the distances written in place; the indices come as 64 bits, a piece's)
            _, found[answer] = searcher.search(piece, n_found, D=squared[answer])
            _shift(found[answer], offset)
            start = answer.stop
    return squared, found


def _shift(found: np.ndarray, offset: int) -> None:
    """A chunk's row numbers, in place, as pool indices (HNSW's -1, nothing found, kept)."""
    np.add(found, offset, out=found, where=found >= 0)  # (found[mask] += is one more copy)


def searched_through(chunk, queries: list, own: int, offset: int, k: int, kind: str) -> list:
    """Each query chunk's ``k`` nearest rows of ``chunk`` (pool indices from ``offset``),
    as :func:`search_pair`'s answers in the order of ``queries`` (``own``: the chunk's
    own place among them).

    The chunk's index is made, searched by every query chunk and let go within this one
    task, so it is never a value Dask holds. As the result of a task of its own, Dask
    sized an index by its Python wrapper (56 bytes for 512 MB of HNSW graph and vectors),
    and its work stealing sent a search to the other worker with the index: with two
    workers at 4,000,000 items each held two indexes and their serialised copies, 3.1 GB
    against a target of 1,512 MB.

    A stored pool's query chunks are read here a piece at a time; a pool the client sent
    is held by the workers, and its chunks come to this task's worker as its arguments."""
    index = chunk_index(chunk, kind)
    return [search_pair(None if i == own else query, index, offset, k, kind)
            for i, query in enumerate(queries)]


def _searcher(index, k: int, kind: str):
    """The faiss index that searches a chunk (:func:`chunk_index`'s result): a flat index
    over its rows, or its HNSW index set to search deep enough for ``k``."""
    if kind == "flat":
        database = rows_in(index)  # (a chunk's rows, as chunk_index gives them, or to read)
        searcher = faiss.IndexFlatL2(database.shape[1])
        searcher.add(database)
        return searcher
    index.hnsw.efSearch = hnsw_search_depth(k)
    return index


def stored_vectors(searcher) -> np.ndarray:
    """The vectors a faiss flat or HNSW index holds, as an array over its own memory (not
    a copy: valid while the index is)."""
    flat = searcher if isinstance(searcher, faiss.IndexFlat) else \
        faiss.downcast_index(searcher.storage)
    n, d = searcher.ntotal, searcher.d
    return faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d)


# Rows of candidates merged at a time: the merge's arrays (the candidates side by side,
# their order) are that many rows, not the chunk's (several times its answer, at once).
MERGE_ROWS = 65_536


def merge_candidates(k: int, *pairs) -> np.ndarray:
    """The ``k`` nearest of the candidates found in every chunk (ties to the lower index),
    as pool indices, one row per query."""
    return _nearest(k, pairs, with_squared=False)[1]


def nearest_candidates(k: int, *pairs) -> tuple[np.ndarray, np.ndarray]:
    """:func:`merge_candidates` with their squared distances: a pair like ``pairs``' own,
    so that merging it with more candidates later gives what merging all at once would."""
    return _nearest(k, pairs, with_squared=True)


def _nearest(k: int, pairs, with_squared: bool):
    """(squared distances or None, pool indices) of each query's ``k`` nearest candidates,
    nearest first, ties to the lower index, HNSW's -1 (nothing found) last; merged a few
    rows at a time."""
    n_queries, n_found = len(pairs[0][1]), sum(pair[1].shape[1] for pair in pairs)
    shape = (n_queries, min(k, n_found))
    merged = np.empty(shape, dtype=np.result_type(*(pair[1] for pair in pairs)))
    distances = np.empty(shape, dtype=np.float32) if with_squared else None
    for rows in row_steps(n_queries, MERGE_ROWS):
        squared = np.hstack([pair[0][rows] for pair in pairs])
        found = np.hstack([pair[1][rows] for pair in pairs])
        squared = np.where(found >= 0, squared, np.inf)  # HNSW's -1: nothing found
        order = np.lexsort((found, squared), axis=-1)[:, :k]
        merged[rows] = np.take_along_axis(found, order, axis=1)
        if with_squared:
            distances[rows] = np.take_along_axis(squared, order, axis=1)
    return distances, merged


def edges_into(neighbours: np.ndarray, start: int, block_of: np.ndarray, block: int):
    """The edges of one chunk's neighbour lists (rows from ``start``) that ``block``'s rows
    of the symmetrised graph need: those leaving its items, and those entering them, turned
    round. Returns (rows, columns) in pool indices (32-bit while the pool allows: half the
    memory of the edges and of the matrices built from them), each edge once per
    direction."""
    dtype = index_dtype(len(block_of))
    k = neighbours.shape[1]
    rows = np.repeat(np.arange(start, start + len(neighbours), dtype=dtype), k)
    columns = neighbours.ravel().astype(dtype)
    leaving = block_of[rows] == block
    entering = block_of[columns] == block
    return (np.concatenate([rows[leaving], columns[entering]]),
            np.concatenate([columns[leaving], rows[entering]]))


def index_dtype(n_items: int) -> type:
    """The integer type that holds a pool's indices: 32 bits up to 2**31 items."""
    return np.int32 if n_items < 2**31 else np.int64


def _in_edge_type(position: np.ndarray, edge_parts) -> np.ndarray:
    """``position`` in the edges' integer type (the local rows and columns are made in it)."""
    return position.astype(edge_parts[0][0].dtype, copy=False)


def locality_order(block: int, n_members: int, block_of: np.ndarray, position: np.ndarray,
                   *edge_parts) -> np.ndarray:
    """An order of ``block``'s rows that keeps neighbours near one another (reverse
    Cuthill-McKee on its edges between its own items, as the single machine orders its
    graph): positions in the block. In the order of the pool's indices a block's products
    read their vectors' rows at random: twice as slow (one block of 200,000 items: 110
    against 50 ms a product of ten columns)."""
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    position = _in_edge_type(position, edge_parts)

    def local(rows, columns, with_columns):
        inside = block_of[columns] == block
        if not inside.all():  # (a lone block's edges all are)
            rows, columns = rows[inside], columns[inside]
        return position[rows], position[columns] if with_columns else None

    edges = edge_matrix((n_members, n_members), slices_of(edge_parts, local), position.dtype)
    return np.asarray(reverse_cuthill_mckee(edges, symmetric_mode=True), dtype=np.int64)


def block_affinity(block: int, members: np.ndarray, block_of: np.ndarray,
                   position: np.ndarray, *edge_parts):
    """``block``'s rows of the symmetrised connectivity ``(W + W^T) / 2``.

    Columns are the block's own items first (in ``members`` order), then its halo: the
    other blocks' items its rows reach, ordered by block and then by index. Returns the
    CSR matrix and the halo's pool indices."""
    position = _in_edge_type(position, edge_parts)
    outside = np.unique(np.concatenate(  # ascending
        [np.unique(columns[block_of[columns] != block]) for _, columns in edge_parts]))
    by_block = np.lexsort((outside, block_of[outside]))
    halo = outside[by_block]
    place_in_halo = np.empty(len(halo), dtype=position.dtype)
    place_in_halo[by_block] = np.arange(len(halo))

    def local(rows, columns, with_columns):  # (every edge here starts in the block)
        if not with_columns:
            return position[rows], None
        local_column = position[columns]  # right inside; the halo's columns are set here
        outward = block_of[columns] != block
        local_column[outward] = len(members) + place_in_halo[
            np.searchsorted(outside, columns[outward])]
        return position[rows], local_column

    matrix = edge_matrix((len(members), len(members) + len(halo)),
                         slices_of(edge_parts, local), position.dtype, kept=True)
    # each direction of an edge adds a half (counted in 8 bits while the duplicates are
    # summed: the float64 entries are made only for the pairs left)
    matrix.data = matrix.data * 0.5
    return matrix, halo


def neighbour_lists(client, chunks, k: int, kind: str = "flat") -> list:
    """Futures of each chunk's ``k`` nearest neighbours (pool indices): every chunk
    searched against every chunk, exactly (``flat``) or through an HNSW index per chunk.

    The indexes are made and searched (:func:`searched_through`) in waves of as many as
    there are workers, each wave's let go before the next is made, and every chunk's
    candidates are merged with the nearest so far after each wave. Made all at once,
    every chunk's index was held until the last search: at 4,000,000 items four HNSW
    indexes of 1,000,000 rows, 512 MB each (32 links an item), on a lone worker whose
    target was 2,001 MB."""
    from distributed import wait

    starts, parts = chunks.starts, chunks.parts()
    at_once = max(1, len(workers(client)))
    nearest = [None] * len(parts)
    for first in range(0, len(parts), at_once):
        wave = range(first, min(first + at_once, len(parts)))
        last = wave.stop == len(parts)
        answers = [client.submit(searched_through, parts[j], parts, j, int(starts[j]), k,
                                 kind) for j in wave]
        for i in range(len(parts)):
            pairs = [client.submit(getitem, answer, i) for answer in answers]
            so_far = [] if nearest[i] is None else [nearest[i]]
            nearest[i] = client.submit(merge_candidates if last else nearest_candidates,
                                       k, *so_far, *pairs)
        if not last:
            wait(nearest)  # the wave's searches ran: their answers go with the names below
        del answers, pairs
    return nearest


def measured_recall(client, chunks, lists: list, k: int, sample: int = 1000) -> float:
    """The fraction of true ``k`` nearest neighbours found, on a fixed sample of items:
    truth from exact search against every chunk, and a found neighbour as near as the
    true k-th one counts (ties), as :func:`activeprop.graph._measure_recall`."""
    items = np.sort(np.random.default_rng(0).choice(chunks.n_items,
                                                    min(sample, chunks.n_items), False))
    queries = chunks.rows(client, items)
    exact = client.gather(neighbour_lists_for(client, chunks, queries, k))
    found = rows_of(lists, chunks.starts, items, client)
    ids = np.unique(np.concatenate([exact.ravel(), found.ravel()]))
    vectors = chunks.rows(client, ids).astype(np.float64)

    def distances(neighbours):
        return np.linalg.norm(vectors[np.searchsorted(ids, neighbours)] - queries[:, None, :],
                              axis=2)

    kth = distances(exact).max(axis=1, keepdims=True)
    return float(np.mean(distances(found) <= kth * (1 + 1e-9)))


def neighbour_lists_for(client, chunks, queries: np.ndarray, k: int):
    """A future of the exact ``k`` nearest neighbours of ``queries`` in the whole pool."""
    pairs = [client.submit(search_pair, queries, chunk, int(chunks.starts[j]), k)
             for j, chunk in enumerate(chunks.parts())]
    return client.submit(merge_candidates, k, *pairs)
