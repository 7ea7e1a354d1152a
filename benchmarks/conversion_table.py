"""Accuracy vs T of ANN -> SNN conversion (issue 15): Fashion-MNIST MLP and CNN.

Trains each ReLU ANN here with torch (seeded; AveragePool, no MaxPool), exports it to ONNX, and
converts it with ``snndeploy convert`` (train/convert.py) at T = 8, 16, 32, 64, 128: ANN accuracy
(onnxruntime), converted SNN on ``norse`` and on ``loihi-emu``, full 10000-sample test set.
Writes ``benchmarks/results/conversion_table.json`` with the machine, times and every figure.

    .venv/bin/python benchmarks/conversion_table.py [--models mlp,cnn] [--encodings poisson,direct]
        [--steps 8,16,32,64,128] [--samples N] [--epochs E] [--headroom 1.5|auto]
        [--readout membrane|spike_count] [--no-rate-calibration] [--merge]

``--merge`` keeps the rows of the existing JSON for the (model, encoding, headroom, readout, rate
calibration, T) not run now (the ANNs are trained with the same seed and data; a row whose ANN
scores differently is noted: torch's float reductions follow the thread count). Rows written before
the readout and rate-calibration options existed are read as ``spike_count`` without calibration.
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
import torch
from torch import nn

from snndeploy.data.datasets import get_dataset
from snndeploy.train.convert import convert

OUT = Path(__file__).resolve().parent / "results" / "conversion_table.json"
SEED = 0


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2, padding=2),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 7 * 7, 10),
    )


def train_ann(model: nn.Module, ds, epochs: int) -> float:
    torch.manual_seed(SEED)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            m.reset_parameters()
    x = torch.as_tensor(ds.x_train).reshape(-1, 1, 28, 28)
    y = torch.as_tensor(ds.y_train).long()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(SEED)
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 128):
            idx = perm[i : i + 128]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="8,16,32,64,128")
    ap.add_argument("--samples", type=int)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--encodings", default="poisson,direct")
    ap.add_argument("--headroom", default="1.5", help="a number >= 1 or auto (chosen per T on training samples)")
    ap.add_argument("--readout", default="membrane", choices=["membrane", "spike_count"])
    ap.add_argument("--no-rate-calibration", action="store_true")
    ap.add_argument("--merge", action="store_true")
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    encodings = [e for e in args.encodings.split(",") if e]
    ds = get_dataset("fashion-mnist")
    if args.merge and OUT.is_file():  # refused before any work: rows must share epochs and test samples
        stored = json.loads(OUT.read_text())
        want = len(ds.x_test) if args.samples is None else min(args.samples, len(ds.x_test))
        if stored.get("epochs") != args.epochs or {r["test_samples"] for r in stored["rows"]} != {want}:
            raise SystemExit(f"--merge: {OUT} holds rows of other epochs or test samples: run without --merge")
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in ((m, {"mlp": mlp, "cnn": cnn}[m]) for m in models):
            model = build()
            wall = train_ann(model, ds, args.epochs)
            path = Path(tmp) / f"{name}.onnx"
            torch.onnx.export(
                model.eval(),
                torch.zeros(1, 1, 28, 28),
                str(path),
                input_names=["x"],
                output_names=["logits"],
                dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                dynamo=False,
            )
            for enc, steps in ((e, int(s)) for e in encodings for s in args.steps.split(",")):
                rep = convert(
                    path,
                    "fashion-mnist",
                    Path(tmp) / f"{name}-{enc}-{steps}",
                    steps=steps,
                    samples=args.samples,
                    encoding=enc,
                    headroom=args.headroom,
                    readout=args.readout,
                    rate_calibration=not args.no_rate_calibration,
                )
                row = {
                    "model": name,
                    "encoding": enc,
                    "headroom_mode": args.headroom,
                    "headroom": rep["headroom"],
                    "headroom_auto": rep["headroom_auto"],
                    "readout": args.readout,
                    "rate_calibration": not args.no_rate_calibration,
                    "steps": steps,
                    "ann_accuracy": rep["ann_accuracy"],
                    "ann_train_s": wall,
                    "norse_accuracy": rep["snn"]["norse"]["accuracy"],
                    "loihi_emu_accuracy": rep["snn"]["loihi-emu"].get("accuracy"),
                    "loihi_emu_refused": rep["snn"]["loihi-emu"].get("refused"),
                    "norse_s": rep["snn"]["norse"]["wall_s"],
                    "loihi_emu_s": rep["snn"]["loihi-emu"].get("wall_s"),
                    "test_samples": rep["test_samples"],
                    "layers": rep["layers"],
                }
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "layers"}), flush=True)
    total = time.perf_counter() - start
    merged_note = None
    if args.merge and OUT.is_file():
        old = json.loads(OUT.read_text())

        def key(r):
            mode = r["headroom_mode"]
            h = mode if mode == "auto" else float(mode)
            return r["model"], r["encoding"], h, r["readout"], r["rate_calibration"], r["steps"]

        ran = {key(r) for r in rows}
        kept = [
            dict(
                r,
                encoding=r.get("encoding", "poisson"),
                headroom_mode=r.get("headroom_mode", "1.5"),
                headroom=r.get("headroom", 1.5),
                readout=r.get("readout", "spike_count"),
                rate_calibration=r.get("rate_calibration", False),
            )
            for r in old["rows"]
        ]
        kept = [r for r in kept if key(r) not in ran]
        for r in kept:
            same = [x["ann_accuracy"] for x in rows if x["model"] == r["model"]]
            if same and same[0] != r["ann_accuracy"]:
                # torch's float reductions depend on the thread count: the same seed may train a slightly
                # different ANN on another machine load. Rows stay valid (each compares with its own ANN).
                print(f"note: the {r['model']} ANN now scores {same[0]} where stored rows scored {r['ann_accuracy']}")
                merged_note = "rows of one model may come from ANNs trained in different runs; compare each row "
                merged_note += "with its own ann_accuracy"
        rows = kept + rows
        total += float(old.get("total_s", 0.0))
    rows.sort(
        key=lambda r: (
            r["model"] != "mlp",
            r["encoding"] != "poisson",
            r["readout"] != "membrane",
            not r["rate_calibration"],
            r["headroom_mode"],
            r["steps"],
        )
    )
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__}",
        "dataset": "fashion-mnist (Debian dataset-fashion-mnist), full test split unless --samples",
        "how": "ANN trained here (Adam 1e-3, batch 128, seed 0), ONNX export, snndeploy convert "
        "(percentile 99.9 normalization on 1000 training samples, headroom per row, IF reset to 0; input "
        "Poisson rate code or direct current as 'encoding' says; hidden gains fitted to simulated rates where "
        "'rate_calibration'; readout per row: argmax of the output LI's summed membrane potential or of the "
        "output IF's spike counts); "
        "total_s: the runs' wall time, summed over merged runs",
        "epochs": args.epochs,
        "total_s": total,
        "merge_note": merged_note,
        "rows": rows,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
