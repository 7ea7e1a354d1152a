"""Training throughput: plain eager Norse vs our best configuration, as a ratio in one run.

Workload (issue 5): one training epoch of the Fashion-MNIST MLP (hidden widths from
``models/fashion_mlp.toml``, LIF, Poisson rate code, T = 25, batch 256, Adam). Baseline "plain eager
Norse": Norse's own modules
(``norse.torch.SequentialState`` of Linear + LIFBoxCell) stepped once per time step, float32,
eager, data already on the device (generous to the baseline). Variants of ours, each adding to
the previous: layer-by-layer over time (one matmul per layer for all T steps), bf16 autocast
(CUDA only), torch.compile. Every variant runs the same batches; samples/s = samples / wall time
of the epoch after one warm-up epoch slice.

Writes JSON (``--out``): device, torch version, samples/s per variant and ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snndeploy.train.config import load_model_config  # noqa: E402
from snndeploy.train.loop import autocast, encode_batch  # noqa: E402
from snndeploy.train.networks import SpikingMLP  # noqa: E402

T, BATCH = 25, 256
HIDDEN = list(load_model_config("fashion_mlp")["model"]["hidden"])


def norse_baseline(n_in: int, n_out: int):
    from norse.torch import LIFBoxCell, LIFBoxParameters, SequentialState

    layers = []
    for a, b in zip([n_in, *HIDDEN], [*HIDDEN, n_out]):
        layers += [torch.nn.Linear(a, b), LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.as_tensor(100.0)))]
    net = SequentialState(*layers)

    class PerStep(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            state, outs = None, []
            for t in range(x.shape[0]):
                o, state = self.net(x[t], state)
                outs.append(o)
            return torch.stack(outs)

    return PerStep()


def run_epoch(model, x, y, device, amp, compile_model, gen, max_batches=None):
    fwd = torch.compile(model) if compile_model else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    enc = {"kind": "poisson", "steps": T, "max_prob": 1.0}

    def step(xb, yb):
        with autocast(device, amp):
            counts = fwd(encode_batch(xb, enc, gen)).sum(0).float()
        loss = torch.nn.functional.cross_entropy(counts, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    n = len(x) if max_batches is None else min(len(x), max_batches * BATCH)
    # warm-up (and compilation) on a few batches, not timed
    for i in range(0, min(n, 3 * BATCH), BATCH):
        step(x[i : i + BATCH], y[i : i + BATCH])
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    last = None
    for i in range(0, n, BATCH):
        last = step(x[i : i + BATCH], y[i : i + BATCH])
    float(last)
    if device == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def conv_direct_input(ds, device, max_batches=None, batch: int = 64) -> dict:
    """``models/fashion_conv.toml`` (direct input): the image repeated over T vs the first layer once."""
    from snndeploy.train.networks import ARCHITECTURES

    cfg = load_model_config("fashion_conv")
    steps = cfg["encoding"]["steps"]
    x = torch.as_tensor(ds.x_train.reshape((len(ds.x_train), 1, 28, 28)), device=device)
    y = torch.as_tensor(ds.y_train, device=device)
    n = len(x) if max_batches is None else min(len(x), max_batches * batch)
    out = {
        "workload": f"fashion_conv ({cfg['model'].get('layout', 'lif-pool')}), direct input, T={steps}, "
        f"batch {batch}, {n} samples",
        "results": [],
    }
    for label, shortcut in (("input repeated over time (baseline)", False), ("first layer once (ours)", True)):
        torch.manual_seed(0)
        model = ARCHITECTURES["conv"](cfg, (1, 28, 28), 10).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(xb, yb, model=model, opt=opt, shortcut=shortcut):
            if shortcut:
                counts = model(xb, steps).sum(0)
            else:
                counts = model(xb.unsqueeze(0).expand((steps,) + tuple(xb.shape)).contiguous()).sum(0)
            loss = torch.nn.functional.cross_entropy(counts, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.detach()

        step(x[:batch], y[:batch])  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(0, n, batch):
            last = step(x[i : i + batch], y[i : i + batch])
        float(last)
        if device == "cuda":
            torch.cuda.synchronize()
        sps = n / (time.perf_counter() - start)
        out["results"].append({"variant": label, "samples_per_s": sps})
        print(f"conv: {label:45s} {sps:10.1f} samples/s", flush=True)
    out["ratio"] = out["results"][1]["samples_per_s"] / out["results"][0]["samples_per_s"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", help="Fashion-MNIST IDX folder (default: the Debian package's)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--max-batches", type=int, help="time only this many batches per variant (CPU runs)")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/train.json")
    args = ap.parse_args(argv)
    from snndeploy.data.datasets import get_dataset

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    ds = get_dataset("fashion-mnist", args.data_dir)
    x = torch.as_tensor(ds.x_train.reshape(len(ds.x_train), -1), device=device)
    y = torch.as_tensor(ds.y_train, device=device)
    variants = [
        ("plain eager Norse (per-step SequentialState, fp32)", "baseline", False, False),
        ("ours: layer-by-layer over time, fp32", "ours", False, False),
    ]
    if device == "cuda":
        variants.append(("ours + bf16 autocast", "ours", True, False))
    if not args.no_compile:
        variants.append(
            (
                "ours + bf16 autocast + torch.compile" if device == "cuda" else "ours + torch.compile",
                "ours",
                device == "cuda",
                True,
            )
        )
    results = []
    for label, kind, amp, comp in variants:
        torch.manual_seed(0)
        gen = torch.Generator(device=device).manual_seed(0)
        model = (norse_baseline(784, 10) if kind == "baseline" else SpikingMLP(784, HIDDEN, 10, init_gain=2.0)).to(
            device
        )
        sps = run_epoch(model, x, y, device, amp, comp, gen, args.max_batches)
        results.append({"variant": label, "samples_per_s": sps})
        print(f"{label:55s} {sps:10.1f} samples/s", flush=True)
    base = results[0]["samples_per_s"]
    for r in results:
        r["ratio_vs_baseline"] = r["samples_per_s"] / base
    conv = conv_direct_input(ds, device, args.max_batches)
    out = {
        "workload": f"Fashion-MNIST MLP 784-{'-'.join(map(str, HIDDEN))}-10, T={T}, batch {BATCH}, one epoch"
        + (f" ({args.max_batches} batches)" if args.max_batches else ""),
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "results": results,
        "conv_direct_input": conv,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}; best ratio vs baseline: {max(r['ratio_vs_baseline'] for r in results):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
