"""The report's tables, built once from the report dict and rendered by Markdown and HTML alike.

A table is ``(header, rows)``; a cell is a plain string (escaped by each renderer), a :class:`Code`
(a name: backticks in Markdown, ``<code>`` in HTML), a :class:`Strong` (a failure to notice) or an
:class:`Estimate` marker. Renderers escape every cell, so a node name holding ``|`` or a newline
cannot break a Markdown table, nor ``<`` an HTML one.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

Table = Tuple[List[str], List[list]]


class Code(str):
    """A name (node, backend, target, constant): rendered as code."""


class Strong(str):
    """A value that must catch the eye (a failed check)."""


class Estimate(str):
    """Marks a value that is not a published measurement."""


ESTIMATE = Estimate("estimate")


def pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def num(x, fmt: str = "{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def yes_no(ok: bool, strong_no: bool = True) -> str:
    return "yes" if ok else (Strong("NO") if strong_no else "no")


def backends_table(rep: dict) -> Table:
    head = rep.get("energy", {}).get("headline", "")
    rows = [
        [
            Code(n),
            pct(b["accuracy"]),
            f"{b['synops_per_sample']:.1f}",
            f"{b['neuron_updates_per_sample']:.0f}",
            f"{b['energy_nj_per_sample']:.3f}",
            f"{b['info'].get('wall_s', float('nan')):.2f}",
        ]
        for n, b in rep["backends"].items()
    ]
    header = [
        "backend",
        "accuracy",
        "SynOps / sample",
        "neuron updates / sample",
        f"energy nJ / sample ({head})",
        "run time s",
    ]
    return header, rows


def divergence_text(fd: Optional[dict]) -> str:
    return "-" if fd is None else f"sample {fd['sample']}, step {fd['step']}, neuron {fd['neuron']}"


def pairs_table(rep: dict) -> Table:
    rows = [
        [
            f"{p['a']} vs {p['b']}",
            yes_no(p["passed"]),
            pct(p["prediction_agreement"]),
            f"{p['spike_agreement']:.6f}",
            "-"
            if p["first_divergence"] is None
            else f"{p['first_divergence']['node']}: " + divergence_text(p["first_divergence"]),
            {True: "yes", False: Strong("no"), None: "-"}[p.get("counts_equal")],
        ]
        for p in rep["pairs"]
    ]
    header = ["pair", "passed", "prediction agreement", "spike agreement (min)", "first divergence", "op counts equal"]
    return header, rows


def nodes_table(pair: dict) -> Table:
    rows = [
        [
            Code(n),
            f"{v['spike_agreement']:.6f}",
            f"{v['mismatches']} / {v['entries']}",
            divergence_text(v["first_divergence"]),
            yes_no(v["passed"]),
        ]
        for n, v in pair["nodes"].items()
    ]
    return ["node", "spike agreement", "mismatches", "first divergence", "passed"], rows


OPS_COLUMNS = ("synops_ac", "synops_mac", "dense_ops", "dense_ops_nonzero", "neuron_updates", "neuron_updates_active")


def ops_table(backends: dict) -> Table:
    """Operations per sample per node (and in total) of each backend given."""
    rows = []
    for name, b in backends.items():
        for n, v in b["ops"]["per_node"].items():
            rows.append(
                [Code(name), Code(n), v["kind"]]
                + [num(v.get(k)) for k in OPS_COLUMNS]
                + [num(v.get("activation_sparsity"), "{:.4f}")]
            )
        t = b["ops"]["totals"]
        rows.append(
            [Code(name), Strong("total"), ""]
            + [num(t[k]) for k in OPS_COLUMNS]
            + [num(b["ops"]["activation_sparsity"], "{:.4f}")]
        )
    header = [
        "backend",
        "node",
        "type",
        "SynOps AC",
        "SynOps MAC",
        "dense ops",
        "dense ops (non-zero w)",
        "neuron updates",
        "active updates",
        "activation sparsity",
    ]
    return header, rows


def _grades(e: dict) -> str:
    grades = sorted({c.get("grade") or "?" for c in e["constants"].values() if c.get("per")})
    return ", ".join(grades)


def _range(e: dict) -> str:
    r = e.get("range")
    if not r:
        return f"{e['energy_nj_per_sample']:.3f}"
    lo, hi = r["low"], r["high"]
    if lo["regime"] == hi["regime"]:
        return f"{lo['nj']:.3f} ({lo['regime']})"
    return f"{lo['nj']:.3f} ({lo['regime']}) - {hi['nj']:.3f} ({hi['regime']})"


def targets_table(est: dict) -> Table:
    rows = [
        [
            Code(t),
            e["description"],
            e["kind"],
            _range(e),
            _grades(e) + (" " + ESTIMATE if e["estimate"] else ""),
        ]
        for t, e in est.items()
    ]
    return ["target", "what", "kind", "energy nJ / inference (range over regimes)", "evidence of the constants"], rows


def ratios(est: dict) -> List[str]:
    """Each SNN target's energy over each ANN baseline's as a range (energy.estimate.ratio_ranges: low,
    SNN's lowest regime over the ANN's highest; high, the reverse), each end with its regimes."""
    from ..energy.estimate import ratio_ranges

    if not all("range" in e for e in est.values()):  # a report without ranges: the point ratios
        return [
            f"{s} / {a}: {es['energy_nj_per_sample'] / ea['energy_nj_per_sample']:.3g} x"
            for s, es in est.items()
            for a, ea in est.items()
            if es["kind"] == "snn" and ea["kind"] == "ann" and ea["energy_nj_per_sample"] > 0
        ]
    return [
        f"{r['snn']} / {r['ann']}: {r['low']:.3g} x ({' vs '.join(r['low_regimes'])}) to "
        f"{r['high']:.3g} x ({' vs '.join(r['high_regimes'])})"
        for r in ratio_ranges(est)
    ]


def regimes_note(est: dict) -> str:
    """The regimes that give each target's range ends, as the estimates name them (targets/*.toml)."""
    ends = [
        f"{t}: {e['range']['low']['regime']} to {e['range']['high']['regime']}" for t, e in est.items() if "range" in e
    ]
    return "; ".join(ends)


def node_energy_table(est: dict) -> Table:
    nodes = list(next(iter(est.values()))["per_node"])
    rows = [[Code(n)] + [f"{est[t]['per_node'][n]['energy_pj_per_sample']:.1f}" for t in est] for n in nodes]
    return ["node"] + [Code(t) for t in est], rows


def backend_energy_table(backends: dict, est: dict) -> Table:
    rows = [
        [Code(name)] + [f"{b['estimates'][t]['energy_nj_per_sample']:.3f}" for t in est] for name, b in backends.items()
    ]
    return ["backend"] + [Code(t) for t in est], rows


def constants_table(est: dict) -> Table:
    rows = [
        [
            Code(f"{t}.{k}"),
            f"{c['value']:g} {c['unit']}",
            c["per"] or "not charged",
            ESTIMATE if c["estimate"] else "",
            c.get("grade") or "",
            c["source"],
        ]
        for t, e in est.items()
        for k, c in list(e["constants"].items())
        + [(f"{r}: {k}", c) for r, consts in e.get("regimes", {}).items() for k, c in consts.items()]
    ]
    return ["constant", "value", "x count", "", "evidence", "source"], rows


def mapping_table(mapping: dict) -> Table:
    rows = [
        [
            Code(n),
            str(v["neurons"]),
            str(v["synapses"]),
            str(v["fan_in"]),
            str(v["cores_by_neurons"]),
            str(v["cores_by_synaptic_memory"]),
            str(v["cores"]),
            Strong("YES") if v["fan_in_exceeds_core_limit"] else "no",
            f"{v.get('parameter_sets', '?')} ({v.get('max_parameter_sets_per_core', '?')} on the fullest core)",
        ]
        for n, v in mapping["per_node"].items()
    ]
    header = [
        "population",
        "neurons",
        "synapses",
        "fan-in",
        "cores (neurons)",
        "cores (memory)",
        "cores",
        "fan-in over limit",
        "parameter sets",
    ]
    return header, rows


def resources_table(mapping: dict) -> Table:
    rows = [
        [Code(k), f"{c['value']:g} {c['unit']}", ESTIMATE if c["estimate"] else "", c["source"]]
        for k, c in mapping["resources"].items()
    ]
    return ["resource", "value", "", "source"], rows


def quantization_tables(backends: dict) -> List[Tuple[str, Table]]:
    """(backend, table) of each fixed-point backend's quantization report (RunResult.info)."""
    out = []
    for name, b in backends.items():
        q = b.get("info", {}).get("quantization")
        if not q:
            continue
        cols = [
            k
            for k in next(iter(q.values()))
            if k != "node" and all(isinstance(v.get(k), (int, float, str, bool, type(None))) for v in q.values())
        ]
        out.append((name, (["node"] + cols, [[Code(n)] + [str(v.get(k)) for k in cols] for n, v in q.items()])))
    return out
