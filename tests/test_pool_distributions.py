"""The compiled pass from a converged solve's scores (graph order) to the pool's
distributions gives numpy's numbers bit for bit."""

import numpy as np
import pytest

from activeprop.pool_distributions import pool_distributions
from activeprop.propagation import distributions


@pytest.mark.parametrize("n_classes", [1, 7, 8, 10, 21, 130, 300])
def test_the_compiled_pass_is_numpys_reorder_normalise_argmax_and_max(n_classes):
    """The row sums too: numpy adds in an order of its own from 8 values on (entries of
    very different sizes make any other order round differently)."""
    rng = np.random.default_rng(n_classes)
    F = rng.random((5000, n_classes)) * 10.0 ** rng.integers(-12, 3, size=(5000, n_classes))
    F[rng.random(5000) < 0.05] = 0.0  # unreached rows
    F[:50, -1] = F[:50, 0] = F[:50].max(axis=1)  # ties: the first column wins, as np.argmax
    rows = rng.permutation(5000)
    P, unreached, best, confidence = pool_distributions(F, rows)
    expected, expected_unreached = distributions(np.take(F, rows, axis=0))
    np.testing.assert_array_equal(P, expected)
    np.testing.assert_array_equal(unreached, expected_unreached)
    np.testing.assert_array_equal(best, np.argmax(expected, axis=1))
    np.testing.assert_array_equal(confidence, expected.max(axis=1))
    assert unreached.any() and np.all(P[unreached] == 1 / n_classes)
