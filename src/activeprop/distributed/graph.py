"""A pool's kNN graph on a Dask cluster, as row blocks with their halos."""

from __future__ import annotations

import time
from operator import getitem

import numpy as np
from scipy import sparse

from ..graph import ThreadedMatrix, degree_roots, without_diagonal
from ..row_steps import row_steps
from .chunks import RowChunks
from .halo import HaloExchange, stacked
from .cluster import send, workers
from .knn import (SEARCHES, block_affinity, edges_into, locality_order, measured_recall,
                  neighbour_lists)
from .layout import (CLUSTERS_PER_BLOCK, SAMPLE_PER_CLUSTER, BlockLayout,
                     coarse_centroids, nearest_centroid)


def own_diagonal(matrix) -> np.ndarray:
    """The entries of a block's rows on its own items' columns."""
    return matrix[:, :matrix.shape[0]].diagonal()


def row_sums(matrix) -> np.ndarray:
    """A block's degrees: the sums of its rows."""
    return np.ravel(matrix.sum(axis=1))


def normalized_off_diagonal(matrix, own: np.ndarray, *parts: np.ndarray):
    """``W_ij / sqrt(d_i d_j)`` off the diagonal, zero on it: the block's rows of
    ``-laplacian(W, normed=True)`` with the diagonal dropped (scikit-learn's spreading
    operator; ``own`` and ``parts`` are the off-diagonal degrees of its rows and halo)."""
    scale = degree_roots(stacked(own, *parts))
    result = without_diagonal(matrix)
    # Scaled in place, as ``diags(1 / scale) @ result @ diags(1 / scale)`` would give them
    # (the same bits): those products made two more copies of the block, and three copies
    # were the lone worker's peak while its graph was built (1,390 MB at 1,000,000 items).
    _scale_entries(result, 1.0 / scale[:matrix.shape[0]], 1.0 / scale)
    return result


# Rows a step over a block's entries takes at a time (scaling them, passing labels along
# them): what those rows need is the only temporary array (numpy, not a compiled loop:
# importing numba costs a worker 110 MB, and several blocks do without it).
STEP_ROWS = 65536


def _scale_entries(matrix, row_scale: np.ndarray, column_scale: np.ndarray) -> None:
    """Each entry of a CSR ``matrix`` times its row's ``row_scale`` and then its column's
    ``column_scale``, in place."""
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    for rows in row_steps(matrix.shape[0], STEP_ROWS):
        start, stop = rows.start, rows.stop
        entries = slice(indptr[start], indptr[stop])
        by_row = np.repeat(row_scale[start:stop], np.diff(indptr[start:stop + 1]))
        data[entries] = by_row * data[entries] * column_scale[indices[entries]]


def _own_then_halo(matrix, own: np.ndarray, *parts: np.ndarray) -> np.ndarray:
    """A block's vector followed by its halo's rows of it (``matrix`` places the task)."""
    return np.concatenate([own, *parts])


def smallest_neighbour(matrix, own: np.ndarray, *parts: np.ndarray) -> np.ndarray:
    """Each row's smallest label among itself and its neighbours (one step of finding the
    connected components)."""
    labels = stacked(own, *parts)
    indptr, indices = matrix.indptr, matrix.indices
    found = own.copy()
    # In blocks of rows: the neighbours' labels of every row at once were 8 B an entry
    # (450 MB at 4,000,000 items on a lone worker, on top of its matrices).
    for rows in row_steps(matrix.shape[0], STEP_ROWS):
        start, stop = rows.start, rows.stop
        neighbours = labels[indices[indptr[start]:indptr[stop]]]
        if not len(neighbours):
            continue
        # A row without entries keeps its own label; reduceat would give it the next
        # row's first entry (and refuses an offset at the end, hence the clip).
        offsets = np.minimum(indptr[start:stop] - indptr[start], len(neighbours) - 1)
        smallest = np.minimum.reduceat(neighbours, offsets)
        block = found[start:stop]
        np.minimum(block, smallest, out=block, where=np.diff(indptr[start:stop + 1]) > 0)
    return found


def changed(old: np.ndarray, new: np.ndarray) -> bool:
    """Whether a block's vector moved."""
    return not np.array_equal(old, new)


class ClusterGraph:
    """The symmetrised kNN connectivity graph of a pool, held by the workers in row blocks.

    Attributes
    ----------
    layout : BlockLayout
    affinity : list of futures, or None
        Each block's rows of ``(W + W^T) / 2`` (own columns, then halo); None unless
        ``keeps_affinity`` (spreading reads the normalised operator alone: one matrix,
        not two, on the workers).
    spreading : list of futures, or None
        The same rows of the normalised spreading operator; None unless
        ``keeps_spreading`` (Poisson learning on several blocks reads the affinity alone).
    affinity_products, spreading_products : list of futures, or None
        The same blocks as :class:`activeprop.graph.ThreadedMatrix` (sharing their
        entries): products on all of a worker's threads, for the solvers and the fill
        (None where the matrix is not kept).
    degrees, self_loops : list of futures, or None
        Row sums and diagonal entries of the affinity (None unless ``keeps_affinity``).
    roots : list of futures
        The square roots of the degrees off the diagonal, which the spreading operator
        is normalised by.
    column_roots : list of futures, or None
        Each block's roots of its own items followed by its halo's: the spreading
        operator's columns times them are, row by row, proportional to the affinity's
        (what the fill weighs neighbours by). None unless ``keeps_spreading``.
    halos : list of ndarray
        Each block's halo (pool indices; the client keeps them, as many as the halo rows).
    exchange : HaloExchange
    components : list of futures
        Each item's connected component, named by its smallest pool index.
    members : list of futures
        Each block's pool indices.
    chunks : RowChunks
        The features the graph was built from, for the few rows a query reads
        (:meth:`rows`): read from the store again when there is one, else kept on the
        workers.
    search : {"flat", "hnsw"}
        How neighbours were found: exact, or HNSW per chunk (``recall`` then measured on a
        sample, as on one machine).
    build_seconds : float
    """

    def __init__(self, client, chunks: RowChunks, n_neighbors: int, n_blocks: int,
                 seed: int = 0, search: str = "auto", keeps_affinity: bool = True,
                 keeps_spreading: bool = True):
        assert keeps_affinity or keeps_spreading, "a graph that keeps no matrix"
        start = time.perf_counter()
        self.client, self.n_items, self.n_neighbors = client, chunks.n_items, n_neighbors
        self.keeps_affinity, self.keeps_spreading = keeps_affinity, keeps_spreading
        self.chunks = chunks
        self.search = _search_kind(search, chunks)
        self.recall = None
        self.layout = _layout(client, chunks, n_blocks, seed)
        self._build_blocks(chunks)
        self.build_seconds = time.perf_counter() - start

    @property
    def n_blocks(self) -> int:
        """Row blocks the graph is held in."""
        return self.layout.n_blocks

    def _build_blocks(self, chunks: RowChunks) -> None:
        client, layout = self.client, self.layout
        lists = neighbour_lists(client, chunks, self.n_neighbors, self.search)
        if self.search == "hnsw":
            self.recall = measured_recall(client, chunks, lists, self.n_neighbors)
        block_of, position = send(client, [layout.block_of, layout.position])
        edges = [[client.submit(edges_into, neighbours, int(chunks.starts[i]), block_of, b)
                  for i, neighbours in enumerate(lists)] for b in range(layout.n_blocks)]
        # Each step's inputs are let go as soon as the next step's tasks hold them: Dask
        # drops them once those have run. Held to the end of this method, the neighbour
        # lists and the edges (80 and 160 B an item) were still on the workers while the
        # blocks' matrices were built on top of them.
        del lists
        # each block's rows in a locality order of its own before its matrices are built
        layout = self.layout = layout.reordered(client.gather([
            client.submit(locality_order, b, len(members), block_of, position, *parts)
            for b, (members, parts) in enumerate(zip(layout.members, edges))]))
        position = send(client, layout.position)
        addresses = list(workers(client))
        # each block's items sent to its worker as a task of their own (carried in the
        # block's task, they were 8 B an item through the scheduler, and Dask's warning)
        self.members = [send(client, members, addresses[b % len(addresses)])
                        for b, members in enumerate(layout.members)]
        built = [client.submit(block_affinity, b, members, block_of, position, *parts,
                               workers=[addresses[b % len(addresses)]],
                               allow_other_workers=True)
                 for b, (members, parts) in enumerate(zip(self.members, edges))]
        del edges
        self.affinity = [client.submit(getitem, block, 0) for block in built]
        self.halos = client.gather([client.submit(getitem, block, 1) for block in built])
        del built  # (its matrices are the affinity's: held there, or let go below)
        self.exchange = HaloExchange(client, layout, self.halos)
        self.degrees = [client.submit(row_sums, matrix) for matrix in self.affinity]
        self.self_loops = [client.submit(own_diagonal, matrix) for matrix in self.affinity]
        off_diagonal = [client.submit(np.subtract, d, s)
                        for d, s in zip(self.degrees, self.self_loops)]
        self.roots = [client.submit(degree_roots, d) for d in off_diagonal]
        self.spreading = self.spreading_products = self.column_roots = None
        if self.keeps_spreading:
            self.spreading = self.exchange.map(normalized_off_diagonal, self.affinity,
                                               off_diagonal)
            self.spreading_products = [client.submit(ThreadedMatrix, m)
                                       for m in self.spreading]
            self.column_roots = self.exchange.map(_own_then_halo, self.spreading, self.roots)
        del off_diagonal
        from distributed import wait

        if not self.keeps_affinity:
            # Let go once what is made from it is made, before the components are found:
            # they follow the spreading operator's edges, the affinity's off its diagonal
            # (a connectivity graph's entries are never zero). Held while they were found,
            # both matrices were a lone worker's peak at 4,000,000 items (62 MiB over its
            # share of the pool plus 1 GiB).
            wait([*self.spreading_products, *self.column_roots, *self.roots])
            self.affinity = self.degrees = self.self_loops = None
            self.affinity_products = None
            self.components = self._components(self.spreading)
            wait(self.components)
            return
        self.components = self._components(self.affinity)
        self.affinity_products = [client.submit(ThreadedMatrix, m) for m in self.affinity]
        wait([*(self.spreading_products or ()), *(self.column_roots or ()),
              *self.affinity_products, *self.components])

    def _components(self, edges: list) -> list:
        """Connected components by passing the smallest pool index along the edges of the
        blocks ``edges`` until nothing changes (as many exchanges as the graph's longest
        shortest path)."""
        labels = send(self.client, [members.astype(np.int64)
                                     for members in self.layout.members])
        while True:
            new = self.exchange.map(smallest_neighbour, edges, labels)
            moved = self.client.gather([self.client.submit(changed, a, b)
                                        for a, b in zip(labels, new)])
            labels = new
            if not any(moved):
                return labels

    def rows(self, items: np.ndarray) -> np.ndarray:
        """The features of ``items`` (pool indices), brought to the client in that order."""
        items = np.asarray(items, dtype=np.int64)
        order = np.argsort(items, kind="stable")
        found = np.empty((len(items), self.chunks.n_features), dtype=np.float32)
        if len(items):
            found[order] = self.chunks.rows(self.client, items[order])
        return found

    def to_blocks(self, rows: np.ndarray) -> list:
        """A pool-ordered array (on the client) sent to the workers as row blocks, each to
        the worker that holds its block of the graph. (Sent anywhere, a block of labels
        drew the tasks made from it to another worker than its graph's, and those moved
        the solver's blocks after them: a block's whole state, 24-72 MB a round at
        300,000 items on two workers.)"""
        placed = self.affinity if self.keeps_affinity else self.spreading  # (built there)
        holders = self.client.who_has(placed)
        return [send(self.client, block_rows, next(iter(holders.get(block.key, ())), None))
                for block_rows, block in zip(self.blocks_of(rows), placed)]

    def blocks_of(self, rows: np.ndarray) -> list[np.ndarray]:
        """A pool-ordered array cut into its row blocks, on the client: for a task that
        reads its block alone and carries it as an argument (the task goes where the rest
        of what it reads is; no look-up of the holders, and no task of its own)."""
        return [rows[members] for members in self.layout.members]

    def from_blocks(self, blocks: list) -> np.ndarray:
        """Row blocks gathered to the client, in pool order."""
        values = self.client.gather(blocks)
        out = np.empty((self.n_items, *values[0].shape[1:]), dtype=values[0].dtype)
        for members, value in zip(self.layout.members, values):
            out[members] = value
        return out

    def describe(self) -> dict:
        """What a run reports about its graph."""
        return {"kernel": "knn", "n_neighbors": self.n_neighbors,
                "backend": f"cluster-{self.search}", "recall": self.recall,
                "n_items": self.n_items, "blocks": self.n_blocks,
                "halo_rows": self.exchange.halo_rows,
                "build_seconds": round(self.build_seconds, 3)}


def _search_kind(search: str, chunks: RowChunks) -> str:
    """``flat`` or ``hnsw`` as asked, or for ``auto`` whichever costs less on this machine
    for this many chunks (:func:`activeprop.calibration.search_backend`)."""
    if search == "auto":
        from ..calibration import machine_costs, search_backend

        return search_backend(chunks.n_items, chunks.n_features, machine_costs(),
                              n_indexes=chunks.n_chunks)
    if search not in SEARCHES:
        from ..errors import UserError

        raise UserError(f"unknown search {search!r}; allowed: auto, {', '.join(SEARCHES)}")
    return search


def _layout(client, chunks: RowChunks, n_blocks: int, seed: int) -> BlockLayout:
    """Blocks cut from the pool ordered by coarse clusters of a sample of it."""
    n_clusters = CLUSTERS_PER_BLOCK * n_blocks
    centroids = coarse_centroids(chunks.sample(client, SAMPLE_PER_CLUSTER * n_clusters, seed),
                                 n_clusters, seed)
    groups = client.gather([client.submit(nearest_centroid, chunk, centroids)
                            for chunk in chunks.parts()])
    return BlockLayout.from_groups(np.concatenate(groups), n_blocks)
