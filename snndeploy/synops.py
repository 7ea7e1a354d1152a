"""Operation counts (NeuroBench definitions) from each backend's own records, and energy estimates.

Counts are per sample, per node of the NIR graph. They are computed from the backend's
records of the Input and of every neuron population; the values between them (the
outputs of Affine, Conv2d, pools, ...) are recomputed from those records through the
graph's linear maps (:mod:`snndeploy.linear`), never taken from a backend's own record of
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

Neuron populations:

- ``neuron_updates``: neurons x T (every neuron is updated every step, as on Loihi's
  time-multiplexed cores); ``neuron_updates_active``: updates in which the neuron spikes
  (= ``spikes``); ``neuron_updates_inactive``: the rest.
- ``activation_sparsity`` (spiking nodes): fraction of zero entries of the node's output.

Energy on a target = sum over its constants of ``count[per] x value`` (``targets/*.toml``).
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

import numpy as np

from . import graph as G
from .errors import InputError
from .nodes import MapParams, NeuronParams, SynapseParams, params_of

#: counts a target constant may multiply (``per = "..."`` in targets/*.toml)
COUNT_KEYS = ("synops", "synops_ac", "synops_mac", "dense_ops", "dense_ops_nonzero", "dense_macs",
              "neuron_updates", "neuron_updates_active", "neuron_updates_inactive", "spikes")
WEIGHTED_KINDS = ("Affine", "Linear", "Conv2d")
#: samples per chunk when recomputing linear values (bounds memory on large inputs)
CHUNK_SAMPLES = 32
#: identity basis vectors pushed through a Conv2d at once to get its fan-out
FANOUT_CHUNK = 256

SYNOP_KEY = "synaptic_op_pj"  # kept for callers of the first version
NEURON_KEY = "neuron_update_pj"

HOW_COUNTS = ("NeuroBench definitions, per sample, from this backend's records of the input and of every neuron "
              "population (linear values in between recomputed through the graph's maps): synops = non-zero "
              "layer inputs x non-zero fan-out, summed over steps (AC when the layer's input is binary, MAC when "
              "graded); dense_ops = in_features x out_features x steps (all weights; dense_ops_nonzero: non-zero "
              "weights only); dense_macs = one ANN pass; neuron updates = neurons x steps (active: the neuron "
              "spikes in that step); activation sparsity = fraction of zero entries of a spiking node's output")


# --------------------------------------------------------------------------- counting


def _fanout(p) -> np.ndarray:
    """Non-zero weights each input entry reaches (length = input size)."""
    if isinstance(p, SynapseParams):
        return (p.weight != 0).sum(axis=0).astype(np.int64)
    import torch

    from .linear import conv2d_forward

    ind = MapParams(p.name, p.kind, p.in_shape, p.out_shape,
                    dict(p.attrs, weight=(np.asarray(p.attrs["weight"]) != 0).astype(np.float64),
                         bias=np.zeros(len(p.attrs["bias"]))))
    n = int(np.prod(p.in_shape))
    out = np.zeros(n, dtype=np.int64)
    with torch.no_grad():
        for s in range(0, n, FANOUT_CHUNK):
            k = min(FANOUT_CHUNK, n - s)
            basis = torch.zeros((k, n), dtype=torch.float64)
            basis[torch.arange(k), torch.arange(s, s + k)] = 1.0
            out[s:s + k] = np.rint(conv2d_forward(basis, ind).reshape(k, -1).sum(1).numpy()).astype(np.int64)
    return out


def _dense_per_step(p) -> int:
    if isinstance(p, SynapseParams):
        return p.in_features * p.out_features
    w = np.asarray(p.attrs["weight"])  # (C_out, C_in/groups, kh, kw)
    return int(np.prod(p.out_shape)) * int(np.prod(w.shape[1:]))


def _layer_geometry(p) -> Dict[str, int]:
    fan = _fanout(p)
    from .linear import in_shape_of, out_shape_of

    return {"in_features": int(np.prod(in_shape_of(p))), "out_features": int(np.prod(out_shape_of(p))),
            "dense_per_step": _dense_per_step(p), "nonzero_per_step": int(fan.sum()), "fanout": fan}


def _apply_linear(p, x: np.ndarray) -> np.ndarray:
    """x: (n, features) float64 -> (n, out features) through the node's forward function."""
    import torch

    from .linear import FORWARDS

    with torch.no_grad():
        y = FORWARDS[p.kind](torch.as_tensor(x, dtype=torch.float64), p)
    return y.reshape(x.shape[0], -1).numpy()


def count_ops(graph, outputs: Dict[str, np.ndarray]) -> Dict[str, Dict[str, object]]:
    """Per node: its kind and per-sample count arrays (int64), see the module docstring.

    ``outputs`` is a backend's RunResult.outputs; the Input and the neuron populations
    feeding weighted layers must be recorded.
    """
    order = list(G.recurrent_order(graph).order)  # back edges: their source is a recorded population
    pred = G.predecessors(graph)
    in_node, out_node = G.io_nodes(graph)
    params = {n: params_of(n, graph.nodes[n]) for n in order if n not in (in_node, out_node)}
    if in_node not in outputs:
        raise InputError(f"no record of the Input node '{in_node}' to count operations from")
    B, T = outputs[in_node].shape[:2]
    weighted = [n for n in order if n in params and params[n].kind in WEIGHTED_KINDS]
    geo = {n: _layer_geometry(params[n]) for n in weighted}
    events = {n: np.zeros(B, dtype=np.int64) for n in weighted}
    binary = {n: True for n in weighted}

    needed = _needed_nodes(order, pred, params, weighted)
    for s in range(0, B, CHUNK_SAMPLES):
        e = min(B, s + CHUNK_SAMPLES)
        env: Dict[str, np.ndarray] = {}
        for n in order:
            if n not in needed:
                continue
            if n == in_node or isinstance(params.get(n), NeuronParams):
                if n not in outputs:
                    raise InputError(f"no record of '{n}' to count synaptic operations from "
                                     f"(it feeds {', '.join(sorted(needed[n]))})")
                env[n] = np.asarray(outputs[n][s:e], dtype=np.float64).reshape(e - s, T, -1)
                continue
            x = sum(env[q] for q in pred[n])
            if n in geo:
                nz = x != 0
                events[n][s:e] = (nz * geo[n]["fanout"]).sum(axis=(1, 2))
                binary[n] = binary[n] and bool(np.all(~nz | (x == 1)))
            env[n] = _apply_linear(params[n], x.reshape((e - s) * T, -1)).reshape(e - s, T, -1)

    counts: Dict[str, Dict[str, object]] = {}
    for n in order:
        p = params.get(n)
        if n in geo:
            g = geo[n]
            zeros = np.zeros(B, dtype=np.int64)
            counts[n] = {
                "kind": p.kind, "layer": "synapse", "binary_input": binary[n],
                "in_features": g["in_features"], "out_features": g["out_features"],
                "nonzero_weights_per_step": g["nonzero_per_step"],
                "synops": events[n],
                "synops_ac": events[n] if binary[n] else zeros,
                "synops_mac": zeros if binary[n] else events[n],
                "dense_ops": np.full(B, g["dense_per_step"] * T, dtype=np.int64),
                "dense_ops_nonzero": np.full(B, g["nonzero_per_step"] * T, dtype=np.int64),
                "dense_macs": np.full(B, g["dense_per_step"], dtype=np.int64),
            }
        elif isinstance(p, NeuronParams):
            size = int(np.prod(p.shape))
            updates = np.full(B, size * T, dtype=np.int64)
            c = {"kind": p.kind, "layer": "neuron", "neurons": size, "spiking": p.spiking,
                 "recorded": n in outputs, "neuron_updates": updates}
            if p.spiking and n in outputs:
                spikes = (np.asarray(outputs[n]).reshape(B, T, -1) != 0).sum(axis=(1, 2)).astype(np.int64)
                c["activation_sparsity"] = 1.0 - spikes / float(size * T)
            else:  # LI never spikes; an unrecorded population is counted as silent
                spikes = np.zeros(B, dtype=np.int64)
            c.update(spikes=spikes, neuron_updates_active=spikes, neuron_updates_inactive=updates - spikes)
            counts[n] = c
    return counts


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
            c.update(binary_input=binary, synops_ac=c["synops"] if binary else zeros,
                     synops_mac=zeros if binary else c["synops"])
        merged[n] = c
    return merged


def _needed_nodes(order, pred, params, weighted) -> Dict[str, set]:
    """For each weighted layer the set of nodes its input depends on; keys also list every needed node."""
    deps: Dict[str, set] = {}
    for n in order:
        if n not in params or isinstance(params[n], NeuronParams):
            deps[n] = {n}
        else:
            deps[n] = {n}.union(*(deps[q] for q in pred[n])) if pred[n] else {n}
    needed: Dict[str, set] = {}
    for w in weighted:
        for m in deps[w]:
            needed.setdefault(m, set()).add(w)
    return needed


# --------------------------------------------------------------------------- summaries


def ops_summary(counts) -> Dict[str, object]:
    """Means per sample per node and in total (JSON-friendly)."""
    per_node, totals = {}, {k: 0.0 for k in COUNT_KEYS}
    zeros = entries = 0.0
    for n, c in counts.items():
        row = {"kind": c["kind"], "layer": c["layer"]}
        for k in COUNT_KEYS:
            if k in c:
                row[k] = float(np.mean(c[k]))
                totals[k] += row[k]
        if c["layer"] == "synapse":
            row.update(binary_input=c["binary_input"], in_features=c["in_features"], out_features=c["out_features"],
                       nonzero_weights_per_step=c["nonzero_weights_per_step"])
        else:
            row.update(neurons=c["neurons"], spiking=c["spiking"], recorded=c["recorded"])
            if "activation_sparsity" in c:
                row["activation_sparsity"] = float(np.mean(c["activation_sparsity"]))
                size = c["neuron_updates"][0] if len(c["neuron_updates"]) else 0
                zeros += float(np.mean(size - c["spikes"]))
                entries += float(size)
        per_node[n] = row
    return {"per_node": per_node, "totals": totals,
            "activation_sparsity": (zeros / entries) if entries else None, "how": HOW_COUNTS}


def counts_equal(a, b) -> bool:
    """Exactly equal per-sample counts on every node (what backends agreeing on spikes must give)."""
    if a.keys() != b.keys():
        return False
    for n in a:
        for k in COUNT_KEYS:
            if (k in a[n]) != (k in b[n]) or (k in a[n] and not np.array_equal(a[n][k], b[n][k])):
                return False
    return True


def energy_summary(counts, target) -> Dict[str, object]:
    """Energy per sample on ``target``: per node and total, with every constant, its source and estimate flag.

    Energy of a node = sum over the target's energy constants with ``per`` of
    ``mean over samples of count[per] x value``; a node without that count adds nothing.
    """
    used = {k: c for k, c in target.energy.items() if c.per}
    per_node, tot = {}, {k: 0.0 for k in COUNT_KEYS}
    tot_pj = 0.0
    for name, c in counts.items():
        means = {k: float(np.mean(c[k])) for k in COUNT_KEYS if k in c}
        parts = {k: means[const.per] * const.value for k, const in used.items() if const.per in means}
        pj = float(sum(parts.values()))
        per_node[name] = {"kind": c["kind"], "layer": c["layer"], "synops_per_sample": means.get("synops", 0.0),
                          "neuron_updates_per_sample": means.get("neuron_updates", 0.0),
                          "energy_pj_per_sample": pj, "energy_pj_parts": parts}
        for k, v in means.items():
            tot[k] += v
        tot_pj += pj
    estimate = any(c.estimate for c in used.values())
    return {
        "target": target.name, "description": target.description,
        "synops_per_sample": tot["synops"], "neuron_updates_per_sample": tot["neuron_updates"],
        "energy_nj_per_sample": tot_pj / 1e3, "per_node": per_node, "estimate": estimate,
        "constants": {k: c.as_dict() for k, c in target.energy.items()},
        "not_charged": sorted(k for k, c in target.energy.items() if not c.per),
        "how": "energy = sum over the target's constants of count[per] x value (pJ), counts per sample from this "
               "backend's records" + ("; includes constants marked estimate" if estimate else ""),
    }


# --------------------------------------------------------------------------- Loihi 2 mapping


def _weighted_inputs(n: str, pred, params) -> List[str]:
    """Weighted layers feeding node n, looking back through unweighted linear nodes."""
    found, stack, seen = [], list(pred[n]), set()
    while stack:
        q = stack.pop()
        if q in seen or q not in params or isinstance(params[q], NeuronParams):
            continue
        seen.add(q)
        if params[q].kind in WEIGHTED_KINDS:
            found.append(q)
        else:
            stack.extend(pred[q])
    return found


def mapping_estimate(graph, target) -> Dict[str, object]:
    """Cores needed per neuron population on a core-based target (Loihi 2), from the graph alone.

    cores = max(ceil(neurons / neurons_per_core), ceil(synapses x weight_bits / 8 / synaptic_memory_per_core));
    synapses = non-zero weights of the weighted layers feeding the population (a Conv2d unrolled: an upper
    bound, Loihi 2 can share convolution weights); fan-in = their input features, flagged when above the
    per-core limit (then inputs must be split across cores, which this estimate does not model).
    """
    order = list(G.recurrent_order(graph).order)  # back edges: their source is a recorded population
    pred = G.predecessors(graph)
    in_node, out_node = G.io_nodes(graph)
    params = {n: params_of(n, graph.nodes[n]) for n in order if n not in (in_node, out_node)}
    r = {k: target.resource(k) for k in ("neurons_per_core", "synaptic_memory_per_core", "fan_in_per_core",
                                         "weight_bits", "cores_per_chip")}
    rows, total = {}, 0
    for n in order:
        p = params.get(n)
        if not isinstance(p, NeuronParams):
            continue
        layers = _weighted_inputs(n, pred, params)
        geos = [_layer_geometry(params[q]) for q in layers]
        neurons = int(np.prod(p.shape))
        synapses = sum(g["nonzero_per_step"] for g in geos)
        fan_in = sum(g["in_features"] for g in geos)
        by_neurons = math.ceil(neurons / r["neurons_per_core"].value)
        by_memory = math.ceil(synapses * r["weight_bits"].value / 8 / r["synaptic_memory_per_core"].value)
        cores = max(1, by_neurons, by_memory)
        rows[n] = {"neurons": neurons, "synapses": synapses, "fan_in": fan_in, "from_layers": layers,
                   "cores_by_neurons": by_neurons, "cores_by_synaptic_memory": by_memory, "cores": cores,
                   "fan_in_exceeds_core_limit": fan_in > r["fan_in_per_core"].value}
        total += cores
    return {"target": target.name, "per_node": rows, "cores": total,
            "chips": math.ceil(total / r["cores_per_chip"].value) if total else 0,
            "resources": {k: c.as_dict() for k, c in target.resources.items()},
            "estimate": True,
            "how": "cores per population = max(neurons / neurons_per_core, synapses x weight_bits / 8 / "
                   "synaptic_memory_per_core), rounded up; synapses = non-zero weights (Conv2d unrolled); "
                   "one population per core group, no sharing between populations; an estimate, not a compiler"}
