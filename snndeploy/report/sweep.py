"""The sweep's report: every point's accuracy and energy range, the Pareto front, the verdict
against the ANN twin (Markdown), and the accuracy-energy plot with the front drawn (HTML)."""

from __future__ import annotations

import html
from typing import List

import numpy as np

from .html import CSS, _plt, _png
from .markdown import escape, table

SNN_TARGET = "loihi"


def _rows(rep: dict) -> List[list]:
    front = set(rep["pareto"])
    rows = []
    for i, p in enumerate(rep["points"]):
        e = p["energy"][SNN_TARGET]
        rows.append(
            [
                str(p["steps"]),
                p["encoding"],
                f"{p['spike_rate_penalty']:g}",
                f"{100 * p['accuracy']:.2f} %",
                f"{p['spike_rate']:.4f}",
                f"{e['low']['nj']:.3f} - {e['high']['nj']:.3f}",
                "yes" if i in front else "",
                "; ".join(f"{a}: {v}" for a, v in p["vs_twin"].items()),
            ]
        )
    return rows


HEADER = [
    "T",
    "encoding",
    "spike-rate penalty",
    "accuracy (norse)",
    "spike rate",
    f"energy nJ/inference on {SNN_TARGET} (low - high)",
    "Pareto",
    "vs ANN twin",
]


def _twin_lines(rep: dict) -> List[str]:
    t = rep["ann_twin"]
    out = [f"ANN twin: accuracy {100 * t['accuracy']:.2f} % ({t['test_samples']} test samples, onnxruntime)"]
    for target, r in t["energy"].items():
        lo, hi = r["low"], r["high"]
        out.append(f"  {target}: {lo['nj']:.3f} nJ ({lo['regime']}) - {hi['nj']:.3f} nJ ({hi['regime']})")
    return out


def render_sweep_markdown(rep: dict) -> str:
    lines = [
        f"# snndeploy sweep: {rep['model']} on {rep['dataset']}",
        "",
        f"Grid: T {rep['grid']['steps']}, encodings {rep['grid']['encodings']}, spike-rate penalties "
        f"{rep['grid']['spike_rate_penalty']}; {rep['epochs']} epochs per point; {rep['wall_s']:.0f} s in all.",
        "",
        table(HEADER, _rows(rep)),
        "",
    ]
    lines += [escape(x) for x in _twin_lines(rep)]
    lines += ["", escape(rep["how"])]
    return "\n".join(lines) + "\n"


def plot_pareto(rep: dict) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    pts = rep["points"]
    for enc in sorted({p["encoding"] for p in pts}):
        sel = [p for p in pts if p["encoding"] == enc]
        lo = np.array([p["energy"][SNN_TARGET]["low"]["nj"] for p in sel])
        hi = np.array([p["energy"][SNN_TARGET]["high"]["nj"] for p in sel])
        acc = np.array([100 * p["accuracy"] for p in sel])
        ax.errorbar(hi, acc, xerr=[hi - lo, np.zeros_like(hi)], fmt="o", capsize=3, label=f"SNN, {enc}")
    front = sorted((pts[i]["energy"][SNN_TARGET]["high"]["nj"], 100 * pts[i]["accuracy"]) for i in rep["pareto"])
    if front:
        ax.step([f[0] for f in front], [f[1] for f in front], where="post", color="k", lw=1, label="Pareto front")
    twin = rep["ann_twin"]
    for target, r in twin["energy"].items():
        ax.errorbar(
            [r["high"]["nj"]],
            [100 * twin["accuracy"]],
            xerr=[[r["high"]["nj"] - r["low"]["nj"]], [0]],
            fmt="s",
            capsize=3,
            label=f"ANN twin, {target}",
        )
    ax.set_xscale("log")
    ax.set_xlabel(f"energy per inference, nJ (range: low - high regime; {SNN_TARGET} for the SNN)")
    ax.set_ylabel("accuracy, %")
    ax.set_title("accuracy vs energy")
    ax.legend(fontsize=7)
    return _png(fig)


def render_sweep_html(rep: dict) -> str:
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in _rows(rep))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    twin = "<br>".join(html.escape(x) for x in _twin_lines(rep))
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>snndeploy sweep</title><style>{CSS}</style>"
        f"</head><body><h1>snndeploy sweep: {html.escape(rep['model'])} on {html.escape(rep['dataset'])}</h1>"
        f"<h2>Accuracy vs energy (Pareto front)</h2>{plot_pareto(rep)}"
        f"<table><tr>{head}</tr>{rows}</table><p>{twin}</p><p class='how'>{html.escape(rep['how'])}</p>"
        "</body></html>"
    )
