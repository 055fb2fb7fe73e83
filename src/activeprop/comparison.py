"""Compare strategies and models over repeated, paired simulated runs.

Repeat ``r`` shuffles the dataset with ``RandomState(seed + r)`` and starts from the first
``initial`` items of that shuffle; every model x strategy of the grid runs on that same
pool and starting set, so differences between strategies are paired by repeat. Repeats run
in parallel (joblib); the results do not depend on the number of jobs.
"""

from __future__ import annotations

import csv
import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from joblib import Parallel, delayed

from . import metrics
from .errors import UserError
from .experiments import SimulationConfig, default_evaluation, prepare_pool, run_rounds
from .strategies import get_strategy

CSV_COLUMNS = ("strategy", "model", "repeat", "round", "n_labeled", "accuracy", "seconds")
BASELINE = "random"


@dataclass
class CompareConfig:
    """A grid of models x strategies, run ``repeats`` times on the settings of ``base``."""

    base: SimulationConfig
    strategies: list[str]
    models: list[str]
    repeats: int = 20
    target: float = 0.95
    jobs: int = -1
    confidence: float = 0.95

    def validate(self) -> None:
        """Raise ValueError for settings outside their range."""
        if not self.strategies or not self.models:
            raise UserError("give at least one strategy and one model")
        for names, what in ((self.strategies, "strategy"), (self.models, "model")):
            if len(set(names)) != len(names):
                raise UserError(f"a {what} is named twice in {','.join(names)}")
        if self.repeats < 1:
            raise UserError(f"repeats must be >= 1, got {self.repeats}")
        if not 0 < self.target <= 1:
            raise UserError(f"target must be an accuracy in (0, 1], got {self.target}")
        if self.jobs == 0:
            raise UserError("jobs must be >= 1, or -1 for every core")
        for strategy in self.strategies:
            get_strategy(strategy)
        for name in self.models:
            dataclasses.replace(self.base, model=name).validate()
        self.base.validate()


@dataclass
class Comparison:
    """The rows of every run and their summary."""

    config: CompareConfig
    rows: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def repeat_seed(seed: int, repeat: int) -> int:
    """The strategies' generator seed for one repeat, shared by every strategy in it."""
    return int(np.random.SeedSequence([seed, repeat]).generate_state(1)[0])


def run_repeat(config: CompareConfig, repeat: int, client=None) -> list[dict]:
    """Every model x strategy on the pool of one repeat; one row per round. With a
    ``distributed.Client`` the graph is built and solved on its cluster."""
    # The summary reports no stopping estimate: skip its held-out refits.
    base = dataclasses.replace(config.base, estimate=False)
    base, pool = base.working(prepare_pool(base, seed=base.seed + repeat,
                                           lazy=client is not None),
                                on_cluster=client is not None)
    rows = []
    graphs: dict = {}  # one graph per repeat, shared by every model and strategy
    for model_name in config.models:
        model = _model(base, pool, model_name, graphs, client, config.models)
        if hasattr(model, "plan"):
            model.plan(len(config.strategies) * base.rounds)
        for strategy in config.strategies:
            for outcome in run_rounds(pool, base, model, strategy, repeat_seed(base.seed, repeat)):
                rows.append({"strategy": strategy, "model": model_name, "repeat": repeat,
                            "round": outcome.round, "n_labeled": outcome.n_labeled,
                            "accuracy": outcome.accuracy, "seconds": outcome.seconds})
    return rows


def _model(base: SimulationConfig, pool, name: str, graphs: dict, client,
           models: tuple[str, ...] = ()):
    """The model ``name`` of one repeat: on one machine, or on the cluster of ``client``
    (the repeat's ``models`` share its graph either way)."""
    if client is None:
        return base.model_for(pool, name, graphs)
    from .distributed.model import cluster_model

    model = cluster_model(dataclasses.replace(base, model=name), pool, client,
                          graphs.get("cluster"))
    graphs["cluster"] = model.graph if model.graph is not None else \
        model.build_graph(tuple(models))
    return model


def compare(config: CompareConfig, progress: Callable[[int], None] | None = None,
            client=None) -> Comparison:
    """Run the grid over every repeat and summarise it.

    ``progress(done)`` is called after each finished repeat. Repeats run in parallel
    (``config.jobs``) on this machine, or one after another on the cluster of a
    ``distributed.Client`` (whose workers share every solve).
    """
    config.validate()
    pool = prepare_pool(config.base, lazy=client is not None)  # fail on a bad dataset first
    # Every repeat's pool has this one's shape and kind: the settings chosen for it are
    # theirs, and the summary reports them.
    config = dataclasses.replace(config, base=config.base.chosen_for(pool, client is not None))
    if client is not None:
        repeats = (run_repeat(config, repeat, client) for repeat in range(config.repeats))
    else:
        parallel = Parallel(n_jobs=config.jobs, return_as="generator")
        repeats = parallel(delayed(run_repeat)(config, repeat)
                           for repeat in range(config.repeats))
    rows = []
    for done, repeat_rows in enumerate(repeats, 1):
        rows += repeat_rows
        if progress:
            progress(done)
    return Comparison(config, rows, summarize(rows, config))


def summarize(rows: list[dict], config: CompareConfig) -> dict:
    """Per model and strategy: the mean curve with its confidence band, final accuracy,
    area under the curve, labels to reach the target and the paired test against random."""
    curves = _curves_by_run(rows)
    results = [_summarize_one(model, strategy, runs, curves, config)
               for (model, strategy), runs in curves.items()]
    return {"config": {**dataclasses.asdict(config), "base": dataclasses.asdict(config.base)},
            "eval": config.base.eval, "target": config.target,
            "confidence": config.confidence, "baseline": BASELINE, "results": results}


def _curves_by_run(rows: list[dict]) -> dict:
    """{(model, strategy): {repeat: (n_labeled list, accuracy list)}}, in row order."""
    curves: dict = defaultdict(dict)
    for row in rows:
        run = curves[row["model"], row["strategy"]].setdefault(row["repeat"], ([], []))
        run[0].append(row["n_labeled"])
        run[1].append(row["accuracy"])
    return curves


def _interval(values, confidence) -> dict:
    """Mean and confidence interval of accuracies or AUCs, which lie between 0 and 1."""
    mean, low, high = metrics.mean_confidence_interval(values, confidence, bounds=(0.0, 1.0))
    return {"mean": mean, "ci_low": low, "ci_high": high}


def _summarize_one(model, strategy, runs, curves, config) -> dict:
    by_count = defaultdict(list)
    for n_labeled, accuracy in runs.values():
        for n, value in zip(n_labeled, accuracy):
            by_count[n].append(value)
    curve = [{"n_labeled": n, **_interval(values, config.confidence), "n_repeats": len(values)}
             for n, values in sorted(by_count.items())]
    auc = {repeat: metrics.normalized_auc(*run) for repeat, run in runs.items()}
    return {
        "model": model, "strategy": strategy, "curve": curve,
        "final_accuracy": _interval([run[1][-1] for run in runs.values()], config.confidence),
        "auc": _interval(list(auc.values()), config.confidence),
        "labels_to_target": metrics.labels_to_target(
            [p["n_labeled"] for p in curve], [p["mean"] for p in curve], config.target),
        "vs_random": _versus_baseline(auc, curves.get((model, BASELINE)), strategy),
    }


def _versus_baseline(auc: dict, baseline_runs: dict | None, strategy: str) -> dict | None:
    """Wilcoxon signed-rank test of per-repeat AUC against ``random``, paired by repeat."""
    if strategy == BASELINE or baseline_runs is None:
        return None
    baseline = {repeat: metrics.normalized_auc(*run) for repeat, run in baseline_runs.items()}
    repeats = sorted(set(auc) & set(baseline))
    ours, theirs = [auc[r] for r in repeats], [baseline[r] for r in repeats]
    return {"test": "Wilcoxon signed-rank, two-sided, on per-repeat normalised AUC",
            "auc_difference": float(np.mean(np.subtract(ours, theirs))),
            "p_value": metrics.paired_wilcoxon(ours, theirs), "n_pairs": len(repeats)}


def write_results(comparison: Comparison, out: Path) -> list[Path]:
    """Write results.csv, summary.json and learning_curves.png into ``out``."""
    import json

    from .plots import learning_curves

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(comparison.rows)
    (out / "summary.json").write_text(json.dumps(comparison.summary, indent=2))
    figure = learning_curves(comparison.summary, out / "learning_curves.png")
    return [out / "results.csv", out / "summary.json", figure]


def resolve_evaluation(base: SimulationConfig, models: list[str], evaluation: str | None):
    """The base config with its evaluation set: given, or the models' default."""
    return dataclasses.replace(base, eval=evaluation or default_evaluation(models))
