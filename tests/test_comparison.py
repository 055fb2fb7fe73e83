import csv
import json
import textwrap

import numpy as np
import pytest
from PIL import Image

from activeprop.cli import main
from activeprop.comparison import CompareConfig, compare
from activeprop.experiments import SimulationConfig


def small_config(**changes) -> CompareConfig:
    base = SimulationConfig(subset=200, initial=10, rounds=3, batch=5, gamma=0.25)
    settings = dict(strategies=["random", "entropy", "margin"], models=["spreading", "logistic"],
                    repeats=3, jobs=1)
    settings.update(changes)
    return CompareConfig(base, **settings)


def without_time(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_results_do_not_depend_on_jobs():
    one = compare(small_config(jobs=1))
    two = compare(small_config(jobs=2))
    assert without_time(one.rows) == without_time(two.rows)
    assert len(one.rows) == 3 * 3 * 2 * 3  # repeats x strategies x models x rounds


def test_runs_are_paired_within_a_repeat():
    result = compare(small_config())
    first_round = [r for r in result.rows if r["round"] == 0 and r["model"] == "spreading"]
    for repeat in range(3):
        accuracies = {r["accuracy"] for r in first_round if r["repeat"] == repeat}
        assert len(accuracies) == 1  # same pool and starting labels for every strategy
    assert len({r["accuracy"] for r in first_round}) > 1  # but each repeat its own shuffle


def test_summary_contents():
    summary = compare(small_config()).summary
    assert summary["eval"] == "pool"
    entropy = next(r for r in summary["results"]
                   if r["model"] == "spreading" and r["strategy"] == "entropy")
    assert [p["n_labeled"] for p in entropy["curve"]] == [10, 15, 20]
    assert all(p["ci_low"] <= p["mean"] <= p["ci_high"] for p in entropy["curve"])
    assert entropy["vs_random"]["n_pairs"] == 3 and 0 < entropy["vs_random"]["p_value"] <= 1
    random = next(r for r in summary["results"] if r["strategy"] == "random")
    assert random["vs_random"] is None


def test_holdout_is_never_labeled_and_is_what_is_scored():
    config = small_config(models=["spreading"], strategies=["entropy"], repeats=1)
    config.base.eval = "holdout:0.25"
    result = compare(config)
    # 25% of 200 items are held out: accuracy is measured on 50 items, so in steps of 1/50.
    for row in result.rows:
        assert (row["accuracy"] * 50) == pytest.approx(round(row["accuracy"] * 50))


def test_article_active_vs_passive(capsys):
    code = main(["compare", "--strategies", "entropy,random,first", "--subset", "330",
                 "--initial", "40", "--batch", "5", "--rounds", "5", "--model", "spreading",
                 "--repeats", "1", "--seed", "0", "--quiet", "--jobs", "1"])
    out = capsys.readouterr().out
    assert code == 0
    rows = {line.split("│")[2].strip(): line for line in out.splitlines() if "spreading" in line}
    assert "0.956 [0.956, 0.956]" in rows["entropy"]
    assert "0.900 [0.900, 0.900]" in rows["first"]


def test_cli_writes_files_and_user_strategy(capsys, tmp_path, monkeypatch):
    (tmp_path / "my_strategies.py").write_text(textwrap.dedent("""
        import numpy as np

        def second_best(proba, context):
            top_two = np.sort(proba, axis=1)[:, -2:]
            return top_two[:, 0]
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    out_dir = tmp_path / "out"
    code = main(["compare", "--strategies", "random,my_strategies:second_best",
                 "--model", "spreading,sklearn.naive_bayes:GaussianNB", "--subset", "150",
                 "--initial", "10", "--rounds", "3", "--repeats", "2", "--jobs", "1",
                 "--quiet", "--out", str(out_dir)])
    assert code == 0, capsys.readouterr()
    with open(out_dir / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["strategy", "model", "repeat", "round", "n_labeled", "accuracy",
                             "seconds"]
    assert {r["model"] for r in rows} == {"spreading", "sklearn.naive_bayes:GaussianNB"}
    summary = json.loads((out_dir / "summary.json").read_text())
    assert len(summary["results"]) == 4
    with Image.open(out_dir / "learning_curves.png") as image:
        assert image.format == "PNG" and image.width > 800
        pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # lines and bands were drawn


@pytest.mark.parametrize("args,message", [
    (["--repeats", "0"], "repeats must be >= 1"),
    (["--strategies", "entropy,nope"], "unknown strategy"),
    (["--model", "spreading,nope"], "unknown model"),
    (["--eval", "holdout:2"], "bad evaluation"),
    (["--eval", "test"], "bad evaluation"),
    (["--target", "0"], "target must be"),
    (["--strategies", "entropy,entropy"], "named twice"),
])
def test_compare_bad_input(capsys, args, message):
    code = main(["compare", "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_holdout_items_are_never_queried():
    from activeprop.experiments import prepare_pool, run_rounds

    base = SimulationConfig(subset=120, initial=10, rounds=8, batch=10, eval="holdout:0.5")
    pool = prepare_pool(base)
    outcomes = list(run_rounds(pool, base, base.model_for(pool), "entropy", seed=0))
    queried = np.concatenate([o.queried for o in outcomes])
    assert len(queried) == 50 and queried.max() < 60  # the last 60 of 120 are held out
    assert all(o.evaluated.tolist() == list(range(60, 120)) for o in outcomes)


def test_strategies_that_pick_alike_stay_visible_on_the_curves(tmp_path, monkeypatch):
    """Two strategies with the same curve (typical-margin is margin once every class has
    labels) are drawn with different dashes and markers: the one drawn last does not hide
    the other."""
    from activeprop import plots

    figures = []
    pyplot = plots._pyplot()
    monkeypatch.setattr(pyplot, "close", figures.append)
    curve = [{"n_labeled": n, "mean": 0.9, "ci_low": 0.8, "ci_high": 1.0, "n_repeats": 3}
             for n in (10, 20)]
    summary = {"results": [{"model": "poisson", "strategy": name, "curve": curve}
                           for name in ("margin", "typical-margin")],
               "confidence": 0.95, "eval": "pool"}
    plots.learning_curves(summary, tmp_path / "curves.png")
    first, second = figures[0].axes[0].get_lines()
    assert (first.get_linestyle(), first.get_marker()) != \
        (second.get_linestyle(), second.get_marker())
