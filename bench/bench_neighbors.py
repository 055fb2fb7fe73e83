"""How many neighbours should the recommended graph have? The real-data suite, per k.

Runs `--recommended` with each of the given neighbour counts on bench_real.py's datasets
(the same protocol: the pool shuffled per seed, batches of 5, accuracy on the unlabeled
items at 20 / 50 / 100 labels), and each count against the reference count per seed
(Wilcoxon signed-rank). Small tables (iris, wine, breast-cancer) can be added by name.
This is how recommended_neighbors was chosen (docs/benchmarks.md, 2026-12-02).

Run: python bench/bench_neighbors.py [--seeds 0-9] [--neighbors 5,7,10,15] [--reference 15]
     [--datasets mnist-5k,mnist-5k-hog,digits,penguins,rotten-tomatoes,iris]
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_real import CHECKPOINTS, activeprop_run, datasets
from machine import machine
from scipy.stats import wilcoxon

from activeprop.datasets import load_pool
from activeprop.experiments import RECOMMENDED

TABLES = ("iris", "wine", "breast-cancer")


def suite(names: list[str]) -> dict:
    """name -> (pool, label budget): bench_real's sets and small tables."""
    out = datasets([n for n in names if n not in TABLES])
    for name in (n for n in names if n in TABLES):
        out[name] = (load_pool(name), 40)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--neighbors", default="5,7,10,15")
    parser.add_argument("--reference", type=int, default=15)
    parser.add_argument("--datasets", default="mnist-5k,mnist-5k-hog,digits,penguins,"
                                              "rotten-tomatoes,iris")
    arguments = parser.parse_args()
    low, high = map(int, arguments.seeds.split("-"))
    counts = [int(k) for k in arguments.neighbors.split(",")]
    print(machine())
    for name, (pool, budget) in suite(arguments.datasets.split(",")).items():
        marks = [m for m in CHECKPOINTS if m < budget] + [budget]
        print(f"\n{name}: {len(pool)} x {pool.X.shape[1]}, seeds {arguments.seeds}; "
              f"accuracy at {' / '.join(map(str, marks))} labels")
        per_k = {}
        for k in sorted(set(counts) | {arguments.reference}):
            runs = [activeprop_run(pool, seed, {**RECOMMENDED, "n_neighbors": k}, 5, budget)[0]
                    for seed in range(low, high + 1)]
            per_k[k] = np.array([[run[m] for m in marks] for run in runs])
        for k, accuracy in per_k.items():
            line = f"  k={k:<3} " + " / ".join(f"{v:.3f}" for v in accuracy.mean(0))
            if k != arguments.reference:
                line += f"   against k={arguments.reference}: " + ", ".join(
                    _paired(accuracy[:, c] - per_k[arguments.reference][:, c])
                    for c in range(len(marks)))
            print(line, flush=True)


def _paired(difference: np.ndarray) -> str:
    p = wilcoxon(difference).pvalue if np.any(difference != 0) else 1.0
    return (f"{difference.mean():+.3f} ({(difference > 0).sum()} better / "
            f"{(difference < 0).sum()} worse, p {p:.2g})")


if __name__ == "__main__":
    main()
