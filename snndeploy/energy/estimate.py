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
    low, high = energy_range(counts, target, tot_pj)
    return {
        "target": target.name,
        "description": target.description,
        "kind": target.kind,
        "synops_per_sample": tot["synops"],
        "neuron_updates_per_sample": tot["neuron_updates"],
        "energy_nj_per_sample": tot_pj / 1e3,
        "range": {"low": low, "high": high, "how": RANGE_HOW},
        "regimes": {name: {k: c.as_dict() for k, c in consts.items()} for name, consts in target.regimes.items()},
        "per_node": per_node,
        "estimate": estimate,
        "constants": {k: c.as_dict() for k, c in target.energy.items()},
        "not_charged": sorted(k for k, c in target.energy.items() if not c.per),
        "how": "energy = sum over the target's constants of count[per] x value (pJ), counts per sample from this "
        "backend's records" + ("; includes constants marked estimate" if estimate else ""),
    }


#: the name of a target's base regime (its [energy] constants alone)
BASE_REGIME = "published constants"
RANGE_HOW = (
    "lowest and highest energy per inference over the target's regimes: its [energy] constants alone "
    "('published constants') and with each [regimes.NAME] table added (targets/*.toml)"
)


def _total_pj(counts, constants) -> float:
    return float(
        sum(np.mean(c[k.per]) * k.value for c in counts.values() for k in constants.values() if k.per and k.per in c)
    )


def energy_range(counts, target, base_pj: float):
    """(low, high): each ``{"nj", "regime"}``, over the base constants and each regime added to them."""
    values = [(base_pj, BASE_REGIME)] + [
        (base_pj + _total_pj(counts, extra), name) for name, extra in target.regimes.items()
    ]
    lo, hi = min(values), max(values)
    return {"nj": lo[0] / 1e3, "regime": lo[1]}, {"nj": hi[0] / 1e3, "regime": hi[1]}


def ratio_ranges(estimates: Dict[str, dict]) -> list:
    """Each SNN target's energy over each ANN baseline's, as a range: (SNN low / ANN high, SNN high / ANN
    low), each end with the regimes that give it."""
    out = []
    for s, es in estimates.items():
        for a, ea in estimates.items():
            if es["kind"] != "snn" or ea["kind"] != "ann" or ea["range"]["low"]["nj"] <= 0:
                continue
            out.append(
                {
                    "snn": s,
                    "ann": a,
                    "low": es["range"]["low"]["nj"] / ea["range"]["high"]["nj"],
                    "low_regimes": (es["range"]["low"]["regime"], ea["range"]["high"]["regime"]),
                    "high": es["range"]["high"]["nj"] / ea["range"]["low"]["nj"],
                    "high_regimes": (es["range"]["high"]["regime"], ea["range"]["low"]["regime"]),
                }
            )
    return out


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
    estimates = {n: energy_summary(counts, t) for n, t in targets.items()}
    return {
        "headline": headline.name,
        "ops": ops_summary(counts),
        "estimates": estimates,
        "ratio_ranges": ratio_ranges(estimates),
        "mapping": mapping_estimate(graph, load_target(MAPPING_TARGET)),
    }
