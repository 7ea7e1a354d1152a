"""``norse``: the reference backend, a torch interpreter over the analysed NIR graph.

Walks the nodes in evaluation order once per time step (torch.fx-Interpreter style), keeps
every node's output in an environment and records it, and runs every node with its reference
definition (:mod:`snndeploy.reference`): neurons with Norse's own functional step functions,
instantaneous maps with their forward functions, Delay with its ring buffer. It runs every
type the reference defines (:data:`~snndeploy.reference.DEFINED_TYPES`). Several edges into
one node are summed. Recurrent cycles are cut at their back edges: a back edge reads its
source's value from the previous step's environment (at step 0: the source's response to
silent neurons, i.e. its chain's bias), every other edge from the current step's.
An error inside a node's computation is re-raised as a
:class:`~snndeploy.errors.BackendError` naming the node, its type and the step.
Batched over samples; CPU or CUDA; float64 by default so that it can serve as the reference
for Lava's float64 simulation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from ..errors import BackendError, InputError, SnnDeployError
from ..ir import graph as G
from ..ir.analysed import AnalysedGraph, as_analysed, check_supported
from ..reference import DEFINED_TYPES, NEURONS, DelayParams, NeuronParams, delay_step, forward, neuron_tensors, voltage
from ..util.device import resolve_device
from .base import RunResult

PRECISIONS = ("float32", "float64")
HOW = (
    "Norse functional step functions (lif_box, iaf, li_box, lif, leaky_integrator), torch steps for "
    "Integrator/Threshold, a ring buffer per Delay, and the reference linear maps (snndeploy.reference.maps), "
    "interpreted over the NIR graph"
)


@dataclass
class _Interpreter:
    """The state of one run: parameters as tensors, the previous step's environment, the records."""

    ag: AnalysedGraph
    dt: float
    tensors: Dict[str, dict]
    delays: Dict[str, object]
    batch: int
    state: Dict[str, object] = field(default_factory=dict)
    prev: Dict[str, object] = field(default_factory=dict)  # the previous step's environment, read by back edges
    rec: Dict[str, List[object]] = field(default_factory=dict)
    vrec: Dict[str, List[object]] = field(default_factory=dict)

    def step(self, x_t) -> None:
        """One time step through every node in order."""
        env = {}
        for n in self.ag.order:
            try:
                env[n] = self.node_step(n, env, x_t)
            except SnnDeployError:
                raise
            except Exception as exc:  # a torch error: name the node, not only the tensor shapes
                raise BackendError(
                    f"norse: node '{n}' ({self.ag.type_name(n)}) failed at step "
                    f"{len(self.rec[self.ag.input_node])}: {type(exc).__name__}: {exc}"
                ) from exc
        for n, value in env.items():
            self.rec[n].append(value)
        self.prev = env

    def node_step(self, n: str, env: dict, x_t):
        if n == self.ag.input_node:
            return x_t
        inp = _sum_inputs(
            [self._previous(q, x_t) if self.ag.is_back_edge(q, n) else env[q] for q in self.ag.preds(n)], n
        )
        p = self.ag.record(n)
        if n == self.ag.output_node:
            return inp
        if isinstance(p, NeuronParams):
            out, self.state[n] = NEURONS[p.kind].step(
                inp.reshape((self.batch,) + p.shape), self.state.get(n), self.tensors[n], self.dt
            )
            self.vrec[n].append(voltage(self.state[n]))
            return out
        if isinstance(p, DelayParams):
            out, self.state[n] = delay_step(inp.reshape(self.batch, -1), self.state.get(n), self.delays[n])
            return out.reshape((self.batch,) + p.shape)
        return forward(p, inp)

    def _previous(self, node: str, like):
        """What a back edge from ``node`` carries: its previous-step output; at step 0 the response of
        ``node`` to silent stateful sources (its chain's bias; docs/conventions.md)."""
        if node in self.prev:
            return self.prev[node]
        return self._silent(node, like, set())

    def _silent(self, node: str, like, seen: set):
        """``node``'s output when every neuron, Delay and the Input before it outputs zeros: only the
        instantaneous maps between them act (their biases)."""
        p = self.ag.record(node)
        zeros = like.new_zeros((self.batch,) + self.ag.shape(node))
        if node in seen or p is None or isinstance(p, (NeuronParams, DelayParams)):
            return zeros
        seen = seen | {node}
        preds = self.ag.preds(node)
        inp = _sum_inputs([self._silent(q, like, seen) for q in preds], node) if preds else zeros
        return forward(p, inp)


class NorseBackend:
    name = "norse"
    supports = DEFINED_TYPES
    refused_why: dict = {}  # what the reference does not define is refused with NOT_DEFINED_WHY

    def __init__(self, device: str = "cpu", precision: str = "float64"):
        if precision not in PRECISIONS:
            raise InputError(f"norse precision must be float32 or float64, got '{precision}'")
        self.device = device
        self.precision = precision

    def check(self, graph, dt: float) -> None:
        """Refuse, before anything runs, what this backend cannot run (named)."""
        check_supported(as_analysed(graph), self.name, self.supports)

    def check_input(self, x) -> None:
        """Any finite numbers run here (checked with the graph's input shape in ``run``)."""

    def run(self, graph, spikes: np.ndarray, dt: float, progress=None) -> RunResult:
        import torch

        ag = as_analysed(graph)
        check_supported(ag, self.name, self.supports)
        x_np = G.check_input(ag.graph, spikes)
        device = resolve_device(self.device)
        dtype = torch.float64 if self.precision == "float64" else torch.float32
        records = ag.records
        tensors = {n: neuron_tensors(p, dtype, device, dt) for n, p in records.items() if isinstance(p, NeuronParams)}
        delays = {
            n: torch.as_tensor(p.steps(dt).reshape(-1), device=device)
            for n, p in records.items()
            if isinstance(p, DelayParams)
        }
        start = time.perf_counter()
        x = torch.as_tensor(x_np, dtype=dtype, device=device)
        B, T = x.shape[:2]
        it = _Interpreter(ag, dt, tensors, delays, B, rec={n: [] for n in ag.order}, vrec={n: [] for n in tensors})
        with torch.no_grad():
            for t in range(T):
                it.step(x[:, t])
                if progress is not None:
                    progress(self.name, (t + 1) / T)
        outputs = {n: torch.stack(r, 1).cpu().numpy() for n, r in it.rec.items()}
        states = {n: {"v": torch.stack(r, 1).cpu().numpy()} for n, r in it.vrec.items()}
        info = {"precision": self.precision, "device": device, "wall_s": time.perf_counter() - start, "how": HOW}
        return RunResult(self.name, outputs, states, info)


def _sum_inputs(values, node: str):
    if not values:
        raise InputError(f"node '{node}' has no incoming edge")
    total = values[0]
    for extra in values[1:]:
        if extra.shape != total.shape and extra.reshape(-1).shape == total.reshape(-1).shape:
            extra = extra.reshape(total.shape)
        if extra.shape != total.shape:
            raise InputError(
                f"node '{node}': incoming edges carry shapes {tuple(total.shape)} and {tuple(extra.shape)}"
            )
        total = total + extra
    return total
