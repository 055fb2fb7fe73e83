"""Graph build, per-round time, peak memory and accuracy from 1,797 to 1,000,000 items,
activeprop (faiss kNN graph built once, warm-started cg) side by side with scikit-learn's
LabelSpreading (rbf where it fits in memory, knn otherwise), in the same run.

Protocol: 100 initial labels (the first 100 of the shuffled pool), batches of 10 by entropy,
k = 10 neighbours; accuracy on the unlabeled items at 100 labels. scikit-learn runs with its
LabelSpreading defaults (alpha = 0.2, max_iter = 30); activeprop runs with alpha = 0.2 (the
same model, converged) and 0.9 (its recommended setting), cg to a relative residual of 1e-4.
scikit-learn
refits from scratch every round, so its round time is one fit. Each configuration runs in its
own process (peak memory = that process's maximum resident set).

Run: python bench/bench_scale.py [--quick]   (--quick: up to 70,000 x 64)
     python bench/bench_scale.py --growth [--baseline REV]
(--growth: activeprop alone at 20,000 / 70,000 / 300,000 / 1,000,000 x 64 and 70,000 x 784,
alpha 0.2 and 0.9, ten rounds each, to see how a round's cost grows with the pool;
--baseline REV: the same configurations, in the same run, with the code of git revision
REV (checked out into a temporary worktree), and the ratio of the round times.)
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = Path(__file__).with_name("scale_worker.py")
sys.path.insert(0, str(WORKER.parent))
GRID = [
    # (dataset, activeprop kernel, scikit-learn kernel or None when it cannot run here)
    ("digits", "knn", "rbf"),
    ("digits", "knn", "knn"),
    ("digits-aug:20000", "knn", "rbf"),
    ("digits-aug:20000", "knn", "knn"),
    ("digits-aug:70000", "knn", "knn"),
    ("digits-aug:70000:28", "knn", "knn"),
    ("digits-aug:1000000", "knn", None),
]


GROWTH = ["digits-aug:20000", "digits-aug:70000", "digits-aug:300000", "digits-aug:1000000",
          "digits-aug:70000:28"]


def run(system: str, dataset: str, kernel: str, rounds: int, alpha: float = 0.2,
        source: Path | None = None) -> dict:
    """One configuration in its own process; with ``source``, activeprop's code is taken
    from that checkout's src/ instead of the installed one."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source / "src")
    done = subprocess.run([sys.executable, str(WORKER), system, dataset, kernel, str(rounds),
                           str(alpha)], capture_output=True, text=True, env=env)
    if done.returncode:
        return {"system": system, "dataset": dataset, "kernel": kernel,
                "error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def row(result: dict) -> str:
    if "error" in result:
        return f"| {result['dataset']} | {result['system']} {result['kernel']} | error: " \
               f"{result['error']} | | | | |"
    graph = result.get("graph") or {}
    graph_text = "rebuilt every fit" if result["graph_seconds"] is None else \
        f"{result['graph_seconds']:.1f} s ({graph.get('backend')}" + \
        (f", recall {graph['recall']:.3f}" if graph.get("recall") else "") + ")"
    return (f"| {result['n_items']:,} x {result['n_features']} | {result['system']} "
            f"{result['kernel']}, alpha {result['alpha']:g} | {graph_text} | "
            f"{result['round_ms']:,.0f} | "
            f"{result['peak_mb']:,.0f} | {result['accuracy_at_100']:.3f} | "
            f"{result['unreached']:,} |")


def growth(baseline: str | None) -> None:
    """Round time against pool size, today's code beside ``baseline``'s (a git revision)."""
    from machine import machine

    print(machine())
    print("| pool | alpha | graph (once) | round ms | median round ms, baseline | ratio | "
          "peak MB | accuracy at 100 labels |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        source = None
        if baseline:
            source = Path(scratch) / "baseline"
            subprocess.run(["git", "worktree", "add", "--detach", str(source), baseline],
                           check=True, capture_output=True, cwd=WORKER.parent)
        try:
            for dataset in GROWTH:
                for alpha in (0.2, 0.9):
                    ours = run("activeprop", dataset, "knn", 10, alpha)
                    theirs = run("activeprop", dataset, "knn", 10, alpha, source) if source \
                        else None
                    print(growth_row(ours, theirs), flush=True)
        finally:
            if source is not None:
                subprocess.run(["git", "worktree", "remove", "--force", str(source)],
                               capture_output=True, cwd=WORKER.parent)


def growth_row(ours: dict, theirs: dict | None) -> str:
    if "error" in ours:
        return f"| {ours['dataset']} | {ours.get('alpha')} | error: {ours['error']} |"
    baseline = "" if not theirs or "error" in theirs else f"{theirs['round_ms']:,.0f}"
    ratio = f"{theirs['round_ms'] / ours['round_ms']:.1f}x" if baseline else ""
    return (f"| {ours['n_items']:,} x {ours['n_features']} | {ours['alpha']:g} | "
            f"{ours['graph_seconds']:.1f} s ({ours['graph'].get('backend')}) | "
            f"{ours['round_ms']:,.0f} | {baseline} | {ratio} | {ours['peak_mb']:,.0f} | "
            f"{ours['accuracy_at_100']:.3f} |")


def main():
    if "--growth" in sys.argv:
        at = sys.argv.index("--baseline") if "--baseline" in sys.argv else None
        growth(sys.argv[at + 1] if at is not None else None)
        return
    quick = "--quick" in sys.argv
    print("| pool | system | graph (once) | round ms | peak MB | accuracy at 100 labels "
          "| items left empty |")
    print("|---|---|---|---|---|---|---|")
    seen = set()
    for dataset, ours, theirs in GRID:
        if quick and dataset in ("digits-aug:70000:28", "digits-aug:1000000"):
            continue
        if dataset not in seen:
            seen.add(dataset)
            for alpha in (0.2, 0.9):
                print(row(run("activeprop", dataset, ours, 6, alpha)), flush=True)
        if theirs is not None:
            print(row(run("sklearn", dataset, theirs, 1 if "70000" in dataset else 2)),
                  flush=True)
        elif not quick:
            print(f"| {dataset} | sklearn | not run: an exact kNN graph of a million items "
                  f"on every fit takes hours here | | | | |", flush=True)


if __name__ == "__main__":
    main()
