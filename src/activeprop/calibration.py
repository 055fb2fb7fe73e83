"""What this machine's operations cost, measured on it, and the decisions taken from that.

Some choices trade one cost for another: buying the powers of a dense operator or renting
its columns (a compute-bound square product against memory-bound thin ones), an exact
nearest-neighbour search or an approximate one, splitting a product over threads or not.
Which side wins depends on the CPU (AVX-512 or not, cache sizes, how fast threads wake)
and its BLAS, so nothing here is a constant tuned on one machine: each rate is measured
by a short calibration the first time a decision needs it (a few tenths of a second),
and kept in a file per machine (its CPU model, flags, cores and BLAS) under
``$ACTIVEPROP_CACHE`` (default ``~/.cache/activeprop``). A rate measured while other
processes held the cores is slower than the machine is: it is used, marked as taken under
load, and measured again by the next few processes that need it, keeping the fastest.

The decisions are plain functions of a :class:`MachineCosts`, so tests run them on made-up
costs both ways.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path

import numpy as np

# A search that is exact is worth this many times the time of an approximate one (HNSW
# misses a few per cent of the true neighbours, which costs accuracy per label).
EXACT_SEARCH_PREMIUM = 4.0
CALIBRATION_VERSION = 2  # bump when a measurement changes meaning (2: HNSW's settings)
HNSW_ITEMS = 5000  # the calibration's HNSW index size
# Below this share of the cores the machine counts as busy: quiet, a probe gets 0.98-1.0;
# with one other busy process on 2 cores 0.47-0.76 (an AMD EPYC, 2026-12-02).
QUIET_SHARE = 0.85
# While the machine is busy, a rate is measured at most this many times (by as many
# processes), so that a machine that is always busy does not pay for it in every run.
LOADED_RETRIES = 3


class MachineCosts:
    """Rates of the running machine, in seconds per unit of work.

    ``square_madd``: per multiply-add of a large dense product (BLAS, every core);
    ``thin_madd``: of a dense n x n times n x 8 product (memory-bound);
    ``sparse_row``: per row of a kNN graph (10 neighbours) times 8 columns, one core;
    ``stream_item``: per element of an element-wise pass over large arrays;
    ``exp_item``: per element of an exponential;
    ``thread_handoff``: to hand one task per core to the thread pool and collect them;
    ``flat_madd``: per multiply-add of faiss's exact search (128 dimensions);
    ``hnsw_item``, ``hnsw_dimension``: per item to build and search faiss's HNSW index
    (5,000 items), and what each dimension adds to it;
    ``scipy_special_import``, ``scipy_special_import_after_sparse``: seconds (not rates)
    to import scipy.special into a process that has numpy only, and one that has
    scipy.sparse too (which brings much of what scipy.special needs).

    Given as keywords (tests), or else each is read from the machine's cache file, or
    measured the first time a decision asks for it and saved there. A rate the file marks
    as taken under load is measured again (see :data:`LOADED_RETRIES`).
    """

    def __init__(self, path: Path | None = None, **known: float):
        unknown = set(known) - set(MEASUREMENTS)
        if unknown:
            raise TypeError(f"unknown costs {sorted(unknown)}; known: {sorted(MEASUREMENTS)}")
        self._path, self._known = path, dict(known)
        self._checked = set(known)  # the rates this object has settled
        self._loaded: dict[str, int] = {}  # rate -> measurements of it taken under load

    def __getattr__(self, name: str) -> float:
        if name.startswith("_") or name not in MEASUREMENTS:
            raise AttributeError(name)
        if name not in self._checked:
            if self._path is None:
                raise AttributeError(f"no measured {name} given")
            self._checked.add(name)
            stored, self._loaded = _read(self._path)
            self._known = {**stored, **self._known}
            if name not in self._known or 0 < self._loaded.get(name, 0) < LOADED_RETRIES:
                self._measure(name)
        return self._known[name]

    def _measure(self, name: str) -> None:
        """Measure ``name``, keep the fastest rate seen, note whether the machine was busy,
        and save."""
        rate, share = MEASUREMENTS[name](), machine_share()
        self._known[name] = min(rate, self._known.get(name, rate))
        if share < QUIET_SHARE:
            self._loaded[name] = self._loaded.get(name, 0) + 1
        else:
            self._loaded.pop(name, None)
        _write(self._path, self._known, self._loaded)


# Decisions ---------------------------------------------------------------------------


def powers_seconds(n_items: int, costs: MachineCosts) -> float:
    """What buying ``S^2`` of an n x n operator costs: one symmetric product (n^3 / 2
    multiply-adds), plus passes over it."""
    return 0.5 * n_items**3 * costs.square_madd + 4 * n_items**2 * costs.thin_madd


def fourth_power_seconds(n_items: int, costs: MachineCosts) -> float:
    """What buying ``S^3`` and ``S^4`` of an n x n operator from its square costs: one
    general product (n^3 multiply-adds) and one symmetric one (n^3 / 2), plus passes."""
    return 1.5 * n_items**3 * costs.square_madd + 4 * n_items**2 * costs.thin_madd


def powers_pay(n_items: int, rented_seconds: float, coming_seconds: float,
               costs: MachineCosts) -> bool:
    """Whether to buy the powers: the columns rented so far (measured) and the rent the
    announced fits would pay at the same rate cost at least the powers."""
    return rented_seconds + coming_seconds >= powers_seconds(n_items, costs)


def search_backend(n_items: int, dimensions: int, costs: MachineCosts,
                   n_indexes: int = 1) -> str:
    """"flat" (exact) while it costs at most :data:`EXACT_SEARCH_PREMIUM` times HNSW, else
    "hnsw". ``n_indexes``: the pool is split into that many indexes, each searched with
    every item (a cluster's row chunks)."""
    flat = float(n_items) ** 2 * dimensions * costs.flat_madd
    # per item, HNSW visits a number of nodes growing with log n, each costing a distance
    per_item = costs.hnsw_item + max(dimensions - 16, 0) * costs.hnsw_dimension
    per_index = max(n_items // n_indexes, 2)
    hnsw = n_items * n_indexes * per_item * np.log(per_index) / np.log(HNSW_ITEMS)
    return "flat" if flat <= EXACT_SEARCH_PREMIUM * hnsw else "hnsw"


def usable_cores() -> int:
    """The cores a row-wise task of this process may split over: inside a Dask worker its
    threads (its share of the machine; the other workers there use the rest), else every
    core."""
    if "distributed" in sys.modules:  # never imported just to ask (it takes 0.5 s)
        try:
            return sys.modules["distributed"].get_worker().state.nthreads
        except ValueError:  # not in a worker's task
            pass
    return os.cpu_count() or 1


def rows_worth_a_thread(seconds_per_row: float, costs: MachineCosts,
                        cores: int | None = None) -> int:
    """The fewest rows for which splitting a row-wise task over the cores saves more than
    handing it to the threads costs."""
    cores = cores or usable_cores()
    if cores < 2:
        return 2**62
    saved_per_row = seconds_per_row * (1 - 1 / cores)
    return max(1, int(np.ceil(costs.thread_handoff / max(saved_per_row, 1e-15))))


# Measurements ------------------------------------------------------------------------


@cache
def machine_costs() -> MachineCosts:
    """This machine's costs: from its cache file, else measured when first needed."""
    return MachineCosts(cache_file())


def cache_file() -> Path:
    """The file this machine's costs are kept in: under ``$ACTIVEPROP_CACHE``, else
    ``~/.cache/activeprop``, else (no home directory) the temporary directory's."""
    root = os.environ.get("ACTIVEPROP_CACHE")
    if not root:
        try:
            root = Path.home() / ".cache" / "activeprop"
        except (KeyError, RuntimeError):  # a service account without a home
            root = Path(tempfile.gettempdir()) / "activeprop"
    return Path(root) / f"machine-costs-{machine_key()}.json"


def machine_key() -> str:
    """A short digest of what the rates depend on: CPU model and flags, cores, BLAS."""
    return hashlib.sha256(json.dumps(describe_machine(), sort_keys=True).encode()) \
        .hexdigest()[:16]


def describe_machine() -> dict:
    """CPU model, its flags, the core count and the BLAS numpy uses."""
    cpu, flags = platform.processor(), []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = sorted(line.split(":", 1)[1].split())
    except OSError:
        pass  # not Linux: the model from platform, no flags
    return {"cpu": cpu, "flags": flags, "cores": os.cpu_count(), "blas": _blas(),
            "numpy": np.__version__, "version": CALIBRATION_VERSION}


def _blas() -> list[str]:
    """numpy's BLAS (library, kernel, version): the one the dense products run on. Only
    numpy's, so that the key is the same whether scipy (with its own copy) is loaded."""
    try:
        import threadpoolctl
    except ImportError:
        return []
    found = [info for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    numpys = [info for info in found if "numpy" in str(info.get("filepath", ""))]
    return [f"{info['internal_api']} {info.get('architecture')} {info.get('version')}"
            for info in numpys or found]


def _read(path: Path) -> tuple[dict, dict]:
    """The rates a cache file holds, and how many times each was measured under load."""
    try:
        stored = json.loads(path.read_text())
        loaded = {name: int(count) for name, count in stored.get("loaded", {}).items()}
        return {name: float(stored[name]) for name in MEASUREMENTS if name in stored}, loaded
    except (OSError, ValueError, TypeError, AttributeError):
        return {}, {}  # absent or unreadable: measure again


def _write(path: Path, costs: dict, loaded: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({**costs, "loaded": loaded,
                                         "machine": describe_machine()}, indent=1))
        temporary.replace(path)  # whole or not at all, whoever else is writing it
    except OSError:
        pass  # a read-only home: measured again next time


def machine_share(seconds: float = 0.05) -> float:
    """The share of the machine's cores this process got over a short probe: each core's
    thread runs an exponential for ``seconds``, and the CPU time they were given is divided
    by what the cores could have given. Near 1 on a quiet machine, lower when other
    processes (or the hypervisor) take the cores."""
    from .graph import _thread_pool

    cores = os.cpu_count() or 1
    values = np.random.default_rng(0).random(2**17)  # ~1 ms per pass: the GIL is rarely held

    def spin(_) -> None:
        out, end = np.empty_like(values), time.perf_counter() + seconds
        while time.perf_counter() < end:
            np.exp(values, out=out)

    pool = _thread_pool()
    cpu, wall = time.process_time(), time.perf_counter()
    list(pool.map(spin, range(cores)))
    return (time.process_time() - cpu) / ((time.perf_counter() - wall) * cores)


def _best_of(task: Callable, repeats: int = 3) -> float:
    """The fastest of a few runs of ``task`` (the first may pay for page faults)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        task()
        times.append(time.perf_counter() - start)
    return min(times)


def _square_madd(n: int = 768) -> float:
    A = np.random.default_rng(0).random((n, n))
    return _best_of(lambda: A @ A) / n**3


def _thin_madd(n: int = 3000, k: int = 8) -> float:
    rng = np.random.default_rng(0)
    A, B = rng.random((n, n)), rng.random((n, k))
    return _best_of(lambda: A @ B, repeats=5) / (n * n * k)


def _sparse_row(n: int = 50_000, k: int = 10, columns: int = 8) -> float:
    from scipy import sparse

    rng = np.random.default_rng(0)
    graph = sparse.csr_matrix((np.ones(n * k), (np.repeat(np.arange(n), k),
                                                rng.integers(0, n, n * k))), shape=(n, n))
    block = rng.random((n, columns))
    return _best_of(lambda: graph @ block) / n


def _thread_handoff() -> float:
    from .graph import _thread_pool

    pool = _thread_pool()
    cores = os.cpu_count() or 1
    list(pool.map(lambda _: None, range(cores)))  # the threads exist
    return _best_of(lambda: list(pool.map(lambda _: None, range(cores))), repeats=20)


def _flat_madd(n: int = 5000, d: int = 128) -> float:
    import faiss

    X = np.random.default_rng(0).random((n, d), dtype=np.float32)
    index = faiss.IndexFlatL2(d)
    index.add(X)
    return _best_of(lambda: index.search(X, 10), repeats=2) / (n * n * d)


def _hnsw_seconds(n: int, d: int) -> float:
    """Seconds per item to build faiss's HNSW index over n random items of d dimensions
    and search each item's 10 nearest (the settings of activeprop.graph)."""
    from .graph import hnsw_index, hnsw_search_depth

    X = np.random.default_rng(0).random((n, d), dtype=np.float32)

    def build_and_search():
        index = hnsw_index(d)
        index.add(X)
        index.hnsw.efSearch = hnsw_search_depth(10)
        index.search(X, 10)

    return _best_of(build_and_search, repeats=1) / n


def _hnsw_item() -> float:
    return _hnsw_seconds(HNSW_ITEMS, 16)


def _hnsw_dimension() -> float:
    return (_hnsw_seconds(HNSW_ITEMS, 128) - _hnsw_seconds(HNSW_ITEMS, 16)) / 112


def _stream_item(n: int = 2**20) -> float:
    a, b = np.random.default_rng(0).random((2, n))
    out = np.empty(n)
    return _best_of(lambda: np.multiply(a, b, out=out), repeats=5) / n


def _exp_item(n: int = 2**20) -> float:
    a = -np.random.default_rng(0).random(n) * 50
    out = np.empty(n)
    return _best_of(lambda: np.exp(a, out=out), repeats=5) / n


def _scipy_special_import(before: str, repeats: int = 2) -> float:
    """The fastest of a few imports of scipy.special, each in a fresh interpreter that has
    imported the modules ``before`` (this process may hold scipy already). The first may
    read the files from disk."""
    script = (f"import time, {before}; start = time.perf_counter(); import scipy.special; "
              "print(time.perf_counter() - start)")
    return min(float(subprocess.run([sys.executable, "-c", script], check=True,
                                    capture_output=True, text=True).stdout)
               for _ in range(repeats))


MEASUREMENTS: dict[str, Callable[[], float]] = {
    "square_madd": _square_madd, "thin_madd": _thin_madd, "sparse_row": _sparse_row,
    "stream_item": _stream_item, "exp_item": _exp_item, "thread_handoff": _thread_handoff,
    "flat_madd": _flat_madd, "hnsw_item": _hnsw_item, "hnsw_dimension": _hnsw_dimension,
    "scipy_special_import": partial(_scipy_special_import, "numpy"),
    "scipy_special_import_after_sparse": partial(_scipy_special_import, "numpy, scipy.sparse"),
}
