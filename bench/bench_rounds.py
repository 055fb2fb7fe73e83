"""Per-round and whole-process time of activeprop vs the scikit-learn refit loop.

Full digits (1,797 items, rbf, gamma 0.25, max_iter 20), 10 initial labels, 40 rounds of
5 by entropy. Both loops must give the same answers (queried items and accuracies);
the script checks that, then prints medians and ratios. Run: python bench/bench_rounds.py
"""

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from activeprop.experiments import SimulationConfig, simulate

sys.path.insert(0, str(Path(__file__).parent))
import sklearn_digits_loop  # noqa: E402
from machine import machine  # noqa: E402

ROUNDS, INITIAL, REPEATS = 40, 10, 5
HERE = Path(__file__).parent


def power_seconds():
    """What the one-off powers S .. S^4 of the exact iteration cost (bought at the second
    fit of a run announced long enough to pay for them)."""
    from activeprop.calibration import MachineCosts
    from activeprop.experiments import prepare_pool
    from activeprop.graph import build_graph
    from activeprop.propagation import PowerColumns

    pool = prepare_pool(SimulationConfig(subset=0))
    columns = PowerColumns(build_graph(pool.X, "rbf", gamma=0.25).operator("spreading"))
    columns.costs = MachineCosts(square_madd=0.0, thin_madd=0.0)  # buy them at once
    columns.iterates(np.eye(len(pool.X), 10), 0.2)
    return columns.build_seconds


def in_process():
    ours = simulate(SimulationConfig(subset=0, initial=INITIAL, rounds=ROUNDS))
    theirs = sklearn_digits_loop.run(0, INITIAL, ROUNDS)
    for mine, ref in zip(ours.rounds, theirs):
        assert mine.queried == ref["queried"], (mine.round, mine.queried, ref["queried"])
        assert abs(mine.accuracy - ref["accuracy"]) < 1e-12
    return ([r.seconds for r in ours.rounds], [r["seconds"] for r in theirs], ours.graph_seconds)


def whole_process(command):
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    ours_rounds, sk_rounds, graph = [], [], []
    powers = [power_seconds() for _ in range(REPEATS)]
    for _ in range(REPEATS):
        a, b, g = in_process()
        ours_rounds += a
        sk_rounds += b
        graph.append(g)
    bin_dir = Path(sys.executable).parent
    ours_cmd = [str(bin_dir / "activeprop"), "simulate", "--subset", "0", "--initial",
                str(INITIAL), "--rounds", str(ROUNDS)]
    sk_cmd = [sys.executable, str(HERE / "sklearn_digits_loop.py"), "0", str(INITIAL),
              str(ROUNDS)]
    # The same work as the scikit-learn loop (the stopping estimate is opt-in); and with the
    # estimate (held-out folds, isotonic calibration, agreement with the last round).
    ours_proc = [whole_process(ours_cmd) for _ in range(REPEATS)]
    ours_bare = [whole_process(ours_cmd + ["--estimate"]) for _ in range(REPEATS)]
    sk_proc = [whole_process(sk_cmd) for _ in range(REPEATS)]
    med = statistics.median
    rows = [
        ("per round (median, ms)", med(sk_rounds) * 1e3, med(ours_rounds) * 1e3),
        ("graph, once (median, ms)", 0.0, med(graph) * 1e3),
        ("powers S..S^4, once (median, ms)", 0.0, med(powers) * 1e3),
        (f"whole process, {ROUNDS} rounds (median, s)", med(sk_proc), med(ours_proc)),
        ("  the same, --estimate (median, s)", med(sk_proc), med(ours_bare)),
    ]
    print(machine())
    print(f"digits 1,797 x 64, rbf gamma=0.25, {INITIAL} initial labels, {ROUNDS} rounds of 5 "
          f"by entropy; {REPEATS} repeats; identical queries and accuracies checked")
    print(f"| {'measure':<40} | {'scikit-learn refit':>18} | {'activeprop':>10} | {'ratio':>6} |")
    print(f"|{'-' * 42}|{'-' * 20}|{'-' * 12}|{'-' * 8}|")
    for name, theirs, ours in rows:
        ratio = f"{theirs / ours:.1f}x" if theirs else ""
        print(f"| {name:<40} | {theirs:>18.3f} | {ours:>10.3f} | {ratio:>6} |")
    print(json.dumps({"rounds_ms": {"sklearn": med(sk_rounds) * 1e3,
                                    "activeprop": med(ours_rounds) * 1e3}}))


if __name__ == "__main__":
    main()
