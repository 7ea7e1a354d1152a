"""Synaptic-operation counts and a first energy figure, from each backend's own records.

Definitions (per sample, NIR-level graph):

- SynOps of an Affine/Linear node S fed by node P:
  ``sum_t sum_j [x_P[t, j] != 0] * fanout_S[j]`` with ``fanout_S[j]`` the number of
  non-zero entries in column j of S's weight. For binary spikes this is the
  number of synaptic events (accumulates).
- Neuron updates of a neuron node: ``neurons x time steps`` (every neuron is
  updated every step, as on Loihi's time-multiplexed cores).
- Energy = SynOps x E_syn + neuron updates x E_neuron (constants from ``targets/``).
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from . import graph as G
from .nodes import NeuronParams, SynapseParams, params_of
from .targets import Target

SYNOP_KEY = "synaptic_op_pj"
NEURON_KEY = "neuron_update_pj"


def count_ops(graph, outputs: Dict[str, np.ndarray]) -> Dict[str, Dict[str, object]]:
    """Per node: {"kind", "synops" (per-sample array) or "neuron_updates" (per-sample array)}."""
    pred = G.predecessors(graph)
    in_node, out_node = G.io_nodes(graph)
    counts: Dict[str, Dict[str, object]] = {}
    for name, node in graph.nodes.items():
        if name in (in_node, out_node):
            continue
        p = params_of(name, node)
        if isinstance(p, SynapseParams):
            (src,) = pred[name]
            if src not in outputs:
                raise KeyError(f"no record of '{src}' (input of '{name}') to count synaptic operations from")
            x = outputs[src]
            B, T = x.shape[:2]
            events = (x.reshape(B, T, -1) != 0)
            fanout = (p.weight != 0).sum(axis=0)
            counts[name] = {"kind": p.kind, "synops": (events * fanout).sum(axis=(1, 2)).astype(np.int64)}
        elif isinstance(p, NeuronParams):
            any_rec = next(iter(outputs.values()))
            B, T = any_rec.shape[:2]
            n = int(np.prod(p.shape))
            counts[name] = {"kind": p.kind, "neuron_updates": np.full(B, n * T, dtype=np.int64)}
    return counts


def energy_summary(counts, target: Target) -> Dict[str, object]:
    """Mean per sample: SynOps, neuron updates and energy, per node and total, with constants' sources."""
    e_syn, e_neu = target.pj(SYNOP_KEY), target.pj(NEURON_KEY)
    per_node = {}
    tot_syn = tot_upd = tot_pj = 0.0
    for name, c in counts.items():
        syn = float(np.mean(c["synops"])) if "synops" in c else 0.0
        upd = float(np.mean(c["neuron_updates"])) if "neuron_updates" in c else 0.0
        pj = syn * e_syn.value + upd * e_neu.value
        per_node[name] = {"kind": c["kind"], "synops_per_sample": syn, "neuron_updates_per_sample": upd,
                          "energy_pj_per_sample": pj}
        tot_syn, tot_upd, tot_pj = tot_syn + syn, tot_upd + upd, tot_pj + pj
    return {
        "target": target.name, "synops_per_sample": tot_syn, "neuron_updates_per_sample": tot_upd,
        "energy_nj_per_sample": tot_pj / 1e3, "per_node": per_node,
        "constants": {SYNOP_KEY: {"value": e_syn.value, "source": e_syn.source},
                      NEURON_KEY: {"value": e_neu.value, "source": e_neu.source}},
        "how": "SynOps = presynaptic non-zero entries x non-zero fan-out, summed over steps, from this backend's "
               "records; neuron updates = neurons x steps; energy = SynOps x E_syn + updates x E_neuron",
    }
