"""Connecting to a Dask cluster: an address, or ``local:N`` worker processes on this machine."""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager

from ..errors import UserError

CLUSTER_HELP = ("a scheduler address (tcp://HOST:PORT) or local:N for N worker processes "
                "on this machine")


def _dask_distributed():
    try:
        import distributed
    except ImportError:
        raise UserError("--cluster needs Dask: pip install 'activeprop[distributed]'") \
            from None
    return distributed


def connect(spec: str):
    """A ``distributed.Client`` for ``spec``: ``local:N`` starts a LocalCluster of N worker
    processes sharing this machine's cores as threads (a graph has a row block per
    worker), anything else is a scheduler's address."""
    distributed = _dask_distributed()
    if spec.startswith("local:"):
        count = spec.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise UserError(f"--cluster {spec!r}: N in local:N must be a whole number >= 1; "
                            f"allowed: {CLUSTER_HELP}")
        threads = max(1, (os.cpu_count() or 1) // int(count))
        cluster = distributed.LocalCluster(n_workers=int(count), threads_per_worker=threads,
                                           processes=True, dashboard_address=":0")
        return distributed.Client(cluster)
    if "://" not in spec and ":" not in spec:
        raise UserError(f"--cluster {spec!r} is not an address; allowed: {CLUSTER_HELP}")
    try:
        return distributed.Client(spec, timeout=30)
    except (OSError, TimeoutError) as error:
        raise UserError(f"cannot reach the Dask scheduler at {spec} ({error}); start one "
                        "with `dask scheduler`, or use --cluster local:N") from None


# How long a cluster may stay without any worker (a scheduler started moments ago, a
# worker being restarted after a fault) before a command gives up.
WORKER_WAIT_SECONDS = 60


def workers(client) -> dict:
    """The cluster's running workers (address -> threads), waiting for the first one when
    none has joined yet. Asked of the scheduler each time: ``client.scheduler_info()``
    returns the client's cached copy, which its periodic refresh writes without the
    workers (distributed 2026.8), and a graph build on a loaded machine once found none
    there with two running."""
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
    except TimeoutError:
        raise UserError(f"the Dask scheduler at {client.scheduler.address} has had no "
                        f"worker for {WORKER_WAIT_SECONDS} s; start some with "
                        "`dask worker ADDRESS`") from None
    return client.nthreads()


def close(client) -> None:
    """Close ``client``, and the LocalCluster it started, if any."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def _received(data):
    """The task that holds what the client sent."""
    return data


def send(client, data, worker: str | None = None):
    """Put ``data`` (an array, or a list of arrays) on the workers as tasks rather than
    scattered data: the scheduler keeps what it needs to make them again, so losing a
    worker loses nothing (scattered data would be lost with it, and Dask's memory manager
    removes the replicas that would guard it). ``worker``: where to put it if that worker
    is there (else anywhere). Returns a future, or a list of futures."""
    if isinstance(data, list):
        return [send(client, part, worker) for part in data]
    with arguments_kept_in_tasks():
        future = client.submit(_received, data, pure=False,
                               workers=None if worker is None else [worker],
                               allow_other_workers=worker is not None)
    return future


@contextmanager
def arguments_kept_in_tasks():
    """Submit tasks with large arguments (arrays) without Dask's warning: it advises
    scattering them, but keeping them in the task is the point here (it is what makes them
    survive a worker's loss)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sending large graph")
        yield
