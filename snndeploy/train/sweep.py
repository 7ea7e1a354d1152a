"""``snndeploy sweep``: the accuracy-energy trade-off a user tunes.

For every point of the grid time steps T x input encoding x ``train.spike_rate_penalty`` the model
config is trained (same seed, same epochs), exported, run on ``norse`` over the first test samples
(encoded as its metadata says), and priced: accuracy, and energy per inference as a range on the
headline SNN target and on the ANN baselines (:func:`snndeploy.energy.estimate.energy_range`). The
ANN twin (same architecture with ReLU, :mod:`.ann`) is trained once and priced on the ANN targets.

A point is on the **Pareto front** when no other point has accuracy >= and energy <= (at least one
strictly), energy taken as the high end of its range (the pessimistic reading for the SNN). The
verdict per point against the twin: at equal accuracy (within ``EQUAL_ACCURACY`` of the twin's),
the SNN **beats** the twin when its highest energy is below the twin's lowest on the chosen ANN
target (every regime agrees), **depends on the regime** when the ranges overlap, else **loses**.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import InputError

#: accuracy difference to the ANN twin that still counts as "equal accuracy"
EQUAL_ACCURACY = 0.01
#: the SNN target and ANN baselines a sweep prices
SNN_TARGET = "loihi"
ANN_TARGETS = ("ann_fp32_45nm", "ann_int8_45nm")
ENCODINGS = ("poisson", "latency", "direct")


def _point_config(base: dict, steps: int, encoding: str, penalty: float, epochs: Optional[int]) -> dict:
    cfg = json.loads(json.dumps(base))
    enc = {"kind": encoding, "steps": int(steps), "seed": base["encoding"].get("seed", 0)}
    if encoding == "poisson":
        enc["max_prob"] = base["encoding"].get("max_prob", 1.0)
    cfg["encoding"] = enc
    cfg["train"]["spike_rate_penalty"] = float(penalty)
    if epochs is not None:
        cfg["train"]["epochs"] = int(epochs)
    return cfg


def _price(graph, counts) -> Dict[str, dict]:
    from ..energy.estimate import energy_summary
    from ..energy.targets import load_target

    return {t: energy_summary(counts, load_target(t))["range"] for t in (SNN_TARGET, *ANN_TARGETS)}


def run_point(cfg: dict, out_dir: Path, samples: int, device: str, data_dir: Optional[str]) -> dict:
    """Train, export, run on norse over ``samples`` test samples, count, price."""
    from ..backends import get_backend
    from ..energy.counts import count_ops
    from ..harness.agreement import accuracy, predictions
    from ..harness.inputs import dataset_input
    from ..ir.analysed import analyse
    from ..ir.graph import open_graph
    from .loop import train

    start = time.perf_counter()
    metrics, artifacts = train(cfg, out_dir, device=device, data_dir=data_dir, quiet=True)
    graph, conv = open_graph(artifacts["graph"])
    ag = analyse(graph)
    x, labels, _ = dataset_input(graph, cfg["dataset"], samples, data_dir)
    out = get_backend("norse").run(ag, x, conv.dt).outputs
    counts = count_ops(ag, out)
    spiking = [n for n in ag.spiking_nodes if n in out]
    return {
        "steps": cfg["encoding"]["steps"],
        "encoding": cfg["encoding"]["kind"],
        "spike_rate_penalty": cfg["train"]["spike_rate_penalty"],
        "accuracy": accuracy(predictions(out[ag.output_node]), labels),
        "samples": int(len(labels)),
        "spike_rate": float(np.mean([out[n].mean() for n in spiking])) if spiking else 0.0,
        "energy": _price(ag, counts),
        "train_wall_s": metrics.get("train_wall_s"),
        "wall_s": time.perf_counter() - start,
    }


def pareto(points: List[dict], target: str = SNN_TARGET) -> List[int]:
    """Indices of the points no other point dominates (accuracy up, the energy range's high end down)."""
    front = []
    for i, p in enumerate(points):
        e = p["energy"][target]["high"]["nj"]
        dominated = any(
            q["accuracy"] >= p["accuracy"]
            and q["energy"][target]["high"]["nj"] <= e
            and (q["accuracy"] > p["accuracy"] or q["energy"][target]["high"]["nj"] < e)
            for j, q in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return front


def verdict(point: dict, twin: dict, ann_target: str) -> str:
    if point["accuracy"] < twin["accuracy"] - EQUAL_ACCURACY:
        return "less accurate than the ANN twin"
    snn, ann = point["energy"][SNN_TARGET], twin["energy"][ann_target]
    if snn["high"]["nj"] < ann["low"]["nj"]:
        return "beats the twin in every regime"
    if snn["low"]["nj"] < ann["high"]["nj"]:
        return "depends on the regime"
    return "loses in every regime"


def sweep(
    model: str,
    out_dir,
    steps: Sequence[int],
    encodings: Sequence[str],
    penalties: Sequence[float],
    dataset: Optional[str] = None,
    epochs: Optional[int] = None,
    samples: int = 200,
    device: str = "cpu",
    data_dir: Optional[str] = None,
) -> dict:
    """Every point of the grid, the ANN twin, the Pareto front and the verdicts; writes
    ``sweep.json``, ``report.md`` and ``report.html`` under ``out_dir`` together (or nothing)."""
    from ..data.datasets import dataset_for_config
    from ..report.sweep import render_sweep_html, render_sweep_markdown
    from ..util.device import resolve_device
    from ..util.files import check_out_dir, json_bytes, write_files
    from .ann import train_ann_twin
    from .config import load_model_config

    check_out_dir(out_dir)
    bad = [e for e in encodings if e not in ENCODINGS]
    if bad or not steps or not encodings or not penalties:
        raise InputError(f"sweep needs steps, encodings ({', '.join(ENCODINGS)}) and penalties; got bad {bad}")
    if any(int(s) < 1 for s in steps) or any(not float(p) >= 0 for p in penalties):
        raise InputError(f"steps must be >= 1 and penalties >= 0, got {list(steps)} and {list(penalties)}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InputError(f"--samples must be a whole number >= 1, got {samples!r}")
    base = load_model_config(model)
    if dataset:
        base["dataset"] = dataset
    dev = resolve_device(device)
    start = time.perf_counter()
    points = []
    with tempfile.TemporaryDirectory(prefix="snndeploy-sweep-") as tmp:  # checkpoints: not kept
        for i, (t, e, p) in enumerate(itertools.product(steps, encodings, penalties)):
            cfg = _point_config(base, int(t), e, float(p), epochs)
            points.append(run_point(cfg, Path(tmp) / f"{i:03d}", samples, dev, data_dir))
        twin_cfg = _point_config(base, 1, "poisson", 0.0, epochs)
        twin_metrics, _ = train_ann_twin(twin_cfg, dataset_for_config(base, data_dir), Path(tmp) / "twin", dev, True)
    twin = {"accuracy": twin_metrics["test_accuracy"], "energy": {t: points[0]["energy"][t] for t in ANN_TARGETS}}
    for pt in points:
        pt["vs_twin"] = {a: verdict(pt, twin, a) for a in ANN_TARGETS}
    rep = {
        "model": model,
        "dataset": base["dataset"],
        "grid": {"steps": list(map(int, steps)), "encodings": list(encodings), "spike_rate_penalty": list(penalties)},
        "epochs": epochs or base["train"]["epochs"],
        "points": points,
        "pareto": pareto(points),
        "ann_twin": {**twin, "how": twin_metrics["how"], "test_samples": twin_metrics["test_samples"]},
        "how": __doc__.split("\n\n", 1)[1].strip(),
        "wall_s": time.perf_counter() - start,
    }
    write_files(
        out_dir,
        {
            "sweep.json": json_bytes(rep),
            "report.md": render_sweep_markdown(rep).encode(),
            "report.html": render_sweep_html(rep).encode(),
        },
    )
    return rep
