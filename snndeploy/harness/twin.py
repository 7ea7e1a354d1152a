"""The SNN beside its ANN twin in a comparison report.

``snndeploy train ... --ann-twin`` writes ``metrics.json`` next to ``model.nir`` with the twin's
accuracy (onnxruntime, whole test split), training time and parameter count. When the compared
graph is such a ``model.nir`` (same folder, and the ``config_hash`` in the graph's metadata equals
the one in ``metrics.json``: the twin belongs to this very model), the report puts them side by
side: accuracy, training time, parameters and energy per inference as a range, the SNN on the SNN
targets and the twin on the ANN baselines, both priced from the reference backend's counts (the
twin: the dense MACs of the same architecture, see :mod:`snndeploy.energy.estimate`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

METRICS = "metrics.json"
HOW = (
    "twin: the same architecture with ReLU instead of spiking neurons, trained on the same data for the same "
    "epochs from the same seed (snndeploy train --ann-twin), accuracy by onnxruntime on the whole test split, "
    "from {metrics}; SNN accuracy: this comparison's samples per backend, and in training (norse float32, whole "
    "test split); energy per inference as a range over regimes (targets/*.toml), SNN targets and ANN baselines "
    "priced from the reference backend's operation counts (the twin: dense MACs of the same layers)"
)


def find_twin_metrics(graph_path, metadata: dict) -> Optional[Path]:
    """``metrics.json`` beside ``graph_path`` when it holds the ANN twin of this graph, else None."""
    if not graph_path:
        return None
    p = Path(str(graph_path)).parent / METRICS
    if not p.is_file():
        return None
    try:
        m = json.loads(p.read_text())
        cfg = json.loads(metadata.get("snndeploy_config", "{}"))
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or "ann_twin" not in m or not cfg.get("config_hash"):
        return None
    return p if m.get("config_hash") == cfg["config_hash"] else None


def synapse_parameters(graph) -> int:
    """Weights and biases of the graph's linear nodes (what the twin's parameter count counts)."""
    import numpy as np

    return int(
        sum(
            np.size(getattr(node, k))
            for node in graph.nodes.values()
            for k in ("weight", "bias")
            if type(node).__name__ in ("Affine", "Linear", "Conv1d", "Conv2d") and getattr(node, k, None) is not None
        )
    )


def twin_section(metrics_path: Path, report: dict, graph=None) -> dict:
    """The report's ``ann_twin`` section (module docstring), from the filled ``report``."""
    m = json.loads(Path(metrics_path).read_text())
    t = m["ann_twin"]
    est = report["backends"][report["reference"]]["estimates"]

    def ranges(kind: str) -> dict:
        return {
            name: {"low_nj": e["range"]["low"]["nj"], "high_nj": e["range"]["high"]["nj"], "range": e["range"]}
            for name, e in est.items()
            if e["kind"] == kind and "range" in e
        }

    return {
        "metrics": str(metrics_path),
        "twin": {
            "accuracy": t["test_accuracy"],
            "test_samples": t["test_samples"],
            "train_wall_s": t["train_wall_s"],
            "parameters": t["parameters"],
            "input": t.get("input"),
            "energy": ranges("ann"),
        },
        "snn": {
            "accuracy": {b: v["accuracy"] for b, v in report["backends"].items()},
            "samples": report.get("samples_compared", report["samples"]),
            "accuracy_in_training": m.get("test_accuracy"),
            "test_samples_in_training": m.get("test_samples"),
            "train_wall_s": m.get("train_wall_s"),
            "parameters": None if graph is None else synapse_parameters(graph),
            "energy": ranges("snn"),
        },
        "how": HOW.format(metrics=metrics_path),
    }


def twin_rows(sec: dict) -> list:
    """Rows of the side-by-side table: model, accuracy, training time, parameters, energy ranges."""

    def fmt(en: dict) -> str:
        return "; ".join(f"{t} {e['low_nj']:.3g} - {e['high_nj']:.3g}" for t, e in en.items())

    s, t = sec["snn"], sec["twin"]
    acc = ", ".join(f"{b} {100 * a:.2f} %" for b, a in s["accuracy"].items() if a is not None)
    if s.get("accuracy_in_training") is not None:
        acc += f" ({s['samples']} samples); in training {100 * s['accuracy_in_training']:.2f} %"
        acc += f" ({s['test_samples_in_training']} samples)"
    snn_train = "" if s.get("train_wall_s") is None else f"{s['train_wall_s']:.0f} s"
    return [
        [
            "SNN (this graph)",
            acc,
            snn_train,
            "" if s.get("parameters") is None else str(s["parameters"]),
            fmt(s["energy"]),
        ],
        [
            "ANN twin (ReLU)",
            f"{100 * t['accuracy']:.2f} % ({t['test_samples']} samples, onnxruntime)",
            f"{t['train_wall_s']:.0f} s",
            str(t["parameters"]),
            fmt(t["energy"]),
        ],
    ]


TWIN_HEADER = ["model", "accuracy", "training time", "parameters", "energy nJ / inference (low - high)"]
