"""(items x classes) arrays with room for the classes still to come.

Early in labeling new classes keep coming, and each one widens the solve's solution,
residual and kept fill by a column. Widened into fresh memory (``np.insert``), those three
arrays of 80-88 MB at 1,000,000 x 10 took 0.3-1.0 s of a labeler's refit, 80-90% of it in
the kernel: faults on fresh memory, on huge pages the kernel may first compact memory for
(docs/benchmarks.md, thirtieth session). The distributions and the copy for the deeper
solve then took fresh memory too, their spares being one column short.

An array made with room for ``room`` columns is the front of a buffer of ``n * room``
elements: a C-contiguous (n, k) view of it, which every loop reads as any other array.
It widens in place, each row moved back to its wider place, last row first (a row's new
place never starts before its old one, so nothing is written over before it is read), and
the arrays made like it (:func:`empty_like`), and copies into spares (:func:`spare_view`),
keep the room. An array without room widens into fresh memory, as before.
"""

from __future__ import annotations

import sys

import numpy as np


# The most columns an array has room for. The room is address space, not memory (pages
# nobody has written are not resident), but a project of thousands of classes would ask
# for items x classes of it per array, which the kernel may refuse; past this many
# classes a new one widens into fresh memory, as it did before.
MOST_ROOM = 64


def zeros(n: int, k: int, room: int = 0) -> np.ndarray:
    """An (n, k) float64 array of zeros, with room to widen in place to ``room`` columns
    (none when ``room <= k``; at most :data:`MOST_ROOM`)."""
    room = min(room, MOST_ROOM)
    if room <= k:
        return np.zeros((n, k))
    return np.zeros(n * room)[:n * k].reshape(n, k)


def empty_like(array: np.ndarray) -> np.ndarray:
    """An uninitialised array of ``array``'s shape and dtype, with as much room."""
    room = columns_room(array) if array.ndim == 2 else 0
    if array.ndim != 2 or room <= array.shape[1]:
        return np.empty_like(array, order="C")
    n, k = array.shape
    return np.empty(n * room, dtype=array.dtype)[:n * k].reshape(n, k)


def columns_room(array: np.ndarray) -> int:
    """How many columns the 2-D ``array`` can widen to in place: the width of the buffer
    it is the front of, or its own width."""
    n, k = array.shape
    buffer = array.base
    if (n == 0 or buffer is None or not array.flags.c_contiguous or buffer.ndim != 1
            or not buffer.flags.c_contiguous or buffer.dtype != array.dtype
            or buffer.ctypes.data != array.ctypes.data):
        return k
    return max(buffer.size // n, k)


def widened(block: np.ndarray, positions: np.ndarray, width: int) -> np.ndarray:
    """``block`` (n, k) with its columns moved to ``positions`` (increasing) of ``width``
    columns, the others zero: in place when it has the room (``block`` is then used up;
    the result is a new view of its buffer), else a new array without room."""
    n, k = block.shape
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    if columns_room(block) < width:
        before = np.setdiff1d(np.arange(width), positions) - np.arange(width - k)
        return np.insert(block, before, 0, axis=-1)
    # compiled: imported when an array widens in place, not with this module (numba's
    # import took 0.2-0.4 s of a process that never widens: a digits run of 1.5 s)
    from .widen_rows import widen_rows

    buffer = block.base
    widen_rows(buffer, n, k, width, positions)
    return buffer[:n * width].reshape(n, width)


def spare_view(holder, name: str, shape: tuple, dtype) -> np.ndarray | None:
    """``holder``'s array ``name`` (which ``holder`` gives up) as an uninitialised array of
    ``shape`` and ``dtype``: itself when it has that shape, else a view of the front of its
    buffer when that is large enough (an array with room); None when nothing fits or
    something else holds it or a view of its buffer. ``holder`` may be None (no spare)."""
    if holder is None:
        return None
    spare = getattr(holder, name)
    setattr(holder, name, None)
    if spare is None or spare.dtype != dtype or not spare.flags.c_contiguous:
        return None
    # nobody else holds it: two references (``spare`` and getrefcount's argument), and
    # nobody but ``spare`` its buffer (three: ``spare``'s, ``base`` and the argument)
    base = spare.base
    if sys.getrefcount(spare) != 2 or (base is not None and sys.getrefcount(base) != 3):
        return None
    shape = tuple(shape)
    if spare.shape == shape:
        return spare
    if (base is None or spare.ndim != 2 or len(shape) != 2 or shape[0] != len(spare)
            or columns_room(spare) < shape[1]):
        return None
    return base[:shape[0] * shape[1]].reshape(shape)
