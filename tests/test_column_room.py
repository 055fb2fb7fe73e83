"""Arrays with room for more classes (activeprop.column_room): widened in place to the
answer np.insert gives, their room kept by the arrays made like them, and their memory
taken as a spare only when nobody holds it."""

from types import SimpleNamespace

import numpy as np
import pytest

from activeprop.column_room import (MOST_ROOM, columns_room, empty_like, spare_view, widened,
                                    zeros)


def _with_values(n, k, room, seed=0):
    array = zeros(n, k, room)
    array[:] = np.random.default_rng(seed).random((n, k))
    return array


@pytest.mark.parametrize("positions,width", [([0, 1, 2], 4), ([1, 2, 3], 4), ([0, 3, 6], 7),
                                             ([2, 4, 5], 9), ([5], 6), ([0], 1)])
def test_widening_in_place_gives_what_np_insert_gives(positions, width):
    n, k = 1000, len(positions)
    block = _with_values(n, k, room=10)
    expected = np.zeros((n, width))
    expected[:, positions] = block
    memory = block.ctypes.data
    wide = widened(block, np.array(positions), width)
    np.testing.assert_array_equal(wide, expected)
    assert wide.ctypes.data == memory and wide.flags.c_contiguous
    assert columns_room(wide) == 10  # and it can widen again


def test_an_array_without_the_room_widens_into_new_memory():
    block = _with_values(50, 3, room=4)
    kept = block.copy()
    wide = widened(block, np.array([0, 2, 4]), 5)  # room for 4, not 5
    assert not np.shares_memory(wide, block)
    np.testing.assert_array_equal(block, kept)  # left as it was
    np.testing.assert_array_equal(wide[:, [0, 2, 4]], kept)
    assert not wide[:, [1, 3]].any()


def test_room_is_kept_by_arrays_made_like_it_and_only_by_its_front():
    block = zeros(20, 3, room=8)
    assert columns_room(block) == 8 and not block.any()
    assert columns_room(empty_like(block)) == 8 and empty_like(block).shape == (20, 3)
    assert columns_room(zeros(20, 3)) == 3 and columns_room(zeros(20, 3, room=2)) == 3
    assert columns_room(zeros(20, 3, room=10_000)) == MOST_ROOM  # a huge taxonomy
    back = np.zeros(200)[40:100].reshape(20, 3)  # not the front of its buffer
    assert columns_room(back) == 3
    assert columns_room(np.zeros((20, 8))[:, :3]) == 3  # columns of a wider array


def test_a_spare_with_room_takes_a_wider_array_when_nobody_holds_its_memory():
    holder = SimpleNamespace(X=zeros(30, 3, room=5))
    memory = holder.X.ctypes.data
    view = spare_view(holder, "X", (30, 5), np.float64)
    assert holder.X is None and view.ctypes.data == memory and view.shape == (30, 5)
    holder.X = view
    assert spare_view(holder, "X", (30, 6), np.float64) is None  # no room for 6


def test_a_spare_whose_memory_another_view_holds_is_refused():
    holder = SimpleNamespace(X=zeros(30, 3, room=5))
    other = holder.X.base[:120].reshape(30, 4)  # e.g. a widened solve over the same memory
    assert spare_view(holder, "X", (30, 4), np.float64) is None
    held = SimpleNamespace(X=zeros(30, 3, room=5))
    kept = held.X  # a fit's published scores
    assert spare_view(held, "X", (30, 3), np.float64) is None
    assert other.shape == (30, 4) and kept.shape == (30, 3)

