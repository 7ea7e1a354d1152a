"""``snndeploy network CONFIG``: a network given by its physical parameters (the seed network: a LIF
group driven by Poisson input), run on several backends and drawn side by side: the spike raster of
every neuron and the membrane potential of the first ``TRACES`` neurons per backend, on the same axes,
with firing rates per backend and spike agreement with the first backend. Writes ``report.html`` and
``network.json`` together."""

from __future__ import annotations

import html
from typing import Dict, Sequence

import numpy as np

from ..backends.base import RAW_UNITS
from ..errors import InputError
from .html import CSS, _plt, _png

#: membrane potentials drawn per backend
TRACES = 10
DEFAULT_BACKENDS = ("norse", "brian2", "lava-float", "lava-fixed")


def _volts(result, node: str, fp_scale_offset):
    """v in volts: float backends record NIR units; fixed point records raw 24-bit state
    (``v_raw = scale * (v - v_reset)``, docs/fixed_point.md)."""
    v = result.states[node]["v"][0].astype(np.float64)
    if result.info.get("units") == RAW_UNITS:
        scale, offset = fp_scale_offset(result)
        v = v / scale + offset
    return v


def run_network(name_or_path: str, out_dir, backends: Sequence[str] = DEFAULT_BACKENDS) -> dict:
    from ..backends import get_backend
    from ..frontends.seed import build_network, load_network_config
    from ..ir.analysed import analyse
    from ..util.files import check_out_dir, json_bytes, write_files

    check_out_dir(out_dir)
    if not backends:
        raise InputError("--backends: name at least one backend (the first is the reference)")
    cfg = load_network_config(name_or_path)
    graph, x = build_network(cfg)
    ag = analyse(graph)
    dt = float(cfg["dt"])
    results = {}
    for b in backends:
        kw = {"record_states": True} if b.startswith("lava") else {}
        results[b] = get_backend(b, **kw).run(ag, x, dt)
    v_reset = float(cfg["neurons"]["v_reset"])

    def scale_offset(r):
        return float(r.info["quantization"]["lif"]["scale"]), v_reset

    ref = results[backends[0]].outputs["lif"][0]
    summary = {
        b: {
            "firing_rate_hz": float(r.outputs["lif"][0].mean() / dt),
            "spikes": int(r.outputs["lif"][0].sum()),
            "spike_agreement_with_" + backends[0]: float(np.mean(r.outputs["lif"][0] == ref)),
            "wall_s": float(r.info.get("total_s", r.info.get("wall_s", 0.0))),
        }
        for b, r in results.items()
    }
    volts = {b: _volts(r, "lif", scale_offset) for b, r in results.items()}
    rep = {"network": cfg.get("name", str(name_or_path)), "config": cfg, "steps": int(x.shape[1]), "backends": summary}
    page = render_network_html(rep, {b: r.outputs["lif"][0] for b, r in results.items()}, volts, dt)
    write_files(out_dir, {"report.html": page.encode(), "network.json": json_bytes(rep)})
    return rep


def _raster(spikes: Dict[str, np.ndarray], dt: float) -> str:
    plt = _plt()
    fig, axes = plt.subplots(1, len(spikes), figsize=(4 * len(spikes), 3.2), squeeze=False, sharey=True)
    for ax, (b, s) in zip(axes[0], spikes.items()):
        t, i = np.nonzero(s)
        ax.scatter(t * dt * 1e3, i, s=3, c="k", marker="|")
        ax.set_title(f"{b}: {s.mean() / dt:.1f} Hz")
        ax.set_xlabel("time (ms)")
    axes[0, 0].set_ylabel("neuron")
    fig.suptitle("spike raster per backend", y=1.03)
    return _png(fig)


def _membranes(volts: Dict[str, np.ndarray], dt: float) -> str:
    plt = _plt()
    fig, axes = plt.subplots(1, len(volts), figsize=(4 * len(volts), 3.2), squeeze=False, sharey=True)
    for ax, (b, v) in zip(axes[0], volts.items()):
        t = np.arange(v.shape[0]) * dt * 1e3
        for j in range(min(TRACES, v.shape[1])):
            ax.plot(t, v[:, j] * 1e3, lw=0.7)
        ax.set_title(b)
        ax.set_xlabel("time (ms)")
    axes[0, 0].set_ylabel("v (mV), after reset")
    fig.suptitle(f"membrane potential of the first {TRACES} neurons per backend (same axes)", y=1.03)
    return _png(fig)


def render_network_html(rep: dict, spikes: Dict[str, np.ndarray], volts: Dict[str, np.ndarray], dt: float) -> str:
    first = next(iter(rep["backends"]))
    rows = "".join(
        f"<tr><td><code>{html.escape(b)}</code></td><td>{s['firing_rate_hz']:.2f}</td><td>{s['spikes']}</td>"
        f"<td>{s['spike_agreement_with_' + first]:.6f}</td><td>{s['wall_s']:.2f}</td></tr>"
        for b, s in rep["backends"].items()
    )
    c = rep["config"]
    n, i = c["neurons"], c["input"]
    desc = (
        f"{n['n']} LIF neurons (tau {n['tau_m'] * 1e3:g} ms, rest {n['v_rest'] * 1e3:g} mV, "
        f"reset {n['v_reset'] * 1e3:g} mV, threshold {n['v_threshold'] * 1e3:g} mV), "
        f"{i['n']} Poisson sources at {i['rate']:g} Hz, excitatory "
        f"synapses of {c['synapses']['weight'] * 1e3:g} mV with probability {c['synapses']['p_connect']:g}; dt "
        f"{c['dt'] * 1e3:g} ms, {rep['steps']} steps"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>snndeploy network</title><style>{CSS}</style>"
        f"</head><body><h1>{html.escape(rep['network'])}</h1><p>{html.escape(desc)}</p>"
        "<table><tr><th>backend</th><th>firing rate (Hz)</th><th>spikes</th>"
        f"<th>spike agreement with {html.escape(first)}</th><th>wall (s)</th></tr>{rows}</table>"
        f"{_raster(spikes, dt)}{_membranes(volts, dt)}"
        "<p class='how'>Firing rate: spikes / (neurons x duration). Fixed-point voltages converted to volts with "
        "the layer's quantization scale (v = v_raw / scale + v_reset).</p></body></html>"
    )
