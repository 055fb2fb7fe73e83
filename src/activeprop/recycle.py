"""Copies written into arrays that nobody holds any more, instead of into fresh memory.

At 1,000,000 items an (items x classes) array is 80 MB. glibc maps an array that large
afresh and returns it on free, numpy asks the kernel for huge pages on it, and on the
virtual machines here a huge-page fault may wait for the kernel to compact memory: the
labeler's copy of its solve for the deeper solve it runs while the person looks (three
such arrays) took 65 ms usually and 0.8-1.4 s at times (docs/benchmarks.md,
twenty-ninth session).
"""

from __future__ import annotations

import numpy as np

from .column_room import empty_like, spare_view


def copy_into_spare(source: np.ndarray, holder, name: str) -> np.ndarray:
    """A copy of ``source``: written into ``holder``'s array ``name`` (which ``holder``
    gives up) when it fits and nothing else holds it
    (:func:`activeprop.column_room.spare_view`); else into fresh memory, with as much room
    for more columns as ``source`` has. ``holder`` may be None (no spare)."""
    target = spare_view(holder, name, source.shape, source.dtype)
    if target is None:
        target = empty_like(source)
    np.copyto(target, source)
    return target
