"""Lava throughput in shards on Dask workers (not a test): 1 vs 2 workers, and sharded vs naive.

The same seeded random LIF graph (``bench_fixed.random_graph``) and Poisson input for every variant,
one backend (``lava-float`` by default) through :func:`snndeploy.harness.run.run_sharded`:

- ``naive``: the per-sample loop, one Lava network per sample (in-process, on ``--naive-samples``
  samples: its cost per sample does not depend on how many);
- ``in-process``: the shards one after another in this process (one network per shard);
- ``workers=1`` / ``workers=2``: a local Dask cluster of that many worker processes, same shards.

Throughput is samples per second of the shard phase (the cluster is up, every worker has imported
Torch, Norse and Lava); ``total_s`` adds starting and closing the cluster. The variants run in
``--repeat`` interleaved rounds (the machine's load drifts); the best of each counts, and the 2-vs-1
worker ratio is also given per round. With 2 workers each is pinned to its own core. Records must
be equal across variants. JSON to ``--out`` with the machine and its load (others may share it: the
load average is recorded before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_fixed import random_graph  # noqa: E402

from snndeploy.harness.run import run_backends, run_sharded  # noqa: E402
from snndeploy.harness.shards import ShardOptions  # noqa: E402


def _cpu_s() -> float:
    """CPU seconds of this process and its reaped children (in-process: Lava's processes)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def sharded(graph, backend, x, dt, chunk, workers):
    opts = ShardOptions(workers=workers, progress=False)
    t, cpu = time.perf_counter(), _cpu_s()
    r = run_sharded(graph, backend, x, dt, chunk, opts)
    total = time.perf_counter() - t
    shard_s = r.info["shards"]["wall_s"] if workers else total
    fig = {"samples_per_s": len(x) / shard_s, "shard_phase_s": shard_s, "total_s": total}
    if not workers:  # how many cores one Lava network keeps busy
        fig["cores_busy"] = (_cpu_s() - cpu) / total
    return r, fig


def naive(graph, backend, x, dt):
    t = time.perf_counter()
    parts = [run_backends(graph, [backend], x[i : i + 1], dt, show_progress=False)[backend] for i in range(len(x))]
    s = time.perf_counter() - t
    return parts, {"samples_per_s": len(x) / s, "total_s": s, "samples": len(x)}


def best(runs):
    return max(runs, key=lambda r: r["samples_per_s"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="lava-float")
    ap.add_argument("--sizes", default="64,128,10", help="input, hidden, output neurons")
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--steps", type=int, default=32, help="steps per sample (32: the digits demo)")
    ap.add_argument("--chunk", type=int, default=100, help="samples per shard (the same for every variant)")
    ap.add_argument("--naive-samples", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/bench_distributed.json"))
    a = ap.parse_args()
    n_in, n_hid, n_out = (int(v) for v in a.sizes.split(","))
    g = random_graph(n_in, n_hid, n_out)
    x = (np.random.default_rng(0).random((a.samples, a.steps, n_in)) < 0.1).astype(np.float64)
    dt = 1e-3
    load_start = os.getloadavg()
    res = {"variants": {}}

    ref = None
    variants = (("in-process", None), ("workers=1", 1), ("workers=2", 2))
    runs = {label: [] for label, _ in variants}
    for _ in range(a.repeat):  # interleaved: a change in the machine's load hits every variant alike
        for label, workers in variants:
            r, fig = sharded(g, a.backend, x, dt, a.chunk, workers)
            if ref is None:
                ref = r.outputs
            assert all(np.array_equal(ref[k], r.outputs[k]) for k in ref), f"{label}: records differ"
            runs[label].append(fig)
            print(label, json.dumps(fig), flush=True)
    for label, _ in variants:
        res["variants"][label] = dict(best(runs[label]), runs=runs[label])
    pair_ratios = [
        two["samples_per_s"] / one["samples_per_s"] for one, two in zip(runs["workers=1"], runs["workers=2"])
    ]
    naive_runs = []
    for _ in range(a.repeat):
        parts, fig = naive(g, a.backend, x[: a.naive_samples], dt)
        for k in ref:
            assert np.array_equal(np.concatenate([p.outputs[k] for p in parts]), ref[k][: a.naive_samples]), k
        naive_runs.append(fig)
        print("naive", json.dumps(fig), flush=True)
    res["variants"]["naive per-sample loop"] = dict(best(naive_runs), runs=naive_runs)

    v = res["variants"]
    two_vs_one = v["workers=2"]["samples_per_s"] / v["workers=1"]["samples_per_s"]
    vs_naive = {
        k: v[k]["samples_per_s"] / v["naive per-sample loop"]["samples_per_s"]
        for k in v
        if k != "naive per-sample loop"
    }
    res.update(
        {
            "backend": a.backend,
            "graph": f"random {a.sizes.replace(',', '-')} LIF (bench_fixed.random_graph), dt 1 ms",
            "samples": a.samples,
            "steps": a.steps,
            "chunk": a.chunk,
            "shards": -(-a.samples // a.chunk),
            "two_workers_vs_one": two_vs_one,
            "two_workers_vs_one_per_round": pair_ratios,
            "two_workers_vs_one_median_round": float(np.median(pair_ratios)),
            "sharded_vs_naive": vs_naive,
            "acceptance": {
                "two_workers_vs_one (best vs best) >= 1.7": two_vs_one >= 1.7,
                "two_workers_vs_one (median of the rounds' pairs) >= 1.7": float(np.median(pair_ratios)) >= 1.7,
                "sharded (2 workers) vs naive >= 10": vs_naive["workers=2"] >= 10,
            },
            "records_equal": True,
            "one_lava_network_cores_busy": v["in-process"].get("cores_busy"),
            "how": "samples/s of the shard phase (cluster up, libraries imported in the workers), best of "
            f"{a.repeat} interleaved rounds (two_workers_vs_one: best vs best; per round: each round's pair); "
            "with 2 workers each is pinned to its own core (shards.core_sets), 1 worker is not; the naive "
            f"loop builds one Lava network per sample on the first {a.naive_samples} samples; records "
            "checked equal across variants",
            "machine": {
                "processor": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "loadavg_start": load_start,
                "loadavg_end": os.getloadavg(),
            },
        }
    )
    try:
        import dask
        import distributed

        res["machine"]["dask"] = dask.__version__
        res["machine"]["distributed"] = distributed.__version__
    except ImportError:
        pass
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    shown = ("two_workers_vs_one", "two_workers_vs_one_median_round", "sharded_vs_naive", "acceptance")
    print(json.dumps({k: res[k] for k in shown}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
