"""The compiled pass from a converged solve's scores (graph order) to the pool's
distributions gives numpy's numbers bit for bit."""

import numpy as np

from activeprop.pool_distributions import pool_distributions
from activeprop.propagation import distributions


def test_the_compiled_pass_is_numpys_reorder_normalise_argmax_and_max():
    rng = np.random.default_rng(0)
    F = rng.random((5000, 7)) * rng.choice([1e-12, 1.0, 1e3], size=(5000, 1))
    F[rng.random(5000) < 0.05] = 0.0  # unreached rows
    F[:50, 3] = F[:50, 5] = F[:50].max(axis=1)  # ties: the first column wins, as np.argmax
    rows = rng.permutation(5000)
    P, unreached, best, confidence = pool_distributions(F, rows)
    expected, expected_unreached = distributions(np.take(F, rows, axis=0))
    np.testing.assert_array_equal(P, expected)
    np.testing.assert_array_equal(unreached, expected_unreached)
    np.testing.assert_array_equal(best, np.argmax(expected, axis=1))
    np.testing.assert_array_equal(confidence, expected.max(axis=1))
    assert unreached.any() and np.all(P[unreached] == 1 / 7)
