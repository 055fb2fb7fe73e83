"""Copies written into arrays that nobody holds any more, instead of into fresh memory.

At 1,000,000 items an (items x classes) array is 80 MB. glibc maps an array that large
afresh and returns it on free, numpy asks the kernel for huge pages on it, and on the
virtual machines here a huge-page fault may wait for the kernel to compact memory: the
labeler's copy of its solve for the deeper solve it runs while the person looks (three
such arrays) took 65 ms usually and 0.8-1.4 s at times (docs/benchmarks.md,
twenty-ninth session).
"""

from __future__ import annotations

import sys

import numpy as np


def copy_into_spare(source: np.ndarray, holder, name: str) -> np.ndarray:
    """A copy of ``source``: written into ``holder``'s array ``name`` (which ``holder``
    gives up) when it has the same shape and dtype and nothing else holds it; else into
    fresh memory. ``holder`` may be None (no spare)."""
    spare = None
    if holder is not None:
        spare = getattr(holder, name)
        setattr(holder, name, None)
    # two references to an array nobody else holds: ``spare`` and getrefcount's argument
    if spare is not None and spare.shape == source.shape and spare.dtype == source.dtype \
            and sys.getrefcount(spare) == 2:
        np.copyto(spare, source)
        return spare
    return source.copy()
