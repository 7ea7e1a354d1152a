"""Operation counts (NeuroBench definitions) from each backend's own records.

Counts are per sample, per node of the NIR graph. They are computed from the backend's
records of the Input and of every neuron population; the values between them (the
outputs of Affine, Conv2d, pools, ...) are recomputed from those records through the
graph's reference maps (:mod:`snndeploy.reference.maps`), never taken from a backend's own record of
a linear node. So two backends whose input and neuron records are equal get equal counts,
exactly.

Weighted layers (Affine, Linear, Conv2d; NeuroBench counts layers with weights):

- ``synops``: effective synaptic operations ``sum_t sum_j [x[t, j] != 0] * fanout[j]``,
  ``x`` the layer's input, ``fanout[j]`` the number of non-zero weights input ``j`` reaches.
  Split by input type: ``synops_ac`` (accumulates) when every entry of the layer's input in
  the batch is 0 or 1 (spikes), else ``synops_mac`` (multiply-accumulates, graded input).
- ``dense_ops``: the same layer as a dense ANN layer run every step: ``in_features x
  out_features x T`` (all weights, zero or not; Conv2d: output size x C_in/groups x kh x kw).
  ``dense_ops_nonzero``: the same, counting only non-zero weights.
  ``dense_macs``: one ANN forward pass (no time steps): ``in_features x out_features``.
  Biases are not counted.
- Memory traffic of that ANN forward pass, under a weight-stationary reuse model (each stored
  weight read once per inference and reused across positions and, for a conv, across the
  output map; each input activation read once and each output written once per layer):
  ``weight_reads`` (stored weights: a Conv2d kernel once), ``activation_reads`` (in_features),
  ``activation_writes`` (out_features). Charged by the ANN targets' memory regimes.

Neuron populations:

- ``neuron_updates``: neurons x T (every neuron is updated every step, as on Loihi's
  time-multiplexed cores); ``neuron_updates_active``: updates in which the neuron spikes
  (= ``spikes``); ``neuron_updates_inactive``: the rest.
- ``activation_sparsity`` (spiking nodes): fraction of zero entries of the node's output.

Checked against NeuroBench 2.3.0 itself (``tests/test_neurobench_counts.py``; fixtures written by
``scripts/neurobench_counts.sh`` running NeuroBench on snnTorch MLP/CNN exported to NIR): effective
synaptic operations (AC + MAC totals, per layer, per sample) and activation sparsity are equal.
Where our definitions differ, by design, and the test holds each difference exactly:

- AC vs MAC: NeuroBench decides per layer *per step* and counts inputs in {0, 1, -1} as spikes;
  we decide per layer over the whole batch and count only {0, 1}. The totals are equal.
- ``dense_ops`` of a padded Conv2d counts the taps that land on the zero padding (output size x
  C_in/groups x kh x kw); NeuroBench does not (``dense_ops_nonzero`` does not either).
- ``neuron_updates`` is neurons x T (Loihi updates every neuron every step); NeuroBench's
  MembraneUpdates counts, after the first step, only neurons whose membrane changed.

Energy from these counts: :mod:`.estimate`; cores per population: :mod:`.mapping`.
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from ..errors import InputError
from ..ir.analysed import AnalysedGraph, as_analysed
from ..reference import WEIGHTED, MapParams, NeuronParams, SynapseParams, forward

#: counts a target constant may multiply (``per = "..."`` in targets/*.toml)
COUNT_KEYS = (
    "synops",
    "synops_ac",
    "synops_mac",
    "dense_ops",
    "dense_ops_nonzero",
    "dense_macs",
    "neuron_updates",
    "neuron_updates_active",
    "neuron_updates_inactive",
    "spikes",
    "weight_reads",
    "activation_reads",
    "activation_writes",
)
#: samples per chunk when recomputing linear values (bounds memory on large inputs)
CHUNK_SAMPLES = 32
#: identity basis vectors pushed through a Conv2d at once to get its fan-out
FANOUT_CHUNK = 256

HOW_COUNTS = (
    "NeuroBench definitions, per sample, from this backend's records of the input and of every neuron "
    "population (linear values in between recomputed through the graph's maps): synops = non-zero "
    "layer inputs x non-zero fan-out, summed over steps (AC when the layer's input is binary, MAC when "
    "graded); dense_ops = in_features x out_features x steps (all weights; dense_ops_nonzero: non-zero "
    "weights only); dense_macs = one ANN pass; neuron updates = neurons x steps (active: the neuron "
    "spikes in that step); activation sparsity = fraction of zero entries of a spiking node's output"
)


def _fanout(p) -> np.ndarray:
    """Non-zero weights each input entry reaches (length = input size)."""
    if isinstance(p, SynapseParams):
        return (p.weight != 0).sum(axis=0).astype(np.int64)
    import torch

    ind = MapParams(
        p.name,
        p.kind,
        p.in_shape,
        p.out_shape,
        dict(
            p.attrs, weight=(np.asarray(p.attrs["weight"]) != 0).astype(np.float64), bias=np.zeros(len(p.attrs["bias"]))
        ),
    )
    n = int(np.prod(p.in_shape))
    out = np.zeros(n, dtype=np.int64)
    with torch.no_grad():
        for s in range(0, n, FANOUT_CHUNK):
            k = min(FANOUT_CHUNK, n - s)
            basis = torch.zeros((k, n), dtype=torch.float64)
            basis[torch.arange(k), torch.arange(s, s + k)] = 1.0
            out[s : s + k] = np.rint(forward(ind, basis).reshape(k, -1).sum(1).numpy()).astype(np.int64)
    return out


def _dense_per_step(p) -> int:
    if isinstance(p, SynapseParams):
        return p.in_features * p.out_features
    w = np.asarray(p.attrs["weight"])  # (C_out, C_in/groups, kh, kw)
    return int(np.prod(p.out_shape)) * int(np.prod(w.shape[1:]))


def _params(p) -> int:
    """Stored weights of a weighted layer (a Conv2d's kernel once, not unrolled)."""
    if isinstance(p, SynapseParams):
        return int(p.weight.size)
    return int(np.asarray(p.attrs["weight"]).size)


def layer_geometry(p) -> Dict[str, int]:
    """A weighted layer's sizes, dense and non-zero weights per step, and each input's fan-out."""
    fan = _fanout(p)
    return {
        "in_features": int(np.prod(p.in_shape)),
        "out_features": int(np.prod(p.out_shape)),
        "dense_per_step": _dense_per_step(p),
        "params": _params(p),
        "nonzero_per_step": int(fan.sum()),
        "fanout": fan,
    }


def _apply_linear(p, x: np.ndarray) -> np.ndarray:
    """x: (n, features) float64 -> (n, out features) through the node's forward function."""
    import torch

    with torch.no_grad():
        y = forward(p, torch.as_tensor(x, dtype=torch.float64))
    return y.reshape(x.shape[0], -1).numpy()


def count_ops(graph, outputs: Dict[str, np.ndarray]) -> Dict[str, Dict[str, object]]:
    """Per node: its kind and per-sample count arrays (int64), see the module docstring.

    ``graph`` is analysed (or a NIR graph, then analysed); ``outputs`` is a backend's
    RunResult.outputs: the Input and the neuron populations feeding weighted layers must be recorded.
    """
    ag = as_analysed(graph)
    if ag.input_node not in outputs:
        raise InputError(f"no record of the Input node '{ag.input_node}' to count operations from")
    B, T = outputs[ag.input_node].shape[:2]
    weighted = [n for n in ag.order if ag.record(n) is not None and ag.record(n).kind in WEIGHTED]
    geo = {n: layer_geometry(ag.record(n)) for n in weighted}
    events, binary = _layer_events(ag, outputs, geo, B, T)
    counts: Dict[str, Dict[str, object]] = {}
    for n in ag.order:
        if n in geo:
            counts[n] = _synapse_counts(ag.record(n).kind, geo[n], events[n], binary[n], B, T)
        elif ag.nodes[n].is_neuron:
            counts[n] = _neuron_counts(ag.record(n), outputs.get(n), B, T)
    return counts


def _layer_events(ag: AnalysedGraph, outputs, geo, B: int, T: int):
    """Per weighted layer: effective synops per sample, and whether its input was binary throughout."""
    events = {n: np.zeros(B, dtype=np.int64) for n in geo}
    binary = dict.fromkeys(geo, True)
    needed = _needed_nodes(ag, list(geo))
    for s in range(0, B, CHUNK_SAMPLES):
        e = min(B, s + CHUNK_SAMPLES)
        env: Dict[str, np.ndarray] = {}
        for n in [m for m in ag.order if m in needed]:
            if n == ag.input_node or ag.nodes[n].is_neuron:
                if n not in outputs:
                    raise InputError(
                        f"no record of '{n}' to count synaptic operations from "
                        f"(it feeds {', '.join(sorted(needed[n]))})"
                    )
                env[n] = np.asarray(outputs[n][s:e], dtype=np.float64).reshape(e - s, T, -1)
                continue
            x = sum(env[q] for q in ag.preds(n))
            if n in geo:
                nz = x != 0
                events[n][s:e] = (nz * geo[n]["fanout"]).sum(axis=(1, 2))
                binary[n] = binary[n] and bool(np.all(~nz | (x == 1)))
            env[n] = _apply_linear(ag.record(n), x.reshape((e - s) * T, -1)).reshape(e - s, T, -1)
    return events, binary


def _synapse_counts(kind: str, g: dict, events: np.ndarray, binary: bool, B: int, T: int) -> Dict[str, object]:
    zeros = np.zeros(B, dtype=np.int64)
    return {
        "kind": kind,
        "layer": "synapse",
        "binary_input": binary,
        "in_features": g["in_features"],
        "out_features": g["out_features"],
        "nonzero_weights_per_step": g["nonzero_per_step"],
        "synops": events,
        "synops_ac": events if binary else zeros,
        "synops_mac": zeros if binary else events,
        "dense_ops": np.full(B, g["dense_per_step"] * T, dtype=np.int64),
        "dense_ops_nonzero": np.full(B, g["nonzero_per_step"] * T, dtype=np.int64),
        "dense_macs": np.full(B, g["dense_per_step"], dtype=np.int64),
        "weight_reads": np.full(B, g["params"], dtype=np.int64),
        "activation_reads": np.full(B, g["in_features"], dtype=np.int64),
        "activation_writes": np.full(B, g["out_features"], dtype=np.int64),
    }


def _neuron_counts(p: NeuronParams, record, B: int, T: int) -> Dict[str, object]:
    size = int(np.prod(p.shape))
    updates = np.full(B, size * T, dtype=np.int64)
    c = {
        "kind": p.kind,
        "layer": "neuron",
        "neurons": size,
        "spiking": p.spiking,
        "recorded": record is not None,
        "neuron_updates": updates,
    }
    if p.spiking and record is not None:
        spikes = (np.asarray(record).reshape(B, T, -1) != 0).sum(axis=(1, 2)).astype(np.int64)
        c["activation_sparsity"] = 1.0 - spikes / float(size * T)
    else:  # LI never spikes; an unrecorded population is counted as silent
        spikes = np.zeros(B, dtype=np.int64)
    c.update(spikes=spikes, neuron_updates_active=spikes, neuron_updates_inactive=updates - spikes)
    return c


def _needed_nodes(ag: AnalysedGraph, weighted: List[str]) -> Dict[str, set]:
    """For each node a weighted layer's input depends on, the set of those layers."""
    deps: Dict[str, set] = {}
    for n in ag.order:
        if ag.record(n) is None or ag.nodes[n].is_neuron:
            deps[n] = {n}
        else:
            deps[n] = {n}.union(*(deps[q] for q in ag.preds(n))) if ag.preds(n) else {n}
    needed: Dict[str, set] = {}
    for w in weighted:
        for m in deps[w]:
            needed.setdefault(m, set()).add(w)
    return needed


def merge_counts(parts: List[Dict[str, Dict[str, object]]]) -> Dict[str, Dict[str, object]]:
    """``count_ops`` of consecutive sample ranges (in sample order) merged into the counts of all of
    them at once: per-sample arrays are concatenated; a layer's input is binary only when it was in
    every range, and its synops are then AC, else MAC (as one call over all samples decides)."""
    merged: Dict[str, Dict[str, object]] = {}
    for n, first in parts[0].items():
        c = dict(first)
        for k in COUNT_KEYS + ("activation_sparsity",):
            if k in first:
                c[k] = np.concatenate([np.asarray(p[n][k]) for p in parts])
        if first["layer"] == "synapse":
            binary = all(bool(p[n]["binary_input"]) for p in parts)
            zeros = np.zeros_like(c["synops"])
            c.update(
                binary_input=binary,
                synops_ac=c["synops"] if binary else zeros,
                synops_mac=zeros if binary else c["synops"],
            )
        merged[n] = c
    return merged


def ops_summary(counts) -> Dict[str, object]:
    """Means per sample per node and in total (JSON-friendly)."""
    per_node, totals = {}, dict.fromkeys(COUNT_KEYS, 0.0)
    zeros = entries = 0.0
    for n, c in counts.items():
        row = {"kind": c["kind"], "layer": c["layer"]}
        for k in COUNT_KEYS:
            if k in c:
                row[k] = float(np.mean(c[k]))
                totals[k] += row[k]
        if c["layer"] == "synapse":
            row.update(
                binary_input=c["binary_input"],
                in_features=c["in_features"],
                out_features=c["out_features"],
                nonzero_weights_per_step=c["nonzero_weights_per_step"],
            )
        else:
            row.update(neurons=c["neurons"], spiking=c["spiking"], recorded=c["recorded"])
            if "activation_sparsity" in c:
                row["activation_sparsity"] = float(np.mean(c["activation_sparsity"]))
                size = c["neuron_updates"][0] if len(c["neuron_updates"]) else 0
                zeros += float(np.mean(size - c["spikes"]))
                entries += float(size)
        per_node[n] = row
    return {
        "per_node": per_node,
        "totals": totals,
        "activation_sparsity": (zeros / entries) if entries else None,
        "how": HOW_COUNTS,
    }


def counts_equal(a, b) -> bool:
    """Exactly equal per-sample counts on every node (what backends agreeing on spikes must give)."""
    if a.keys() != b.keys():
        return False
    for n in a:
        for k in COUNT_KEYS:
            if (k in a[n]) != (k in b[n]) or (k in a[n] and not np.array_equal(a[n][k], b[n][k])):
                return False
    return True
