"""The scikit-learn digits example's loop written with scikit-activeml 1.0.1.

The second peer of `activeprop simulate` in bench/bench_rounds.py: the same data, shuffle,
model (LabelSpreading, rbf, gamma 0.25, max_iter 20) and strategy (entropy, batches of 5).
scikit-activeml's wrapper drops the unlabeled items before fitting unless told otherwise;
label spreading needs them, so the classifier is fit with ``include_unlabeled_samples``.
Usage: python bench/skactiveml_digits_loop.py SUBSET INITIAL ROUNDS [--json]
"""

import json
import sys
import time

import numpy as np
from skactiveml.classifier import SklearnClassifier
from skactiveml.pool import UncertaintySampling
from sklearn import datasets
from sklearn.semi_supervised import LabelSpreading

MISSING = -1


def run(subset: int, initial: int, rounds: int, batch: int = 5):
    digits = datasets.load_digits()
    indices = np.arange(len(digits.data))
    np.random.RandomState(0).shuffle(indices)
    X = digits.data[indices[: subset or None]]
    y = digits.target[indices[: subset or None]]
    y_train = np.full(len(y), MISSING)
    y_train[:initial] = y[:initial]
    classifier = SklearnClassifier(LabelSpreading(gamma=0.25, max_iter=20),
                                   classes=np.arange(10), missing_label=MISSING,
                                   include_unlabeled_samples=True, random_state=0)
    strategy = UncertaintySampling(method="entropy", missing_label=MISSING, random_state=0)
    out = []
    for _ in range(rounds):
        unlabeled = np.flatnonzero(y_train == MISSING)
        if len(unlabeled) == 0:
            break
        start = time.perf_counter()
        classifier.fit(X, y_train)
        accuracy = float(np.mean(classifier.predict(X[unlabeled]) == y[unlabeled]))
        queried = strategy.query(X, y_train, classifier, fit_clf=False,
                                 batch_size=min(batch, len(unlabeled)))
        out.append({"accuracy": accuracy, "queried": np.asarray(queried).tolist(),
                    "seconds": time.perf_counter() - start})
        y_train[queried] = y[queried]
    return out


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
