"""A self-contained HTML report: the comparison's tables plus plots as embedded base64 PNGs.

No external URL, script or stylesheet: the file opens offline and can be mailed around.
Plots (matplotlib, Agg): accuracy and agreement per backend, a spike raster per layer for
one sample with mismatches against the reference marked, membrane traces of a few neurons
(where states were recorded), agreement per layer over time, energy per layer per target.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Dict, List, Optional

import numpy as np

from ..backends.base import RAW_UNITS
from ..harness.integration import integration_text
from ..harness.twin import TWIN_HEADER, twin_rows
from ..ir.analysed import as_analysed
from .markdown import FAILED_HEADER, execution_text, failed_shard_rows
from .tables import (
    Code,
    Estimate,
    Strong,
    backends_table,
    constants_table,
    mapping_table,
    ops_table,
    pairs_table,
    quantization_tables,
    ratios,
    regimes_note,
    resources_table,
    targets_table,
)

#: neurons whose membrane traces are plotted
TRACE_NEURONS = 3
#: neurons drawn at most per raster panel (the first ones)
RASTER_MAX_NEURONS = 256

CSS = """body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;color:#222}
h1 .ok{color:#17803d}h1 .bad{color:#b42318}table{border-collapse:collapse;margin:.5em 0 1em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}.est{color:#b54708;font-size:.85em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}small,.how{color:#555}code{background:#f6f6f6}"""


def _e(x) -> str:
    return html.escape(str(x))


def cell(c) -> str:
    if isinstance(c, Code):
        return f"<code>{_e(c)}</code>"
    if isinstance(c, Strong):
        return f"<b>{_e(c)}</b>"
    if isinstance(c, Estimate):
        return "<span class='est'>estimate</span>"
    return _e(c)


def table(header, rows) -> str:
    head = "".join(f"<th>{cell(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return '<img alt="plot" src="data:image/png;base64,' + base64.b64encode(buf.getvalue()).decode("ascii") + '">'


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------- plots


def plot_accuracy(rep: dict) -> str:
    plt = _plt()
    names = list(rep["backends"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    acc = [rep["backends"][n]["accuracy"] or 0.0 for n in names]
    axes[0].bar(names, [100 * a for a in acc], color="#4c78a8")
    axes[0].set_ylabel("accuracy %")
    axes[0].set_title("accuracy per backend")
    for i, a in enumerate(acc):
        axes[0].text(i, 100 * a, f"{100 * a:.1f}", ha="center", va="bottom")
    labels = [f"{p['a']} vs {p['b']}" for p in rep["pairs"]]
    x = np.arange(len(labels))
    axes[1].bar(x - 0.2, [100 * p["prediction_agreement"] for p in rep["pairs"]], 0.4, label="predictions")
    axes[1].bar(x + 0.2, [100 * p["spike_agreement"] for p in rep["pairs"]], 0.4, label="spikes (min over nodes)")
    axes[1].set_xticks(x, labels)
    axes[1].set_ylim(min([90.0] + [100 * p["spike_agreement"] for p in rep["pairs"]]) - 1, 100.5)
    axes[1].set_ylabel("agreement %")
    axes[1].set_title("agreement with the reference")
    axes[1].legend(loc="lower right")
    return _png(fig)


def _raster_sample(rep: dict) -> int:
    fds = [p["first_divergence"] for p in rep["pairs"] if p["first_divergence"]]
    return min(fd["sample"] for fd in fds) if fds else 0


def plot_raster(rep: dict, results: dict, layers: List[str], sample: int) -> str:
    """Reference spikes per layer (dots) with every other backend's mismatches marked (red crosses)."""
    plt = _plt()
    ref = results[rep["reference"]].outputs
    layers = [n for n in layers if n in ref]
    fig, axes = plt.subplots(len(layers), 1, figsize=(10, 2.2 * len(layers)), squeeze=False)
    for ax, n in zip(axes[:, 0], layers):
        a = ref[n][sample].reshape(ref[n].shape[1], -1)[:, :RASTER_MAX_NEURONS]
        t, i = np.nonzero(a)
        ax.scatter(t, i, s=4, c="k", marker="|", label=f"{rep['reference']} spikes")
        for other, r in results.items():
            if other == rep["reference"] or n not in r.outputs:
                continue
            b = r.outputs[n][sample].reshape(a.shape[0], -1)[:, :RASTER_MAX_NEURONS]
            tm, im = np.nonzero(a != b)
            if len(tm):
                ax.scatter(tm, im, s=30, c="red", marker="x", label=f"{other} differs ({len(tm)})")
        ax.set_ylabel(f"{n}\nneuron")
        ax.set_xlim(-0.5, a.shape[0] - 0.5)
        ax.set_ylim(-0.5, a.shape[1] - 0.5)
        ax.legend(loc="upper right", fontsize=7)
    shown = sample + rep.get("plotted_samples", {}).get("start", 0)
    axes[-1, 0].set_xlabel(f"step (sample {shown})")
    fig.suptitle(f"spike raster per layer, sample {shown}; red x: mismatch with {rep['reference']}")
    return _png(fig)


def plot_traces(rep: dict, results: dict, layers: List[str], sample: int) -> Optional[str]:
    """Membrane potential of a few neurons of the first spiking layer, every backend whose v is in NIR units."""
    plt = _plt()
    ref = results[rep["reference"]]
    layer = next((n for n in layers if n in ref.states and "v" in ref.states[n]), None)
    if layer is None:
        return None
    # fixed-point backends record raw integers: not on the same axis
    shown = {
        name: r
        for name, r in results.items()
        if layer in r.states and "v" in r.states[layer] and r.info.get("units") != RAW_UNITS
    }
    if not shown:  # every backend compared is fixed point: no trace in NIR units to draw
        return None
    v_ref = ref.states[layer]["v"][sample].reshape(ref.states[layer]["v"].shape[1], -1)
    spikes = ref.outputs[layer][sample].reshape(v_ref.shape[0], -1) if layer in ref.outputs else np.zeros_like(v_ref)
    picks = list(np.argsort(-spikes.sum(0), kind="stable")[:TRACE_NEURONS])
    fig, axes = plt.subplots(len(picks), 1, figsize=(10, 1.8 * len(picks)), squeeze=False, sharex=True)
    for ax, j in zip(axes[:, 0], picks):
        for name, r in shown.items():
            v = r.states[layer]["v"][sample].reshape(v_ref.shape[0], -1)[:, j]
            ax.plot(v, lw=1, label=name, ls="-" if name == rep["reference"] else "--")
        ax.set_ylabel(f"v[{j}]")
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel(f"step (sample {sample + rep.get('plotted_samples', {}).get('start', 0)}); v after reset")
    fig.suptitle(f"membrane potential, layer {layer}")
    return _png(fig)


def plot_agreement_over_time(rep: dict, layers: List[str]) -> Optional[str]:
    """Equal spike entries per step and layer, over all samples compared (the report's merged
    per-step mismatch counts)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 3))
    drawn = False
    for pair in rep["pairs"]:
        for n in layers:
            node = pair["nodes"].get(n)
            if not node or "mismatches_per_step" not in node:
                continue
            per_step = node["entries"] / len(node["mismatches_per_step"])
            eq = 1.0 - np.asarray(node["mismatches_per_step"], dtype=float) / per_step
            ax.plot(100 * eq, label=f"{n}: {pair['b']}")
            drawn = True
    if not drawn:
        return None
    ax.set_xlabel("step")
    ax.set_ylabel("equal entries %")
    ax.set_title(f"spike agreement with {rep['reference']} per layer over time ({rep['samples']} samples)")
    ax.legend(fontsize=7)
    return _png(fig)


def plot_energy(est: Dict[str, dict]) -> str:
    plt = _plt()
    targets = list(est)
    nodes = list(next(iter(est.values()))["per_node"])
    fig, ax = plt.subplots(figsize=(10, 3.5))
    w = 0.8 / max(1, len(targets))
    x = np.arange(len(nodes))
    for k, t in enumerate(targets):
        vals = [est[t]["per_node"][n]["energy_pj_per_sample"] for n in nodes]
        ax.bar(
            x + (k - (len(targets) - 1) / 2) * w,
            [v if v > 0 else np.nan for v in vals],
            w,
            label=t + (" (estimate)" if est[t]["estimate"] else ""),
        )
    ax.set_xticks(x, nodes)
    ax.set_yscale("log")
    ax.set_ylabel("pJ per inference (log)")
    ax.set_title("energy per layer per target")
    ax.legend(fontsize=7)
    return _png(fig)


# --------------------------------------------------------------------------- page


def render_html(rep: dict, results: dict, graph) -> str:
    """The whole report as one HTML string; ``results`` are the RunResults of rep's backends."""
    ag = as_analysed(graph)
    layers = list(ag.spiking_nodes)
    sample = _raster_sample(rep)
    plotted = rep.get("plotted_samples", {"start": 0, "count": rep["samples"]})
    first = plotted["start"]
    if not first <= sample < first + plotted["count"]:  # cannot happen: the kept chunk holds the divergence
        sample = first
    local = sample - first
    ok = rep["passed"]
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>snndeploy report</title>"
        f"<style>{CSS}</style></head><body>",
        f"<h1>snndeploy comparison: <span class='{'ok' if ok else 'bad'}'>{'PASSED' if ok else 'NOT PASSED'}"
        f"</span></h1>",
        f"<p>graph <code>{_e(rep['graph'])}</code>, dt = {rep['dt']:g} s, {rep['samples']} samples x "
        f"{rep['steps']} steps; input: {_e(rep['input'])}; reference backend <code>{_e(rep['reference'])}</code>"
        "</p>",
        "<h2>Accuracy and agreement</h2>",
    ]
    parts += _conventions_html(rep.get("conventions") or {})
    if rep.get("execution"):
        parts.append(f"<p class='how'>Execution: {_e(execution_text(rep))}</p>")
    parts += [table(*backends_table(rep)), table(*pairs_table(rep))]
    if rep.get("ann_twin"):
        parts += [
            "<h2>The SNN and its ANN twin</h2>",
            table(TWIN_HEADER, twin_rows(rep["ann_twin"])),
            f"<p class='how'>{_e(rep['ann_twin']['how'])}</p>",
        ]
    if rep.get("integration_check"):
        chk = rep["integration_check"]
        parts.append(f"<p>{_e(integration_text(chk))}.</p><p class='how'>{_e(chk['how'])}</p>")
    if rep.get("refused"):
        rows = [[r["backend"], r["node"], r["type"], r["reason"]] for r in rep["refused"]]
        parts += [
            "<h2>Refused (not run; the comparison does not pass)</h2>",
            table(["backend", "node", "type", "reason"], rows),
        ]
    if rep.get("failed_shards"):
        n = rep.get("samples_compared", rep["samples"])
        parts += [
            f"<h2>Failed shards (not compared; the comparison does not pass; figures over {n} of "
            f"{rep['samples']} samples)</h2>",
            table(FAILED_HEADER, failed_shard_rows(rep)),
        ]
    parts.append(plot_accuracy(rep))
    parts.append(f"<h2>Spikes, sample {sample}</h2>")
    parts.append(plot_raster(rep, results, [i for i in [ag.input_node] if _binary(results, rep, i)] + layers, local))
    traces = plot_traces(rep, results, layers, local)
    if traces:
        parts += ["<h2>Membrane traces</h2>", traces]
    agree = plot_agreement_over_time(rep, layers)
    if agree:
        parts += [f"<h2>Agreement per layer over time (all {rep['samples']} samples)</h2>", agree]
    parts += _energy_html(rep)
    parts += _quantization_html(rep)
    how = html.escape(rep.get("accuracy_how", "argmax over classes of the output summed over time"))
    parts.append(
        f"<p class='how'>Accuracy: {how}, against the labels."
        " Values marked <span class='est'>estimate</span> are not published measurements.</p></body></html>"
    )
    return "\n".join(parts)


def _conventions_html(conv: dict) -> List[str]:
    if not conv:
        return []
    items = [
        f"exporter profile <code>{_e(conv['exporter'])}</code> ({_e(conv['exporter_from'])}); dt from "
        f"{_e(conv['dt_from'])}; IF/Integrator integrate {_e(conv['if_integrator'])}"
    ]
    items += [
        f"what <code>{_e(conv['exporter'])}</code>'s export cannot carry: {_e(x)}" for x in conv["exporter_loses"]
    ]
    items += [f"changed on load: {_e(x)}" for x in conv["notes"]]
    items += [f"<span class='bad'>warning</span>: {_e(x)}" for x in conv["warnings"]]
    return ["<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"]


def _binary(results, rep, name) -> bool:
    x = results[rep["reference"]].outputs.get(name)
    return x is not None and bool(np.all((x == 0) | (x == 1)))


def _energy_html(rep: dict) -> List[str]:
    ref = rep["backends"][rep["reference"]]
    est, ops = ref["estimates"], ref["ops"]
    out = [
        "<h2>Operations per sample (NeuroBench)</h2>",
        table(*ops_table({rep["reference"]: ref})),
        f"<p class='how'>{_e(ops['how'])}. Counts from <code>{_e(rep['reference'])}</code>.</p>",
        "<h2>Energy per inference</h2>",
        table(*targets_table(est)),
    ]
    out += [f"<p>{_e(r)}</p>" for r in ratios(est)]
    out += [
        "<p class='how'>Ranges: each target's lowest and highest energy over its regimes (its published "
        f"constants alone, and with each regime's constants added: {_e(regimes_note(est))}). No public "
        "per-operation energy exists for Loihi 2: none is used.</p>"
    ]
    out += [plot_energy(est), table(*constants_table(est))]
    mapping = rep.get("energy", {}).get("mapping")
    if mapping:
        out += [
            f"<h2>Loihi 2 mapping: {mapping['cores']} cores, {mapping['chips']} chip(s) "
            "<span class='est'>estimate</span></h2>",
            table(*mapping_table(mapping)),
            f"<p class='how'>{_e(mapping['how'])}</p>",
            table(*resources_table(mapping)),
        ]
    return out


def _quantization_html(rep: dict) -> List[str]:
    out = []
    for name, tab in quantization_tables(rep["backends"]):
        out += [f"<h2>Quantization ({_e(name)})</h2>", table(*tab)]
    return out
