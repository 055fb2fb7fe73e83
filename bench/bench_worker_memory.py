"""What a lone cluster worker holds for each item it owns (issue 19, item 8), where the target
allows its share of the features plus 1 GiB (about 425 B an item at 4,000,000 x 64 once the
features are let go).

Two parts, one process each:
* engine: a lone worker runs the single engine, so the single engine's arrays after the
  scale protocol's rounds (bench_scale.py's: k = 10, spreading alpha 0.2, 100 labels, then
  batches of 10 by entropy) on digits-aug:N, found by walking the learner's attributes,
  largest first, in bytes an item;
* blocks: the steps that build a lone block's graph (edges, locality order, symmetrised
  matrix, spreading operator) on synthetic neighbour lists of N items, each step's highest
  and still-held allocations (numpy's, through tracemalloc), in bytes an item.

Run: python bench/bench_worker_memory.py [N]   (default 300000)
"""

import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
from machine import machine
from scale_worker import BATCH, protocol_learner, protocol_model
from scipy import sparse

ROUNDS, SMALLEST_SHOWN = 4, 1 << 20


def engine_arrays(n_items: int) -> None:
    from activeprop.datasets import load_pool

    pool = load_pool(f"digits-aug:{n_items}")
    model = protocol_model(pool, "knn", alpha=0.2)
    model.build_graph()
    learner = protocol_learner(model, pool.y)
    for _ in range(ROUNDS):
        learner.fit()
        learner.predict()
        picked = learner.query(BATCH)
        learner.teach(picked, pool.y[picked])
    found = ArrayWalk()
    found.visit(learner, "learner")
    total = 0
    print("| bytes an item | dtype | shape | held by |\n|---|---|---|---|")
    for nbytes, dtype, shape, path in sorted(found.arrays.values(), key=lambda a: -a[0]):
        total += nbytes
        print(f"| {nbytes / n_items:.0f} | {dtype} | {shape} | {path} |")
    print(f"| **{total / n_items:.0f}** | | | all (the features included) |")


class ArrayWalk:
    """Every numpy array of at least SMALLEST_SHOWN bytes reachable from an object through
    attributes, containers and sparse matrices, once per buffer, with the first path that
    reached it."""

    def __init__(self):
        self.arrays, self._seen = {}, set()

    def visit(self, value, path: str) -> None:
        if id(value) in self._seen:
            return
        self._seen.add(id(value))
        if isinstance(value, np.ndarray):
            self._array(value, path)
        elif sparse.issparse(value):
            for part in ("data", "indices", "indptr"):
                self.visit(getattr(value, part), f"{path}.{part}")
        elif isinstance(value, dict):
            for key, item in value.items():
                self.visit(item, f"{path}[{key!r}]")
        elif isinstance(value, (list, tuple, set, frozenset)):
            for index, item in enumerate(value):
                self.visit(item, f"{path}[{index}]")
        else:
            for name, item in _attributes(value):
                self.visit(item, f"{path}.{name}")

    def _array(self, array: np.ndarray, path: str) -> None:
        owner = array
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        if owner.nbytes >= SMALLEST_SHOWN and id(owner) not in self.arrays:
            self.arrays[id(owner)] = (owner.nbytes, array.dtype, array.shape, path)


def _attributes(value):
    """An object's attributes, from its __dict__ and its slots."""
    yield from getattr(value, "__dict__", {}).items()
    for name in getattr(type(value), "__slots__", ()):
        if hasattr(value, name):
            yield name, getattr(value, name)


def block_steps(n_items: int) -> None:
    from activeprop.distributed import knn
    from activeprop.distributed.graph import normalized_off_diagonal, own_diagonal, row_sums

    rng = np.random.default_rng(0)
    # each item and 9 neighbours near it in the pool's order, as after the coarse layout
    lists = (np.arange(n_items)[:, None] + rng.integers(-500, 500, size=(n_items, 10))) \
        % n_items
    lists[:, 0] = np.arange(n_items)
    block_of, position = np.zeros(n_items, dtype=np.int64), np.arange(n_items)
    print("| step | highest (B an item) | held after (B an item) |\n|---|---|---|")

    def step(name, function, *arguments):
        tracemalloc.start()
        try:
            result = function(*arguments)
            held, highest = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        print(f"| {name} | {highest / n_items:.0f} | {held / n_items:.0f} |", flush=True)
        return result

    edges = step("edges", knn.edges_into, lists, 0, block_of, 0)
    order = step("locality order", knn.locality_order, 0, n_items, block_of, position, edges)
    position = np.empty(n_items, dtype=np.int64)
    position[order] = np.arange(n_items)
    matrix, _ = step("symmetrised matrix", knn.block_affinity, 0, order, block_of, position,
                     edges)
    del edges
    off_diagonal = row_sums(matrix) - own_diagonal(matrix)
    step("spreading operator", normalized_off_diagonal, matrix, off_diagonal)
    print(f"\n{matrix.nnz / n_items:.1f} entries a row")


def main() -> None:
    if sys.argv[1:2] == ["--part"]:
        part, n_items = sys.argv[2], int(sys.argv[3])
        (engine_arrays if part == "engine" else block_steps)(n_items)
        return
    n_items = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    print(machine())
    for part, title in (("engine", "The single engine's arrays after the rounds"),
                        ("blocks", "Building a lone block's graph (synthetic lists)")):
        print(f"\n{title}, {n_items:,} items\n", flush=True)
        subprocess.run([sys.executable, str(Path(__file__)), "--part", part, str(n_items)],
                       check=True)


if __name__ == "__main__":
    main()
