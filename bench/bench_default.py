"""Is the recommended setting no worse than a plain entropy loop, beyond digits?

Recommended: Poisson learning on a 15-NN graph (these sets are narrower than 256), typical-margin (margin sampling whose first
batch weights by density), a typical start, diverse batches; "plain margin" is the same with
margin from the first batch (the recommended strategy before 2026-11-28).
Plain: the same model with entropy, the first items as start and top-k batches; and the
scikit-learn example's model (rbf, gamma 0.25) with entropy, for reference. The two
"class priors" rows are the recommended settings with the classes' sizes declared
(`--class-priors`): the true shares, as a user who knows them would give them, and
"uniform", which is wrong for the unbalanced wine and breast-cancer (what a wrong prior
costs). 10 initial labels, batches of 5, accuracy on the unlabeled items, mean over seeds 0-4.
Run: python bench/bench_default.py
"""

import warnings

import numpy as np
from machine import machine

from activeprop.datasets import load_pool
from activeprop.experiments import RECOMMENDED, SimulationConfig, simulate

GRAPH = dict(kernel="knn", solver="cg", max_iter=3000, rtol=1e-4, n_neighbors=15)
SETTINGS = {
    "recommended": RECOMMENDED,
    "recommended, plain margin": dict(RECOMMENDED, strategy="margin"),
    "same model, plain entropy": dict(GRAPH, model="poisson", strategy="entropy"),
    "same model, random": dict(GRAPH, model="poisson", strategy="random"),
    "example model, entropy": dict(),
}
PRIORS = {"recommended + true shares": "true", "recommended + uniform": "uniform"}
DATASETS = {"digits": 19, "digits-aug:5000": 19, "iris": 6, "wine": 6, "breast-cancer": 10}


def curve(dataset: str, rounds: int, settings: dict) -> list[float]:
    runs = []
    for seed in range(5):
        config = SimulationConfig(dataset=dataset, subset=0, initial=10, batch=5,
                                  rounds=rounds, seed=seed, estimate=False, **settings)
        runs.append([r.accuracy for r in simulate(config).rounds])
    return list(np.mean(runs, axis=0))


def main():
    print(machine())
    warnings.simplefilter("ignore")
    for dataset, rounds in DATASETS.items():
        counts = [10 + 5 * r for r in range(rounds)]
        shown = [i for i, n in enumerate(counts) if n in (10, 20, 30, 50, 100) or i == rounds - 1]
        print(f"\n{dataset}: accuracy at " + ", ".join(str(counts[i]) for i in shown) + " labels")
        counts_per_class = np.bincount(load_pool(dataset).y)
        true_shares = ",".join(str(count) for count in counts_per_class)
        rows = {**SETTINGS, **{name: dict(SETTINGS["recommended"], class_priors=(
            true_shares if prior == "true" else prior)) for name, prior in PRIORS.items()}}
        for name, settings in rows.items():
            values = curve(dataset, rounds, settings)
            print(f"  {name:28s} " + "  ".join(f"{values[i]:.3f}" for i in shown) +
                  f"   mean over the curve {np.mean(values):.3f}", flush=True)


if __name__ == "__main__":
    main()
