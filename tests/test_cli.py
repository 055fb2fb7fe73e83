"""End-to-end tests of the `activeprop` command."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from activeprop.cli import main

REFERENCE = Path(__file__).parent / "data" / "sklearn_digits_example_output.txt"


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def words(text: str) -> list[str]:
    return text.split()


def test_simulate_reproduces_the_scikit_learn_example(capsys):
    code, out, _ = run(capsys, "simulate")
    assert code == 0
    # The seed copy went through a lossy conversion that lower-cased "Spreading".
    reference = REFERENCE.read_text().replace("Label spreading", "Label Spreading")
    assert words(out) == words(reference)


def test_simulate_json_document(capsys):
    code, out, _ = run(capsys, "simulate", "--json", "--estimate")
    assert code == 0
    document = json.loads(out)
    assert document["config"]["gamma"] == 0.25 and document["config"]["subset"] == 330
    rounds = document["rounds"]
    assert [round(r["accuracy"], 2) for r in rounds] == [0.87, 0.90, 0.92, 0.95, 0.96]
    assert rounds[0]["queried"] == [128, 64, 202, 171, 71]
    assert [r["n_labeled"] for r in rounds] == [40, 45, 50, 55, 60]
    assert [r["n_unlabeled"] for r in rounds] == [290, 285, 280, 275, 270]
    assert rounds[4]["confusion_matrix"][2] == [0, 0, 26, 1, 0, 0, 0, 0, 0, 0]
    assert all(set(r) == {"round", "n_labeled", "n_unlabeled", "accuracy", "confusion_matrix",
                          "confusion_labels", "queried", "seconds", "estimate"} for r in rounds)
    assert rounds[0]["confusion_labels"] == [str(k) for k in range(10)]
    assert rounds[0]["estimate"]["stability"] is None
    assert 0.5 < rounds[4]["estimate"]["estimated_accuracy"] <= 1
    assert 0 <= rounds[4]["estimate"]["calibrated_accuracy"] <= 1
    assert all(r["seconds"] > 0 for r in rounds)
    assert all(r["estimate"]["classes_without_labels"] == 0 for r in rounds)  # 40 labels


def test_estimate_says_it_is_optimistic_while_classes_have_no_label(capsys):
    code, out, _ = run(capsys, "simulate", "--subset", "0", "--initial", "3", "--rounds", "2",
                       "--initial-strategy", "random", "--stop-when", "0.99")
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("Estimate without")]
    assert len(lines) == 2
    assert lines[0].endswith("optimistic while 7 classes without a label")  # 3 labels, 3 classes
    code, out, _ = run(capsys, "simulate", "--subset", "0", "--initial", "3", "--rounds", "1",
                       "--initial-strategy", "random", "--json", "--estimate")
    assert json.loads(out)["rounds"][0]["estimate"]["classes_without_labels"] == 7


def test_recommended_runs_print_the_estimate_and_the_example_does_not(capsys):
    code, out, _ = run(capsys, "simulate", "--recommended", "--subset", "0", "--initial", "10",
                       "--rounds", "2", "--estimate")
    assert code == 0
    assert sum(line.startswith("Estimate without ground truth: accuracy 0.")
               for line in out.splitlines()) == 2
    # Opt-in: the estimate's held-out refits cost most of a large run.
    code, out, _ = run(capsys, "simulate", "--recommended", "--subset", "300", "--initial",
                       "10", "--rounds", "1", "--json")
    assert "estimate" not in json.loads(out)["rounds"][0]
    code, out, _ = run(capsys, "simulate", "--rounds", "1")
    assert code == 0 and "Estimate" not in out


def test_out_writes_figure_and_results(capsys, tmp_path):
    code, out, _ = run(capsys, "simulate", "--rounds", "2", "--out", str(tmp_path))
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["rounds"]) == 2
    with Image.open(tmp_path / "uncertain_items.png") as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 200
        # Not a blank canvas: the digits are drawn in dark pixels.
        assert np.asarray(image.convert("L")).min() < 50


def test_pool_running_out(capsys):
    code, out, _ = run(capsys, "simulate", "--subset", "50", "--initial", "40", "--batch", "4",
                       "--rounds", "10")
    assert code == 0
    assert out.count("Iteration") == 3  # 40, 44, 48 labeled; then 2 left, then none
    assert out.rstrip().endswith("No unlabeled items left to label.")


def test_other_models_and_strategies(capsys):
    code, out, _ = run(capsys, "simulate", "--model", "logistic", "--strategy", "margin",
                       "--subset", "0", "--initial", "10", "--rounds", "2", "--json")
    assert code == 0
    rounds = json.loads(out)["rounds"]
    assert rounds[0]["n_unlabeled"] == 1787 and rounds[1]["n_labeled"] == 15
    code, out, _ = run(capsys, "simulate", "--kernel", "knn", "--model", "propagation",
                       "--rounds", "1")
    assert code == 0 and "Label Propagation model: 40 labeled" in out


def test_csv_and_npz_datasets(capsys, tmp_path):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 1, (30, 3)), rng.normal(5, 1, (30, 3))])
    y = np.r_[[0] * 30, [1] * 30]
    np.savez(tmp_path / "blobs.npz", X=X, y=y)
    code, out, _ = run(capsys, "simulate", "--dataset", str(tmp_path / "blobs.npz"),
                       "--subset", "0", "--initial", "6", "--rounds", "1", "--gamma", "0.1",
                       "--json")
    assert code == 0 and json.loads(out)["rounds"][0]["accuracy"] > 0.9
    lines = ["f1,f2,f3,kind"] + [",".join(map(str, row)) + f",{'ab'[c]}" for row, c in zip(X, y)]
    (tmp_path / "blobs.csv").write_text("\n".join(lines))
    code, out, _ = run(capsys, "simulate", "--dataset", str(tmp_path / "blobs.csv"),
                       "--label-column", "kind", "--subset", "0", "--initial", "6",
                       "--rounds", "1", "--gamma", "0.1", "--json")
    assert code == 0 and json.loads(out)["rounds"][0]["accuracy"] > 0.9


BAD_INPUTS = [
    (["--dataset", "missing.npz"], "does not exist"),
    (["--dataset", "mnist"], "unknown dataset"),
    (["--strategy", "psychic"], "unknown strategy"),
    (["--model", "oracle"], "unknown model"),
    (["--kernel", "poly"], "unknown kernel"),
    (["--gamma", "-2"], "gamma must be >= 0"),
    (["--alpha", "1"], "alpha must be strictly between 0 and 1"),
    (["--alpha", "0"], "alpha must be strictly between 0 and 1"),
    (["--batch", "0"], "batch must be >= 1"),
    (["--rounds", "-1"], "rounds must be >= 0"),
    (["--initial", "400"], "more than the pool holds"),
    (["--batch", "five"], "Invalid value for '--batch'"),
    (["--stop-when", "0.99", "--no-estimate"], "cannot be used with --no-estimate"),
    (["--bogus"], "No such option"),
    (["--local-from", "-1"], "local-from must be >= 0"),
    (["--class-priors", "uniform"], "class-priors applies to the poisson model"),
    (["--model", "poisson", "--class-priors", "0.5,0.5"], "class-priors needs 10 positive"),
    (["--model", "poisson", "--class-priors", "many"], "'uniform' or comma-separated"),
]


@pytest.mark.parametrize("args,message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    code, out, err = run(capsys, "simulate", *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("X,y,message", [
    (np.array([[1.0, np.inf], [0, 1]]), np.array([0, 1]), "X contains NaN or infinite values"),
    (np.zeros((5, 2)), np.zeros(4), "one label per item"),
])
def test_bad_arrays(capsys, tmp_path, X, y, message):
    path = tmp_path / "bad.npz"
    np.savez(path, X=X, y=y)
    code, _, err = run(capsys, "simulate", "--dataset", str(path), "--subset", "0",
                       "--initial", "1")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_unreadable_file_as_a_real_process(tmp_path):
    path = tmp_path / "locked.csv"
    path.write_bytes(b"\xff\xfe\x00garbage")
    done = subprocess.run([sys.executable, "-m", "activeprop.cli", "simulate", "--dataset",
                           str(path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_labeling_commands(capsys, tmp_path):
    project = str(tmp_path / "proj")
    code, out, _ = run(capsys, "init", "--project", project, "--dataset", "digits-aug:200")
    assert code == 0 and "200 items" in out
    code, _, err = run(capsys, "init", "--project", project, "--dataset", "digits")
    assert code == 2 and "already holds a project" in err
    from activeprop.labeling import LabelingSession

    session = LabelingSession(project)
    for item in range(12):
        session.add_label(item, int(session.pool.y[item]))
    rounds = session.store.rounds()
    session.queue(3, "someone")
    assert len(session.store.rounds()[-1]["queried"]) == 3 and len(rounds) == 12
    session.close()
    for fmt in ("csv", "jsonl", "npz"):
        out_file = tmp_path / f"labels.{fmt}"
        code, out, _ = run(capsys, "export", "--project", project, "--format", fmt,
                           "--out", str(out_file))
        assert code == 0 and out_file.stat().st_size > 100
    code, _, err = run(capsys, "export", "--project", project, "--format", "xml", "--out",
                       str(tmp_path / "x"))
    assert code == 2 and "unknown export format" in err
    code, _, err = run(capsys, "serve", "--project", str(tmp_path / "nothing"), "--no-browser")
    assert code == 2 and "not an activeprop project" in err


def test_serve_demands_a_token_off_localhost():
    from activeprop.cli import required_token

    assert required_token("127.0.0.1", None) is None
    assert required_token("localhost", "given") == "given"
    assert len(required_token("0.0.0.0", None)) >= 20
    assert required_token("192.0.2.1", "mine") == "mine"


@pytest.mark.parametrize("strategy,caveat", [("margin", True), ("random", False)])
def test_the_calibrated_estimate_says_it_is_low_when_the_strategy_chose_the_labels(
        capsys, strategy, caveat):
    code, out, _ = run(capsys, "simulate", "--subset", "0", "--initial", "20", "--rounds", "1",
                       "--strategy", strategy, "--stop-when", "0.99")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("Estimate without"))
    assert "calibrated on held-out labels" in line
    assert ("low: the strategy chose hard ones" in line) == caveat


PLUGIN_MODULE = '''
import numpy as np

def one_argument(proba):
    return proba[:, 0]

def not_a_number(proba, context):
    scores = proba.max(axis=1)
    scores[3] = np.nan
    return scores
'''


@pytest.mark.parametrize("args,message", [
    (["--strategy", "userplugins:one_argument"], "must take two arguments (proba, context)"),
    (["--strategy", "os:getcwd"], "must take two arguments (proba, context)"),
    (["--strategy", "math:pi"], "is a float, not a function"),
    (["--strategy", "userplugins:not_a_number"], "returned NaN for item"),
    (["--model", "os:getcwd"], "not a class"),
    (["--model", "collections:OrderedDict"], "has no fit, predict_proba"),
])
def test_bad_plugins_are_one_line_and_exit_2(capsys, tmp_path, monkeypatch, args, message):
    (tmp_path / "userplugins.py").write_text(PLUGIN_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = run(capsys, "simulate", "--rounds", "1", *args)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_serve_refuses_a_port_out_of_range(capsys, tmp_path):
    code, _, err = run(capsys, "serve", "--project", str(tmp_path), "--port", "70000")
    assert code == 2 and "--port" in err and "65535" in err
    assert len(err.strip().splitlines()) == 1


def test_a_bug_shows_as_a_traceback_not_as_a_user_error(capsys, monkeypatch):
    from activeprop import experiments

    def broken(config, **options):
        raise ValueError("an internal bug")

    monkeypatch.setattr(experiments, "simulate", broken)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["simulate"])


def test_opening_a_project_never_imports_its_plugins(tmp_path):
    """A project someone sent you names `payload:strategy`: export, serve, label and
    review refuse to import it unless the same name is given with --plugin."""
    (tmp_path / "payload.py").write_text(
        "import pathlib\npathlib.Path('ran.txt').write_text('payload ran')\n"
        "from activeprop.strategies import margin as strategy\n")

    def activeprop(*args):
        return subprocess.run([sys.executable, "-m", "activeprop.cli", *args], cwd=tmp_path,
                              capture_output=True, text=True)

    made = activeprop("init", "--project", "p", "--dataset", "digits-aug:200",
                      "--strategy", "payload:strategy")
    assert made.returncode == 0, made.stderr
    (tmp_path / "ran.txt").unlink()  # init ran it: the user named it there
    for command in (["export", "--out", "x.csv"], ["review"], ["label"]):
        refused = activeprop(*command, "--project", "p")
        assert refused.returncode == 2, refused.stderr
        assert "pass --plugin payload:strategy" in refused.stderr
        assert not (tmp_path / "ran.txt").exists()
    trusted = activeprop("export", "--project", "p", "--out", "x.csv",
                         "--plugin", "payload:strategy")
    assert trusted.returncode == 0, trusted.stderr
    assert (tmp_path / "ran.txt").exists()


def test_recommended_never_overrides_an_option_given(capsys):
    code, out, _ = run(capsys, "simulate", "--recommended", "--initial-strategy", "first",
                       "--neighbors", "9", "--subset", "300", "--initial", "10",
                       "--rounds", "1", "--no-estimate", "--json")
    config = json.loads(out)["config"]
    assert code == 0 and config["initial_strategy"] == "first" and config["n_neighbors"] == 9
    # What was not given comes from the preset, and the JSON says so.
    assert config["model"] == "poisson" and config["batch_mode"] == "diverse"
    assert config["strategy"] == "typical-margin"


def test_confusion_matrix_names_every_class_of_the_report(capsys):
    """With one label, the model knows one class; the report lists all three and so does
    the matrix, its classes named on both axes."""
    code, out, _ = run(capsys, "simulate", "--dataset", "iris", "--subset", "0", "--initial",
                       "1", "--rounds", "1", "--gamma", "0.5")
    assert code == 0
    matrix = out.split("Confusion matrix\n")[1].splitlines()
    assert matrix[0].split()[-3:] == ["setosa", "versicolor", "virginica"]
    assert [line.split()[0] for line in matrix[1:4]] == ["setosa", "versicolor", "virginica"]
    assert "setosa " in out.split("Confusion matrix")[0]  # the report names them too


def test_a_csv_without_label_column_gets_a_hint(capsys, tmp_path):
    path = tmp_path / "named.csv"
    path.write_text("a,b,kind\n1,2,cat\n3,4,dog\n")
    code, _, err = run(capsys, "simulate", "--dataset", str(path))
    assert code == 2 and "--label-column" in err


def test_a_small_pool_gets_a_neighbour_count_it_can_use(capsys, tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(8)))
    code, out, _ = run(capsys, "init", "--project", str(tmp_path / "p"), "--dataset",
                       str(path), "--label-column", "label")
    assert code == 0 and "7 neighbours" in out
    code, _, err = run(capsys, "simulate", "--dataset", str(path), "--label-column", "label",
                       "--subset", "0", "--initial", "2", "--kernel", "knn", "--neighbors", "9")
    assert code == 2 and "--neighbors" in err


def test_the_example_command_never_imports_numba():
    """The example's run (a dense rbf graph) uses no compiled loop: numba's import took
    0.2-0.4 s of its 1.4-1.8 s on an Intel Xeon (bench/bench_rounds.py's whole process)."""
    script = ("import sys; from activeprop.cli import main\n"
              "sys.argv = ['activeprop', 'simulate', '--initial', '10', '--rounds', '3']\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print(sorted({'numba', 'llvmlite'} & set(sys.modules)))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    assert run.stdout.strip().splitlines()[-1] == "[]"
