"""The solver's column copies (activeprop.columns) against numpy's fancy indexing."""

import numpy as np
import pytest

from activeprop import calibration
from activeprop.columns import keep_columns, put_columns, take_columns


@pytest.fixture(params=[1, 2], ids=["one core", "two cores"])
def cores(request, monkeypatch):
    """Row blocks for one core and for two (threads), whatever this machine has."""
    monkeypatch.setattr(calibration, "usable_cores", lambda: request.param)
    monkeypatch.setattr("activeprop.graph.usable_cores", lambda: request.param)
    monkeypatch.setattr("activeprop.graph.rows_worth_a_thread", lambda *args: 1)
    return request.param


@pytest.mark.parametrize("n, k", [(1, 1), (7, 3), (1000, 10)])
def test_columns_taken_and_put_back_are_numpys(cores, n, k):
    rng = np.random.default_rng(n + k)
    A = rng.standard_normal((n, k))
    for size in range(1, k + 1):
        columns = np.sort(rng.choice(k, size, replace=False))
        taken = take_columns(A, columns)
        assert taken.flags.c_contiguous and np.array_equal(taken, A[:, columns])
        B = rng.standard_normal((n, size + 2))
        which = rng.permutation(size + 2)[:size]
        expected = A.copy()
        expected[:, columns] = B[:, which]
        put_columns(A, columns, B, which)
        assert np.array_equal(A, expected)


@pytest.mark.parametrize("n, k", [(1, 1), (5, 2), (999, 10)])
def test_columns_kept_in_the_arrays_own_memory_are_numpys(n, k):
    rng = np.random.default_rng(k)
    for _ in range(20):
        A = rng.standard_normal((n, k))
        keep = rng.random(k) < 0.5
        keep[rng.integers(k)] = True
        expected = A[:, keep]
        kept = keep_columns(A, keep)
        assert np.shares_memory(kept, A) and kept.flags.c_contiguous
        assert np.array_equal(kept, expected)
        again = rng.random(kept.shape[1]) < 0.5  # and again, from a kept view
        again[0] = True
        expected = kept[:, again]
        assert np.array_equal(keep_columns(kept, again), expected)
