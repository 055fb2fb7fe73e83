"""How much is the review panel worth? A simulated annotator who makes mistakes.

An active run with the recommended settings (Poisson learning on digits' 15-NN graph,
typical-margin, a typical start, diverse batches) on full digits, labeled by an annotator
who answers a random wrong class 5% of the time, up to LABELS labels. Then the review lists
the labels it doubts, most doubtful first. Reported per method, mean over the seeds:
precision among the first 10 listed (how many are real mistakes), recall (how many of the
mistakes are listed at all), and how many labels are listed.

"former rule" is the review before 2026-12-01: every label whose held-out probability is
below 0.5 and another class is preferred, least supported first.

Run: python bench/bench_review.py [--seeds 0-19] [--labels 100] [--error-rate 0.05]
     [--model poisson|spreading]
"""

import argparse
import time

import numpy as np
from machine import machine

from activeprop.datasets import UNLABELED, load_pool
from activeprop.experiments import RECOMMENDED
from activeprop.learner import ActiveLearner
from activeprop.models import make_model
from activeprop.review import held_out_proba, suspicious_labels
from activeprop.strategies import initial_items

SETTINGS = {k: v for k, v in RECOMMENDED.items()
            if k not in ("model", "strategy", "initial_strategy", "batch_mode")}


def noisy_run(pool, seed: int, n_labels: int, error_rate: float, model_name: str,
              batch: int = 10):
    """Labels from an active run whose annotator errs on ``error_rate`` of the items;
    returns the labels and the model (its graph is reused by the review)."""
    rng = np.random.default_rng(1000 + seed)
    n_classes = len(pool.class_names)

    def annotate(items):
        answers = pool.y[items].copy()
        wrong = rng.random(len(items)) < error_rate
        answers[wrong] = (answers[wrong] + rng.integers(1, n_classes, wrong.sum())) % n_classes
        return answers

    model = make_model(model_name, pool.X, **SETTINGS, alpha=0.9)
    graph = model.build_graph()
    start = initial_items("typical", pool.X, 10, seed, embedding=graph.spectral_embedding())
    labels = np.full(len(pool), UNLABELED, dtype=np.int64)
    labels[start] = annotate(start)
    learner = ActiveLearner(model, RECOMMENDED["strategy"], labels=labels, seed=seed,
                            batch_mode=RECOMMENDED["batch_mode"])
    while learner.n_labeled < n_labels:
        learner.fit()
        picked = learner.query(min(batch, n_labels - learner.n_labeled))
        learner.teach(picked, annotate(picked))
    return learner.labels.copy(), model


def former_rule(model, labels: np.ndarray, n_classes: int) -> list[dict]:
    """The review as it was: support below 0.5 and another class preferred."""
    items, proba = held_out_proba(model, labels, n_classes)
    support = proba[np.arange(len(items)), labels[items]]
    flagged = np.flatnonzero((support < 0.5) & (proba.argmax(axis=1) != labels[items]))
    return [{"item": int(items[i])} for i in flagged[np.argsort(support[flagged], kind="stable")]]


def score(flagged: list[dict], labels: np.ndarray, truth: np.ndarray) -> tuple:
    mistakes = set(np.flatnonzero((labels != UNLABELED) & (labels != truth)).tolist())
    listed = [entry["item"] for entry in flagged]
    top = listed[:10]
    precision = sum(item in mistakes for item in top) / len(top) if top else float("nan")
    recall = sum(item in mistakes for item in listed) / len(mistakes) if mistakes else 1.0
    return precision, recall, len(listed), len(mistakes)


def main() -> None:
    print(machine())
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0-19")
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--error-rate", type=float, default=0.05)
    parser.add_argument("--model", default="poisson", choices=("poisson", "spreading"))
    arguments = parser.parse_args()
    low, high = map(int, arguments.seeds.split("-"))
    pool = load_pool("digits")
    rules = {"slip chance >= 0.5": lambda m, y: suspicious_labels(m, y, len(pool.class_names)),
             "former rule": lambda m, y: former_rule(m, y, len(pool.class_names))}
    rows: dict[str, list] = {name: [] for name in rules}
    start = time.perf_counter()
    for seed in range(low, high + 1):
        labels, model = noisy_run(pool, seed, arguments.labels, arguments.error_rate,
                                  arguments.model)
        spare = make_model(arguments.model, pool.X, **SETTINGS, alpha=0.9, graph_cache=model.graph_cache)
        for name, rule in rules.items():
            rows[name].append(score(rule(spare, labels), labels, pool.y))
        print(f"seed {seed}: " + "; ".join(
            f"{name}: precision@10 {rows[name][-1][0]:.2f}, recall {rows[name][-1][1]:.2f}, "
            f"listed {rows[name][-1][2]}" for name in rules) +
            f"; mistakes {rows[name][-1][3]}", flush=True)
    print(f"\n{arguments.model}, {arguments.labels} labels, {arguments.error_rate:.0%} wrong, seeds "
          f"{arguments.seeds} ({time.perf_counter() - start:.0f} s)")
    print(f"{'rule':<20} {'precision@10':>12} {'recall':>7} {'listed':>7} {'mistakes':>9}")
    for name in rules:
        precision, recall, listed, mistakes = np.nanmean(np.array(rows[name], float), axis=0)
        print(f"{name:<20} {precision:>12.2f} {recall:>7.2f} {listed:>7.1f} {mistakes:>9.1f}")


if __name__ == "__main__":
    main()
