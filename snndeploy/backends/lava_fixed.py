"""``lava-fixed``: Lava's CPU simulator with the bit-accurate ``fixed_pt`` process models.

The graph is lowered and quantized with :mod:`snndeploy.lower.fixed` (rules there and in
docs/fixed_point.md), and run with :mod:`snndeploy.runtime.lava` as ``LIFReset``
(``PyLifResetModelBitAcc``) and ``Dense`` (``PyDenseModelBitAcc``) processes. Spikes come back
as 0/1 per NIR node on the NIR timeline; ``u`` and ``v`` stay in raw 24-bit Lava units
(``v_raw = scale * (v - v_reset)``, the scale per layer is in ``info["quantization"]``).
Inputs must be binary spikes.
"""

from __future__ import annotations

import time

import numpy as np

from ..ir import graph as G
from ..ir.analysed import as_analysed
from ..lower.fixed import FIXED_REFUSED_WHY, FIXED_SUPPORTED, FixedPlan, check_binary, fixed_plan_for, node_records
from ..runtime.lava import LavaFactories, run_plan
from .base import RAW_UNITS, RunResult

HOW = (
    "Lava Loihi2SimCfg(select_tag='fixed_pt'): PopLIF (LIFReset's bit-accurate arithmetic with per-neuron "
    "du, dv, vth), one process per population + Dense + RingBuffer source, memmap recorders; "
    "records shifted back by the Dense depth"
)


def _neuron(fn, group, interval, offset, mute):
    from ..runtime.lavaprocs.neurons import PopLIF

    i = group.index
    return PopLIF(
        shape=(len(i),),
        du=fn.du[i],
        dv=fn.dv[i],
        vth=fn.vth[i],
        bias_mant=fn.bias_mant[i],
        bias_exp=fn.bias_exp[i],
        reset_interval=interval,
        reset_offset=offset,
        mute_offset=mute,
        name=fn.node,
    )


def _synapse(conn, weight, graded):
    from lava.proc.dense.process import Dense

    return Dense(weights=weight.astype(np.int32), weight_exp=conn.weight_exp, num_message_bits=0)


FIXED_FACTORIES = LavaFactories(
    tag="fixed_pt",
    neuron=_neuron,
    synapse=_synapse,
    source_data=lambda d: d.astype(np.int32),
    record_dtype=np.int32,
    state_vars=("u", "v"),
)


class LavaFixedBackend:
    name = "lava-fixed"
    supports = FIXED_SUPPORTED
    refused_why = FIXED_REFUSED_WHY

    def __init__(self, record_states: bool = True):
        self.record_states = record_states

    def check(self, graph, dt: float) -> None:
        fixed_plan_for(graph, dt, self.name)

    def check_input(self, x) -> None:
        check_binary(x, self.name)

    def run(self, graph, spikes, dt, progress=None) -> RunResult:
        ag = as_analysed(graph)
        x = G.check_input(ag.graph, spikes)
        check_binary(x, self.name)
        return self.run_fixed(fixed_plan_for(ag, dt, self.name), x, progress)

    def run_fixed(self, fp: FixedPlan, x: np.ndarray, progress=None) -> RunResult:
        """Run an already quantized plan (tests build edge-case plans directly)."""
        start = time.perf_counter()
        outputs, states, info = run_plan(
            fp, x, FIXED_FACTORIES, record_states=self.record_states, progress=progress, name=self.name
        )
        result, shaped = node_records(
            fp,
            x,
            {n: a.astype(np.int8) for n, a in outputs.items()},
            {n: {k: a.astype(np.int64) for k, a in st.items()} for n, st in states.items()},
        )
        info.update(
            {
                "precision": "Loihi fixed point (Lava fixed_pt, bit-accurate)",
                "units": RAW_UNITS,
                "total_s": time.perf_counter() - start,
                "quantization": fp.report_dict(),
                "how": HOW,
            }
        )
        return RunResult(self.name, result, shaped, info)
