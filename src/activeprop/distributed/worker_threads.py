"""Native libraries on all of a Dask worker's threads, for the tasks that run alone.

Dask's nanny starts worker processes with OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
MKL_NUM_THREADS set to 1, so that tasks running side by side do not each start a pool of
threads. But a faiss search, and a lone block's fit, run one at a time on their worker:
with those variables, every faiss call and every BLAS call in them ran on one thread
whatever the worker's threads.

- faiss: a lone worker of two threads built the graph of 1,000,000 items in 460 s against
  one process's 200 s; on both threads, 221-247 s against 177-184 s.
- BLAS: a round of the single engine at 1,000,000 x 64 took 145-155 ms with BLAS on both
  cores and 223-323 ms with BLAS on one (its fit 115 against 186-208 ms). A lone worker's
  round took 374 ms against the single engine's 156, then 333 with its fit's BLAS on both
  threads (docs/benchmarks.md).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

from ..calibration import usable_cores

# One such call at a time per process, so that two tasks do not run twice as many threads
# as there are cores. (Reentrant: a block inside another, in the same task, goes on.)
_ONE_AT_A_TIME = threading.RLock()


@contextmanager
def on_the_workers_threads():
    """Run the native calls inside (BLAS, faiss's OpenMP) on all of this worker's threads
    (every core outside a worker), one such block at a time per process; the limits Dask
    set are back afterwards."""
    with _ONE_AT_A_TIME, threadpool_limits(limits=usable_cores()):
        yield
