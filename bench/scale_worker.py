"""One system on one pool size; prints one JSON line. Run by bench_scale.py, one process per
configuration so that peak memory is measured per configuration.

Usage: python bench/scale_worker.py {activeprop|sklearn} DATASET KERNEL ROUNDS [ALPHA]
"""

import json
import resource
import statistics
import sys
import time
import warnings

import numpy as np

from activeprop.experiments import SimulationConfig, prepare_pool
from activeprop.learner import ActiveLearner

INITIAL, BATCH, NEIGHBORS, GAMMA = 100, 10, 10, 0.25


def peak_megabytes() -> float:
    """This process's peak resident memory since it started its program. Linux keeps
    ``ru_maxrss`` across fork and exec, so a Dask worker a LocalCluster spawned reported the
    client's peak when that was higher (a worker whose own peak was 63 MB read 1,084 MB
    under a client holding 1 GiB); the kernel's high-water mark ``VmHWM`` starts afresh."""
    try:
        return status_megabytes("VmHWM")
    except OSError:  # not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def status_megabytes(field: str) -> float:
    """A memory figure of this process that Linux's ``/proc/self/status`` gives in kB
    (``VmHWM``: its high-water mark, ``VmRSS``: resident now), in MiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status
                    if line.startswith(f"{field}:"))


def protocol_model(pool, kernel: str, alpha: float):
    """The protocol's spreading model of ``pool`` (its graph not built yet)."""
    config = SimulationConfig(kernel=kernel, n_neighbors=NEIGHBORS, gamma=GAMMA, solver="cg",
                              max_iter=500, alpha=alpha, rtol=1e-4)
    return config.model_for(pool)


def protocol_learner(model, y: np.ndarray) -> ActiveLearner:
    """The protocol's learner on ``model``: the first INITIAL items labeled, queries by
    entropy."""
    labels = np.full(len(y), -1)
    labels[:INITIAL] = y[:INITIAL]
    return ActiveLearner(model, "entropy", labels=labels)


def run_activeprop(pool, kernel: str, rounds: int, alpha: float) -> dict:
    model = protocol_model(pool, kernel, alpha)
    graph = model.build_graph()
    result = timed_rounds(model, pool.y, rounds)
    return {"graph_seconds": graph.build_seconds, "graph": graph.describe(),
            "round_ms": result["round_ms"], "accuracy_at_100": result["accuracy_at_100"],
            "unreached": int(model.unreached_.sum())}


def timed_rounds(model, y: np.ndarray, rounds: int) -> dict:
    """The protocol's rounds (the first INITIAL items labeled, batches of BATCH by entropy)
    on ``model``: median round time (fit, predictions, query) from the second round on,
    accuracy on the unlabeled items at the first round, the solver's iterations and, for a
    cluster's model, its products through the halo."""
    learner = protocol_learner(model, y)
    seconds, accuracy, iterations, products = [], None, 0, 0
    for index in range(rounds):
        start = time.perf_counter()
        learner.fit()
        predicted = learner.predict()
        picked = learner.query(BATCH)
        seconds.append(time.perf_counter() - start)
        iterations += getattr(getattr(model, "labeling", model), "n_iter_", 0)
        products += getattr(model, "n_products_", 0)
        if index == 0:
            unlabeled = ~learner.labeled
            accuracy = float(np.mean(predicted[unlabeled] == y[unlabeled]))
        learner.teach(picked, y[picked])
    return {"round_ms": 1e3 * statistics.median(seconds[1:] or seconds),
            "accuracy_at_100": accuracy, "cg_iterations": iterations,
            "halo_products": products}


def run_sklearn(pool, kernel: str, rounds: int, alpha: float) -> dict:
    from sklearn.semi_supervised import LabelSpreading

    y = np.full(len(pool), -1)
    y[:INITIAL] = pool.y[:INITIAL]
    seconds = []
    for _ in range(rounds):  # every round of the example's loop is a full refit
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = LabelSpreading(kernel=kernel, gamma=GAMMA, n_neighbors=NEIGHBORS,
                                   alpha=alpha)
            model.fit(pool.X, y)
        seconds.append(time.perf_counter() - start)
    unlabeled = y == -1
    empty = model.label_distributions_.sum(axis=1) == 0
    return {"graph_seconds": None, "round_ms": 1e3 * statistics.median(seconds),
            "accuracy_at_100": float(np.mean(model.transduction_[unlabeled] == pool.y[unlabeled])),
            "unreached": int(empty.sum())}


if __name__ == "__main__":
    system, dataset, kernel, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    alpha = float(sys.argv[5]) if len(sys.argv) > 5 else 0.2
    pool = prepare_pool(SimulationConfig(dataset=dataset, subset=0, initial=INITIAL))
    runner = run_activeprop if system == "activeprop" else run_sklearn
    result = runner(pool, kernel, rounds, alpha)
    result.update(system=system, dataset=dataset, kernel=kernel, alpha=alpha, n_items=len(pool),
                  n_features=pool.X.shape[1], peak_mb=peak_megabytes())
    print(json.dumps(result))
