"""``lava-float``: Lava's CPU simulator with the ``floating_pt`` process models.

Lowers the graph with :mod:`snndeploy.lower.plan` (derivation there and in docs/semantics.md),
runs it with :mod:`snndeploy.runtime.lava` and converts Lava's shifted voltages back to NIR
units (``v = v_lava + v_offset``).
"""

from __future__ import annotations

import time

import numpy as np

from ..ir import graph as G
from ..ir.analysed import as_analysed
from ..lower.plan import FLOAT_SUPPORTED, REFUSED_WHY, LavaPlan, build_plan
from ..runtime.lava import LavaFactories, run_plan
from .base import RunResult

#: Dense num_message_bits for graded (non-binary) input values
GRADED_MESSAGE_BITS = 24
#: a weight matrix this large and at most this dense goes to Lava's ``Sparse`` (same one-step delay)
SPARSE_MIN_SIZE = 100_000
SPARSE_MAX_DENSITY = 0.1
HOW = (
    "Lava Loihi2SimCfg(select_tag='floating_pt'): PopLIF (LIFReset with per-neuron du, dv, vth), one process "
    "per population + Dense (Sparse for large sparse composed chains) + "
    "RingBuffer sources, memmap recorders; records shifted back by the Dense depth"
)


def _neuron(nl, group, interval, offset, mute):
    from ..runtime.lavaprocs.neurons import PopLIF

    i = group.index
    return PopLIF(
        shape=(len(i),),
        du=nl.du[i],
        dv=nl.dv[i],
        vth=nl.vth[i],
        bias_mant=nl.bias[i],
        reset_interval=interval,
        reset_offset=offset,
        mute_offset=mute,
        name=f"{nl.node}",
    )


def _synapse(conn, weight, graded):
    from lava.proc.dense.process import Dense

    bits = GRADED_MESSAGE_BITS if graded else 0
    if weight.size >= SPARSE_MIN_SIZE and np.count_nonzero(weight) <= SPARSE_MAX_DENSITY * weight.size:
        from lava.proc.sparse.process import Sparse
        from scipy.sparse import csr_matrix

        return Sparse(weights=csr_matrix(weight), num_message_bits=bits)
    return Dense(weights=weight, num_message_bits=bits)


FLOAT_FACTORIES = LavaFactories(
    tag="floating_pt",
    neuron=_neuron,
    synapse=_synapse,
    source_data=lambda d: d,
    record_dtype=np.float64,
    state_vars=("u", "v"),
)


class LavaFloatBackend:
    name = "lava-float"
    supports = FLOAT_SUPPORTED
    refused_why = REFUSED_WHY

    def __init__(self, record_states: bool = False):
        self.record_states = record_states

    def plan(self, graph, dt: float) -> LavaPlan:
        return build_plan(graph, dt, self.name, supported=self.supports, drives=True)

    def check(self, graph, dt: float) -> None:
        self.plan(graph, dt)

    def check_input(self, x) -> None:
        """Any finite numbers run here (checked with the graph's input shape in ``run``)."""

    def run(self, graph, spikes, dt, progress=None) -> RunResult:
        ag = as_analysed(graph)
        x = G.check_input(ag.graph, spikes)
        plan = self.plan(ag, dt)
        start = time.perf_counter()
        outputs, states, info = run_plan(
            plan, x, FLOAT_FACTORIES, record_states=self.record_states, progress=progress, name=self.name
        )
        result = _node_records(plan, x, outputs, states)
        info.update({"precision": "float64 (Lava floating_pt)", "total_s": time.perf_counter() - start, "how": HOW})
        return RunResult(self.name, result, states, info)


def _node_records(plan: LavaPlan, x, outputs, states):
    """NIR-node outputs (B, T, *shape) from the runtime's flat records; voltages shifted back to NIR
    units in ``states`` (in place: the runtime's dict is this run's own)."""
    top = plan.topology
    B, T = x.shape[:2]
    result = {top.input_node: x}
    for node, nl in plan.neurons.items():
        if node in outputs:
            result[node] = outputs[node].reshape((B, T) + nl.shape)
        if node in states:
            states[node] = {
                k: (v + (nl.v_offset if k == "v" else 0)).reshape((B, T) + nl.shape) for k, v in states[node].items()
            }
    if top.output_from in plan.neurons:
        nl = plan.neurons[top.output_from]
        result[top.output_node] = result[nl.node] if nl.spiking else states[nl.node]["v"]
        if not nl.spiking:
            result[nl.node] = states[nl.node]["v"]
    else:
        out = outputs[top.output_node] + plan.output_bias
        result[top.output_node] = out.reshape((B, T) + top.output_shape)
    return result
