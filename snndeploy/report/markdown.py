"""Rendering a comparison report as Markdown (also printed as the CLI's table).

:mod:`snndeploy.report.html` renders the same report (plus plots) as one HTML file.
"""

from __future__ import annotations

from typing import List, Optional

from .tables import pct


def _table(header: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(rep: dict) -> str:
    out = [
        f"# snndeploy comparison: {'PASSED' if rep['passed'] else 'NOT PASSED'}",
        "",
        f"- graph: `{rep['graph']}`, dt = {rep['dt']:g} s, {rep['samples']} samples x {rep['steps']} steps",
        f"- input: {rep['input']}",
        f"- reference backend: `{rep['reference']}`; tolerances: spike agreement >= "
        f"{rep['tolerances']['min_spike_agreement']} per node, prediction agreement >= "
        f"{rep['tolerances']['min_prediction_agreement']}",
        "",
        "## Backends",
        "",
    ]
    rows = []
    for name, b in rep["backends"].items():
        rows.append(
            [
                f"`{name}`",
                pct(b["accuracy"]),
                f"{b['synops_per_sample']:.1f}",
                f"{b['neuron_updates_per_sample']:.0f}",
                f"{b['energy_nj_per_sample']:.2f}",
                f"{b['info'].get('wall_s', float('nan')):.2f}",
            ]
        )
    out.append(
        _table(
            ["backend", "accuracy", "SynOps / sample", "neuron updates / sample", "energy nJ / sample", "run time s"],
            rows,
        )
    )
    for pair in rep["pairs"]:
        out += [
            "",
            f"## `{pair['a']}` vs `{pair['b']}`: {'passed' if pair['passed'] else 'NOT passed'}",
            "",
            f"- prediction agreement: {pct(pair['prediction_agreement'])}",
            f"- spike agreement (minimum over spiking nodes): {pair['spike_agreement']:.6f}",
        ]
        if "counts_equal" in pair:
            out.append(
                f"- operation counts equal: {'yes' if pair['counts_equal'] else 'no'} "
                f"(spikes equal: {'yes' if pair['spikes_equal'] else 'no'}"
                + ("; MUST be equal when spikes are" if pair["spikes_equal"] and not pair["counts_equal"] else "")
                + ")"
            )
        if "output_max_abs_diff" in pair:
            out.append(f"- graded output: largest difference {pair['output_max_abs_diff']:.3g}")
        fd = pair["first_divergence"]
        out.append(
            "- first divergence: none (all spiking nodes identical)"
            if fd is None
            else f"- first divergence: node `{fd['node']}`, sample {fd['sample']}, step {fd['step']}, "
            f"neuron {fd['neuron']}"
        )
        rows = [
            [
                f"`{n}`",
                f"{v['spike_agreement']:.6f}",
                f"{v['mismatches']} / {v['entries']}",
                "-"
                if v["first_divergence"] is None
                else f"sample {v['first_divergence']['sample']}, step {v['first_divergence']['step']}, "
                f"neuron {v['first_divergence']['neuron']}",
                "yes" if v["passed"] else "NO",
            ]
            for n, v in pair["nodes"].items()
        ]
        out += ["", _table(["node", "spike agreement", "mismatches", "first divergence", "passed"], rows)]
    out += render_energy_markdown(rep["backends"], rep["reference"], rep.get("energy", {}).get("mapping"))
    out += quantization_markdown(rep["backends"])
    how = rep.get("accuracy_how", "argmax over classes of the output summed over time")
    out += ["", f"Accuracy: {how}, against the given labels, per backend on the same encoded input."]
    return "\n".join(out) + "\n"


def _num(x, fmt="{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def _est(c: dict) -> str:
    return " (estimate)" if c.get("estimate") else ""


def render_energy_markdown(backends: dict, reference: str, mapping: Optional[dict]) -> List[str]:
    """Operation counts per backend and node, energy per target, constants and the Loihi 2 core estimate."""
    out = ["", "## Operations per sample (NeuroBench definitions)", ""]
    rows = []
    for name, b in backends.items():
        for n, v in b["ops"]["per_node"].items():
            rows.append(
                [
                    f"`{name}`",
                    f"`{n}`",
                    v["kind"],
                    _num(v.get("synops_ac")),
                    _num(v.get("synops_mac")),
                    _num(v.get("dense_ops"), "{:.0f}"),
                    _num(v.get("dense_ops_nonzero"), "{:.0f}"),
                    _num(v.get("neuron_updates"), "{:.0f}"),
                    _num(v.get("neuron_updates_active")),
                    _num(v.get("activation_sparsity"), "{:.4f}"),
                ]
            )
        t = b["ops"]["totals"]
        rows.append(
            [
                f"`{name}`",
                "**total**",
                "",
                _num(t["synops_ac"]),
                _num(t["synops_mac"]),
                _num(t["dense_ops"], "{:.0f}"),
                _num(t["dense_ops_nonzero"], "{:.0f}"),
                _num(t["neuron_updates"], "{:.0f}"),
                _num(t["neuron_updates_active"]),
                _num(b["ops"]["activation_sparsity"], "{:.4f}"),
            ]
        )
    out.append(
        _table(
            [
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
            ],
            rows,
        )
    )
    out += ["", f"How: {backends[reference]['ops']['how']}."]

    est = backends[reference]["estimates"]
    out += ["", f"## Energy per inference (from `{reference}`'s counts)", ""]
    rows = [
        [f"`{t}`", e["description"], f"{e['energy_nj_per_sample']:.3f}", "yes" if e["estimate"] else "no"]
        for t, e in est.items()
    ]
    out.append(_table(["target", "what", "energy nJ / inference", "uses estimates"], rows))
    snn = [t for t, e in est.items() if e["kind"] != "ann"]
    ann = [t for t, e in est.items() if e["kind"] == "ann"]
    for s_ in snn:
        for a in ann:
            if est[a]["energy_nj_per_sample"] > 0:
                r = est[s_]["energy_nj_per_sample"] / est[a]["energy_nj_per_sample"]
                out.append(f"- `{s_}` / `{a}`: {r:.3g} x")
    out += [
        "",
        "ANN baselines: the same weights as a non-spiking network, one forward pass per inference "
        "(dense MACs x pJ per MAC; arithmetic only, no memory traffic).",
    ]
    nodes = list(next(iter(est.values()))["per_node"])
    out += ["", "Energy per node, pJ per inference:", ""]
    rows = [[f"`{n}`"] + [f"{est[t]['per_node'][n]['energy_pj_per_sample']:.1f}" for t in est] for n in nodes]
    out.append(_table(["node"] + [f"`{t}`" for t in est], rows))
    if len(backends) > 1:
        out += ["", "Headline energy per backend (its own counts), nJ per inference:", ""]
        rows = [
            [f"`{name}`"] + [f"{b['estimates'][t]['energy_nj_per_sample']:.3f}" for t in est]
            for name, b in backends.items()
        ]
        out.append(_table(["backend"] + [f"`{t}`" for t in est], rows))
    out += ["", "Constants:"]
    for t, e in est.items():
        for k, c in e["constants"].items():
            use = f"x `{c['per']}`" if c["per"] else "not charged"
            out.append(f"- `{t}.{k}` = {c['value']:g} {c['unit']} {use}{_est(c)}: {c['source']}")
    if mapping:
        out += ["", f"## Loihi 2 mapping estimate: {mapping['cores']} cores, {mapping['chips']} chip(s) (estimate)", ""]
        rows = [
            [
                f"`{n}`",
                str(v["neurons"]),
                str(v["synapses"]),
                str(v["fan_in"]),
                str(v["cores_by_neurons"]),
                str(v["cores_by_synaptic_memory"]),
                str(v["cores"]),
                "YES" if v["fan_in_exceeds_core_limit"] else "no",
            ]
            for n, v in mapping["per_node"].items()
        ]
        out.append(
            _table(
                [
                    "population",
                    "neurons",
                    "synapses",
                    "fan-in",
                    "cores (neurons)",
                    "cores (memory)",
                    "cores",
                    "fan-in over limit",
                ],
                rows,
            )
        )
        out += ["", f"How: {mapping['how']}.", "Resources:"]
        for k, c in mapping["resources"].items():
            out.append(f"- `{k}` = {c['value']:g} {c['unit']}{_est(c)}: {c['source']}")
    return out


def quantization_markdown(backends: dict) -> List[str]:
    """The quantization report of fixed-point backends (RunResult.info['quantization']), one table each."""
    out = []
    for name, b in backends.items():
        q = b.get("info", {}).get("quantization")
        if not q:
            continue
        cols = [
            k
            for k in next(iter(q.values()))
            if all(isinstance(v.get(k), (int, float, str, bool, type(None))) for v in q.values())
        ]
        rows = [[f"`{n}`"] + [str(v.get(k)) for k in cols if k != "node"] for n, v in q.items()]
        out += ["", f"## Quantization (`{name}`)", "", _table(["node"] + [k for k in cols if k != "node"], rows)]
    return out
