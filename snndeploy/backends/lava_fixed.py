"""``lava-fixed``: Lava's CPU simulator with the bit-accurate ``fixed_pt`` process models.

The graph is lowered with :mod:`.lava_plan`, quantized with
:mod:`snndeploy.quantize` (rules there and in docs/fixed_point.md), and run
with :mod:`.lava_runtime` as ``LIFReset`` (``PyLifResetModelBitAcc``) and
``Dense`` (``PyDenseModelBitAcc``) processes. Spikes come back as 0/1 per NIR
node on the NIR timeline; ``u`` and ``v`` stay in raw 24-bit Lava units
(``v_raw = scale * (v - v_reset)``, the scale per layer is in
``info["quantization"]``). Inputs must be binary spikes.
"""

from __future__ import annotations

import time
from typing import Dict

import numpy as np

from .. import graph as G
from ..errors import InputError
from ..quantize import FixedPlan, as_lava_plan, quantize_plan
from .base import RunResult
from .lava_plan import FIXED_SUPPORTED, build_plan
from .lava_runtime import LavaFactories, run_plan


def quantized_inputs(backend, graph, spikes, dt):
    """(FixedPlan, checked binary input) for a fixed-point backend: the shared front of ``run``."""
    x = G.check_input(graph, spikes)
    check_binary(x, backend.name)
    return quantize_plan(build_plan(graph, dt, backend.name, supported=backend.supports)), x


def check_binary(x: np.ndarray, backend: str) -> None:
    """Fixed-point Dense takes binary spikes only; refuse anything else, naming the first value."""
    bad = (x != 0) & (x != 1)
    if np.any(bad):
        i = np.unravel_index(int(np.argmax(bad)), x.shape)
        raise InputError(f"{backend}: input must be binary spikes (0/1); found {x[i]} at index {tuple(map(int, i))}")


def fixed_factories(fp: FixedPlan) -> LavaFactories:
    """LIFReset/Dense factories with the integer parameters of ``fp``."""
    weight_exp: Dict[tuple, int] = {(c.src, c.dst, c.via): c.weight_exp for c in fp.conns}

    def neuron(nl, group, interval, offset):
        from lava.proc.lif.process import LIFReset

        fn = fp.neurons[nl.node]
        du, dv, vth = (int(k) for k in group.key)
        return LIFReset(shape=(len(group.index),), du=du, dv=dv, vth=vth,
                        bias_mant=fn.bias_mant[group.index], bias_exp=fn.bias_exp[group.index],
                        reset_interval=interval, reset_offset=offset, name=nl.node)

    def conn_dense(conn, weight, graded):
        from lava.proc.dense.process import Dense

        return Dense(weights=weight.astype(np.int32), weight_exp=weight_exp[(conn.src, conn.dst, conn.via)],
                     num_message_bits=0)

    def unused(weight, graded):  # conn_dense is always used
        raise AssertionError("fixed_factories: dense without conn")

    return LavaFactories(tag="fixed_pt", neuron=neuron, dense=unused, conn_dense=conn_dense,
                         source_data=lambda d: d.astype(np.int32), state_vars=("u", "v"))


def assemble(fp: FixedPlan, x: np.ndarray, spikes: Dict[str, np.ndarray], states: Dict[str, Dict[str, np.ndarray]]):
    """NIR-node outputs (B, T, *shape) from flat per-population records; shared with loihi-emu."""
    plan = fp.base
    B, T = x.shape[:2]
    result = {plan.input_node: x}
    shaped = {n: {k: a.reshape((B, T) + fp.neurons[n].shape) for k, a in st.items()} for n, st in states.items()}
    for node, fn in fp.neurons.items():
        if node in spikes:
            result[node] = spikes[node].reshape((B, T) + fn.shape)
    out = fp.neurons[plan.output_from]
    result[plan.output_node] = result[out.node] if out.spiking else shaped[out.node]["v"]
    if not out.spiking:
        result[out.node] = shaped[out.node]["v"]
    return result, shaped


class LavaFixedBackend:
    name = "lava-fixed"
    supports = FIXED_SUPPORTED

    def __init__(self, record_states: bool = True):
        self.record_states = record_states

    def run(self, graph, spikes, dt, progress=None) -> RunResult:
        return self.run_fixed(*quantized_inputs(self, graph, spikes, dt), progress)

    def run_fixed(self, fp: FixedPlan, x: np.ndarray, progress=None) -> RunResult:
        """Run an already quantized plan (tests build edge-case plans directly)."""
        start = time.perf_counter()
        outputs, states, info = run_plan(as_lava_plan(fp), x, fixed_factories(fp), record_states=self.record_states,
                                         progress=progress, name=self.name)
        result, shaped = assemble(fp, x, {n: a.astype(np.int8) for n, a in outputs.items()},
                                  {n: {k: a.astype(np.int64) for k, a in st.items()} for n, st in states.items()})
        info.update({"precision": "Loihi fixed point (Lava fixed_pt, bit-accurate)", "units": "raw 24-bit state",
                     "total_s": time.perf_counter() - start, "quantization": fp.report_dict(),
                     "how": "Lava Loihi2SimCfg(select_tag='fixed_pt'): LIFReset + Dense + RingBuffer source, "
                            "memmap recorders; records shifted back by the Dense depth"})
        return RunResult(self.name, result, shaped, info)
