"""The engine on a Dask cluster against the single-process engine, on pools stored as Zarr
(issue 19, item 8).

Protocol (bench_scale.py's): digits-aug:N (64 features), written once as a Zarr pool with
`activeprop shard`; 100 initial labels (the pool's first 100), batches of 10 by entropy,
k = 10, label spreading with alpha 0.2, conjugate gradients to a relative residual of 1e-4;
ROUNDS rounds, round time = fit + predictions + query, median of rounds 2 on. Each
configuration runs in its own process:
* single: the single-process engine, the Zarr pool read into memory (float32);
* cluster with W workers: a LocalCluster of W worker processes sharing the cores as
  threads (as `--cluster local:W`), the pool read by the workers from the Zarr chunks,
  the neighbour search of the kind the single engine chose (flat or HNSW). Each worker's memory limit is its share
  of the single-process engine's peak plus 1 GiB: with two or more, no worker could hold
  the whole pool, its graph and vectors. The target is a peak within the worker's share
  of the features plus 1 GiB.
Reported: graph seconds, round ms, accuracy at 100 labels, peak memory (the process; for
a cluster, each worker process's, also as it stood once the graph was built, so that a
peak higher at the end is the rounds'; and the client's), the tasks each worker ran at its
highest sampled memory in the rounds (sampled every 50 ms), the halo rows, and the bytes
workers sent one another during the rounds (Dask's own records: each worker's
``transfer_outgoing_log``, by the task whose result moved): the solver's halo per product
(the rows of a search direction that a block's edges reach: a solve's first product, then
one per iteration) and the rest per round (the fill's halo layer by layer, the queries'
candidates, blocks made on one worker and needed on another).

Run: python bench/bench_cluster.py [--items 1000000[,4000000]] [--workers 1,2] [--rounds 6]
         [--single-from OUTPUT]   (the single engine's rows of an earlier run's output, to
                                   add worker counts without running it again)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import machine  # noqa: E402
from scale_worker import peak_megabytes as peak_mb  # noqa: E402
from scale_worker import status_megabytes  # noqa: E402
from scale_worker import timed_rounds  # noqa: E402  (bench_scale.py's protocol)

NEIGHBORS, ALPHA, RTOL = 10, 0.2, 1e-4


def run_single(store: str, n_rounds: int) -> dict:
    from activeprop.models import make_model
    from activeprop.shards import open_sharded

    stored = open_sharded(store)
    model = make_model("spreading", stored.in_memory(), kernel="knn", n_neighbors=NEIGHBORS,
                       alpha=ALPHA, solver="cg", rtol=RTOL, max_iter=500)
    graph = model.build_graph()
    result = timed_rounds(model, stored.labels, n_rounds)
    return {**result, "graph_seconds": graph.build_seconds, "search": graph.backend,
            "recall": graph.recall, "peak_mb": peak_mb()}


def run_cluster(store: str, n_workers: int, n_rounds: int, single_peak_mb: float,
                search: str) -> dict:
    from distributed import Client, LocalCluster

    from activeprop.distributed.model import ClusterGraphModel
    from activeprop.shards import open_sharded

    stored = open_sharded(store)
    share = stored.n_items * stored.n_features * 4 / n_workers
    limit = single_peak_mb * 2**20 / n_workers + 2**30
    threads = max(1, (os.cpu_count() or 1) // n_workers)  # as --cluster local:N
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True,
                           dashboard_address=":0", memory_limit=int(limit))
    client = Client(cluster)
    try:
        model = ClusterGraphModel("spreading", stored.lazy(), client, n_neighbors=NEIGHBORS,
                                  alpha=ALPHA, max_iter=500, rtol=RTOL, search=search)
        graph = model.build_graph()
        # each worker's high-water mark so far: the graph's; at the end, the rounds' too
        after_graph = client.run(peak_mb)
        client.run(_clear_transfer_log)
        client.run(_start_sampling)
        result = timed_rounds(model, stored.labels, n_rounds)
        at_peak = client.run(_stop_sampling)
        sent = bytes_by_task(client.run(_transfer_log).values())
        workers = client.run(peak_mb)
        halo = sum(sent.pop(task, 0) for task in SOLVER_HALO)
        # each group of classes' solve: its first product, then one an iteration
        products = result["halo_products"]
        return {**result, "graph_seconds": graph.build_seconds, "search": graph.search,
                "recall": graph.recall, "halo_rows": graph.exchange.halo_rows,
                "halo_bytes_per_product": halo / products if products else 0.0,
                "other_bytes_per_round": sum(sent.values()) / n_rounds,
                "other_bytes_by_task": dict(sent.most_common(4)),
                "worker_peak_mb": sorted(workers.values()),
                "worker_peak_after_graph_mb": sorted(after_graph.values()),
                "rounds_peak_tasks": [at_peak[w] for w in sorted(workers, key=workers.get)],
                "client_peak_mb": peak_mb(),
                "worker_limit_mb": limit / 2**20, "worker_target_mb": (share + 2**30) / 2**20}
    finally:
        client.close()
        cluster.close()


# The tasks whose results are the solver's halo: the rows of a vector another block's edges
# reach (np.take, for a solve's first product) and of each next search direction.
SOLVER_HALO = ("take", "turned_rows")


# How often a worker's memory is sampled during the rounds, with the tasks it is running.
SAMPLE_SECONDS = 0.05


def _start_sampling(dask_worker) -> None:
    """Sample this worker's resident memory and the tasks it runs, in a thread, until
    :func:`_stop_sampling`: the high-water mark alone does not say what made it."""
    import threading
    import time

    from dask.utils import key_split

    dask_worker.bench_peak, dask_worker.bench_sampling = (0.0, []), True

    def sample() -> None:
        while dask_worker.bench_sampling:
            running = sorted({key_split(task.key) for task in
                              list(dask_worker.state.executing)})
            resident = status_megabytes("VmRSS")
            if resident > dask_worker.bench_peak[0]:
                dask_worker.bench_peak = (resident, running)
            time.sleep(SAMPLE_SECONDS)

    threading.Thread(target=sample, daemon=True).start()


def _stop_sampling(dask_worker) -> dict:
    """The highest resident memory sampled since :func:`_start_sampling` and the tasks
    running then."""
    dask_worker.bench_sampling = False
    resident, running = dask_worker.bench_peak
    return {"mb": round(resident), "running": running}


def _clear_transfer_log(dask_worker) -> None:
    dask_worker.transfer_outgoing_log.clear()


def _transfer_log(dask_worker) -> list[dict]:
    """The bytes of each key this worker sent since its log was cleared."""
    return [dict(entry["keys"]) for entry in dask_worker.transfer_outgoing_log]


def bytes_by_task(logs) -> Counter:
    """The bytes sent, summed per task name (Dask's key without its token)."""
    from dask.utils import key_split

    sent = Counter()
    for log in logs:
        for entry in log:
            for key, size in entry.items():
                sent[key_split(key)] += size
    return sent


def in_own_process(*arguments: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--run", *arguments],
                          capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def earlier_single(output: str, n_items: int) -> dict:
    """The single engine's row for ``n_items`` in an earlier run's output."""
    for line in Path(output).read_text().splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            if row["items"] == n_items and row["engine"] == "single":
                return {**{k: v for k, v in row.items() if k not in ("items", "engine")},
                        "from": output}
    raise SystemExit(f"{output} has no single-engine row for {n_items} items")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", default="1000000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--single-from", help="an earlier run's output: its single-engine "
                        "rows instead of running the single engine again")
    parser.add_argument("--run", nargs="+", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.run:
        kind, store, *rest = options.run
        result = run_single(store, options.rounds) if kind == "single" else \
            run_cluster(store, int(rest[0]), options.rounds, float(rest[1]), rest[2])
        print(json.dumps(result))
        return
    print(machine())
    with tempfile.TemporaryDirectory() as scratch:
        for n_items in map(int, options.items.split(",")):
            store = str(Path(scratch) / f"pool-{n_items}.zarr")
            subprocess.run([sys.executable, "-m", "activeprop.cli", "shard", store,
                            "--dataset", f"digits-aug:{n_items}"], check=True,
                           capture_output=True)
            single = earlier_single(options.single_from, n_items) if options.single_from \
                else in_own_process("single", store, "--rounds", str(options.rounds))
            print(json.dumps({"items": n_items, "engine": "single", **single}), flush=True)
            for workers in map(int, options.workers.split(",")):
                result = in_own_process("cluster", store, str(workers),
                                        str(single.get("peak_mb", 4096)),
                                        single.get("search", "auto"), "--rounds",
                                        str(options.rounds))
                ratios = {}
                if "error" not in result and "error" not in single:
                    ratios = {"graph_vs_single": result["graph_seconds"] / single["graph_seconds"],
                              "round_vs_single": result["round_ms"] / single["round_ms"]}
                print(json.dumps({"items": n_items, "engine": f"cluster-{workers}", **result,
                                  **ratios}), flush=True)


if __name__ == "__main__":
    main()
