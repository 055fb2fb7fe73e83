"""Fresh memory costs on the virtual machines here: copies written into arrays that nobody
holds any more, and a labeler process that does not ask for huge pages.

At 1,000,000 items an (items x classes) array is 80 MB. glibc maps an array that large
afresh and returns it on free, numpy asks the kernel for huge pages on it, and on the
virtual machines here a huge-page fault may wait for the kernel to compact memory: the
labeler's copy of its solve for the deeper solve it runs while the person looks (three
such arrays) took 65 ms usually and 0.8-1.4 s at times (docs/benchmarks.md,
twenty-ninth session).
"""

from __future__ import annotations

import os
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


def without_huge_page_advice() -> None:
    """Have numpy stop asking the kernel for huge pages on the large arrays it allocates,
    for the rest of this process, unless ``NUMPY_MADVISE_HUGEPAGE`` says otherwise (numpy's
    documented switch, read only when numpy is imported; this sets the same flag later).
    For a labeler's process (``activeprop serve``, ``label``): with the kernel's
    ``defrag=madvise`` (Debian's and Ubuntu's default) a fault on such memory may wait
    for the kernel to compact memory (numpy issue 31590). At 1,000,000 items,
    ``bench/bench_labeler.py`` gave slowest labels of 657-741 ms without the advice,
    1,269-2,193 ms with it, for about the same medians (docs/benchmarks.md, twenty-ninth
    session)."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _set_madvise_hugepage
    _set_madvise_hugepage(False)
