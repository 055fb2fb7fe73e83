"""Terminal output of experiments: progress bars and summary tables (rich)."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


@contextmanager
def progress_bar(total: int, quiet: bool = False):
    """A progress bar on stderr; yields ``advance(done)``. Silent when ``quiet``."""
    if quiet:
        yield lambda done: None
        return
    columns = (TextColumn("repeats"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("repeats", total=total)
        yield lambda done: progress.update(task, completed=done)


def print_summary(summary: dict) -> None:
    """The comparison summary as a table on stdout."""
    level = f"{summary['confidence']:.0%}"
    table = Table(title=f"accuracy on: {summary['eval']}; mean [{level} CI] over repeats; "
                        f"p: Wilcoxon signed-rank vs random on per-repeat AUC")
    for column in ("model", "strategy", "labels", "final accuracy", "AUC",
                   f"labels to {summary['target']:.3g}", "AUC - random", "p vs random"):
        table.add_column(column, justify="left" if column in ("model", "strategy") else "right")
    for result in summary["results"]:
        versus = result["vs_random"]
        p_value = "n/a" if versus is None or versus["p_value"] is None \
            else f"{versus['p_value']:.3g}"
        difference = "" if versus is None else f"{versus['auc_difference']:+.3f}"
        reached = result["labels_to_target"]
        table.add_row(result["model"], result["strategy"], str(result["curve"][-1]["n_labeled"]),
                      _with_interval(result["final_accuracy"]), _with_interval(result["auc"]),
                      "-" if reached is None else str(reached), difference, p_value)
    Console(width=140).print(table)


def _with_interval(value: dict) -> str:
    return f"{value['mean']:.3f} [{value['ci_low']:.3f}, {value['ci_high']:.3f}]"
