"""What a person waits for in the labeler on a large pool: opening a project (first time,
then again), the first queue, and a label (saved, refit, answered), with and without
ground truth in the pool (without it the learning curve is cross-validated on the human
labels). Each pool is a fresh project in a temporary directory.

Run: python bench/bench_labeler.py [N ...]   (default: 20000 70000:28, i.e. 70,000 x 784)
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import machine

from activeprop.labeling import LabelingSession
from activeprop.project import init_project

LABELS = 15


def seconds(task):
    start = time.perf_counter()
    result = task()
    return time.perf_counter() - start, result


def label_times(session: LabelingSession, truth: np.ndarray) -> tuple[list[float], list[float]]:
    """Seconds to answer each of LABELS labels of queued items (the page's round trip
    without HTTP), and seconds to draw each queue before them (typical-margin's first
    queues read the pool's density, which the session computes in the background)."""
    times, queues = [], []
    for _ in range(LABELS):
        queue_seconds, queue = seconds(lambda: session.queue(5, "bench", []))
        queues.append(queue_seconds)
        item = queue[0].id
        times.append(seconds(lambda: session.add_label(item, str(truth[item])))[0])
        time.sleep(0.5)  # a person's pace: background work may use the pause
    return times, queues


def measure(spec: str) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        project = Path(directory) / "p"
        init_project(project, f"digits-aug:{spec}")
        first_open, session = seconds(lambda: LabelingSession(project))
        first_queue = seconds(lambda: session.queue(5, "bench", []))[0]
        with_truth, queues = label_times(session, session.pool.y.copy())
        reopen, session = seconds(lambda: LabelingSession(project))
        truth = session.pool.y.copy()
        session.pool.y[:] = -1  # as a pool nobody knows the classes of
        without_truth, _ = label_times(session, truth)
        session.wait_for_estimates()
        return {"pool": f"digits-aug:{spec}", "items": len(truth),
                "features": session.pool.X.shape[1], "model": session.settings["model"],
                "open": first_open, "reopen": reopen, "first queue": first_queue,
                "slowest queue": max(queues),
                "label (ground truth)": with_truth, "label (cross-validated)": without_truth}


def waits(seconds: list[float]) -> str:
    """The median and the slowest of the labels' answers, in ms (a person notices both)."""
    return f"{1e3 * statistics.median(seconds):.0f} / {1e3 * max(seconds):.0f}"


def main():
    print(machine())
    specs = sys.argv[1:] or ["20000", "70000:28"]
    print("| pool | model | open, first time (s) | open again (s) | first queue (s) | "
          "slowest later queue (s) | label, ground truth (median / slowest ms) | "
          "label, no ground truth (median / slowest ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in specs:
        row = measure(spec)
        print(f"| {row['items']:,} x {row['features']} | {row['model']} | {row['open']:.1f} | "
              f"{row['reopen']:.1f} | {row['first queue']:.2f} | {row['slowest queue']:.2f} | "
              f"{waits(row['label (ground truth)'])} | "
              f"{waits(row['label (cross-validated)'])} |", flush=True)


if __name__ == "__main__":
    main()
