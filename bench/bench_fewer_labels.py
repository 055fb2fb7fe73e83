"""Issue 6 protocol: full digits, 10 initial labels, batches of 5, accuracy on the items nobody
labeled at 20 / 50 / 100 labels, mean over seeds 0-4; plus how close the stopping estimates
(mean confidence; calibrated on held-out labels, from 20 labels) are to the true accuracy.
Run: python bench/bench_fewer_labels.py [TEXT]  (TEXT: only the settings whose name has it)
"""

import sys

import numpy as np
from machine import machine

from activeprop.experiments import RECOMMENDED, SimulationConfig, simulate

KNN = dict(kernel="knn", n_neighbors=10, solver="cg", max_iter=2000, rtol=1e-4)
CONFIGS = {
    "example model, entropy (the issue's baseline)": {},
    "example model, random": dict(strategy="random"),
    "knn spreading a=0.9, margin": dict(KNN, alpha=0.9, strategy="margin"),
    "knn spreading a=0.9, margin, typical start": dict(KNN, alpha=0.9, strategy="margin",
                                                       initial_strategy="typical"),
    "knn spreading a=0.9, margin, diverse": dict(KNN, alpha=0.9, strategy="margin",
                                                 batch_mode="diverse"),
    "knn spreading a=0.9, density, typical": dict(KNN, alpha=0.9, strategy="density",
                                                  initial_strategy="typical"),
    "poisson, margin, typical, diverse": dict(KNN, model="poisson", strategy="margin",
                                              initial_strategy="typical", batch_mode="diverse"),
    "recommended (poisson, 15-NN on these narrow sets, typical-margin, typical start, diverse)": RECOMMENDED,
    "recommended with plain margin (the recommended settings before 2026-11-28)": dict(
        RECOMMENDED, strategy="margin"),
    "recommended, classes declared balanced (--class-priors uniform)": dict(
        RECOMMENDED, class_priors="uniform"),
    "poisson, entropy, diverse": dict(KNN, model="poisson", strategy="entropy",
                                      batch_mode="diverse"),
    "knn spreading a=0.5, margin": dict(KNN, alpha=0.5, strategy="margin"),
    "knn spreading a=0.5, expected error reduction": dict(KNN, alpha=0.5,
                                                          strategy="expected-error"),
    "knn spreading a=0.9, expected error reduction": dict(KNN, alpha=0.9,
                                                          strategy="expected-error"),
}


def main():
    print(machine())
    print("| settings | 20 labels | 50 labels | 100 labels | estimate error: mean confidence "
          "| calibrated |")
    print("|---|---|---|---|---|---|")
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    for name, settings in CONFIGS.items():
        if only not in name:
            continue
        accuracy, errors, calibrated = [], [], []
        for seed in range(5):
            config = SimulationConfig(subset=0, initial=10, batch=5, rounds=19, seed=seed,
                                      estimate=True, **settings)
            rounds = simulate(config).rounds
            by_count = {r.n_labeled: r.accuracy for r in rounds}
            accuracy.append([by_count[20], by_count[50], by_count[100]])
            errors += [abs(r.estimate.estimated_accuracy - r.accuracy) for r in rounds]
            calibrated += [abs(r.estimate.calibrated_accuracy - r.accuracy) for r in rounds
                           if r.estimate.calibrated_accuracy is not None]
        mean = np.mean(accuracy, axis=0)
        print(f"| {name} | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} | "
              f"{np.mean(errors):.3f} | {np.mean(calibrated):.3f} |", flush=True)


if __name__ == "__main__":
    main()
