"""The whole Fashion-MNIST test set of a trained ``fashion_mlp`` (issue 17): figures of a sharded
``compare`` run, and loihi-emu on all 10000 samples in one process, side by side.

    snndeploy compare runs/fashion_mlp/model.nir --backends norse,loihi-emu,lava-fixed \\
        --dataset fashion-mnist --workers 2 --chunk 500 --resume --out runs/fashion_full
    .venv/bin/python benchmarks/full_fashion_mlp.py --report runs/fashion_full/report.json \\
        [--earlier-wall-s S]   (wall time of an interrupted first run the report resumed)
        [--pair-report runs/fashion_emu_lava/report.json]   (loihi-emu vs lava-fixed, same input)

Writes ``benchmarks/results/full_fashion_mlp.json``: accuracy, agreement, per-backend wall time
summed over shards (worker time), samples/s per worker core, and loihi-emu's single-process time
(best of 3, one torch thread) with the ratio to lava-fixed's per-core rate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from snndeploy.backends import get_backend
from snndeploy.harness.agreement import predictions
from snndeploy.harness.inputs import dataset_input
from snndeploy.ir.analysed import analyse
from snndeploy.ir.graph import open_graph

OUT = Path(__file__).resolve().parent / "results" / "full_fashion_mlp.json"


def _pair(p: dict) -> dict:
    """One pair of a compare report: agreement, and mismatches / entries per population."""
    return {
        "a": p["a"],
        "b": p["b"],
        "spike_agreement": p["spike_agreement"],
        "prediction_agreement": p["prediction_agreement"],
        "mismatches": {k: v["mismatches"] for k, v in p["nodes"].items()},
        "entries": {k: v["entries"] for k, v in p["nodes"].items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", required=True)
    ap.add_argument("--earlier-wall-s", type=float, default=0.0)
    ap.add_argument("--pair-report", help="a second compare of the same input, e.g. loihi-emu,lava-fixed")
    args = ap.parse_args()
    rep = json.loads(Path(args.report).read_text())
    torch.set_num_threads(1)
    g, conv = open_graph(rep["graph"])
    ag = analyse(g)
    start = time.perf_counter()
    x, y, desc = dataset_input(g, "fashion-mnist", None, None)
    encode_s = time.perf_counter() - start
    be = get_backend("loihi-emu", record_states=False)
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        out = be.run(ag, x, conv.dt).outputs
        runs.append(time.perf_counter() - start)
    emu_acc = float(np.mean(predictions(out[ag.output_node]) == y))
    n = rep["samples"]
    per_backend = {
        b: {
            "accuracy": v["accuracy"],
            "wall_s_summed_over_shards": v["info"]["wall_s"],
            "samples_per_s_per_worker_core": n / v["info"]["wall_s"],
        }
        for b, v in rep["backends"].items()
    }
    emu_sps = n / min(runs)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "graph": rep["graph"],
        "input": rep["input"],
        "samples": n,
        "steps": rep["steps"],
        "execution": rep["execution"],
        "wall_s_total": rep["execution"]["wall_s"] + args.earlier_wall_s,
        "wall_s_how": "the resumed run's wall time plus --earlier-wall-s (the interrupted run before it)",
        "backends": per_backend,
        "pairs": [_pair(p) for p in rep["pairs"]],
        "loihi_emu_one_process": {
            "run_s": runs,
            "encode_s": encode_s,
            "accuracy": emu_acc,
            "samples_per_s": emu_sps,
            "torch_threads": 1,
            "over_lava_fixed_per_core": emu_sps / per_backend["lava-fixed"]["samples_per_s_per_worker_core"]
            if "lava-fixed" in per_backend
            else None,
        },
        "ann_twin": rep.get("ann_twin", {}).get("twin"),
    }
    if args.pair_report:
        other = json.loads(Path(args.pair_report).read_text())
        if (other["graph"], other["input"], other["samples"]) != (rep["graph"], rep["input"], rep["samples"]):
            raise SystemExit(f"{args.pair_report}: another graph or input than {args.report}")
        result["direct_pairs"] = [
            dict(_pair(p), counts_equal=p["counts_equal"], wall_s=other["execution"]["wall_s"]) for p in other["pairs"]
        ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(json.dumps({k: result[k] for k in ("backends", "loihi_emu_one_process", "wall_s_total")}, indent=1))


if __name__ == "__main__":
    main()
