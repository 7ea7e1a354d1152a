"""Samples per second of ``loihi-emu`` (exact Loihi fixed point) against ``lava-fixed``, ``norse`` and a dense
float64 GEMM of the same matrices, in one run (not a test).

Workloads (random weights, quantized by the plan; binary Poisson input at ``--rate``):

- ``mlp``: the random 784-512-10 LIF graph of :mod:`bench_fixed` (``random_graph(784, 512, 10)``), T = 32.
- ``conv``: the ``fashion_conv`` architecture (models/fashion_conv.toml; its encoding is graded, which fixed
  point refuses, so binary input here), T = the config's steps; ``init_gain`` raised for the first layer
  (``CONV_GAINS``) so that the hidden layers spike at a few % with binary input, as the config's gains do
  with graded input.
- ``full``: the whole 10000-sample Fashion-MNIST test set through the ``fashion_mlp`` architecture (random
  weights, the config's gains), encoded as its config says (Poisson, T = 32), on loihi-emu.

Per workload: loihi-emu through ``backend.run`` (lowering and quantization included) and its steady state
(:func:`emulate` on a compiled plan), lava-fixed on a few samples (its outputs must equal loihi-emu's bit for
bit), norse (the float64 reference), the float64 GEMM bound (``(batch*T, N_src) @ (N_src, N_dst)`` for every
projection's dense matrix) and the ratios. JSON to ``--out`` with the machine and its load.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DT = 1e-3
CONV_GAINS = [40.0, 16.0, 24.0, 1.0]  # ~4-7 % spike rates in lif1-lif3 with 10 % binary input (config: [5, 16, 24, 1])


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def model_graph(name: str, gains=None, seed: int = 0):
    """A config's architecture with random (seeded) weights, exported as training would (metadata included)."""
    import torch

    from snndeploy.frontends.norse import to_nir
    from snndeploy.train.config import config_hash, load_model_config
    from snndeploy.train.networks import ARCHITECTURES

    cfg = copy.deepcopy(load_model_config(name))
    if gains is not None:
        cfg["model"]["init_gain"] = list(gains)
    torch.manual_seed(seed)
    model = ARCHITECTURES[cfg["model"]["arch"]](cfg, (28, 28), 10)
    meta = {
        "model": cfg["name"],
        "dataset": cfg["dataset"],
        "encoding": cfg["encoding"],
        "readout": cfg.get("readout", {"kind": "spike_count"}),
        "config_hash": config_hash(cfg),
    }
    return to_nir(model, tuple(model.input_shape), cfg["dt"], meta), cfg


def gemm_sps(mats, rows_per_sample: int, samples: int, repeat: int) -> float:
    """Samples/s of float64 GEMMs (samples * T rows) through every projection's dense matrix, spikes given."""
    import torch

    g = torch.Generator().manual_seed(0)
    xs = [(torch.rand(samples * rows_per_sample, k, generator=g) < 0.1).double() for k, _ in mats]
    ws = [torch.randint(-128, 128, (k, n), generator=g).double() for k, n in mats]
    run = lambda: [x @ w for x, w in zip(xs, ws)]  # noqa: E731
    run()
    return samples / best_of(run, repeat)


def emu_figures(graph, x, repeat: int, threads: int, mats, gemm_samples: int) -> dict:
    """loihi-emu through run() and in steady state (compiled plan), and the float64 GEMM bound, on ``threads``
    torch threads."""
    import torch

    from snndeploy.backends import get_backend
    from snndeploy.backends.loihi_emu import compile_plan, emulate
    from snndeploy.lower.fixed import fixed_plan_for

    torch.set_num_threads(threads)
    backend = get_backend("loihi-emu", device="cpu", record_states=False)
    backend.run(graph, x[: min(len(x), 64)], DT)  # warm-up (oneDNN kernels, allocator)
    run_s = best_of(lambda: backend.run(graph, x, DT), repeat)
    prog = compile_plan(fixed_plan_for(graph, DT, "loihi-emu"), "cpu")
    emu_s = best_of(lambda: emulate(prog.fp, x, "cpu", False, program=prog), repeat)
    out = {
        "loihi_emu_run_sps": len(x) / run_s,
        "loihi_emu_sps": len(x) / emu_s,
        "gemm_f64_sps": gemm_sps(mats, x.shape[1], gemm_samples, repeat),
    }
    out["emu_over_gemm_f64"] = out["loihi_emu_sps"] / out["gemm_f64_sps"]
    out["emu_run_over_gemm_f64"] = out["loihi_emu_run_sps"] / out["gemm_f64_sps"]
    return out


def case(name: str, graph, x, args, lava_samples: int, lava_scale: int) -> dict:
    """One workload: every backend and the GEMM bound on the same input; loihi-emu and the GEMM on each thread
    count, each figure's best heading the ratios."""
    import torch

    from snndeploy.backends import get_backend
    from snndeploy.backends.loihi_emu import compile_plan
    from snndeploy.lower.fixed import fixed_plan_for

    steps = x.shape[1]
    out = {"workload": name, "samples": len(x), "steps": steps, "rate": args.rate}
    t = time.perf_counter()
    fp = fixed_plan_for(graph, DT, "loihi-emu")
    out["plan_s"] = time.perf_counter() - t
    t = time.perf_counter()
    prog = compile_plan(fp, "cpu")
    out["compile_s"] = time.perf_counter() - t
    out["paths"] = prog.paths
    mats = [(c.weight.shape[1], c.weight.shape[0]) for c in fp.conns]
    out["gemm_matrices"] = [f"({args.gemm_samples}*{steps}, {k}) @ ({k}, {n})" for k, n in mats]
    by = {str(n): emu_figures(graph, x, args.repeat, n, mats, args.gemm_samples) for n in args.threads}
    out["by_threads"] = by
    for k in ("loihi_emu_run_sps", "loihi_emu_sps", "gemm_f64_sps"):  # each at its best thread count
        out[k] = max(f[k] for f in by.values())
    out["emu_over_gemm_f64"] = out["loihi_emu_sps"] / out["gemm_f64_sps"]
    out["emu_run_over_gemm_f64"] = out["loihi_emu_run_sps"] / out["gemm_f64_sps"]
    torch.set_num_threads(max(args.threads))
    n_emu = min(len(x), max(256, lava_samples * lava_scale))
    emu = get_backend("loihi-emu", device="cpu", record_states=False).run(graph, x[:n_emu], DT)
    out["spike_rates"] = {n: float(emu.outputs[n].mean()) for n in fp.neurons if fp.neurons[n].spiking}

    n_norse = min(len(x), args.norse_samples)
    t = time.perf_counter()
    get_backend("norse").run(graph, x[:n_norse], DT)
    out["norse_sps"] = n_norse / (time.perf_counter() - t)
    out["norse_samples"] = n_norse

    n_lava = min(len(x), lava_samples)
    if n_lava:
        # lava-fixed pays a setup per run (process build, compile) and more on the first run of a process: a small
        # run as a user makes it, the same again (warm), then a larger one; the marginal rate of the last two
        # (extra samples / extra seconds) is its throughput at scale
        runs = []
        for n in (n_lava, n_lava, min(len(x), lava_samples * lava_scale)):
            t = time.perf_counter()
            lava = get_backend("lava-fixed", record_states=False).run(graph, x[:n], DT)
            runs.append((n, time.perf_counter() - t))
            common = lava.outputs.keys() & emu.outputs.keys()
            out["lava_equals_emu"] = out.get("lava_equals_emu", True) and all(
                np.array_equal(lava.outputs[k], emu.outputs[k][:n]) for k in common
            )
        out["lava_runs"] = [{"samples": n, "s": t} for n, t in runs]
        out["lava_fixed_sps"] = n_lava / runs[0][1]
        out["lava_fixed_warm_sps"] = n_lava / runs[1][1]
        out["emu_over_lava"] = out["loihi_emu_sps"] / out["lava_fixed_sps"]
        out["emu_run_over_lava"] = out["loihi_emu_run_sps"] / out["lava_fixed_sps"]
        out["emu_over_lava_warm"] = out["loihi_emu_sps"] / out["lava_fixed_warm_sps"]
        (n2, t2), (n3, t3) = runs[1], runs[2]
        if n3 > n2 and t3 > t2:
            out["lava_fixed_marginal_sps"] = (n3 - n2) / (t3 - t2)
            out["emu_over_lava_marginal"] = out["loihi_emu_sps"] / out["lava_fixed_marginal_sps"]
    out["emu_over_norse"] = out["loihi_emu_sps"] / out["norse_sps"]
    return out


def full_test_set(args) -> dict:
    """All 10000 Fashion-MNIST test samples through fashion_mlp (random weights) on loihi-emu, as encoded by
    the config (the harness's dataset_input)."""
    from snndeploy.backends import get_backend
    from snndeploy.harness.inputs import dataset_input

    graph, cfg = model_graph("fashion_mlp")
    t = time.perf_counter()
    x, labels, desc = dataset_input(graph, "fashion-mnist", None)
    encode_s = time.perf_counter() - t
    import torch

    by = {}
    for n in args.threads:
        torch.set_num_threads(n)
        backend = get_backend("loihi-emu", device="cpu", record_states=False)
        backend.run(graph, x[:64], DT)  # warm-up
        t = time.perf_counter()
        r = backend.run(graph, x, DT)
        by[str(n)] = time.perf_counter() - t
    best = min(by, key=by.get)
    run_s = by[best]
    counts = r.outputs["output"].sum(1)
    return {
        "workload": "fashion_mlp (784-512-256-10 LIF, random weights, config gains), whole Fashion-MNIST test set",
        "input": desc,
        "input_dtype": str(x.dtype),
        "samples": len(x),
        "steps": int(x.shape[1]),
        "input_rate": float(x.mean()),
        "encode_s": encode_s,
        "loihi_emu_run_s": run_s,
        "loihi_emu_run_sps": len(x) / run_s,
        "threads": int(best),
        "run_s_by_threads": by,
        "under_10_s": run_s < 10,
        "spike_rates": {n: float(r.outputs[n].mean()) for n in ("lif1", "lif2", "lif3") if n in r.outputs},
        "accuracy_random_weights": float(np.mean(np.argmax(counts, 1) == labels)),
        "paths": r.info["paths"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2048, help="loihi-emu samples (mlp)")
    ap.add_argument("--conv-samples", type=int, default=512, help="loihi-emu samples (conv)")
    ap.add_argument("--lava-samples", type=int, default=4, help="lava-fixed samples (mlp)")
    ap.add_argument("--conv-lava-samples", type=int, default=2, help="lava-fixed samples (conv: ~5 s each)")
    ap.add_argument("--lava-scale", type=int, default=16, help="the second lava-fixed run: this many times more")
    ap.add_argument("--conv-lava-scale", type=int, default=4)
    ap.add_argument("--norse-samples", type=int, default=128)
    ap.add_argument("--gemm-samples", type=int, default=128)
    ap.add_argument("--rate", type=float, default=0.1, help="Poisson spike probability per step and input")
    ap.add_argument("--steps", type=int, default=32, help="mlp steps (conv: the config's)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repeats (best counts)")
    ap.add_argument(
        "--threads",
        default="1,2",
        help="torch CPU thread counts for loihi-emu and the GEMM bound (norse: the largest); on a small machine "
        "that others load too, 1 can beat 2",
    )
    ap.add_argument("--skip", default="", help="comma-separated workloads to skip: mlp, conv, full")
    ap.add_argument("--out", default="benchmarks/results/bench_emulator.json")
    a = ap.parse_args(argv)
    import torch
    from bench_fixed import random_graph

    a.threads = [int(n) for n in a.threads.split(",")]
    torch.set_num_threads(max(a.threads))
    skip = set(filter(None, a.skip.split(",")))
    rng = np.random.default_rng(0)
    res = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": a.threads,
            "loadavg_start": os.getloadavg(),
        },
        "note": "samples/s; *_run_* through backend.run (lowering + quantization included), loihi_emu_sps: emulate() "
        "on a compiled plan; gemm_f64_sps: float64 matmuls of every projection's dense matrix, spikes given (no "
        "neuron update); lava_fixed_sps: a small lava-fixed run (its per-run setup included, as a user runs it; "
        "_warm: the same again), "
        "lava_fixed_marginal_sps: extra samples / extra seconds of a larger run in the same process (its throughput "
        "at scale); lava_equals_emu: lava-fixed's outputs equal loihi-emu's on every lava sample",
    }
    if "mlp" not in skip:
        x = (rng.random((a.samples, a.steps, 784)) < a.rate).astype(np.float64)
        res["mlp"] = case(
            "random 784-512-10 LIF (bench_fixed.random_graph)",
            random_graph(784, 512, 10),
            x,
            a,
            a.lava_samples,
            a.lava_scale,
        )
        print(json.dumps(res["mlp"], indent=2), flush=True)
    if "conv" not in skip:
        graph, cfg = model_graph("fashion_conv", CONV_GAINS)
        x = (rng.random((a.conv_samples, cfg["encoding"]["steps"], 1, 28, 28)) < a.rate).astype(np.float64)
        res["conv"] = case(
            f"fashion_conv, random weights, init_gain {CONV_GAINS}", graph, x, a, a.conv_lava_samples, a.conv_lava_scale
        )
        print(json.dumps(res["conv"], indent=2), flush=True)
    if "full" not in skip:
        res["full"] = full_test_set(a)
        print(json.dumps(res["full"], indent=2), flush=True)
    res["machine"]["loadavg_end"] = os.getloadavg()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    ok = all(res[k].get("lava_equals_emu", True) for k in ("mlp", "conv") if k in res)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
