"""Comparing backends: spike agreement, first divergence, predictions, accuracy.

All records are on the NIR timeline (backends align their own delays), so two
backends agree on a node when their arrays are equal entry by entry.

- spike agreement of a node = fraction of equal entries over samples x steps x neurons;
- first divergence = the earliest (sample, step) at which any spiking node differs,
  ties broken by graph order, with the neuron's flat index;
- prediction = argmax over classes of the output summed over time (spike counts
  for a spiking output, the summed membrane potential for an LI readout), ties to the
  lowest index;
- prediction agreement = fraction of samples with equal predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from ..backends.base import RAW_UNITS
from ..errors import GraphError, InputError
from ..ir.analysed import as_analysed

DEFAULT_MIN_SPIKE_AGREEMENT = 0.999
DEFAULT_MIN_PREDICTION_AGREEMENT = 0.99


@dataclass(frozen=True)
class Tolerances:
    min_spike_agreement: float = DEFAULT_MIN_SPIKE_AGREEMENT
    min_prediction_agreement: float = DEFAULT_MIN_PREDICTION_AGREEMENT

    def __post_init__(self):
        for name in ("min_spike_agreement", "min_prediction_agreement"):
            v = getattr(self, name)
            if not 0 <= v <= 1:  # NaN fails too
                raise InputError(f"{name} (--{name.replace('_', '-')}) must be within [0, 1], got {v}")


def readout_description(graph) -> str:
    """How predictions are read from this graph's output: spike counts or a summed membrane potential."""
    ag = as_analysed(graph)
    sources = [ag.nodes[n] for n in ag.preds(ag.output_node)]
    if sources and all(s.is_spiking for s in sources):
        return "argmax over classes of the output spike counts (output summed over time)"
    if sources and all(s.is_neuron for s in sources):
        kinds = "/".join(sorted({s.record.kind for s in sources}))
        return (
            f"argmax over classes of the output {kinds} membrane potential summed over time "
            "(= averaged: a non-spiking readout)"
        )
    return "argmax over classes of the output summed over time (graded output)"


def predictions(output: np.ndarray) -> np.ndarray:
    """Argmax over classes of the output summed over time; (B, T, C) -> (B,)."""
    B, T = output.shape[:2]
    return output.reshape(B, T, -1).sum(axis=1).argmax(axis=1)


def output_is_graded(graph) -> bool:
    """Whether the graph's output carries graded values (an LI / Integrator readout or a linear map), read
    from the graph: a spiking population's output is 0/1 whatever values a run gives."""
    ag = as_analysed(graph)
    sources = [ag.nodes[n] for n in ag.preds(ag.output_node)]
    return not (sources and all(s.is_spiking for s in sources))


def output_in_nir_units(ag, result) -> np.ndarray:
    """``result``'s output record in NIR units. Fixed-point backends record a graded output (an LI
    readout's v) as raw 24-bit state, ``v_raw = scale * (v - v_offset)`` with the population's
    quantization scale and ``v_offset = v_leak`` (docs/fixed_point.md); that is undone here, so a
    float and a fixed-point readout can be compared in one unit. Spikes and float records pass."""
    out = result.outputs[ag.output_node]
    if result.info.get("units") != RAW_UNITS:
        return out
    sources = ag.preds(ag.output_node)
    rec = ag.records.get(sources[0]) if len(sources) == 1 else None
    if getattr(rec, "v_leak", None) is None or not output_is_graded(ag):  # spikes, or not one population
        return out
    report = result.info.get("quantization", {}).get(sources[0])
    if report is None:
        raise GraphError(
            f"{result.backend} recorded the graded output "
            f"of '{sources[0]}' in raw units without a quantization scale for it; cannot read it in NIR units"
        )
    scale = float(report["scale"])
    return out.astype(np.float64) / scale + rec.v_leak.reshape((1, 1) + rec.v_leak.shape)


def first_divergence(a: np.ndarray, b: np.ndarray) -> Optional[Dict[str, int]]:
    """Earliest (sample, step, neuron) where two (B, T, ...) records differ, or None."""
    B, T = a.shape[:2]
    diff = a.reshape(B, T, -1) != b.reshape(B, T, -1)
    if not diff.any():
        return None
    s, t, n = np.argwhere(diff)[0]  # argwhere is lexicographic: sample, then step, then neuron
    return {"sample": int(s), "step": int(t), "neuron": int(n)}


SPIKE_AGREEMENT_HOW = "minimum over spiking nodes of the fraction of equal entries (samples x steps x neurons)"


def compare_pair(
    graph,
    a_name: str,
    a_out: Dict[str, np.ndarray],
    b_name: str,
    b_out: Dict[str, np.ndarray],
    out_node: str,
    tol: Tolerances,
    sample_offset: int = 0,
) -> dict:
    """Agreement of two backends' records; sample indices are reported plus ``sample_offset``
    (the records' first sample in the whole input, when the input is compared in chunks)."""
    nodes = {}
    for n in as_analysed(graph).spiking_nodes:
        if n not in a_out or n not in b_out:
            continue
        a, b = a_out[n], b_out[n]
        if a.shape != b.shape:
            raise ValueError(f"node '{n}': {a_name} recorded shape {a.shape}, {b_name} {b.shape}")
        fd = first_divergence(a, b)
        if fd is not None:
            fd["sample"] += int(sample_offset)
        differ = (a != b).reshape(a.shape[0], a.shape[1], -1)  # (samples, steps, neurons)
        nodes[n] = {
            "mismatches": int(differ.sum()),
            "entries": int(a.size),
            "first_divergence": fd,
            "mismatches_per_step": differ.sum(axis=(0, 2)).astype(int).tolist(),
        }
    pa, pb = predictions(a_out[out_node]), predictions(b_out[out_node])
    pair = {
        "a": a_name,
        "b": b_name,
        "samples": int(len(pa)),
        "prediction_matches": int(np.sum(pa == pb)),
        "nodes": nodes,
    }
    if output_is_graded(graph):  # graded output (e.g. LI readout): how far apart
        pair["output_max_abs_diff"] = float(np.max(np.abs(a_out[out_node] - b_out[out_node]), initial=0.0))
    return merge_pairs([pair], tol)


def merge_pairs(parts: List[dict], tol: Tolerances) -> dict:
    """One pair's comparison over consecutive sample ranges (in sample order) merged into one:
    the same numbers a comparison of all samples at once gives (counts add up, the first
    divergence is the earliest, the largest output difference the largest)."""
    nodes: Dict[str, dict] = {}
    for part in parts:
        for n, v in part["nodes"].items():
            m = nodes.setdefault(
                n,
                {
                    "mismatches": 0,
                    "entries": 0,
                    "first_divergence": None,
                    "mismatches_per_step": [0] * len(v["mismatches_per_step"]),
                },
            )
            m["mismatches"] += v["mismatches"]
            m["entries"] += v["entries"]
            if len(v["mismatches_per_step"]) != len(m["mismatches_per_step"]):
                raise ValueError(
                    f"node '{n}': chunks of {len(m['mismatches_per_step'])} and "
                    f"{len(v['mismatches_per_step'])} steps cannot be merged"
                )
            m["mismatches_per_step"] = [x + y for x, y in zip(m["mismatches_per_step"], v["mismatches_per_step"])]
            if m["first_divergence"] is None and v["first_divergence"] is not None:
                m["first_divergence"] = dict(v["first_divergence"])
    earliest = None
    for n, m in nodes.items():  # graph order
        m["spike_agreement"] = (m["entries"] - m["mismatches"]) / m["entries"] if m["entries"] else 1.0
        m["passed"] = m["spike_agreement"] >= tol.min_spike_agreement
        fd = m["first_divergence"]
        if fd is not None and (earliest is None or (fd["sample"], fd["step"]) < (earliest["sample"], earliest["step"])):
            earliest = dict(fd, node=n)
    samples = sum(p["samples"] for p in parts)
    matches = sum(p["prediction_matches"] for p in parts)
    pred_agree = matches / samples if samples else 1.0
    merged = {
        "a": parts[0]["a"],
        "b": parts[0]["b"],
        "samples": samples,
        "prediction_matches": matches,
        "spike_agreement": min((v["spike_agreement"] for v in nodes.values()), default=1.0),
        "spike_agreement_how": SPIKE_AGREEMENT_HOW,
        "prediction_agreement": pred_agree,
        "first_divergence": earliest,
        "nodes": nodes,
        "passed": all(v["passed"] for v in nodes.values()) and pred_agree >= tol.min_prediction_agreement,
    }
    diffs = [p["output_max_abs_diff"] for p in parts if "output_max_abs_diff" in p]
    if diffs:
        merged["output_max_abs_diff"] = max(diffs)
    return merged


def accuracy(pred: np.ndarray, labels: Optional[np.ndarray]) -> Optional[float]:
    """Fraction of predictions (see :func:`predictions`) equal to the labels; None without labels."""
    if labels is None:
        return None
    return float(np.mean(np.asarray(pred) == np.asarray(labels)))
