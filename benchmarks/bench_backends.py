"""Reading Lava's records back: our memmap recorders vs Lava's sink RingBuffer + ``Var.get()``.

Same network (64-128-10 LIF, random weights), same Poisson input, same Lava steps; the baseline
records spikes with ``lava.proc.io.sink.RingBuffer`` and reads them with ``Var.get()`` (which ships
one element per message), ours with ``snndeploy.lavaprocs.MemmapRecorder``. Both records are
checked equal. Writes JSON with run and read-back seconds and the ratios (baseline / ours).
Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(rng, steps, n_in=64, n_hid=128, n_out=10):
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    src = Source(data=(rng.random((n_in, steps)) < 0.2).astype(float))
    d1 = Dense(weights=rng.normal(0, 0.3, (n_hid, n_in)))
    l1 = LIF(shape=(n_hid,), du=1.0, dv=0.1, vth=1.0)
    d2 = Dense(weights=rng.normal(0, 0.3, (n_out, n_hid)))
    l2 = LIF(shape=(n_out,), du=1.0, dv=0.1, vth=1.0)
    src.s_out.connect(d1.s_in)
    d1.a_out.connect(l1.a_in)
    l1.s_out.connect(d2.s_in)
    d2.a_out.connect(l2.a_in)
    return src, [l1, l2]


def run(kind: str, steps: int, seed: int, tmp: Path):
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink

    from snndeploy.runtime.lavaprocs.recorders import MemmapRecorder

    src, lifs = build(np.random.default_rng(seed), steps)
    sinks = []
    for i, lif in enumerate(lifs):
        n = lif.s_out.shape[0]
        if kind == "baseline":
            sink = Sink(shape=(n,), buffer=steps)
        else:
            path = tmp / f"{kind}-{i}.npy"
            np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(steps, n)).flush()
            sink = MemmapRecorder(shape=(n,), path=str(path))
            sink.path = path
        lif.s_out.connect(sink.a_in)
        sinks.append(sink)
    t0 = time.perf_counter()
    try:
        src.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
        t1 = time.perf_counter()
        if kind == "baseline":
            records = [s.data.get().T for s in sinks]
        else:
            records = [np.load(s.path) for s in sinks]
        t2 = time.perf_counter()
    finally:
        src.stop()
    return {"run_s": t1 - t0, "readback_s": t2 - t1, "total_s": t2 - t0}, records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--out", default="benchmarks/results/backends.json")
    args = ap.parse_args(argv)
    from snndeploy.runtime.lava import import_lava

    import_lava()
    with tempfile.TemporaryDirectory() as tmp:
        base, rec_b = run("baseline", args.steps, 0, Path(tmp))
        ours, rec_o = run("memmap", args.steps, 0, Path(tmp))
    for a, b in zip(rec_b, rec_o):
        if not np.array_equal(a, b):
            raise SystemExit("records differ between the two read-back methods")
    elements = sum(r.size for r in rec_o)
    out = {
        "workload": f"64-128-10 LIF network, {args.steps} Lava steps, {elements} recorded values",
        "machine": platform.processor() or platform.machine(),
        "baseline (sink RingBuffer + Var.get)": base,
        "ours (memmap recorder)": ours,
        "readback_ratio": base["readback_s"] / max(ours["readback_s"], 1e-9),
        "total_ratio": base["total_s"] / ours["total_s"],
        "var_get_us_per_element": 1e6 * base["readback_s"] / elements,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
