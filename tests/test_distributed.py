"""The engine on a Dask cluster gives the single-process engine's graph, solutions, queries
and accuracies (issue 19): a LocalCluster of two worker processes, and real `dask scheduler`
and `dask worker` processes driven through the command line."""

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

pytest.importorskip("distributed")

from activeprop.datasets import load_pool  # noqa: E402
from activeprop.distributed.cluster import close, connect  # noqa: E402
from activeprop.distributed import lean, lone, steps  # noqa: E402
from activeprop.distributed.halo import multiply  # noqa: E402
from activeprop.distributed.model import ClusterGraphModel  # noqa: E402
from activeprop.errors import UserError  # noqa: E402
from activeprop.fill import fill_below_precision  # noqa: E402
from activeprop.graph import ThreadedMatrix, build_knn_graph  # noqa: E402
from activeprop.learner import ActiveLearner  # noqa: E402
from activeprop.models import make_model  # noqa: E402

POOL = "digits-aug:20000"


@pytest.fixture(scope="module")
def pool():
    return load_pool(POOL).shuffled(0)


@pytest.fixture(scope="module")
def spreading_on_cluster(client, pool):
    """Spreading on a graph built for it alone: the normalised operator, no affinity."""
    model = ClusterGraphModel("spreading", pool.X, client, n_neighbors=10, alpha=0.2,
                              max_iter=1000, rtol=1e-10)
    model.build_graph()
    return model


@pytest.fixture(scope="module")
def shared_graph(client, pool):
    """The pool's graph built for spreading and Poisson learning (as compare builds it)."""
    model = ClusterGraphModel("spreading", pool.X, client, n_neighbors=10, alpha=0.2,
                              max_iter=1000, rtol=1e-10)
    return model.build_graph(models=("poisson",))


def pool_order_matrix(graph, blocks: list) -> sparse.csr_matrix:
    """A graph held in row blocks (own columns, then halo) as one pool-ordered matrix."""
    rows, columns, values = [], [], []
    for members, halo, block in zip(graph.layout.members, graph.halos, blocks):
        coo = getattr(block, "matrix", block).tocoo()  # a ThreadedMatrix's, or the matrix
        rows.append(members[coo.row])
        columns.append(np.concatenate([members, halo])[coo.col])
        values.append(coo.data)
    n = graph.n_items
    return sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows),
                                                        np.concatenate(columns))), shape=(n, n))


def test_the_cluster_graph_is_the_single_process_graph(client, pool, shared_graph):
    graph = shared_graph
    single = build_knn_graph(pool.X, 10, backend="flat")
    back = np.argsort(single.order)  # the single-process operators are stored reordered
    for name, blocks in (("symmetric", graph.affinity),
                         ("symmetric-spreading", graph.spreading)):
        expected = single.operator(name).matrix[back][:, back]
        found = pool_order_matrix(graph, client.gather(blocks))
        assert (found != expected).nnz == 0 or abs(found - expected).max() < 1e-15, name
    # every block is a real share of the pool, and its halo is what its rows reach
    assert graph.n_blocks == 2
    assert sorted(np.concatenate(graph.layout.members).tolist()) == list(range(len(pool.X)))
    assert 0 < graph.exchange.halo_rows < len(pool.X)


def test_the_spreading_block_is_scaled_in_place_to_the_same_bits(monkeypatch):
    """The block's entries scaled in place equal the diagonal products they replace."""
    from activeprop.distributed import graph
    from activeprop.distributed.graph import normalized_off_diagonal

    import activeprop.graph

    monkeypatch.setattr(graph, "STEP_ROWS", 7)  # rows in several steps, the last short
    monkeypatch.setattr(activeprop.graph, "WITHOUT_DIAGONAL_ROWS", 7)
    rng = np.random.default_rng(0)
    n, halo = 400, 60
    matrix = sparse.random(n, n + halo, density=0.02, random_state=1, format="csr")
    matrix = sparse.csr_matrix(matrix + sparse.eye(n, n + halo))
    matrix.data = np.ceil(matrix.data * 4) / 2
    own = np.ravel(matrix.sum(axis=1)) - matrix[:, :n].diagonal()
    own[5] = 0.0  # an isolated row keeps its zeros
    part = rng.random(halo) * 3
    scale = 1.0 / np.where(np.concatenate([own, part]) == 0, 1.0,
                           np.sqrt(np.concatenate([own, part])))
    off = sparse.csr_matrix(matrix, copy=True)
    off.setdiag(0.0)
    off.eliminate_zeros()
    expected = sparse.csr_matrix(sparse.diags(scale[:n]) @ off @ sparse.diags(scale))
    found = normalized_off_diagonal(matrix, own, part)
    assert np.array_equal(found.indptr, expected.indptr)
    assert np.array_equal(found.indices, expected.indices)
    assert np.array_equal(found.data, expected.data)
    assert found.diagonal().sum() == 0.0 and matrix.diagonal().all()  # the input kept
    assert all(_held_bytes(a) == a.nbytes for a in (found.data, found.indices))


def test_passing_the_smallest_neighbour_finds_scipys_components(monkeypatch):
    """Rows in several steps, rows without entries (the last ones too) keep their label."""
    from scipy.sparse.csgraph import connected_components

    from activeprop.distributed import graph
    from activeprop.distributed.graph import smallest_neighbour

    monkeypatch.setattr(graph, "STEP_ROWS", 7)
    n = 300
    matrix = sparse.random(n, n, density=0.004, random_state=2, format="lil")
    matrix[:, n - 3:] = 0.0  # rows and columns without entries, the last ones among them
    matrix[n - 3:, :] = 0.0
    matrix = sparse.csr_matrix(matrix + matrix.T)
    matrix.eliminate_zeros()
    assert (np.diff(matrix.indptr) == 0).sum() >= 3
    labels = np.arange(n)
    while not np.array_equal(new := smallest_neighbour(matrix, labels), labels):
        labels = new
    _, expected = connected_components(matrix, directed=False)
    smallest_member = np.full(expected.max() + 1, n)
    np.minimum.at(smallest_member, expected, np.arange(n))
    np.testing.assert_array_equal(labels, smallest_member[expected])


@pytest.mark.parametrize("models", [(), ("poisson",)], ids=["spreading-alone", "shared"])
def test_the_cluster_graphs_components_are_one_machines(client, models):
    """Found on the spreading operator when the graph lets the affinity go (before they
    are found), and on the affinity when it keeps it."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(centre, 1, (size, 4))
                   for centre, size in ((0, 300), (100, 200), (-100, 100))])
    X = X[rng.permutation(600)]  # each component's items spread over both blocks
    model = ClusterGraphModel("spreading", X, client, n_neighbors=5, alpha=0.2,
                              max_iter=1000, rtol=1e-10)
    graph = model.build_graph(models=models)
    assert graph.keeps_affinity == bool(models) and graph.n_blocks == 2
    found = graph.from_blocks(graph.components)
    single_graph = build_knn_graph(X, 5, backend="flat")
    single = single_graph.components()[np.argsort(single_graph.order)]  # in pool order
    assert len(np.unique(found)) == 3
    for name in np.unique(found):  # the same groups, each named by its smallest index
        members = np.flatnonzero(found == name)
        assert members[0] == name
        assert np.array_equal(members, np.flatnonzero(single == single[name]))


def _held_bytes(array: np.ndarray) -> int:
    """The bytes of the memory ``array`` keeps alive (its own, or a larger array's)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array.nbytes


def test_a_block_affinity_holds_no_more_memory_than_its_entries():
    """Summing the duplicate halves of the edges left scipy's indices in the memory of
    every edge before (a view): 80 B an item held for 50 used, at 1,000,000 items."""
    from activeprop.distributed.knn import block_affinity, edges_into

    rng = np.random.default_rng(0)
    n = 3000
    offsets = np.concatenate([np.arange(-40, 0), np.arange(1, 41)])  # distinct neighbours
    chosen = np.argsort(rng.random((n, len(offsets))), axis=1)[:, :9]
    lists = (np.arange(n)[:, None] + np.hstack([np.zeros((n, 1), int), offsets[chosen]])) % n
    block_of, position = np.zeros(n, dtype=np.int64), np.arange(n)
    matrix, halo = block_affinity(0, np.arange(n), block_of, position,
                                  edges_into(lists, 0, block_of, 0))
    assert len(halo) == 0 and set(np.unique(matrix.data)) <= {0.5, 1.0}
    # some edges were found from both ends, and more than half of the halves are left
    # (where scipy keeps a view of them)
    assert lists.size < matrix.nnz < 2 * lists.size
    assert all(_held_bytes(a) == a.nbytes for a in (matrix.data, matrix.indices))


@pytest.mark.parametrize("n_blocks", [1, 3])
def test_a_blocks_matrices_built_a_slice_at_a_time_are_scipys_from_coordinates(
        monkeypatch, n_blocks):
    """The block's affinity and locality order, its edges placed a slice at a time from
    several chunks' parts, equal what scipy builds from all its edges' coordinates at once
    (the construction they replace: duplicates summed, indices sorted, the same halo)."""
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    from activeprop.distributed import edge_matrix
    from activeprop.distributed.knn import block_affinity, edges_into, locality_order

    monkeypatch.setattr(edge_matrix, "EDGES_AT_ONCE", 1000)  # many slices a part
    rng = np.random.default_rng(1)
    n, k = 2400, 6
    lists = (np.arange(n)[:, None] + rng.integers(-60, 60, size=(n, k))) % n
    lists[:, 0] = np.arange(n)
    block_of = (np.arange(n) * n_blocks) // n
    position = np.zeros(n, dtype=np.int64)
    for b in range(n_blocks):
        position[block_of == b] = rng.permutation(np.sum(block_of == b))
    starts = range(0, n, 700)  # four chunks of neighbour lists, the last one short
    for b in range(n_blocks):
        members = np.flatnonzero(block_of == b)
        members = members[np.argsort(position[members])]
        parts = [edges_into(lists[s:s + 700], s, block_of, b) for s in starts]
        rows = np.concatenate([p[0] for p in parts])
        columns = np.concatenate([p[1] for p in parts])
        inside = block_of[columns] == b
        halo = np.unique(columns[~inside])
        halo = halo[np.lexsort((halo, block_of[halo]))]
        local = np.where(inside, position[columns], 0)
        local[~inside] = len(members) + np.argsort(halo)[np.searchsorted(
            np.sort(halo), columns[~inside])]
        expected = sparse.csr_matrix((np.full(len(rows), 0.5), (position[rows], local)),
                                     shape=(len(members), len(members) + len(halo)))
        found, found_halo = block_affinity(b, members, block_of, position, *parts)
        assert np.array_equal(found_halo, halo) and found.dtype == np.float64
        for name in ("indptr", "indices", "data"):
            assert np.array_equal(getattr(found, name), getattr(expected, name)), name
        within = sparse.csr_matrix((np.ones(inside.sum(), dtype=np.int8),
                                    (position[rows[inside]], position[columns[inside]])),
                                   shape=(len(members), len(members)))
        assert np.array_equal(
            locality_order(b, len(members), block_of, position, *parts),
            reverse_cuthill_mckee(within, symmetric_mode=True))


def test_a_halo_product_equals_the_whole_product(client, pool, spreading_on_cluster):
    graph = spreading_on_cluster.graph
    P = np.random.default_rng(0).random((len(pool.X), 3))
    product = graph.from_blocks(graph.exchange.map(multiply, graph.spreading,
                                                   graph.to_blocks(P)))
    whole = pool_order_matrix(graph, client.gather(graph.spreading)) @ P
    np.testing.assert_allclose(product, whole, rtol=0, atol=1e-15)


def test_the_far_items_fill_is_the_single_machines_to_the_bit(client, pool,
                                                               spreading_on_cluster):
    """The fill of the rows below the floor, layer by layer with the blocks exchanging
    the rows each layer filled, gives one machine's fill on the same graph: most rows
    empty, a few dozen with scores, seven layers. (To rounding: the pool-ordered matrix
    adds a row's neighbours in another order than its block does.)"""
    graph = spreading_on_cluster.graph
    n = graph.n_items
    rng = np.random.default_rng(1)
    X = rng.random((n, 4)) * 1e-13  # below the floor: to fill
    X[rng.choice(n, 40, replace=False)] = rng.random((40, 4))  # scores: where the fill starts
    reached = np.ones(n, dtype=bool)
    filled = graph.from_blocks(spreading_on_cluster._fill(
        [graph.to_blocks(X)], graph.to_blocks(reached.astype(np.float64))))
    S = pool_order_matrix(graph, client.gather(graph.spreading_products))
    expected = fill_below_precision(S, X, reached, spreading_on_cluster.rtol * X.max(),
                                    column_scale=graph.from_blocks(graph.roots))
    assert (expected > 0).any(axis=1).all()  # every row has scores, filled or its own
    np.testing.assert_allclose(filled, expected, rtol=1e-14, atol=0)


def test_dask_counts_a_threaded_matrix_at_the_bytes_it_holds():
    """Dask places a task where most of its inputs' bytes are, and weighs moving a task by
    them: a block's operator counted as the 56 B of a bare object made the tasks that read
    it look cheap to run on a worker that does not hold it."""
    from dask.sizeof import sizeof

    matrix = sparse.random(5_000, 5_000, density=0.002, random_state=0, format="csr")
    threaded = ThreadedMatrix(matrix, n_blocks=2)
    entries = matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
    assert entries <= sizeof(threaded) <= entries + 2 * matrix.indptr.nbytes + 1024


def test_a_fill_layers_state_holds_no_copy_of_the_blocks_scores():
    """Dask sizes each of a block's fill states by its parts: states that carried the
    block's scores counted them once a layer in the task that writes the layers in, and
    at 4,000,000 items on two workers the scheduler refused that task (6.95 GiB of inputs
    against a limit of 5.68 GiB). The layers written in are still one machine's fill."""
    from dask.sizeof import sizeof

    rng = np.random.default_rng(0)
    n, floor = 2_000, 0.01
    W = sparse.random(n, n, density=0.003, random_state=0, format="csr")
    W = (W + W.T).tocsr()
    F = np.zeros((n, 4))
    F[rng.choice(n, 20, replace=False)] = rng.random((20, 4))
    reached = np.ones(n)
    start = state = steps.empty_rows(reached, floor, F)
    layers = []
    for _ in range(8):
        state = steps.fill_layer(W, np.ones(n), state, floor)  # (unit column scale)
        layers.append(state)
    assert sum(count for _, _, count, _ in layers) > n // 2  # most rows filled
    # the layers' rows and scores, and each one's empty rows: not eight copies of F
    assert sum(sizeof(layer) for layer in layers) < 2 * F.nbytes
    # and those rows at a bit a row (44 layers a round held 88 MB of them a worker at
    # 4,000,000 items on two workers)
    assert all(layer[1].nbytes == -(-n // 8) for layer in layers)
    np.testing.assert_array_equal(steps.filled_scores(start, *layers),
                                  fill_below_precision(W, F, reached > 0, floor))


def test_a_block_of_labels_goes_to_the_worker_of_its_block_of_the_graph(
        client, pool, spreading_on_cluster):
    """Sent anywhere, a block of labels drew the tasks made from it, and the solver's
    blocks after them, away from their graph's worker."""
    graph = spreading_on_cluster.graph
    sent = graph.to_blocks(pool.y)
    client.gather(sent)  # made
    held = client.who_has([*graph.spreading, *sent])
    assert [held[labels.key] for labels in sent] == \
        [held[block.key] for block in graph.spreading]


def rounds(model, y, n_rounds=4, batch=10, start=20):
    labels = np.full(len(y), -1)
    labels[:start] = y[:start]
    learner = ActiveLearner(model, "entropy", labels=labels)
    out = []
    for _ in range(n_rounds):
        learner.fit()
        accuracy = float(np.mean(learner.predict() == y))
        queried = learner.query(batch)
        out.append((accuracy, queried.tolist()))
        learner.teach(queried, y[queried])
    return out


@pytest.mark.parametrize("grouped", [False, True], ids=["one-solve", "in-groups"])
@pytest.mark.parametrize("name, rtol", [("spreading", 1e-10), ("poisson", 1e-8)])
def test_queries_and_accuracies_equal_the_single_process_engine(client, pool, name, rtol,
                                                                grouped, spreading_on_cluster,
                                                                shared_graph, monkeypatch):
    """Also with the classes' columns solved in groups (as blocks too large to hold a
    solve's vectors of all columns are), here of at most three columns."""
    from activeprop.distributed import model as cluster_model

    alpha = 0.2 if name == "spreading" else None
    single = make_model(name, pool.X, kernel="knn", n_neighbors=10, solver="cg", rtol=rtol,
                        max_iter=1000, alpha=0.2)
    on_cluster = ClusterGraphModel(name, pool.X, client, n_neighbors=10, alpha=alpha,
                                   max_iter=1000, rtol=rtol)
    # the pool's graph: spreading's alone (no affinity), or the one both models share
    on_cluster.graph = spreading_on_cluster.graph if name == "spreading" else shared_graph
    assert on_cluster.can_use(on_cluster.graph)
    widths, solve = [], cluster_model.BlockSolver.solve

    def solve_and_note(self, B, *arguments, **options):
        widths.append(client.submit(np.shape, B[0]).result()[1])
        return solve(self, B, *arguments, **options)

    monkeypatch.setattr(cluster_model.BlockSolver, "solve", solve_and_note)
    if grouped:
        rows = max(len(members) for members in on_cluster.graph.layout.members)
        monkeypatch.setattr(cluster_model, "SOLVE_VECTOR_BYTES", 8 * rows * 3)
    assert rounds(on_cluster, pool.y) == rounds(single, pool.y)
    n_classes = len(np.unique(pool.y))
    assert widths[-4:] == ([3, 3, 2, 2] if grouped else [n_classes] * 4)


def test_a_fit_counts_the_products_it_ran_through_the_halo(client, pool, spreading_on_cluster,
                                                          monkeypatch):
    """``n_products_`` (what the benchmark divides the halo's bytes by) is the products the
    workers ran: each group's first and one an iteration, those run ahead of the verdicts
    too."""
    from distributed import get_task_stream

    from activeprop.distributed import model as cluster_model

    graph = spreading_on_cluster.graph
    rows = max(len(members) for members in graph.layout.members)
    monkeypatch.setattr(cluster_model, "SOLVE_VECTOR_BYTES", 8 * rows * 3)  # 4 groups
    model = ClusterGraphModel("spreading", pool.X, client, n_neighbors=10, alpha=0.2,
                              max_iter=1000, rtol=1e-10)
    model.graph = graph
    y = np.full(len(pool.y), -1)
    y[:30] = pool.y[:30]
    with get_task_stream(client) as stream:
        model.fit(y).predict()
    ran = sum(task["key"].startswith(("with_curvature-", "turn_and_apply-"))
              for task in stream.data)
    assert ran == model.n_products_ * graph.n_blocks
    assert model.n_products_ >= 4 * (1 + 1)


def test_column_groups_are_as_few_and_as_even_as_the_budget_allows(monkeypatch):
    from activeprop.distributed import model as cluster_model

    monkeypatch.setattr(cluster_model, "SOLVE_VECTOR_BYTES", 8 * 1000 * 4)
    sizes = {rows: [len(g) for g in cluster_model.column_groups(10, rows)]
             for rows in (100, 1000, 1500, 4000, 100_000)}
    assert sizes == {100: [10], 1000: [4, 3, 3], 1500: [2, 2, 2, 2, 2],
                     4000: [1] * 10, 100_000: [1] * 10}
    groups = cluster_model.column_groups(10, 1000)
    assert np.concatenate(groups).tolist() == list(range(10))


def test_a_graph_of_several_blocks_keeps_only_the_matrices_its_models_read(client, pool):
    """Spreading reads the normalised operator, Poisson learning the affinity: a graph
    for one alone holds one matrix per block (145-158 B an item), and serves no other."""
    X = pool.X[:3000]
    models = {name: ClusterGraphModel(name, X, client, n_neighbors=10,
                                      alpha=0.2 if name == "spreading" else None,
                                      max_iter=1000, rtol=1e-8)
              for name in ("spreading", "poisson")}
    for name, other in (("spreading", "poisson"), ("poisson", "spreading")):
        graph = models[name].build_graph()
        assert graph.n_blocks == 2
        kept = (graph.affinity_products is not None, graph.spreading_products is not None)
        assert kept == ((False, True) if name == "spreading" else (True, False))
        assert models[name].can_use(graph) and not models[other].can_use(graph)
        models[name].fit(np.where(np.arange(len(X)) < 30, pool.y[:len(X)], -1))


def _held_by_the_cluster(dask_scheduler) -> list:
    """The task names whose results the workers hold."""
    from dask.utils import key_split

    return sorted({key_split(key) for key, task in dask_scheduler.tasks.items()
                   if task.state == "memory"})


@pytest.mark.parametrize("name", ["spreading", "poisson"])
def test_the_iterations_hold_no_start_up_arrays(client, pool, name, shared_graph,
                                                monkeypatch):
    """By the third iteration, the workers hold no labels' one-hot blocks, right-hand
    side (spreading: Poisson reads its own afterwards), start (x0, r0) or last fit's
    distributions: held through the solve, they were five block vectors beside the
    iterations' own (at 4,000,000 items on two workers, the rounds' peak)."""
    from activeprop.distributed import solve

    model = ClusterGraphModel(name, pool.X, client, n_neighbors=10,
                              alpha=0.2 if name == "spreading" else None,
                              max_iter=1000, rtol=1e-10)
    model.graph = shared_graph
    y = np.full(len(pool.y), -1)
    y[:50] = pool.y[:50]
    model.fit(y)  # the next fit is warm, with distributions to let go
    y[50:60] = pool.y[50:60]
    held, iterate = [], solve.BlockSolver.turn_and_apply
    start_up = {"one_hot_block", "masked", "start_state", "join_state", "block_distributions",
                "poisson_softmax", "zeros_like"}
    if name == "spreading":
        start_up.add("multiply")

    def iterate_and_look(self, *arguments):
        if len(held) < 3:  # (released keys reach the scheduler a moment later)
            deadline = time.monotonic() + 10
            while True:
                names = set(client.run_on_scheduler(_held_by_the_cluster))
                if len(held) < 2 or not names & start_up or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            held.append(names)
        return iterate(self, *arguments)

    monkeypatch.setattr(solve.BlockSolver, "turn_and_apply", iterate_and_look)
    model.fit(y)
    assert len(held) >= 3 and "advance" in held[2], held
    assert not held[2] & start_up, held[2] & start_up


@pytest.mark.parametrize("name, rtol", [("spreading", 1e-10), ("poisson", 1e-8)])
def test_a_graph_in_one_block_answers_as_the_single_process_engine(client, pool, name, rtol):
    # One worker holds one block: no halo, and the single engine's fit in the worker.
    alpha = 0.2 if name == "spreading" else None
    single = make_model(name, pool.X, kernel="knn", n_neighbors=10, solver="cg", rtol=rtol,
                        max_iter=1000, alpha=0.2)
    on_cluster = ClusterGraphModel(name, pool.X, client, n_neighbors=10, alpha=alpha,
                                   max_iter=1000, rtol=rtol, n_blocks=1)
    graph = on_cluster.build_graph()
    assert graph.exchange.halo_rows == 0
    # spreading reads the normalised operator alone: the worker holds one matrix, not two
    assert (graph.affinity is None) == (name == "spreading")
    assert rounds(on_cluster, pool.y) == rounds(single, pool.y)
    # (the predictions the lone fit found itself, sent in the labels' narrow type)
    assert on_cluster.predict().dtype == single.predict().dtype
    np.testing.assert_array_equal(on_cluster.predict(), single.predict())


@pytest.mark.parametrize("offset", [-1, 1000, 2**40], ids=["int8", "int16", "int64"])
def test_a_lone_blocks_labels_travel_narrow_and_its_predictions_are_the_classes(
        client, pool, offset):
    """Labels of any integers (-1 unlabeled) reach the lone fit in the narrowest type that
    holds them, and its predictions come back as those classes, in the labels' type."""
    from activeprop.distributed.model import narrow_labels

    X, y = pool.X[:2000], pool.y[:2000] + offset + 1  # classes offset+1 ... offset+10
    labels = np.full(len(y), -1)
    labels[:40] = y[:40]
    classes = np.unique(y[:40])
    assert narrow_labels(labels, classes).dtype == {
        -1: np.int8, 1000: np.int16, 2**40: np.int64}[offset]
    single = make_model("spreading", X, kernel="knn", n_neighbors=10, solver="cg",
                        rtol=1e-10, max_iter=1000, alpha=0.2)
    on_cluster = ClusterGraphModel("spreading", X, client, n_neighbors=10, alpha=0.2,
                                   max_iter=1000, rtol=1e-10, n_blocks=1)
    predicted = on_cluster.fit(labels).predict()
    assert predicted.dtype == labels.dtype
    np.testing.assert_array_equal(predicted, single.fit(labels).predict())
    assert set(np.unique(predicted)) <= set(classes)


@pytest.mark.parametrize("group_bytes", [None, 3], ids=["one-group", "groups-of-3"])
@pytest.mark.parametrize("name, rtol", [("spreading", 1e-10), ("poisson", 1e-8)])
def test_a_lean_lone_fit_answers_as_the_single_process_engine(client, pool, name, rtol,
                                                              group_bytes, monkeypatch):
    """A lone worker whose memory is the limit fits lean (no kept state, classes solved in
    groups, the scores made distributions in place): the same queries and accuracies as
    one machine."""
    from activeprop.distributed import model as cluster_model

    if group_bytes:
        monkeypatch.setattr(cluster_model, "SOLVE_VECTOR_BYTES", 8 * len(pool.y) * group_bytes)
    single = make_model(name, pool.X, kernel="knn", n_neighbors=10, solver="cg", rtol=rtol,
                        max_iter=1000, alpha=0.2)
    on_cluster = ClusterGraphModel(name, pool.X, client, n_neighbors=10,
                                   alpha=0.2 if name == "spreading" else None, max_iter=1000,
                                   rtol=rtol, n_blocks=1, worker_memory=1)
    assert rounds(on_cluster, pool.y) == rounds(single, pool.y)
    # (lean: the worker kept nothing between the fits)
    assert client.submit(lambda kept: kept.warm is None and kept.last is None,
                         on_cluster._lone_kept).result()


def test_a_lone_block_for_spreading_and_poisson_keeps_the_affinity(client, pool):
    """A graph that Poisson learning will share (compare) keeps what it reads; a graph made
    for spreading alone does not serve it."""
    X = pool.X[:2000]
    spreading = ClusterGraphModel("spreading", X, client, n_neighbors=10, alpha=0.2,
                                  max_iter=1000, rtol=1e-8, n_blocks=1)
    poisson = ClusterGraphModel("poisson", X, client, n_neighbors=10, alpha=None,
                                max_iter=1000, rtol=1e-8, n_blocks=1)
    alone = spreading.build_graph()
    assert alone.affinity is None and not poisson.can_use(alone)
    shared = spreading.build_graph(models=("poisson",))
    assert shared.affinity is not None and poisson.can_use(shared)


def test_a_graph_of_spreadings_operator_alone_refuses_any_other():
    graph = build_knn_graph(np.random.default_rng(0).random((300, 4)), 5, backend="flat")
    alone = lone.engine_graph(graph.operator("symmetric-spreading"), graph.spreading_roots(),
                              graph.components(), 5)
    with pytest.raises(RuntimeError, match="spreading's operator alone"):
        alone.operator("symmetric")


def test_a_lone_block_keeps_its_warm_start_on_the_worker(client, pool):
    # The same labels again: the warm start kept on the worker already meets the tolerance
    # (no iteration), where a cold solve takes several.
    on_cluster = ClusterGraphModel("spreading", pool.X, client, n_neighbors=10, alpha=0.2,
                                   max_iter=1000, rtol=1e-10, n_blocks=1)
    y = np.full(len(pool.y), -1)
    y[:50] = pool.y[:50]
    assert on_cluster.fit(y).n_iter_ > 0
    first = on_cluster.proba_
    assert on_cluster.fit(y).n_iter_ == 0
    np.testing.assert_array_equal(on_cluster.proba_, first)


def labels_sent_and_kept(client) -> set:
    """The tasks of the blocks of labels the scheduler keeps (each sent as a task that
    carries it, kept while a held result's lineage reaches it)."""
    from activeprop.distributed.cluster import _received

    prefix = f"{_received.__name__}-"  # (the tasks cluster.send makes)
    return set(client.run_on_scheduler(lambda dask_scheduler: [
        key for key in dask_scheduler.tasks if str(key).startswith(prefix)]))


@pytest.mark.parametrize("n_blocks", [1, 2])
def test_a_fits_lineage_does_not_grow_with_the_fits_before_it(client, pool, n_blocks):
    """A labeling session's refits leave the scheduler no more than a few fits' tasks: each
    fit's labels (8 B an item) stayed in the lineage of the next warm start, so that after
    a thousand labels the scheduler held a thousand copies of the labels, and a worker lost
    then had every fit solved again. A lone block keeps its warm start outside the lineage
    (lone.KeptFit); blocks start cold every WARM_FITS + 1 fits."""
    from activeprop.distributed.model import WARM_FITS

    model = ClusterGraphModel("spreading", pool.X[:4000], client, n_neighbors=10, alpha=0.2,
                              max_iter=1000, rtol=1e-10, n_blocks=n_blocks)
    y = np.full(4000, -1)
    y[:20] = pool.y[:20]
    before = labels_sent_and_kept(client)
    for fits, item in enumerate(range(20, 20 + 3 * (WARM_FITS + 1) + 3), start=1):
        y[item] = pool.y[item]
        model.fit(y)
        if fits == 3:
            early = len(labels_sent_and_kept(client) - before)
    late = len(labels_sent_and_kept(client) - before)
    assert early and late <= early


def lone_fit_of(pool, n_items: int):
    """A lone block's engine graph of the pool's first ``n_items`` (for spreading and
    Poisson learning), spreading's settings and 30 labels."""
    graph = build_knn_graph(pool.X[:n_items], n_neighbors=10, backend="flat")
    engine = lone.engine_graph(graph.operator("symmetric-spreading"),
                               graph.spreading_roots(), graph.components(), 10,
                               graph.operator("symmetric"), graph.operator("degrees"))
    y = np.full(n_items, -1)
    y[:30] = pool.y[:30]
    return engine, {"variant": "spreading", "alpha": 0.2, "max_iter": 1000, "rtol": 1e-10}, y


@pytest.fixture
def small_lone_fit(pool):
    return lone_fit_of(pool, 3000)


@pytest.fixture(scope="module")
def pool_lone_fit(pool):
    """:func:`lone_fit_of` the whole pool: large enough that what other threads of the
    process allocate (the Dask client's) is small beside a vector of its scores."""
    return lone_fit_of(pool, len(pool.y))


def test_a_lone_blocks_kept_fit_warms_the_next_and_is_given_up_to_a_rerun(small_lone_fit):
    """lone.fit_kept starts from what its holder keeps, and takes it: a rerun of the task
    (Dask's, after a failure) finds none and solves cold, as a fresh fit."""
    engine, model, y = small_lone_fit
    kept = lone.KeptFit(engine)
    _, cold_iterations, *_ = lone.fit_kept(engine, y, model, kept)
    assert kept.warm is not None and kept.last is not None
    assert lone.fit_kept(engine, y, model, kept)[1] == 0  # the same labels: already solved
    kept.take()  # as a run that failed after taking them
    again, n_iter, *_ = lone.fit_kept(engine, y, model, kept)
    assert n_iter == cold_iterations
    np.testing.assert_array_equal(again[0], lone.fit(engine, y, model, None)[0][0])


@pytest.mark.parametrize("name", ["spreading", "poisson"])
def test_a_lean_fits_groups_of_classes_give_its_one_solve_and_hold_a_group_at_a_time(
        pool_lone_fit, name):
    """The lean fit's classes solved one at a time give the solve of all of them (each
    column is its own conjugate gradient), and the fit's peak holds the scores and the
    distributions, not seven vectors of every class: numpy's allocations, traced."""
    import tracemalloc

    engine, model, y = pool_lone_fit
    model = {**model, "variant": name}
    n, n_classes = len(y), len(np.unique(y[y != -1]))
    traced = {}
    for key, groups in (("all", [np.arange(n_classes)]),
                        ("one by one", [np.array([c]) for c in range(n_classes)])):
        tracemalloc.start()
        traced[key] = lean.fit(engine, y, model, groups)
        traced[key + " peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    (together, *_), n_iter, converged, _ = traced["all"]
    (alone, *_), n_iter_alone, *_ = traced["one by one"]
    np.testing.assert_allclose(alone, together, rtol=1e-12, atol=1e-15)
    assert converged and n_iter == n_iter_alone > 0
    vector = 8 * n * n_classes  # one float64 vector of every class
    assert traced["all peak"] > 5 * vector  # the solve's own vectors
    # scores, distributions, one column's vectors and the integers beside them
    assert traced["one by one peak"] < 3 * vector


@pytest.mark.parametrize("name, rtol", [("spreading", 1e-10), ("poisson", 1e-8)])
def test_a_lean_fit_is_the_single_engines_within_its_tolerance(small_lone_fit, name, rtol):
    """The same labels fitted lean and by the single engine (cold): the scores differ only
    where the solve's tolerance lets them, so nearly every row predicts the same class."""
    engine, model, y = small_lone_fit
    model = {**model, "variant": name, "rtol": rtol}
    (lean_result, lean_unreached, _), _, converged, _ = lean.fit(engine, y, model,
                                                                 [np.arange(10)])
    (full, unreached, _), *_ = lone.fit(engine, y, model, None)
    assert converged
    np.testing.assert_array_equal(lean_unreached, unreached)
    assert (lean_result.argmax(axis=1) == full.argmax(axis=1)).mean() > 0.995
    if name == "poisson":  # no fill: the softmax of scores within the tolerance
        np.testing.assert_allclose(lean_result, full, atol=1e-6)


def test_a_lone_engine_graph_counts_each_array_it_holds_once(pool):
    """What the lean fit's choice reads: a threaded matrix's row blocks share its entries,
    and a graph of spreading's operator alone holds it as its affinity too (counted three
    times before: 460 B an item at 20,000 items, where it holds 158)."""
    graph = build_knn_graph(pool.X[:3000], n_neighbors=10, backend="flat")
    S = graph.operator("symmetric-spreading")
    entries = S.matrix.data.nbytes + S.matrix.indices.nbytes + S.matrix.indptr.nbytes
    alone = lone.engine_graph(S, graph.spreading_roots(), graph.components(), 10)
    assert entries < alone.nbytes < entries + 8 * (3001 + 16)  # (row blocks' pointers)
    W = graph.operator("symmetric")
    shared = lone.engine_graph(S, graph.spreading_roots(), graph.components(), 10, W,
                               graph.operator("degrees"))
    assert shared.nbytes - alone.nbytes == sum(
        array.nbytes for array in W.held_arrays()) + 8 * 3000


def test_a_lone_fit_is_lean_past_the_budget(small_lone_fit):
    engine, model, y = small_lone_fit
    full = lean.full_fit_bytes(engine, len(np.unique(y[y != -1])))
    assert full > engine.nbytes + lean.WORKER_OWN_BYTES
    assert lean.fits_lean(engine, y, full - 1)
    assert not lean.fits_lean(engine, y, full)
    assert not lean.fits_lean(engine, y, None)


def test_a_lean_lone_fit_lets_the_kept_fit_go_and_keeps_nothing(small_lone_fit):
    engine, model, y = small_lone_fit
    kept = lone.KeptFit(engine)
    lone.fit_kept(engine, y, model, kept)
    assert kept.warm is not None
    (lean_result, *_), n_iter, *_ = lone.fit_kept(engine, y, model, kept, budget=1,
                                                  groups=[np.arange(10)])
    assert kept.warm is None and kept.last is None
    assert n_iter > 0  # cold: the same labels would have needed none from the kept start
    full = lone.fit(engine, y, model, None)[0][0]
    assert (lean_result.argmax(axis=1) == full.argmax(axis=1)).mean() > 0.99


def test_a_lone_fit_run_twice_on_one_warm_start_starts_cold_the_second_time(
        pool, small_lone_fit):
    # What Dask does when it reruns the task after losing a worker: the first run took the
    # warm start's arrays over and changed them; the rerun must not start from them.
    engine, model, y = small_lone_fit
    _, warm, *_ = lone.fit(engine, y, model, None)
    y[30:40] = pool.y[30:40]
    _, _, warm_iterations, *_ = lone.fit(engine, y, model, warm)
    (again, *_), _, n_iter, *_ = lone.fit(engine, y, model, warm)
    cold = lone.fit(engine, y, model, None)
    assert warm_iterations < n_iter == cold[2]  # the rerun solved cold, as a fresh fit
    np.testing.assert_array_equal(again, cold[0][0])


def test_a_component_without_labels_stays_unreached_as_on_one_machine(client):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (300, 4)), rng.normal(100, 1, (200, 4))])
    y = np.full(500, -1)
    y[[0, 1, 2]] = [0, 1, 0]
    on_cluster = ClusterGraphModel("spreading", X, client, n_neighbors=5, alpha=0.2,
                                   max_iter=1000, rtol=1e-10).fit(y)
    single = make_model("spreading", X, kernel="knn", n_neighbors=5, solver="cg",
                        rtol=1e-10, max_iter=1000).fit(y)
    np.testing.assert_array_equal(on_cluster.unreached_, single.unreached_)
    assert on_cluster.unreached_[300:].all() and not on_cluster.unreached_[:300].any()
    # Far from every label the scores sit near the solver's precision, where solves that
    # stop at different depths (one machine goes below the tolerance to leave room for its
    # local updates) differ in the third digit; the predictions do not.
    np.testing.assert_allclose(on_cluster.proba_, single.proba_, atol=1e-3)
    np.testing.assert_array_equal(on_cluster.predict(), single.predict())


@pytest.mark.parametrize("name", ["spreading", "poisson"])
def test_a_lean_fit_gives_each_kind_of_component_what_one_machine_does(name):
    """Components with labels of two classes, of one class (Poisson learning's sources
    cancel there: the whole component is that class) and of none (unreached)."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(centre, 1, (size, 4))
                   for centre, size in ((0, 300), (100, 200), (-100, 100))])
    y = np.full(600, -1)
    y[[0, 1, 2, 300, 301]] = [0, 1, 0, 1, 1]
    graph = build_knn_graph(X, 5, backend="flat")
    assert len(np.unique(graph.components())) == 3
    engine = lone.engine_graph(graph.operator("symmetric-spreading"), graph.spreading_roots(),
                               graph.components(), 5, graph.operator("symmetric"),
                               graph.operator("degrees"))
    model = {"variant": name, "alpha": 0.2, "max_iter": 1000, "rtol": 1e-10}
    (proba, unreached, _), *_ = lean.fit(engine, y, model, [np.array([0]), np.array([1])])
    (single, single_unreached, _), *_ = lone.fit(engine, y, model, None)
    np.testing.assert_array_equal(unreached, single_unreached)
    assert unreached[500:].all() and not unreached[:500].any()
    # Spreading's far rows sit at the solver's precision, where one machine's solve goes
    # deeper (see the test above) and the fill weighs what is left: 4e-3 apart at most here.
    np.testing.assert_allclose(proba, single, atol=1e-2 if name == "spreading" else 1e-6)
    np.testing.assert_array_equal(proba.argmax(axis=1), single.argmax(axis=1))
    assert (proba[300:500].argmax(axis=1) == 1).all()


def test_models_without_a_cluster_form_are_refused_in_one_line(client):
    with pytest.raises(UserError, match="allowed there: spreading, poisson"):
        ClusterGraphModel("propagation", np.zeros((10, 2)), client, n_neighbors=3,
                          alpha=None, max_iter=10, rtol=1e-6)


def test_simulation_settings_without_a_cluster_form_are_refused_in_one_line():
    from activeprop.distributed.model import check_cluster_config
    from activeprop.experiments import SimulationConfig

    base = SimulationConfig(kernel="knn", model="poisson")
    check_cluster_config(base)  # has a cluster form
    for change, message in [({"graph_weights": "local"}, "--graph-weights local"),
                            ({"local_from": 4}, "--local-from 0"),
                            ({"initial_strategy": "typical"}, "typical"),
                            ({"class_priors": "uniform"}, "--class-priors")]:
        with pytest.raises(UserError, match=message):
            check_cluster_config(dataclasses.replace(base, **change))


@pytest.mark.parametrize("spec, message", [("local:0", "whole number >= 1"),
                                           ("nonsense", "not an address")])
def test_a_bad_cluster_spec_is_one_line(spec, message):
    with pytest.raises(UserError, match=message):
        connect(spec)


def test_a_scheduler_without_workers_is_one_line_not_a_crash(monkeypatch):
    from distributed import LocalCluster

    from activeprop.distributed import cluster as cluster_module

    monkeypatch.setattr(cluster_module, "WORKER_WAIT_SECONDS", 1)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty:
        client = connect(empty.scheduler_address)
        try:
            with pytest.raises(UserError, match="no worker for 1 s; start some"):
                cluster_module.workers(client)
        finally:
            client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def simulate(*options) -> dict:
    command = [sys.executable, "-m", "activeprop.cli", "simulate", "--dataset", POOL,
               "--subset", "0", "--kernel", "knn", "--neighbors", "10", "--solver", "cg",
               "--rtol", "1e-10", "--max-iter", "1000", "--initial", "20", "--rounds", "3",
               "--batch", "10", "--json", *options]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_simulate_on_a_scheduler_and_two_workers_started_by_hand(tmp_path):
    dask = Path(sys.executable).parent / "dask"
    dask = str(dask) if dask.exists() else shutil.which("dask")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    environment = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port",
                                  str(port), "--dashboard-address", ":0"], cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=environment)
    workers = [subprocess.Popen([dask, "worker", address, "--nthreads", "1",
                                 "--local-directory", str(tmp_path / f"w{i}")], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=environment) for i in range(2)]
    try:
        _wait_for_workers(address, 2)
        on_cluster = simulate("--cluster", address)
    finally:
        for process in [*workers, scheduler]:
            process.terminate()
        for process in [*workers, scheduler]:
            process.wait(timeout=30)
    single = simulate()
    assert on_cluster["graph"]["blocks"] == 2
    assert [r["queried"] for r in on_cluster["rounds"]] == \
        [r["queried"] for r in single["rounds"]]
    assert [r["accuracy"] for r in on_cluster["rounds"]] == \
        [r["accuracy"] for r in single["rounds"]]


def _wait_for_workers(address: str, n: int, timeout: float = 60) -> None:
    from distributed import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            with Client(address, timeout=5) as probe:
                probe.wait_for_workers(n, timeout=max(1, deadline - time.monotonic()))
                return
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise


def test_the_command_refuses_a_dense_graph_on_a_cluster():
    done = subprocess.run([sys.executable, "-m", "activeprop.cli", "simulate", "--cluster",
                           "local:1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "--kernel knn" in done.stderr


def test_a_zarr_pool_is_read_by_the_workers_with_the_same_answers(client, tmp_path, pool):
    from activeprop import experiments
    from activeprop.shards import write_sharded

    stored = write_sharded(load_pool(POOL), tmp_path / "pool.zarr", shard_rows=5000)
    config = experiments.SimulationConfig(dataset=str(stored), subset=0, kernel="knn",
                                          n_neighbors=10, solver="cg", rtol=1e-10,
                                          max_iter=1000, initial=20, rounds=2, batch=10,
                                          model="poisson")
    lazy = experiments.prepare_pool(config, lazy=True)
    assert hasattr(lazy.X, "dask")  # never read on the client
    on_cluster = experiments.simulate(config, client=client)
    single = experiments.simulate(config)
    assert [(r.accuracy, r.queried) for r in on_cluster.rounds] == \
        [(r.accuracy, r.queried) for r in single.rounds]


@pytest.mark.parametrize("shard_rows", [3000, 10000])  # 10000: the chunks are the shards
def test_a_stored_pools_rows_are_read_again_not_kept_once_the_graph_is_built(
        client, tmp_path, pool, caplog, shard_rows):
    from activeprop.distributed.chunks import row_chunks
    from activeprop.distributed.graph import ClusterGraph
    from activeprop.distributed.typical import typical_items
    from activeprop.shards import open_sharded, write_sharded

    stored = open_sharded(write_sharded(pool, tmp_path / "pool.zarr", shard_rows=shard_rows))
    chunks = row_chunks(client, stored.lazy(), 10000)
    before = typical_items(client, chunks, 5)
    graph = ClusterGraph(client, chunks, 10, 2)
    # each task that reads a chunk read it itself: no read of the store was ever a task
    # whose result a worker held
    seen = client.run_on_scheduler(
        lambda dask_scheduler: [str(entry[0]) for entry in dask_scheduler.transition_log])
    assert seen and not any(chunks.source.name in key for key in seen)
    held = [key for keys in client.has_what().values() for key in keys]
    assert graph.chunks.futures == [] and not any("as_float32" in str(key) for key in held)
    sent = row_chunks(client, pool.X, 10000)
    assert len(sent.futures) == 2  # the client's own copies are the only ones: kept
    items = np.array([3, 7, 12000, 19999])
    np.testing.assert_array_equal(graph.rows(items), pool.X[items].astype(np.float32))
    np.testing.assert_array_equal(typical_items(client, graph.chunks, 5), before)
    # read under keys of their own: no key submitted again with another task
    assert not [r for r in caplog.records if "run_spec" in r.getMessage()]


def test_compare_on_the_cluster_gives_the_same_rows(client):
    from activeprop import comparison, experiments

    base = experiments.SimulationConfig(dataset="digits-aug:2000", subset=0, kernel="knn",
                                        n_neighbors=10, solver="cg", rtol=1e-10,
                                        max_iter=1000, initial=20, rounds=2, batch=10)
    config = comparison.CompareConfig(base, ["random", "entropy"], ["spreading", "poisson"],
                                      repeats=2, jobs=1)
    keys = ("strategy", "model", "repeat", "round", "n_labeled", "accuracy")

    def rows(result):
        return [tuple(row[k] for k in keys) for row in result.rows]

    assert rows(comparison.compare(config, client=client)) == rows(comparison.compare(config))


def test_killing_a_worker_mid_solve_loses_nothing(monkeypatch, pool):
    """A worker process killed during the conjugate-gradient iterations: Dask recomputes
    its blocks from what the client sent (kept as tasks, not scattered data) and the fit
    gives the answer of a fit without the fault; the nanny starts a new worker."""
    import signal

    from activeprop.distributed import solve

    y = np.full(len(pool.y), -1)
    y[:30] = pool.y[:30]
    own = connect("local:2")
    try:
        model = ClusterGraphModel("poisson", pool.X, own, n_neighbors=10, alpha=None,
                                  max_iter=1000, rtol=1e-8)
        expected = model.fit(y).proba_.copy()
        model._warm = None  # solve again from the start
        victim = next(iter(own.run(os.getpid).values()))
        calls = []
        iterate = solve.BlockSolver.turn_and_apply

        def iterate_then_kill(self, *arguments):
            calls.append(1)
            if len(calls) == 20:  # twenty iterations in
                os.kill(victim, signal.SIGKILL)
            return iterate(self, *arguments)

        monkeypatch.setattr(solve.BlockSolver, "turn_and_apply", iterate_then_kill)
        found = model.fit(y).proba_
        assert len(calls) > 20  # the kill came mid-solve
        np.testing.assert_array_equal(found, expected)
        assert victim not in own.run(os.getpid).values()
    finally:
        close(own)


@pytest.mark.parametrize("stored", [False, True])  # rows sent, or read by each task
def test_hnsw_per_chunk_finds_the_flat_neighbours_and_says_how_many(client, pool, stored,
                                                                    tmp_path):
    from activeprop.distributed.chunks import row_chunks
    from activeprop.distributed.graph import ClusterGraph
    from activeprop.shards import open_sharded, write_sharded

    X = pool.X[:8000]
    if stored:
        X = open_sharded(write_sharded(pool, tmp_path / "pool.zarr", shard_rows=3000)).lazy()
        X = X[:8000]
    graphs = {kind: ClusterGraph(client, row_chunks(client, X, 2000), 10, 2, search=kind)
              for kind in ("flat", "hnsw")}
    assert graphs["flat"].recall is None and 0.98 <= graphs["hnsw"].recall <= 1.0
    flat, hnsw = (pool_order_matrix(g, client.gather(g.affinity)) for g in graphs.values())
    # the share of the exact graph's edges HNSW found is about its measured recall
    shared = flat.multiply(hnsw > 0).sum() / flat.sum()
    assert abs(shared - graphs["hnsw"].recall) < 0.01


class SubmitLog:
    """A client whose ``submit`` notes, whenever a chunk's index is asked for, which of the
    indexes asked for before it had been searched (otherwise the client it wraps)."""

    def __init__(self, client):
        self.client, self.indexes, self.searched_before = client, [], []

    def submit(self, function, *arguments, **options):
        future = self.client.submit(function, *arguments, **options)
        if getattr(function, "__name__", "") == "searched_through":
            self.searched_before.append([index.done() for index in self.indexes])
            self.indexes.append(future)
        return future

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_chunks_are_searched_in_waves_of_one_index_per_worker_as_if_all_at_once(client, pool):
    """Four chunks on two workers: two waves of two indexes, the second made once the
    first's searches ran (all at once, a lone worker held every chunk's index), and the
    neighbour lists those of every chunk's candidates merged at once."""
    from activeprop.distributed.chunks import row_chunks
    from activeprop.distributed.knn import merge_candidates, neighbour_lists, search_pair

    X = pool.X[:6000].astype(np.float32)  # as the chunks hold it
    chunks = row_chunks(client, X, 1500)
    logged = SubmitLog(client)
    lists = client.gather(neighbour_lists(logged, chunks, 10))
    assert len(logged.indexes) == 4
    # the first wave's two indexes were searched by every chunk before the second's
    assert all(logged.searched_before[wave][:2] == [True, True] for wave in (2, 3))
    starts = [int(s) for s in chunks.starts[:-1]]
    for query, found in zip(starts, lists):  # every chunk's candidates merged at once
        queries = X[query:query + 1500]
        np.testing.assert_array_equal(found, merge_candidates(
            10, *(search_pair(queries, X[s:s + 1500], s, 10) for s in starts)))


def test_a_searchs_stored_queries_are_read_a_piece_at_a_time(tmp_path, pool, monkeypatch):
    """A stored chunk's queries are read and searched in pieces: the same answer as the
    chunk searched at once, with no read larger than a piece."""
    from activeprop.distributed import chunks as chunks_module, knn
    from activeprop.shards import open_sharded, write_sharded

    X = open_sharded(write_sharded(pool, tmp_path / "pool.zarr", shard_rows=300)).lazy()
    stored = chunks_module.StoredRows.of(X[100:1100])
    whole = stored.read()
    index = knn.chunk_index(whole[:400], "hnsw")
    expected = knn.search_pair(whole, index, 7, 10, "hnsw")
    read = chunks_module.StoredRows.read
    reads = []
    monkeypatch.setattr(chunks_module.StoredRows, "read",
                        lambda self, rows=slice(None): reads.append(len(read(self, rows)))
                        or read(self, rows))
    monkeypatch.setattr(knn, "QUERY_ROWS", 128)
    squared, found = knn.search_pair(stored, index, 7, 10, "hnsw")
    assert reads == [128] * 7 + [104]
    np.testing.assert_array_equal(found, expected[1])
    np.testing.assert_array_equal(squared, expected[0])


def test_a_lone_workers_searches_and_fits_run_on_all_of_its_threads(pool):
    """Dask starts its workers with OMP_NUM_THREADS=1 and OPENBLAS_NUM_THREADS=1, which
    faiss and BLAS read: a worker of two threads searched on one, and a lone block's fit
    ran its BLAS calls on one (its round 2.4x the single engine's at 1,000,000 items).
    Inside those calls the worker's threads are used; outside, Dask's limits stay."""
    from distributed import Client, LocalCluster

    from activeprop.distributed import knn

    engine, model, y = lone_fit_of(pool, 2000)

    def threads_seen(X):
        import faiss
        from threadpoolctl import threadpool_info

        def now():
            return faiss.omp_get_max_threads(), {
                info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}

        seen = {"before": now()}
        searcher, fit = knn._searcher, lone.fit
        knn._searcher = lambda *a: seen.setdefault("search", now()) and searcher(*a)
        lone.fit = lambda *a: seen.setdefault("fit", now()) and fit(*a)
        try:
            knn.search_pair(X, knn.chunk_index(X, "hnsw"), 0, 10, "hnsw")
            lone.fit_kept(engine, y, model, lone.KeptFit(engine))
        finally:
            knn._searcher, lone.fit = searcher, fit
        seen["after"] = now()
        return seen

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as own:
        seen = own.submit(threads_seen, pool.X[:500]).result()
    assert seen == {"before": (1, {1}), "search": (2, {2}), "fit": (2, {2}),
                    "after": (1, {1})}


@pytest.mark.parametrize("n_classes, kind", [(10, np.uint8), (300, np.uint16)])
def test_a_blocks_predictions_travel_in_the_narrowest_type(n_classes, kind):
    proba = np.random.default_rng(0).random((500, n_classes))
    index = steps.predictions((proba,))
    assert index.dtype == kind
    np.testing.assert_array_equal(index, proba.argmax(axis=1))
    same, confidence = steps.predicted_confidence((proba,))
    np.testing.assert_array_equal(same, index)
    np.testing.assert_array_equal(confidence, proba.max(axis=1))


def test_candidates_merge_block_by_block_nearest_first_ties_to_the_lower_index(monkeypatch):
    """Each query's k nearest of every chunk's candidates: by distance, ties to the lower
    index, HNSW's -1 (nothing found) last; merged a few rows at a time as all at once."""
    from activeprop.distributed import knn

    rng = np.random.default_rng(0)
    pairs = []
    for chunk in range(3):
        squared = rng.integers(0, 4, size=(50, 4)).astype(np.float32)  # many ties
        found = rng.permutation(1000)[:200].reshape(50, 4) + 1000 * chunk
        found[rng.random(found.shape) < 0.2] = -1
        pairs.append((squared, found.astype(np.int64)))
    expected = []
    for row in range(50):
        candidates = sorted((float(squared[row, j]), int(found[row, j]))
                            for squared, found in pairs for j in range(4)
                            if found[row, j] >= 0)
        nearest = [index for _, index in candidates[:5]]
        expected.append(nearest + [-1] * (5 - len(nearest)))
    monkeypatch.setattr(knn, "MERGE_ROWS", 7)
    assert np.array_equal(knn.merge_candidates(5, *pairs), np.array(expected))


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_chunk_searched_against_its_own_index_reads_the_indexs_vectors(kind, monkeypatch):
    """Its own rows as queries (None) are the index's stored vectors, not the chunk read
    again: the same answer as the chunk's rows given, and no read of it."""
    from activeprop.distributed import knn

    X = np.random.default_rng(0).random((2000, 8), dtype=np.float32)
    index = knn.chunk_index(X, kind)
    given = knn.search_pair(X, index, 100, 10, kind)
    reads = []
    monkeypatch.setattr(knn, "rows_in", lambda part: reads.append(part) or part)
    found = knn.search_pair(None, index, 100, 10, kind)
    assert np.array_equal(found[0], given[0]) and np.array_equal(found[1], given[1])
    assert len(reads) == (1 if kind == "flat" else 0)  # (a flat index's own rows, once)
    assert np.array_equal(knn.stored_vectors(index if kind == "hnsw" else
                                             knn._searcher(index, 10, "flat")), X)


def test_a_chunks_answer_is_shifted_to_pool_indices():
    import faiss

    from activeprop.distributed.knn import search_pair

    rng = np.random.default_rng(1)
    X, queries = rng.random((300, 8), dtype=np.float32), rng.random((40, 8), dtype=np.float32)
    index = faiss.IndexFlatL2(8)
    index.add(X)
    squared, found = index.search(queries, 6)
    mine = search_pair(queries, X, 5000, 6)
    assert np.array_equal(mine[0], squared) and np.array_equal(mine[1], found + 5000)
    assert mine[1].dtype == np.int32  # the pool's indices fit: half the candidates' memory
    far = search_pair(queries, X, 2**31 - 100, 6)  # they would not
    assert far[1].dtype == np.int64 and np.array_equal(far[1], found + 2**31 - 100)


def test_a_chunks_search_holds_no_copies_of_its_answer(monkeypatch):
    """A lone worker's peak at 1,000,000 items came at the end of its search, while the
    chunk's index was held: the answer was copied three times over (to 64 bits, shifted,
    np.where's), 80 MB each. Now the answer is held once (4 + 4 B a candidate, shifted in
    place) beside faiss's 64-bit indices for one piece of queries. Measured on numpy's
    allocations, not timed."""
    import tracemalloc

    from activeprop.distributed import knn

    rng = np.random.default_rng(2)
    X, queries = rng.random((2000, 8), dtype=np.float32), rng.random((20000, 8), dtype=np.float32)
    knn.search_pair(queries[:10], X, 5000, 10)  # faiss imported before the count
    monkeypatch.setattr(knn, "QUERY_ROWS", 2000)
    tracemalloc.start()
    try:
        squared, found = knn.search_pair(queries, X, 5000, 10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    a_pieces_faiss_indices = 8 * 2000 * 10
    assert found.dtype == np.int32
    assert peak < 1.25 * (squared.nbytes + found.nbytes + a_pieces_faiss_indices), \
        (peak, squared.nbytes + found.nbytes)


def test_a_merge_holds_a_few_rows_of_candidates_at_a_time():
    """The merge's arrays (the candidates side by side, their order, the kept ones) were
    the chunk's size, several times its answer at once. Measured on numpy's allocations."""
    import tracemalloc

    from activeprop.distributed.knn import merge_candidates

    rng = np.random.default_rng(3)
    pair = (rng.random((500_000, 10), dtype=np.float32),
            rng.integers(0, 10**6, size=(500_000, 10)))
    tracemalloc.start()
    try:
        merged = merge_candidates(10, pair)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * merged.nbytes, (peak, merged.nbytes)


def test_the_workers_are_asked_of_the_scheduler_not_the_clients_cache(client, monkeypatch):
    """distributed's ``scheduler_info()`` now and then returns the client's cached copy
    without the workers (9 of 91,595 calls here, two workers running); a graph build that
    read it found no worker to place a block on (ZeroDivisionError)."""
    from activeprop.distributed.cluster import workers

    running = len(workers(client))
    monkeypatch.setattr(type(client), "scheduler_info", lambda self, **_: {"workers": {}})
    assert running >= 1 and len(workers(client)) == running
