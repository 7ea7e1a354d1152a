"""Loihi 2 mapping estimate: cores per neuron population, from the graph and a target's resources.

An estimate, not a compiler: see :func:`mapping_estimate` for the rule.
"""

from __future__ import annotations

import math
from typing import Dict, List

import numpy as np

from ..ir.analysed import AnalysedGraph, as_analysed
from ..reference import WEIGHTED
from .counts import layer_geometry


def _weighted_inputs(ag: AnalysedGraph, n: str) -> List[str]:
    """Weighted layers feeding node n, looking back through unweighted linear nodes."""
    found, stack, seen = [], list(ag.preds(n)), set()
    while stack:
        q = stack.pop()
        if q in seen or ag.record(q) is None or ag.nodes[q].is_neuron:
            continue
        seen.add(q)
        if ag.record(q).kind in WEIGHTED:
            found.append(q)
        else:
            stack.extend(ag.preds(q))
    return found


#: neuron record fields whose per-neuron values make a "parameter set" (what a core must store per profile)
PARAMETER_FIELDS = ("tau", "tau_syn", "r", "w_in", "v_leak", "v_threshold", "v_reset")


def parameter_sets(p, per_core: int) -> Dict[str, int]:
    """Distinct per-neuron parameter tuples of a population, in all and on the fullest core when the
    neurons are laid out on cores in order, ``per_core`` at a time."""
    cols = [
        np.broadcast_to(getattr(p, f), p.shape).reshape(-1) for f in PARAMETER_FIELDS if getattr(p, f, None) is not None
    ]
    table = np.stack(cols, axis=1) if cols else np.zeros((int(np.prod(p.shape)), 1))
    per = [len(np.unique(table[i : i + per_core], axis=0)) for i in range(0, len(table), per_core)]
    return {"parameter_sets": len(np.unique(table, axis=0)), "max_parameter_sets_per_core": max(per, default=0)}


def mapping_estimate(graph, target) -> Dict[str, object]:
    """Cores needed per neuron population on a core-based target (Loihi 2), from the graph alone.

    cores = max(ceil(neurons / neurons_per_core), ceil(synapses x weight_bits / 8 / synaptic_memory_per_core));
    synapses = non-zero weights of the weighted layers feeding the population (a Conv2d unrolled: an upper
    bound, Loihi 2 can share convolution weights); fan-in = their input features, flagged when above the
    per-core limit (then inputs must be split across cores, which this estimate does not model).
    """
    ag = as_analysed(graph)
    r = {
        k: target.resource(k)
        for k in ("neurons_per_core", "synaptic_memory_per_core", "fan_in_per_core", "weight_bits", "cores_per_chip")
    }
    rows, total = {}, 0
    for n in ag.neurons:
        p = ag.record(n)
        layers = _weighted_inputs(ag, n)
        geos = [layer_geometry(ag.record(q)) for q in layers]
        neurons = int(np.prod(p.shape))
        synapses = sum(g["nonzero_per_step"] for g in geos)
        fan_in = sum(g["in_features"] for g in geos)
        by_neurons = math.ceil(neurons / r["neurons_per_core"].value)
        by_memory = math.ceil(synapses * r["weight_bits"].value / 8 / r["synaptic_memory_per_core"].value)
        cores = max(1, by_neurons, by_memory)
        rows[n] = {
            "neurons": neurons,
            "synapses": synapses,
            "fan_in": fan_in,
            "from_layers": layers,
            "cores_by_neurons": by_neurons,
            "cores_by_synaptic_memory": by_memory,
            "cores": cores,
            "fan_in_exceeds_core_limit": fan_in > r["fan_in_per_core"].value,
            **parameter_sets(p, int(r["neurons_per_core"].value)),
        }
        total += cores
    return {
        "target": target.name,
        "per_node": rows,
        "cores": total,
        "chips": math.ceil(total / r["cores_per_chip"].value) if total else 0,
        "resources": {k: c.as_dict() for k, c in target.resources.items()},
        "estimate": True,
        "how": "cores per population = max(neurons / neurons_per_core, synapses x weight_bits / 8 / "
        "synaptic_memory_per_core), rounded up; synapses = non-zero weights (Conv2d unrolled); "
        "one population per core group, no sharing between populations; parameter sets = distinct per-neuron "
        "(tau, tau_syn, r, w_in, v_leak, v_threshold, v_reset) tuples, in all and on the fullest core with "
        "neurons laid out in order (counted, not checked against a per-core limit); an estimate, not a compiler",
    }
