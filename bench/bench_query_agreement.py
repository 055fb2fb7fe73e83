"""Do the local updates pick the queries a converged solve picks? (issue 18, item 4)

The scale benchmark's protocol: ``digits-aug:N[:SIDE]``, kNN graph (10 neighbours), label
spreading (alpha 0.2) solved at rtol 1e-4, 100 starting labels, 20 rounds of 10 queries by
entropy. Each round, the learner's queries (local pushes, warm-started global solves when
a push does not pay) are compared with those of

- a cold global solve at rtol 1e-4 on the same labels, and
- a solve at rtol 1e-10 whose far rows are filled below the floor a solve at 1e-4 uses
  (``1e-4 * max score``): what the tool would answer at this tolerance with no error.

Prints the rounds that updated locally, how many rounds' queries equal each reference, and
the learner's median fit milliseconds.

With ``--global`` the learner never pushes: every round is a warm-started global solve.

Run: python bench/bench_query_agreement.py [digits-aug:70000:28] [--global]
"""

import statistics
import sys
import time

import numpy as np
from machine import machine

from activeprop import propagation
from activeprop.experiments import SimulationConfig, prepare_pool
from activeprop.learner import ActiveLearner

ROUNDS, BATCH, INITIAL, RTOL = 20, 10, 100, 1e-4
solve_fill = propagation._fill_spreading


def fill_at_the_tolerance_floor(graph, X, reached, rtol, warm, moved):
    """Spreading's fill of a solve at RTOL (its floor), whatever the solve's own
    tolerance."""
    return solve_fill(graph, X, reached, max(rtol, RTOL), warm, moved)


def queries(pool, graph, labels, rtol, same_floor=False):
    """The entropy top BATCH of a cold solve at ``rtol`` on ``graph``."""
    propagation._fill_spreading = fill_at_the_tolerance_floor if same_floor else solve_fill
    try:
        learner = ActiveLearner(model(pool, rtol, graph), "entropy", labels=labels.copy())
        return set(learner.query(BATCH).tolist())
    finally:
        propagation._fill_spreading = solve_fill


def model(pool, rtol, graph=None):
    config = SimulationConfig(kernel="knn", n_neighbors=10, solver="cg", max_iter=5000,
                              alpha=0.2, rtol=rtol)
    built = config.model_for(pool)
    if graph is not None:
        built.graph_cache[built._graph_recipe()] = graph
    built.build_graph()
    return built


def main() -> None:
    arguments = [argument for argument in sys.argv[1:] if argument != "--global"]
    dataset = arguments[0] if arguments else "digits-aug:70000:28"
    if "--global" in sys.argv:
        propagation.PUSH_BUDGET = 0.0  # a push reading no graph entry gives up at once
    print(machine())
    pool = prepare_pool(SimulationConfig(dataset=dataset, subset=0, initial=INITIAL))
    learning = model(pool, RTOL)
    graph = learning.graph
    labels = np.full(len(pool.y), -1)
    labels[:INITIAL] = pool.y[:INITIAL]
    learner = ActiveLearner(learning, "entropy", labels=labels)
    local = same_cold = same_exact = 0
    fits = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        learner.fit()
        fits.append(time.perf_counter() - start)
        picked = set(learner.query(BATCH).tolist())
        local += learning.labeling.n_iter_ == 0
        same_cold += picked == queries(pool, graph, learner.labels, RTOL)
        same_exact += picked == queries(pool, graph, learner.labels, 1e-10, same_floor=True)
        new = np.array(sorted(picked))
        learner.teach(new, pool.y[new])
    print(f"{dataset}: {ROUNDS} rounds, {local} updated locally; queries equal a cold solve's "
          f"at {RTOL:g} in {same_cold}, an exact solve's at the same floor in {same_exact}; "
          f"fit median {1e3 * statistics.median(fits[1:]):.0f} ms")


if __name__ == "__main__":
    main()
