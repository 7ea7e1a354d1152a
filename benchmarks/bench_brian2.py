"""Wall time of the ``brian2`` backend against ``norse`` and ``lava-float`` on the same graphs and inputs.

Workloads: the NIR paper's single LIF (1000 steps), its recurrent Braille graph (CubaLIF, a
back edge), a 64-128-10 LIF MLP with a batch, and (``--cnn``) the paper's Sinabs CNN. Every
backend first runs a tiny warm-up (imports, Lava's first compile, Brian2's first code
generation), then each workload once per backend (``--repeat`` takes the fastest of several);
brian2's records are checked equal to norse's (spike agreement 1.0). Writes JSON with the
seconds and the ratios (brian2 / norse, brian2 / lava-float). Not a test: timings depend on
the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PAPER = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "nir-paper"
BACKENDS = ("norse", "brian2", "lava-float")


def _bernoulli(seed, shape, p):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.float64)


def _mlp(seed=0, sizes=(64, 128, 10)):
    import nir

    rng = np.random.default_rng(seed)
    nodes = {"in": nir.Input(input_type={"input": np.array([sizes[0]])})}
    edges, prev = [], "in"
    for k in range(len(sizes) - 1):
        n = sizes[k + 1]
        nodes[f"fc{k}"] = nir.Affine(weight=rng.normal(0.0, 0.15, (n, sizes[k])), bias=np.zeros(n))
        nodes[f"lif{k}"] = nir.LIF(
            tau=np.full(n, 1e-2), r=np.full(n, 10.0), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n)
        )
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"lif{k}")]
        prev = f"lif{k}"
    nodes["out"] = nir.Output(output_type={"output": np.array([sizes[-1]])})
    edges.append((prev, "out"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def workloads(cnn: bool):
    from snndeploy.ir import graph as G

    lif_x = np.loadtxt(PAPER / "lif_exact.csv", delimiter=",")[:, 0].reshape(1, -1, 1)
    braille, conv = G.open_graph(PAPER / "braille_noDelay_bias_zero.nir", exporter="snntorch")
    out = [
        ("lif_norse.nir, 1 neuron, B=1, T=1000", G.load_graph(PAPER / "lif_norse.nir"), lif_x, 1e-4),
        (
            "braille_noDelay_bias_zero.nir (recurrent CubaLIF), B=8, T=256",
            braille,
            _bernoulli(1, (8, 256, 12), 0.3),
            conv.dt,
        ),
        ("64-128-10 LIF MLP, B=16, T=200", _mlp(), _bernoulli(2, (16, 200, 64), 0.2), 1e-3),
    ]
    if cnn:
        g, conv = G.open_graph(PAPER / "cnn_sinabs.nir", exporter="sinabs")
        out.append(
            ("cnn_sinabs.nir (2x34x34 -> 5 IF layers), B=4, T=20", g, _bernoulli(3, (4, 20, 2, 34, 34), 0.15), conv.dt)
        )
    return out


def timed(name: str, ag, x, dt, repeat: int):
    """Fastest of ``repeat`` runs, each by a fresh backend (brian2 composes its chains once per instance)."""
    from snndeploy.backends import get_backend

    best, result = float("inf"), None
    for _ in range(repeat):
        backend = get_backend(name)
        t0 = time.perf_counter()
        result = backend.run(ag, x, dt)
        best = min(best, time.perf_counter() - t0)
    return best, result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--cnn", action="store_true", help="also the Sinabs CNN (1.1 M composed synapses per sample)")
    ap.add_argument("--no-lava", action="store_true", help="skip lava-float (no Lava installed)")
    ap.add_argument("--out", default="benchmarks/results/bench_brian2.json")
    args = ap.parse_args(argv)
    import brian2

    from snndeploy.backends import get_backend
    from snndeploy.ir.analysed import analyse

    names = [b for b in BACKENDS if not (args.no_lava and b == "lava-float")]
    warm = analyse(_mlp(1, (4, 3, 2)))
    for n in names:  # imports and first compilation out of the timings
        get_backend(n).run(warm, _bernoulli(0, (1, 5, 4), 0.5), 1e-3)
    rows = []
    for desc, graph, x, dt in workloads(args.cnn):
        ag = analyse(graph)
        secs, results = {}, {}
        for n in names:
            secs[n], results[n] = timed(n, ag, x, dt, args.repeat)
        ref, b2 = results["norse"], results["brian2"]
        agreement = min(float(np.mean(ref.outputs[n] == b2.outputs[n])) for n in ag.spiking_nodes)
        dv = max(float(np.max(np.abs(ref.states[n]["v"] - b2.states[n]["v"]))) for n in ag.neurons)
        if agreement != 1.0:
            raise SystemExit(f"{desc}: brian2 differs from norse (spike agreement {agreement})")
        row = {
            "workload": desc,
            "seconds": secs,
            "brian2_over_norse": secs["brian2"] / secs["norse"],
            "norse_brian2_spike_agreement": agreement,
            "norse_brian2_max_abs_v_diff": dv,
            "brian2_synapses_per_sample": b2.info["synapses_per_sample"],
            "brian2_samples_per_network": b2.info["samples_per_network"],
            "spikes": int(sum(ref.outputs[n].sum() for n in ag.spiking_nodes)),
        }
        if "lava-float" in secs:
            row["brian2_over_lava_float"] = secs["brian2"] / secs["lava-float"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {
        "what": (
            "wall seconds of backend.run by a fresh backend (brian2: chain composition, network build, Brian2 "
            "code generation and run; records on the NIR timeline included), fastest of `repeat`, after a "
            "warm-up run per backend"
        ),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "brian2": brian2.__version__,
        "brian2_codegen": "numpy (runtime)",
        "repeat": args.repeat,
        "workloads": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
