"""Trained SNN vs its ANN twin vs the twin converted to an SNN, on one table (issue 15).

Takes a ``snndeploy train ... --ann-twin`` folder (``model.nir``, ``metrics.json``, ``ann.onnx``),
converts ``ann.onnx`` with ``snndeploy convert`` at each T, and measures on the test split:

- accuracy: the trained SNN on ``norse`` and ``loihi-emu`` (its own encoding, from its metadata);
  the ANN twin by onnxruntime; the converted SNN on ``norse`` and ``loihi-emu``;
- energy per inference as a range (low regime - high regime, each named in the JSON): the SNNs on
  the ``loihi`` target from their ``norse`` operation counts, the twin on the ANN baselines (dense
  MACs of the same architecture: the trained SNN's graph counted as an ANN);
- wall times of every step, machine.

    .venv/bin/python benchmarks/trained_vs_converted.py --train-dir runs/fashion_mlp [--steps 32,64]
        [--samples N] [--energy-samples 1000] [--headroom 1.5|auto]
        [--readout membrane|spike_count] [--no-rate-calibration] [--out FILE]

Writes ``benchmarks/results/trained_vs_converted.json`` (default) and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from snndeploy.backends import get_backend
from snndeploy.energy.counts import count_ops, merge_counts
from snndeploy.energy.estimate import energy_summary
from snndeploy.energy.targets import load_target
from snndeploy.harness.agreement import predictions
from snndeploy.harness.inputs import dataset_input
from snndeploy.ir.analysed import analyse
from snndeploy.ir.graph import open_graph
from snndeploy.train.convert import ann_logits, convert
from snndeploy.train.sweep import ANN_TARGETS, SNN_TARGET

OUT = Path(__file__).resolve().parent / "results" / "trained_vs_converted.json"
CHUNK = 500


def _evaluate(path, dataset: str, samples, energy_samples: int, backends=("norse", "loihi-emu")) -> dict:
    """Accuracy per backend over ``samples`` test samples (encoded as the graph's metadata says) and the
    norse operation counts of the first ``energy_samples``."""
    graph, conv = open_graph(str(path))
    ag = analyse(graph)
    x, labels, desc = dataset_input(graph, dataset, samples, None)
    out = {"input": desc, "samples": int(len(labels)), "accuracy": {}, "wall_s": {}}
    counts = []
    for b in backends:
        be = get_backend(b)
        start, preds = time.perf_counter(), []
        for i in range(0, len(x), CHUNK):
            res = be.run(ag, x[i : i + CHUNK], conv.dt).outputs
            preds.append(predictions(res[ag.output_node]))
            if b == "norse" and i < energy_samples:
                counts.append(count_ops(ag, {k: v[: energy_samples - i] for k, v in res.items()}))
        out["accuracy"][b] = float(np.mean(np.concatenate(preds) == labels))
        out["wall_s"][b] = time.perf_counter() - start
    out["counts"] = merge_counts(counts)
    out["energy_samples"] = min(energy_samples, len(labels))
    return out


def _range(counts, target: str) -> dict:
    r = energy_summary(counts, load_target(target))["range"]
    return {"low_nj": r["low"]["nj"], "high_nj": r["high"]["nj"], "low": r["low"], "high": r["high"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-dir", required=True)
    ap.add_argument("--steps", default="32,64")
    ap.add_argument("--samples", type=int)
    ap.add_argument("--energy-samples", type=int, default=1000)
    ap.add_argument("--headroom", default="1.5")
    ap.add_argument("--readout", default="membrane", choices=["membrane", "spike_count"])
    ap.add_argument("--no-rate-calibration", action="store_true")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    d = Path(args.train_dir)
    metrics = json.loads((d / "metrics.json").read_text())
    if "ann_twin" not in metrics or not (d / "ann.onnx").is_file():
        raise SystemExit(f"{d}: no ANN twin; train with --ann-twin (or --resume --ann-twin)")
    cfg = json.loads(open_graph(str(d / "model.nir"))[0].metadata["snndeploy_config"])
    dataset = cfg["dataset"]
    began = time.perf_counter()
    trained = _evaluate(d / "model.nir", dataset, args.samples, args.energy_samples)
    rows = [
        {
            "what": f"trained SNN ({cfg['model']}, surrogate gradients, {cfg['encoding']['kind']}, "
            f"T = {cfg['encoding']['steps']})",
            "steps": cfg["encoding"]["steps"],
            "train_s": metrics.get("train_wall_s"),
            "accuracy": trained["accuracy"],
            "samples": trained["samples"],
            "energy": {SNN_TARGET: _range(trained["counts"], SNN_TARGET)},
            "wall_s": trained["wall_s"],
        }
    ]
    twin = metrics["ann_twin"]
    from snndeploy.frontends.onnx import read_onnx
    from snndeploy.train.ann import twin_input

    ds_x, ds_y = _test_split(dataset, args.samples)
    ann = read_onnx(d / "ann.onnx")
    x_ann, _rule = twin_input(ds_x.reshape((len(ds_x),) + ann.input_shape), cfg["encoding"])
    ann_acc = float(np.mean(ann_logits(d / "ann.onnx", ann.input_name, x_ann).argmax(1) == ds_y))
    rows.append(
        {
            "what": "ANN twin (same architecture, ReLU, same data/epochs/seed), onnxruntime",
            "steps": None,
            "train_s": twin.get("train_wall_s"),
            "accuracy": {"onnxruntime": ann_acc},
            "samples": int(len(ds_y)),
            "energy": {t: _range(trained["counts"], t) for t in ANN_TARGETS},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        for steps in (int(s) for s in args.steps.split(",")):
            start = time.perf_counter()
            rep = convert(
                d / "ann.onnx",
                dataset,
                Path(tmp) / f"c{steps}",
                steps=steps,
                samples=args.samples,
                headroom=args.headroom,
                readout=args.readout,
                rate_calibration=not args.no_rate_calibration,
            )
            conv_s = time.perf_counter() - start
            ev = _evaluate(  # counts only (convert measured the accuracy): the energy samples are enough
                Path(tmp) / f"c{steps}" / "model.nir", dataset, args.energy_samples, args.energy_samples, ("norse",)
            )
            rows.append(
                {
                    "what": f"ANN twin converted (Poisson, headroom {rep['headroom']:g}, {rep['readout']} readout, "
                    f"rate calibration {'on' if rep['rate_calibration'] else 'off'}, T = {steps})",
                    "readout": rep["readout"],
                    "rate_calibration": bool(rep["rate_calibration"]),
                    "steps": steps,
                    "train_s": twin.get("train_wall_s"),
                    "accuracy": {b: r.get("accuracy") for b, r in rep["snn"].items()},
                    "samples": rep["test_samples"],
                    "energy": {SNN_TARGET: _range(ev["counts"], SNN_TARGET)},
                    "convert_s": conv_s,
                    "ann_accuracy_in_convert": rep["ann_accuracy"],
                }
            )
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "train_dir": str(d),
        "dataset": dataset,
        "how": "accuracy over the test split (argmax of output spike counts, of the summed readout membrane, "
        "or of the logits); energy per inference "
        f"as a range over regimes (targets/*.toml), from norse operation counts of the first "
        f"{args.energy_samples} test samples; the ANN twin priced on the ANN baselines from the dense MACs of "
        "the same architecture; train_s: training wall time from metrics.json",
        "total_s": time.perf_counter() - began,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(markdown(result))
    print(f"wrote {args.out}")


def _test_split(dataset: str, samples):
    from snndeploy.data.datasets import get_dataset

    ds = get_dataset(dataset)
    n = len(ds.x_test) if samples is None else min(samples, len(ds.x_test))
    return ds.x_test[:n], ds.y_test[:n]


def markdown(result: dict) -> str:
    lines = [
        "| model | T | accuracy | energy / inference (nJ, low - high) | training |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        acc = ", ".join(f"{b} {100 * a:.2f} %" for b, a in r["accuracy"].items() if a is not None)
        en = "; ".join(f"{t} {e['low_nj']:.1f} - {e['high_nj']:.1f}" for t, e in r["energy"].items())
        tr = "" if r.get("train_s") is None else f"{r['train_s']:.0f} s"
        lines.append(f"| {r['what']} | {r['steps'] or '-'} | {acc} | {en} | {tr} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
