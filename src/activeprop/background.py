"""Work a labeling session does off the answer path, on threads of its own.

A person waits for the answer to a label (saved, model refit, queue); the rest is done
after it: cross-validating the learning curve, writing the store's predictions cache,
computing the pool's density, importing slow modules. This module holds the threads and the
timer that run such work; the session (:class:`activeprop.labeling.LabelingSession`)
decides what to run.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable


class BackgroundWork:
    """A worker for jobs a person should not wait for, one for jobs the answer path may
    wait for (the pool's density, the graph loaded at opening), and a timer that hands a
    job to the first worker once calls stop coming for ``quiet_seconds``.

    The awaited jobs have a worker of their own: a queue waits for the density while
    holding the session's lock, and the other worker's jobs may be waiting for that lock
    (caching predictions); on one worker the two would wait for each other for ever.
    """

    def __init__(self, quiet_seconds: float):
        self.quiet_seconds = quiet_seconds
        self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="background")
        self._awaited = ThreadPoolExecutor(max_workers=1, thread_name_prefix="awaited")
        self._timer: threading.Timer | None = None
        self._waiting: tuple | None = None  # (task, args) of the job the timer waits with
        # the timer is replaced, fired and cancelled from several threads (the session's
        # requests, the timer's own, close)
        self._lock = threading.RLock()
        self._closed = False

    def submit(self, task: Callable, *args) -> Future:
        """Run ``task(*args)`` on the worker, after the jobs submitted before it."""
        return self._jobs.submit(task, *args)

    def submit_awaited(self, task: Callable, *args) -> Future:
        """Run ``task(*args)`` on the worker of jobs the answer path may wait for."""
        return self._awaited.submit(task, *args)

    def when_quiet(self, task: Callable, *args) -> None:
        """Submit ``task(*args)`` once ``quiet_seconds`` passed without another call (a
        later call replaces this one and restarts the wait)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._waiting = (task, args)
            self._timer = threading.Timer(self.quiet_seconds, self._quiet, ())
            self._timer.daemon = True
            self._timer.start()

    def catch_up(self) -> None:
        """Submit the job waiting for a quiet moment now, then wait for every job
        submitted so far."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._submit_waiting()
        self._jobs.submit(lambda: None).result()

    def close(self) -> None:
        """Finish the jobs in progress and drop those that have not started."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
        self._jobs.shutdown(wait=True, cancel_futures=True)
        self._awaited.shutdown(wait=True, cancel_futures=True)

    def _quiet(self) -> None:
        """The timer's end: its job, unless a later call or catch_up took it first."""
        with self._lock:
            if threading.current_thread() is self._timer:  # (not one a later call replaced)
                self._submit_waiting()

    def _submit_waiting(self) -> None:
        # The waiting job is taken (under the lock) by whichever comes first, the timer or
        # catch_up, so it runs once. catch_up used to submit the timer's job whenever the
        # timer's thread was still alive: a cancelled timer whose thread had not yet ended
        # made a second catch_up run the job again (CI, on a loaded machine).
        waiting, self._waiting = self._waiting, None
        if waiting is not None and not self._closed:
            task, args = waiting
            self._jobs.submit(task, *args)
