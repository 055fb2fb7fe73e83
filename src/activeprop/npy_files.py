"""numpy's ``.npy`` and ``.npz`` files, read from any thread.

numpy parses each array's header with ``ast.literal_eval``, and CPython 3.11 counts the AST
constructor's depth per interpreter, not per thread: two threads parsing at once can fail
with "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905). A
labeler's background graph load beside a foreground one did, in CI; a cluster worker's
threads read a pool's ``.npy`` shards side by side. Every read goes through here, one
header at a time.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

_HEADERS = threading.Lock()


def load(path, **options):
    """``np.load`` of a ``.npy`` file (its header is parsed inside the call)."""
    with _HEADERS:
        return np.load(path, **options)


@contextmanager
def opened(path, **options):
    """``np.load`` of a ``.npz`` file, as a context: its arrays' headers are parsed as
    they are read, so the whole block holds the lock."""
    with _HEADERS, np.load(path, **options) as arrays:
        yield arrays
