"""Where each label's wait goes: bench/bench_labeler.py's run (the same protocol, on one
pool), with every label's answer split into the steps of its refit.

The steps are the engine's functions named in :data:`STEPS`, timed on the thread that
answers the label (the background's deeper solve and cache writes are not counted, except
as the wait for them: ``wait for deeper solve``). Steps nest (``fill`` holds ``kept fill:
update`` or ``refill``); a label's ``other`` is its answer less the top-level steps.

Run: python bench/bench_labeler_steps.py [N]   (default 1000000: 1,000,000 x 64; a
digits-aug pool spec, as bench_labeler.py's)
"""

import statistics
import sys
import threading
import time
from collections import defaultdict

import bench_labeler
from machine import machine

from activeprop import fill_parents, kept_fill, labeling, propagation

# (object, attribute, step name, top level: counted against the label's answer)
STEPS = [
    (labeling.LabelingSession, "_take_deeper_solve", "wait for deeper solve", True),
    (propagation, "_solve_spreading", "solve", True),
    (propagation, "solve_poisson", "solve", True),
    (propagation, "_push_new_labels", "solve: push", False),
    (propagation, "conjugate_gradient", "solve: conjugate gradients", False),
    (propagation, "_fill_spreading", "fill", True),
    (kept_fill.KeptFill, "update", "fill: kept fill update", False),
    (kept_fill.KeptFill, "refill", "fill: refill", False),
    (fill_parents.FillParents, "build", "fill: refill's parents", False),
    (fill_parents.FillParents, "weigh", "fill: refill's weighing", False),
    (kept_fill.KeptFill, "fill", "fill: fresh", False),
    (propagation.GraphLabeling, "_pool_distributions", "distributions", True),
    (labeling.LabelingSession, "_ground_truth_point", "accuracy against ground truth", True),
    (labeling, "mean_confidence", "mean confidence", True),
]

labels: list[dict] = []  # per label answered: step -> seconds ("answer": the whole)
answering = threading.Event()  # set while the main thread answers a label


def timed(function, step: str):
    def wrapper(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread() or \
                not answering.is_set():
            return function(*args, **kwargs)
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            labels[-1][step] += time.perf_counter() - start
    return wrapper


def answered(add_label):
    def wrapper(*args, **kwargs):
        labels.append(defaultdict(float))
        answering.set()
        start = time.perf_counter()
        try:
            return add_label(*args, **kwargs)
        finally:
            labels[-1]["answer"] = time.perf_counter() - start
            answering.clear()
    return wrapper


def install() -> None:
    for owner, name, step, _ in STEPS:
        setattr(owner, name, timed(getattr(owner, name), step))
    session = labeling.LabelingSession
    session.add_label = answered(session.add_label)


def report(rows: list[dict], title: str) -> None:
    names = list(dict.fromkeys(step for _, _, step, _ in STEPS))  # (one "solve" per model)
    top = list(dict.fromkeys(step for _, _, step, top in STEPS if top))
    for row in rows:
        row["other"] = row["answer"] - sum(row[step] for step in top)
    columns = ["answer", *[n for n in names if any(row[n] for row in rows)], "other"]
    print(f"\n{title} (ms)\n")
    print("| label | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for i, row in enumerate(rows, 1):
        print(f"| {i} | " + " | ".join(f"{1e3 * row[c]:.0f}" for c in columns) + " |")
    print("| median | " + " | ".join(
        f"{1e3 * statistics.median(row[c] for row in rows):.0f}" for c in columns) + " |")


def main():
    print(machine())
    install()
    result = bench_labeler.measure(sys.argv[1] if len(sys.argv) > 1 else "1000000")
    n = bench_labeler.LABELS
    print(f"\n{result['items']:,} x {result['features']}, {result['model']}")
    report(labels[:n], "Labels with ground truth in the pool, a fresh project")
    report(labels[n:2 * n], "Labels without ground truth, the project opened again")


if __name__ == "__main__":
    main()
