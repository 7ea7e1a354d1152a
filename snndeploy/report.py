"""Rendering a comparison report as Markdown (also printed as the CLI's table)."""

from __future__ import annotations

from typing import List


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _table(header: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(rep: dict) -> str:
    out = [f"# snndeploy comparison: {'PASSED' if rep['passed'] else 'NOT PASSED'}", "",
           f"- graph: `{rep['graph']}`, dt = {rep['dt']:g} s, {rep['samples']} samples x {rep['steps']} steps",
           f"- input: {rep['input']}",
           f"- reference backend: `{rep['reference']}`; tolerances: spike agreement >= "
           f"{rep['tolerances']['min_spike_agreement']} per node, prediction agreement >= "
           f"{rep['tolerances']['min_prediction_agreement']}", "", "## Backends", ""]
    rows = []
    for name, b in rep["backends"].items():
        rows.append([f"`{name}`", _pct(b["accuracy"]), f"{b['synops_per_sample']:.1f}",
                     f"{b['neuron_updates_per_sample']:.0f}", f"{b['energy_nj_per_sample']:.2f}",
                     f"{b['info'].get('wall_s', float('nan')):.2f}"])
    out.append(_table(["backend", "accuracy", "SynOps / sample", "neuron updates / sample",
                       "energy nJ / sample", "run time s"], rows))
    for pair in rep["pairs"]:
        out += ["", f"## `{pair['a']}` vs `{pair['b']}`: {'passed' if pair['passed'] else 'NOT passed'}", "",
                f"- prediction agreement: {_pct(pair['prediction_agreement'])}",
                f"- spike agreement (minimum over spiking nodes): {pair['spike_agreement']:.6f}"]
        fd = pair["first_divergence"]
        out.append("- first divergence: none (all spiking nodes identical)" if fd is None else
                   f"- first divergence: node `{fd['node']}`, sample {fd['sample']}, step {fd['step']}, "
                   f"neuron {fd['neuron']}")
        rows = [[f"`{n}`", f"{v['spike_agreement']:.6f}", f"{v['mismatches']} / {v['entries']}",
                 "-" if v["first_divergence"] is None else
                 f"sample {v['first_divergence']['sample']}, step {v['first_divergence']['step']}, "
                 f"neuron {v['first_divergence']['neuron']}", "yes" if v["passed"] else "NO"]
                for n, v in pair["nodes"].items()]
        out += ["", _table(["node", "spike agreement", "mismatches", "first divergence", "passed"], rows)]
    ref = rep["backends"][rep["reference"]]["energy"]
    out += ["", f"## SynOps and energy per sample (`{rep['reference']}` records, target `{ref['target']}`)", ""]
    rows = []
    for name, b in rep["backends"].items():
        for n, v in b["energy"]["per_node"].items():
            rows.append([f"`{name}`", f"`{n}`", v["kind"], f"{v['synops_per_sample']:.1f}",
                         f"{v['neuron_updates_per_sample']:.0f}", f"{v['energy_pj_per_sample'] / 1e3:.3f}"])
    out.append(_table(["backend", "node", "type", "SynOps", "neuron updates", "energy nJ"], rows))
    out += ["", f"How: {ref['how']}.", "Constants:"]
    for k, c in ref["constants"].items():
        out.append(f"- `{k}` = {c['value']} pJ ({c['source']})")
    out += ["", "Accuracy: argmax over classes of the output summed over time (spike counts), "
                "against the given labels, per backend on the same encoded input."]
    return "\n".join(out) + "\n"
