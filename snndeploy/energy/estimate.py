"""Energy per inference from operation counts and a target's constants, and the report's energy section.

Energy on a target = sum over its constants with ``per`` of ``count[per] x value``
(``targets/*.toml``; every constant with its source, see :mod:`.targets`).
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from ..errors import InputError
from .counts import COUNT_KEYS, ops_summary
from .mapping import mapping_estimate
from .targets import known_targets, load_target

DEFAULT_TARGET = "loihi"
MAPPING_TARGET = "loihi2"


def energy_summary(counts, target) -> Dict[str, object]:
    """Energy per sample on ``target``: per node and total, with every constant, its source and estimate flag.

    Energy of a node = sum over the target's energy constants with ``per`` of
    ``mean over samples of count[per] x value``; a node without that count adds nothing.
    """
    used = {k: c for k, c in target.energy.items() if c.per}
    per_node, tot = {}, dict.fromkeys(COUNT_KEYS, 0.0)
    tot_pj = 0.0
    for name, c in counts.items():
        means = {k: float(np.mean(c[k])) for k in COUNT_KEYS if k in c}
        parts = {k: means[const.per] * const.value for k, const in used.items() if const.per in means}
        pj = float(sum(parts.values()))
        per_node[name] = {
            "kind": c["kind"],
            "layer": c["layer"],
            "synops_per_sample": means.get("synops", 0.0),
            "neuron_updates_per_sample": means.get("neuron_updates", 0.0),
            "energy_pj_per_sample": pj,
            "energy_pj_parts": parts,
        }
        for k, v in means.items():
            tot[k] += v
        tot_pj += pj
    estimate = any(c.estimate for c in used.values())
    return {
        "target": target.name,
        "description": target.description,
        "kind": target.kind,
        "synops_per_sample": tot["synops"],
        "neuron_updates_per_sample": tot["neuron_updates"],
        "energy_nj_per_sample": tot_pj / 1e3,
        "per_node": per_node,
        "estimate": estimate,
        "constants": {k: c.as_dict() for k, c in target.energy.items()},
        "not_charged": sorted(k for k, c in target.energy.items() if not c.per),
        "how": "energy = sum over the target's constants of count[per] x value (pJ), counts per sample from this "
        "backend's records" + ("; includes constants marked estimate" if estimate else ""),
    }


def energy_target(target: str):
    """Load a target that can estimate energy (has constants with ``per``), or fail naming the ones that can."""
    tgt = load_target(target)
    if not tgt.has_energy_model:
        raise InputError(
            f"target '{target}' ({tgt.path}) has no energy constants with 'per'; "
            "energy targets: " + ", ".join(t for t in known_targets() if load_target(t).has_energy_model)
        )
    return tgt


def energy_report(graph, counts, target: str = DEFAULT_TARGET) -> dict:
    """Operation counts, energy on every target in targets/ (and ``target``), and the Loihi 2 core estimate."""
    headline = energy_target(target)
    targets = {headline.name: headline}
    for t in known_targets():
        tgt = load_target(t)
        if tgt.has_energy_model and tgt.name not in targets:
            targets[tgt.name] = tgt
    return {
        "headline": headline.name,
        "ops": ops_summary(counts),
        "estimates": {n: energy_summary(counts, t) for n, t in targets.items()},
        "mapping": mapping_estimate(graph, load_target(MAPPING_TARGET)),
    }
