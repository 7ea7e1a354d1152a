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


#: what the twin's entry in metrics.json must hold for the section
TWIN_FIELDS = ("test_accuracy", "test_samples", "train_wall_s", "parameters")


def find_twin(graph_path, graph) -> Optional[dict]:
    """The ANN twin of this graph, looked up before anything runs: ``None`` when there is none
    (no ``metrics.json`` beside ``graph_path``, none with ``ann_twin``, or one of another config);
    ``{"path", "metrics"}`` when there is; ``{"skipped": reason}`` when ``metrics.json`` is this
    model's but cannot serve (unreadable, or a field missing), so that the report can say why."""
    from ..errors import GraphError
    from ..ir.graph import graph_config

    if not graph_path:
        return None
    p = Path(str(graph_path)).parent / METRICS
    if not p.is_file():
        return None
    try:
        cfg = graph_config(graph)
    except GraphError:
        return None
    if not cfg.get("config_hash"):
        return None
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        return {"skipped": f"{p} cannot be read: {e}"}
    if not isinstance(m, dict) or "ann_twin" not in m or m.get("config_hash") != cfg["config_hash"]:
        return None
    t = m["ann_twin"]
    missing = [k for k in TWIN_FIELDS if not isinstance(t, dict) or not isinstance(t.get(k), (int, float))]
    if missing:
        return {"skipped": f"{p}: ann_twin lacks {', '.join(missing)} (a number expected)"}
    return {"path": p, "metrics": m}


def synapse_parameters(graph) -> int:
    """Weights and biases of the graph's linear nodes (what the twin's parameter count counts)."""
    import numpy as np

    from ..reference import WEIGHTED

    return int(
        sum(
            np.size(getattr(node, k))
            for node in graph.nodes.values()
            for k in ("weight", "bias")
            if type(node).__name__ in WEIGHTED and getattr(node, k, None) is not None
        )
    )


def twin_section(found: dict, report: dict, graph=None) -> dict:
    """The report's ``ann_twin`` section (module docstring), from :func:`find_twin`'s result and the
    filled ``report``."""
    metrics_path, m = found["path"], found["metrics"]
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
    scored = {b: a for b, a in s["accuracy"].items() if a is not None}
    if scored:
        acc = ", ".join(f"{b} {100 * a:.2f} %" for b, a in scored.items()) + f" ({s['samples']} samples)"
    else:
        acc = "n/a here (no labels)"
    if s.get("accuracy_in_training") is not None:
        acc += f"; in training {100 * s['accuracy_in_training']:.2f} % ({s['test_samples_in_training']} samples)"
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
