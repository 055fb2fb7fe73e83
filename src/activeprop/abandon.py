"""Long computations off the answer path, given up as soon as their answer is unwanted.

The labeler cross-validates its learning curve in the background, on the cores its refits
use (and on the same pool of threads). At 1,000,000 items each of the five refits of a
cross-validation runs for seconds, and a label that came meanwhile waited behind it: on a
2-core machine the labels after the first fifteen, made without ground truth at a brisk
pace, took a median of 402 ms with it and 334 ms without, and single labels 2-3 s against
0.3-1.3 s (``/tmp`` script, docs/benchmarks.md). Giving up between refits was not enough.

So such a job runs inside :func:`abandoned_when`, with a test of whether its answer is
still wanted, and the engine's loops (a conjugate-gradient iteration, a layer of the far
items' fill) call :func:`stop_if_abandoned` between their steps: on the job's thread it
raises :class:`Abandoned` once the answer is unwanted, anywhere else it does nothing.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator


class Abandoned(Exception):
    """Raised inside :func:`abandoned_when` once its answer is no longer wanted."""


_unwanted = threading.local()  # each thread's test, while it runs such a job


@contextmanager
def abandoned_when(unwanted: Callable[[], bool]) -> Iterator[None]:
    """Within this block, on this thread, :func:`stop_if_abandoned` raises
    :class:`Abandoned` once ``unwanted()`` is true (the caller catches it)."""
    outer = getattr(_unwanted, "test", None)
    _unwanted.test = unwanted
    try:
        yield
    finally:
        _unwanted.test = outer


def stop_if_abandoned() -> None:
    """Raise :class:`Abandoned` when this thread runs a job whose answer is unwanted."""
    test = getattr(_unwanted, "test", None)
    if test is not None and test():
        raise Abandoned
