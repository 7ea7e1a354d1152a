"""A network given by its physical parameters (``models/networks/*.toml``, ``kind = "network"``) as
NIR, with its Poisson input: the seed network of a LIF group driven through excitatory synapses.

Units: seconds and volts. NIR's LIF ``tau dv/dt = (v_leak - v) + r I`` with ``r = 1`` and
``v_leak = v_rest``; one Euler step adds ``dt/tau * W s`` to v, so a jump of ``weight`` volts per
input spike is the Linear weight ``W = weight * tau_m / dt`` on each connection (drawn with
probability ``p_connect``). Input: each source spikes in a step with probability ``rate * dt``
(seeded), one sample of ``duration / dt`` steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np

from ..errors import InputError

NETWORKS_DIR = Path(__file__).resolve().parents[1] / "resources" / "models" / "networks"


def load_network_config(name_or_path: str) -> dict:
    from ..util.files import load_toml

    path = Path(name_or_path)
    if not path.suffix:
        path = NETWORKS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in NETWORKS_DIR.glob("*.toml")))
        raise InputError(f"network config '{name_or_path}' not found (looked for {path}); known: {known}")
    cfg = load_toml(path, "network config")
    for key in ("dt", "duration", "seed", "neurons", "input", "synapses"):
        if key not in cfg:
            raise InputError(f"network config {path} lacks the key '{key}'")
    if cfg.get("kind") != "network":
        raise InputError(f"network config {path}: kind is {cfg.get('kind')!r}, expected 'network'")
    return cfg


def _positive(cfg: dict, table: str, key: str) -> float:
    v = cfg[table][key] if table else cfg[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
        raise InputError(f"network config: {table + '.' if table else ''}{key} must be a positive number, got {v!r}")
    return float(v)


def build_network(cfg: dict) -> Tuple[object, np.ndarray]:
    """(NIR graph, input spikes (1, steps, n_in) float64) for a ``kind = "network"`` config."""
    import nir

    dt, duration = _positive(cfg, "", "dt"), _positive(cfg, "", "duration")
    n, n_in = int(_positive(cfg, "neurons", "n")), int(_positive(cfg, "input", "n"))
    tau = _positive(cfg, "neurons", "tau_m")
    rate, weight = _positive(cfg, "input", "rate"), _positive(cfg, "synapses", "weight")
    p = _positive(cfg, "synapses", "p_connect")
    nc = cfg["neurons"]
    v_rest, v_reset, v_th = (float(nc[k]) for k in ("v_rest", "v_reset", "v_threshold"))
    if not v_th > v_reset:
        raise InputError(f"network config: v_threshold ({v_th}) must be above v_reset ({v_reset})")
    steps = int(round(duration / dt))
    rng = np.random.default_rng(int(cfg["seed"]))
    mask = rng.random((n, n_in)) < min(p, 1.0)
    w = np.where(mask, weight * tau / dt, 0.0)
    x = (rng.random((1, steps, n_in)) < rate * dt).astype(np.float64)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n_in])}),
            "synapses": nir.Linear(weight=w),
            "lif": nir.LIF(
                tau=np.full(n, tau),
                r=np.ones(n),
                v_leak=np.full(n, v_rest),
                v_threshold=np.full(n, v_th),
                v_reset=np.full(n, v_reset),
            ),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "synapses"), ("synapses", "lif"), ("lif", "output")],
        metadata={"dt": dt, "snndeploy_exporter": "snndeploy"},
    )
    return graph, x
