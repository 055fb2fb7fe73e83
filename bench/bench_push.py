"""How long the forward push of one new label takes inside a refit (issue 18, item 4).

A kNN graph of ``digits-aug:N`` (HNSW, 10 neighbours), label spreading solved by warm
conjugate gradients at rtol 1e-4 from 100 random labels; then REFITS refits, each adding
one label, as the labeler does. Prints each refit's milliseconds and, for every push, its
milliseconds, whether it met the tolerance and the graph entries it read.

Run: python bench/bench_push.py [N] [--alphas 0.2,0.9]
"""

import argparse
import time

import numpy as np
from machine import machine

from activeprop import push
from activeprop.datasets import load_pool
from activeprop.graph import build_knn_graph
from activeprop.propagation import GraphLabeling

REFITS = 8


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=300_000)
    parser.add_argument("--alphas", default="0.2,0.9")
    arguments = parser.parse_args()
    print(machine())
    pool = load_pool(f"digits-aug:{arguments.n}")
    graph = build_knn_graph(pool.X, 10, backend="hnsw")
    pushes = []
    untimed = push.push_residual

    def timed(*args, **options):  # the solver imports push_residual when it runs
        start = time.perf_counter()
        outcome = untimed(*args, **options)
        pushes.append((time.perf_counter() - start, *outcome))
        return outcome

    push.push_residual = timed
    for alpha in map(float, arguments.alphas.split(",")):
        rng = np.random.default_rng(0)
        y = np.full(len(pool.y), -1)
        first = rng.choice(len(y), 100, replace=False)
        y[first] = pool.y[first]
        model = GraphLabeling("spreading", alpha=alpha, max_iter=2000, tol=1e-3, solver="cg",
                              rtol=1e-4, warm_start=True).fit(graph, y.copy())
        pushes.clear()
        refits = []
        for _ in range(REFITS):
            new = rng.choice(np.flatnonzero(y < 0), 1)
            y[new] = pool.y[new]
            start = time.perf_counter()
            model.fit(graph, y.copy(), model.warm_)
            refits.append(time.perf_counter() - start)
        print(f"alpha {alpha}: refits (ms) {[round(1e3 * s) for s in refits]}")
        for seconds, met, edges, _ in pushes:
            print(f"  push {1e3 * seconds:.0f} ms, met {met}, {edges:,} graph entries read")


if __name__ == "__main__":
    main()
