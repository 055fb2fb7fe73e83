"""Copies written into spare arrays (activeprop.recycle): only into one nobody else holds."""

from types import SimpleNamespace

import numpy as np

from activeprop.recycle import copy_into_spare


def _holder(shape=(5, 3), dtype=np.float64):
    return SimpleNamespace(X=np.full(shape, 7, dtype=dtype))


def test_a_copy_goes_into_a_spare_nobody_else_holds():
    source, holder = np.arange(15.0).reshape(5, 3), _holder()
    memory = holder.X.ctypes.data
    copied = copy_into_spare(source, holder, "X")
    assert copied.ctypes.data == memory and np.array_equal(copied, source)
    assert holder.X is None  # the holder gave it up
    source[0, 0] = -1.0
    assert copied[0, 0] == 0.0  # a copy, not a view


def test_a_spare_that_someone_still_holds_is_left_as_it_is():
    source, holder = np.arange(15.0).reshape(5, 3), _holder()
    held = holder.X  # e.g. a fit's published scores
    copied = copy_into_spare(source, holder, "X")
    assert not np.shares_memory(copied, held) and np.array_equal(copied, source)
    assert np.all(held == 7)


def test_a_spare_of_another_shape_or_type_or_none_gives_fresh_memory():
    source = np.arange(15.0).reshape(5, 3)
    for holder in (_holder((5, 4)), _holder(dtype=np.float32), None):
        copied = copy_into_spare(source, holder, "X")
        assert np.array_equal(copied, source) and copied.dtype == source.dtype
        assert copied.flags.c_contiguous
