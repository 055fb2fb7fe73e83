"""Per-round and whole-process time of activeprop vs its peers' loops doing the same work.

Full digits (1,797 items, rbf, gamma 0.25, max_iter 20), 10 initial labels, 40 rounds of
5 by entropy. The peers: a plain scikit-learn loop refitting LabelSpreading every round
(bench/sklearn_digits_loop.py) and the same loop written with scikit-activeml 1.0.1
(bench/skactiveml_digits_loop.py). All must give the same answers (queried items and
accuracies); the script checks that, then prints medians and ratios, with the machine
(CPU model, its vector flags, BLAS). Run: python bench/bench_rounds.py
(needs the bench extra: pip install -e '.[bench]')
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
import skactiveml_digits_loop  # noqa: E402
import sklearn_digits_loop  # noqa: E402
from machine import machine  # noqa: E402

ROUNDS, INITIAL, REPEATS = 40, 10, 5
HERE = Path(__file__).parent


def power_seconds():
    """What the one-off power S^2 of the exact iteration costs (bought at the second
    fit of a run announced long enough to pay for them)."""
    from activeprop.calibration import MachineCosts
    from activeprop.experiments import prepare_pool
    from activeprop.graph import build_graph
    from activeprop.propagation import PowerColumns

    pool = prepare_pool(SimulationConfig(subset=0))
    columns = PowerColumns(build_graph(pool.X, "rbf", gamma=0.25).operator("spreading"))
    columns.powers.costs = MachineCosts(square_madd=0.0, thin_madd=0.0)  # buy them at once
    columns.iterates(np.eye(len(pool.X), 10), 0.2)
    return columns.powers.build_seconds


def in_process():
    ours = simulate(SimulationConfig(subset=0, initial=INITIAL, rounds=ROUNDS))
    theirs = sklearn_digits_loop.run(0, INITIAL, ROUNDS)
    skal = skactiveml_digits_loop.run(0, INITIAL, ROUNDS)
    assert len(ours.rounds) == len(theirs) == len(skal) == ROUNDS
    for mine, ref, other in zip(ours.rounds, theirs, skal):
        assert mine.queried == ref["queried"], (mine.round, mine.queried, ref["queried"])
        assert sorted(mine.queried) == sorted(other["queried"]), (mine.round, other)
        assert abs(mine.accuracy - ref["accuracy"]) < 1e-12
        assert abs(mine.accuracy - other["accuracy"]) < 1e-12
    return ([r.seconds for r in ours.rounds], [r["seconds"] for r in theirs],
            [r["seconds"] for r in skal], ours.graph_seconds)


def whole_process(command):
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    ours_rounds, sk_rounds, skal_rounds, graph = [], [], [], []
    powers = [power_seconds() for _ in range(REPEATS)]
    for _ in range(REPEATS):
        a, b, c, g = in_process()
        ours_rounds += a
        sk_rounds += b
        skal_rounds += c
        graph.append(g)
    bin_dir = Path(sys.executable).parent
    ours_cmd = [str(bin_dir / "activeprop"), "simulate", "--subset", "0", "--initial",
                str(INITIAL), "--rounds", str(ROUNDS), "--json"]
    peer_args = ["0", str(INITIAL), str(ROUNDS), "--json"]
    sk_cmd = [sys.executable, str(HERE / "sklearn_digits_loop.py"), *peer_args]
    skal_cmd = [sys.executable, str(HERE / "skactiveml_digits_loop.py"), *peer_args]
    # The same work as the peers' loops (the stopping estimate is opt-in); and with the
    # estimate (held-out folds, isotonic calibration, agreement with the last round).
    ours_proc = [whole_process(ours_cmd) for _ in range(REPEATS)]
    ours_estimate = [whole_process(ours_cmd + ["--estimate"]) for _ in range(REPEATS)]
    sk_proc = [whole_process(sk_cmd) for _ in range(REPEATS)]
    skal_proc = [whole_process(skal_cmd) for _ in range(REPEATS)]
    med = statistics.median
    rows = [
        ("per round (median, ms)", med(sk_rounds) * 1e3, med(skal_rounds) * 1e3,
         med(ours_rounds) * 1e3),
        ("graph, once (median, ms)", 0.0, 0.0, med(graph) * 1e3),
        ("power S^2, once (median, ms)", 0.0, 0.0, med(powers) * 1e3),
        (f"whole process, {ROUNDS} rounds (median, s)", med(sk_proc), med(skal_proc),
         med(ours_proc)),
        ("  the same, --estimate (median, s)", med(sk_proc), med(skal_proc),
         med(ours_estimate)),
    ]
    print(machine())
    print(f"digits 1,797 x 64, rbf gamma=0.25, {INITIAL} initial labels, {ROUNDS} rounds of 5 "
          f"by entropy; {REPEATS} repeats; identical queries and accuracies checked")
    print(f"| {'measure':<40} | {'scikit-learn':>12} | {'scikit-activeml':>15} | "
          f"{'activeprop':>10} | {'vs sklearn':>10} | {'vs skactiveml':>13} |")
    print(f"|{'-' * 42}|{'-' * 14}|{'-' * 17}|{'-' * 12}|{'-' * 12}|{'-' * 15}|")
    for name, sk, skal, ours in rows:
        ratios = [f"{peer / ours:.1f}x" if peer else "" for peer in (sk, skal)]
        print(f"| {name:<40} | {sk:>12.3f} | {skal:>15.3f} | {ours:>10.3f} | "
              f"{ratios[0]:>10} | {ratios[1]:>13} |")
    print(json.dumps({"rounds_ms": {"sklearn": med(sk_rounds) * 1e3,
                                    "skactiveml": med(skal_rounds) * 1e3,
                                    "activeprop": med(ours_rounds) * 1e3},
                      "process_s": {"sklearn": med(sk_proc), "skactiveml": med(skal_proc),
                                    "activeprop": med(ours_proc)}}))


if __name__ == "__main__":
    main()
