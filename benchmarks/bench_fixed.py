"""Samples per second of ``lava-fixed`` and ``loihi-emu`` on the same inputs (not a test).

Random Poisson spikes into a random 64-128-10 LIF graph (or ``--graph FILE``), the
same ``--samples`` on both backends; checks that the output spikes agree, prints
and writes ``{"lava_fixed_sps", "loihi_emu_sps", "ratio", ...}`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def random_graph(n_in: int = 64, n_hid: int = 128, n_out: int = 10, seed: int = 0):
    """Input -> Affine -> LIF -> Affine -> LIF -> Output, seeded; one tau per layer (one Lava process each)."""
    import nir

    rng = np.random.default_rng(seed)

    def lif(n, tau):
        return nir.LIF(
            tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n)
        )

    nodes = {
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Affine(weight=rng.normal(0.5, 1.0, (n_hid, n_in)) * 4 / np.sqrt(n_in), bias=np.zeros(n_hid)),
        "lif1": lif(n_hid, 5e-3),
        "fc2": nir.Affine(weight=rng.normal(0.2, 1.0, (n_out, n_hid)) * 4 / np.sqrt(n_hid), bias=np.zeros(n_out)),
        "lif2": lif(n_out, 1e-2),
        "out": nir.Output(output_type={"output": np.array([n_out])}),
    }
    return nir.NIRGraph(
        nodes=nodes, edges=[("in", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "out")]
    )


def bench(graph, x: np.ndarray, dt: float, device: str | None) -> dict:
    from snndeploy.backends import get_backend

    res = {}
    for name, kw in (
        ("loihi-emu", {"device": device, "record_states": False}),
        ("lava-fixed", {"record_states": False}),
    ):
        start = time.perf_counter()
        r = get_backend(name, **kw).run(graph, x, dt)
        res[name] = (time.perf_counter() - start, r)
    emu, lava = res["loihi-emu"][1], res["lava-fixed"][1]
    out = lava.outputs.keys() & emu.outputs.keys()
    n = x.shape[0]
    return {
        "samples": n,
        "steps": int(x.shape[1]),
        "device": emu.info["device"],
        "loihi_emu_s": res["loihi-emu"][0],
        "lava_fixed_s": res["lava-fixed"][0],
        "loihi_emu_sps": n / res["loihi-emu"][0],
        "lava_fixed_sps": n / res["lava-fixed"][0],
        "ratio": res["lava-fixed"][0] / res["loihi-emu"][0],
        "outputs_equal": all(np.array_equal(lava.outputs[k], emu.outputs[k]) for k in out),
        "output_spikes": int(emu.outputs["out"].sum()) if "out" in emu.outputs else None,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph", help="NIR file (default: random 64-128-10 LIF graph)")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rate", type=float, default=0.2, help="Poisson spike probability per step and input")
    ap.add_argument("--dt", type=float, default=1e-3)
    ap.add_argument("--device", default=None, help="loihi-emu device (default: cuda if available)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads for loihi-emu (1 avoids oversubscription on small, busy machines)",
    )
    ap.add_argument("--out", default="bench_fixed.json")
    a = ap.parse_args(argv)
    if a.torch_threads:
        import torch

        torch.set_num_threads(a.torch_threads)
    if a.graph:
        from snndeploy.ir.graph import input_spec, load_graph

        graph = load_graph(a.graph)
        shape = input_spec(graph).shape
    else:
        graph, shape = random_graph(seed=a.seed), (64,)
    x = (np.random.default_rng(a.seed).random((a.samples, a.steps) + tuple(shape)) < a.rate).astype(np.float64)
    result = bench(graph, x, a.dt, a.device)
    result.update(
        {"graph": a.graph or "random 64-128-10", "rate": a.rate, "dt": a.dt, "torch_threads": a.torch_threads}
    )
    Path(a.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if result["outputs_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
