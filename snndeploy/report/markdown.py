"""Rendering a comparison report as Markdown (also printed as the CLI's table).

The tables come from :mod:`.tables`, shared with :mod:`snndeploy.report.html`, which renders the
same report (plus plots) as one HTML file. Every cell is escaped: ``|`` and newlines in a name
cannot break a table.
"""

from __future__ import annotations

from typing import List, Optional

from ..harness.integration import integration_text
from ..harness.twin import TWIN_HEADER, twin_rows
from .tables import (
    Code,
    Estimate,
    Strong,
    backend_energy_table,
    backends_table,
    constants_table,
    divergence_text,
    mapping_table,
    node_energy_table,
    nodes_table,
    ops_table,
    pct,
    quantization_tables,
    ratios,
    regimes_note,
    resources_table,
    targets_table,
)


def escape(text) -> str:
    """Markdown-safe inline text: table pipes, newlines and backticks cannot break the layout."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").replace("\r", " ").replace("\n", " ")


def cell(c) -> str:
    if isinstance(c, Code):
        return f"`{escape(c)}`"
    if isinstance(c, Strong):
        return f"**{escape(c)}**"
    if isinstance(c, Estimate):
        return "(estimate)"
    return escape(c)


def table(header, rows) -> str:
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(rep: dict) -> str:
    tol = rep["tolerances"]
    out = [
        f"# snndeploy comparison: {'PASSED' if rep['passed'] else 'NOT PASSED'}",
        "",
        f"- graph: `{escape(rep['graph'])}`, dt = {rep['dt']:g} s, {rep['samples']} samples x {rep['steps']} steps",
        f"- input: {escape(rep['input'])}",
        f"- reference backend: `{escape(rep['reference'])}`; tolerances: spike agreement >= "
        f"{tol['min_spike_agreement']} per node, prediction agreement >= {tol['min_prediction_agreement']}",
    ]
    out += conventions_markdown(rep.get("conventions") or {})
    if rep.get("execution"):
        out.append(f"- execution: {escape(execution_text(rep))}")
    out += ["", "## Backends", "", table(*backends_table(rep))]
    if rep.get("ann_twin_skipped"):
        out += ["", f"ANN twin not shown: {escape(rep['ann_twin_skipped'])}"]
    if rep.get("ann_twin"):
        out += ["", "## The SNN and its ANN twin", "", table(TWIN_HEADER, twin_rows(rep["ann_twin"]))]
        out += ["", f"({escape(rep['ann_twin']['how'])})"]
    out += refused_markdown(rep.get("refused") or [])
    out += failed_shards_markdown(rep)
    for pair in rep["pairs"]:
        out += _pair_markdown(pair)
    if rep.get("integration_check"):
        out += ["", "## Time convention", "", f"{escape(integration_text(rep['integration_check']))}.", ""]
        out.append(f"({escape(rep['integration_check']['how'])})")
    out += render_energy_markdown(rep["backends"], rep["reference"], rep.get("energy", {}).get("mapping"))
    for name, tab in quantization_tables(rep["backends"]):
        out += ["", f"## Quantization (`{escape(name)}`)", "", table(*tab)]
    how = rep.get("accuracy_how", "argmax over classes of the output summed over time")
    out += ["", f"Accuracy: {escape(how)}, against the given labels, per backend on the same encoded input."]
    return "\n".join(out) + "\n"


def conventions_markdown(conv: dict) -> List[str]:
    """The exporter profile and dt the graph ran with, why, and every change made to the file's graph."""
    if not conv:
        return []
    out = [
        f"- exporter profile: `{escape(conv['exporter'])}` ({escape(conv['exporter_from'])}); dt from "
        f"{escape(conv['dt_from'])}; IF/Integrator integrate {escape(conv['if_integrator'])}",
    ]
    out += [f"- what `{escape(conv['exporter'])}`'s export cannot carry: {escape(x)}" for x in conv["exporter_loses"]]
    out += [f"- changed on load: {escape(x)}" for x in conv["notes"]]
    out += [f"- **warning**: {escape(x)}" for x in conv["warnings"]]
    return out


def execution_text(rep: dict) -> str:
    """How the comparison ran: in-process or on which cluster, its shards (done, failed, resumed), wall time."""
    ex = rep["execution"]
    sh = ex.get("shards", {})
    size = rep.get("chunks", {}).get("size")
    if ex["mode"] == "in-process":
        where = "in-process"
    elif ex["mode"] == "local cluster":
        where = f"local Dask cluster of {ex['workers']} worker processes (one thread each"
        if ex.get("worker_cores"):
            where += ", each pinned to its own cores"
        where += ")"
    else:
        where = f"Dask cluster at {ex.get('scheduler')} ({ex['workers']} workers)"
    text = (
        f"{where}; {sh.get('count')} shards of {size} samples: {sh.get('done')} done "
        f"({sh.get('resumed', 0)} resumed), {sh.get('failed', 0)} failed"
    )
    if ex.get("shard_timeout_s") is not None:
        text += f"; shard timeout {ex['shard_timeout_s']:.0f} s"
    if ex.get("shards_folder"):
        text += f"; finished shards in {ex['shards_folder']}"
    return text + f"; wall time {ex.get('wall_s', 0.0):.1f} s"


def failed_shard_rows(rep: dict) -> List[List[str]]:
    return [
        [str(f["shard"]), f"{f['samples'][0]}-{f['samples'][1]}", str(f["attempts"]), " / ".join(f["errors"])]
        for f in rep.get("failed_shards") or []
    ]


FAILED_HEADER = ["shard", "samples", "attempts", "errors"]


def failed_shards_markdown(rep: dict) -> List[str]:
    rows = failed_shard_rows(rep)
    if not rows:
        return []
    n = rep.get("samples_compared", rep["samples"])
    return [
        "",
        f"## Failed shards (not compared; the comparison does not pass; figures over {n} of {rep['samples']} samples)",
        "",
        table(FAILED_HEADER, rows),
    ]


def refused_markdown(refused: List[dict]) -> List[str]:
    if not refused:
        return []
    rows = [[r["backend"], r["node"], r["type"], r["reason"]] for r in refused]
    return [
        "",
        "## Refused (not run; the comparison does not pass)",
        "",
        table(["backend", "node", "type", "reason"], rows),
    ]


def _pair_markdown(pair: dict) -> List[str]:
    out = [
        "",
        f"## `{escape(pair['a'])}` vs `{escape(pair['b'])}`: {'passed' if pair['passed'] else 'NOT passed'}",
        "",
        f"- prediction agreement: {pct(pair['prediction_agreement'])}",
        f"- spike agreement (minimum over spiking nodes): {pair['spike_agreement']:.6f}",
    ]
    if "counts_equal" in pair:
        must = "; MUST be equal when spikes are" if pair["spikes_equal"] and not pair["counts_equal"] else ""
        out.append(
            f"- operation counts equal: {'yes' if pair['counts_equal'] else 'no'} "
            f"(spikes equal: {'yes' if pair['spikes_equal'] else 'no'}{must})"
        )
    if "output_max_abs_diff" in pair:
        out.append(f"- graded output: largest difference {pair['output_max_abs_diff']:.3g}")
    fd = pair["first_divergence"]
    out.append(
        "- first divergence: none (all spiking nodes identical)"
        if fd is None
        else f"- first divergence: node `{escape(fd['node'])}`, {divergence_text(fd)}"
    )
    return out + ["", table(*nodes_table(pair))]


def render_energy_markdown(backends: dict, reference: str, mapping: Optional[dict]) -> List[str]:
    """Operation counts per backend and node, energy per target, constants and the Loihi 2 core estimate."""
    ref = backends[reference]
    est = ref["estimates"]
    out = [
        "",
        "## Operations per sample (NeuroBench definitions)",
        "",
        table(*ops_table(backends)),
        "",
        f"How: {escape(ref['ops']['how'])}.",
    ]
    out += ["", f"## Energy per inference (from `{escape(reference)}`'s counts)", "", table(*targets_table(est))]
    out += [f"- {escape(r)}" for r in ratios(est)]
    out += [
        "",
        "Ranges: each target's lowest and highest energy over its regimes (targets/*.toml: its published "
        f"constants alone, and with each regime's constants added), each end named ({escape(regimes_note(est))}). "
        "ANN baselines (kind ann): the same weights as a non-spiking network, one forward pass per inference; "
        "low end arithmetic only (dense MACs x pJ per MAC), high end with the regime's memory reads added "
        "(weight-stationary reuse: each weight read once, each activation read and written once per layer). "
        "No public per-operation energy exists for Loihi 2: none is used.",
    ]
    out += ["", "Energy per node, pJ per inference:", "", table(*node_energy_table(est))]
    if len(backends) > 1:
        out += [
            "",
            "Headline energy per backend (its own counts), nJ per inference:",
            "",
            table(*backend_energy_table(backends, est)),
        ]
    out += ["", "Constants:", "", table(*constants_table(est))]
    if mapping:
        out += [
            "",
            f"## Loihi 2 mapping estimate: {mapping['cores']} cores, {mapping['chips']} chip(s) (estimate)",
            "",
            table(*mapping_table(mapping)),
            "",
            f"How: {escape(mapping['how'])}.",
            "",
            table(*resources_table(mapping)),
        ]
    return out


def summary(rep: dict) -> str:
    """What a terminal shows after a comparison: verdict, accuracy per backend, the worst node per
    pair, energy per inference; the full tables are in the report files."""
    head = rep.get("energy", {}).get("headline", "")
    lines = [
        f"snndeploy comparison: {'PASSED' if rep['passed'] else 'NOT PASSED'} "
        f"({rep['samples']} samples x {rep['steps']} steps, reference {rep['reference']})"
    ]
    for name, b in rep["backends"].items():
        lines.append(
            f"  {name:<11} accuracy {pct(b['accuracy'])}, {b['energy_nj_per_sample']:.3f} nJ / inference "
            f"({head}), {b['synops_per_sample']:.1f} SynOps / sample"
        )
    for r in rep.get("refused") or []:
        lines.append(f"  {r['backend']:<11} REFUSED node {r['node']} ({r['type']}): not run")
    for f in rep.get("failed_shards") or []:
        lines.append(
            f"  FAILED shard {f['shard']} (samples {f['samples'][0]}-{f['samples'][1]}, {f['attempts']} attempts): "
            f"{f['errors'][-1]}"
        )
    if rep.get("failed_shards"):
        lines.append(f"  figures over the {rep.get('samples_compared')} samples of the shards that finished")
    if (rep.get("execution") or {}).get("mode", "in-process") != "in-process" or (rep.get("execution") or {}).get(
        "shards_folder"
    ):
        lines.append(f"  ran on: {execution_text(rep)}")
    for w in (rep.get("conventions") or {}).get("warnings", []):
        lines.append(f"  warning: {w}")
    if rep.get("integration_check"):
        lines.append(f"  {integration_text(rep['integration_check'])}")
    if rep.get("ann_twin_skipped"):
        lines.append(f"  ANN twin not shown: {rep['ann_twin_skipped']}")
    if rep.get("ann_twin"):
        t = rep["ann_twin"]["twin"]
        lines.append(
            f"  ANN twin (ReLU, {rep['ann_twin']['metrics']}): accuracy {pct(t['accuracy'])} "
            f"({t['test_samples']} samples), "
            + "; ".join(f"{n} {e['low_nj']:.3g} - {e['high_nj']:.3g} nJ" for n, e in t["energy"].items())
        )
    for p in rep["pairs"]:
        worst = min(p["nodes"].items(), key=lambda kv: kv[1]["spike_agreement"], default=None)
        node = "" if worst is None else f", worst node {worst[0]} {worst[1]['spike_agreement']:.6f}"
        fd = p["first_divergence"]
        first = "" if fd is None else f"; first divergence: node {fd['node']}, {divergence_text(fd)}"
        lines.append(
            f"  {p['a']} vs {p['b']}: {'passed' if p['passed'] else 'NOT passed'}, spike agreement "
            f"{p['spike_agreement']:.6f}{node}, prediction agreement {pct(p['prediction_agreement'])}{first}"
        )
    return "\n".join(lines)
