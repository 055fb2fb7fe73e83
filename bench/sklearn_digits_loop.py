"""The scikit-learn digits example's loop, refitting LabelSpreading every round.

The peer of `activeprop simulate`: same data, shuffle, strategy and settings.
Usage: python bench/sklearn_digits_loop.py SUBSET INITIAL ROUNDS [--json]
(prints the example's report and confusion matrix per round unless --json)
"""

import json
import sys
import time

import numpy as np
from scipy import stats
from sklearn import datasets
from sklearn.metrics import classification_report, confusion_matrix
from sklearn.semi_supervised import LabelSpreading


def run(subset: int, initial: int, rounds: int, batch: int = 5, verbose: bool = False):
    digits = datasets.load_digits()
    indices = np.arange(len(digits.data))
    np.random.RandomState(0).shuffle(indices)
    X = digits.data[indices[: subset or None]]
    y = digits.target[indices[: subset or None]]
    unlabeled = np.arange(len(y))[initial:]
    out = []
    for i in range(rounds):
        if len(unlabeled) == 0:
            break
        start = time.perf_counter()
        y_train = np.copy(y)
        y_train[unlabeled] = -1
        model = LabelSpreading(gamma=0.25, max_iter=20).fit(X, y_train)
        accuracy = float(np.mean(model.transduction_[unlabeled] == y[unlabeled]))
        if verbose:  # what the example prints, as `activeprop simulate` does
            print("Iteration %i %s" % (i, 70 * "_"))
            print(classification_report(y[unlabeled], model.transduction_[unlabeled]))
            print(confusion_matrix(y[unlabeled], model.transduction_[unlabeled],
                                   labels=model.classes_))
        entropies = stats.distributions.entropy(model.label_distributions_.T)
        order = np.argsort(entropies)[::-1]
        queried = order[np.isin(order, unlabeled)][:batch]
        out.append({"accuracy": accuracy, "queried": queried.tolist(),
                    "seconds": time.perf_counter() - start})
        unlabeled = np.setdiff1d(unlabeled, queried)
    return out


if __name__ == "__main__":
    result = run(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                 verbose="--json" not in sys.argv)
    if "--json" in sys.argv:
        print(json.dumps(result))
