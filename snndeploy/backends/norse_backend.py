"""``norse``: the reference backend, a torch interpreter over the NIR graph.

Walks the nodes in topological order once per time step (torch.fx-Interpreter
style), keeps every node's output in an environment and records it, and runs
neurons with Norse's own functional step functions (:mod:`snndeploy.dynamics`)
and linear nodes with one forward function per type (:mod:`snndeploy.linear`).
Several edges into one node are summed. Recurrent cycles are cut at their back
edges (:func:`snndeploy.graph.recurrent_order`): a back edge reads its source's
value from the previous step's environment (zeros at step 0), every other edge
from the current step's.
Batched over samples; CPU or CUDA; float64 by default so that it can serve as
the reference for Lava's float64 simulation.
"""

from __future__ import annotations

import time
from typing import Dict

import numpy as np

from .. import graph as G
from ..dynamics import STEPS, delay_step, neuron_tensors, voltage
from ..errors import InputError
from ..linear import FORWARDS
from ..nodes import DelayParams, NeuronParams, params_of
from .base import RunResult, check_supported

SUPPORTED = frozenset({"Input", "Output", "Affine", "Linear", "Scale", "Conv2d", "SumPool2d", "AvgPool2d",
                       "Flatten", "LIF", "IF", "LI", "CubaLIF", "CubaLI", "I", "Threshold", "Delay"})


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but torch sees no CUDA device")
    if device not in ("cpu", "cuda"):
        raise InputError(f"device must be auto, cpu or cuda, got '{device}'")
    return device


class NorseBackend:
    name = "norse"
    supports = SUPPORTED

    def __init__(self, device: str = "cpu", precision: str = "float64"):
        if precision not in ("float32", "float64"):
            raise InputError(f"norse precision must be float32 or float64, got '{precision}'")
        self.device = device
        self.precision = precision

    def run(self, graph, spikes: np.ndarray, dt: float, progress=None) -> RunResult:
        import torch

        check_supported(graph, self.name, self.supports)
        x_np = G.check_input(graph, spikes)
        device = resolve_device(self.device)
        dtype = torch.float64 if self.precision == "float64" else torch.float32
        schedule = G.recurrent_order(graph)
        order, back = schedule.order, schedule.back_edges
        pred = G.predecessors(graph)
        params = {n: params_of(n, graph.nodes[n]) for n in order if type(graph.nodes[n]).__name__ not in ("Input", "Output")}
        tensors = {n: neuron_tensors(p, dtype, device, dt) for n, p in params.items() if isinstance(p, NeuronParams)}
        delays = {n: torch.as_tensor(p.steps(dt).reshape(-1), device=device)
                  for n, p in params.items() if isinstance(p, DelayParams)}
        start = time.perf_counter()
        x = torch.as_tensor(x_np, dtype=dtype, device=device)
        B, T = x.shape[:2]
        v: Dict[str, object] = {}
        prev: Dict[str, object] = {}  # the previous step's environment, read by back edges
        rec = {n: [] for n in order}
        vrec = {n: [] for n, p in params.items() if isinstance(p, NeuronParams)}
        with torch.no_grad():
            for t in range(T):
                env = {}
                for n in order:
                    kind = type(graph.nodes[n]).__name__
                    if kind == "Input":
                        env[n] = x[:, t]
                        rec[n].append(env[n])
                        continue
                    inp = _sum_inputs([_previous(prev, q, graph, B, x) if (q, n) in back else env[q]
                                       for q in pred[n]], n)
                    p = params.get(n)
                    if kind == "Output":
                        out = inp
                    elif isinstance(p, NeuronParams):
                        out, v[n] = STEPS[p.kind](inp.reshape((B,) + p.shape), v.get(n), tensors[n], dt)
                        vrec[n].append(voltage(v[n]))
                    elif isinstance(p, DelayParams):
                        out, v[n] = delay_step(inp.reshape(B, -1), v.get(n), delays[n])
                        out = out.reshape((B,) + p.shape)
                    else:
                        out = FORWARDS[kind](inp, p)
                    env[n] = out
                    rec[n].append(out)
                prev = env
                if progress is not None:
                    progress("norse", (t + 1) / T)
        outputs = {n: torch.stack(r, 1).cpu().numpy() for n, r in rec.items()}
        states = {n: {"v": torch.stack(r, 1).cpu().numpy()} for n, r in vrec.items()}
        info = {"precision": self.precision, "device": device, "wall_s": time.perf_counter() - start,
                "how": ("Norse functional step functions (lif_box, iaf, li_box, lif, leaky_integrator), torch steps for "
                        "Integrator/Threshold, a ring buffer per Delay, and torch "
                        "linear maps (snndeploy.linear), interpreted over the NIR graph")}
        return RunResult(self.name, outputs, states, info)


def _previous(prev, node: str, graph, batch: int, like):
    """What a back edge from ``node`` carries: its previous-step output, zeros at step 0."""
    if node in prev:
        return prev[node]
    import torch

    return torch.zeros((batch,) + G.node_shape(graph.nodes[node]), dtype=like.dtype, device=like.device)


def _sum_inputs(values, node: str):
    if not values:
        raise InputError(f"node '{node}' has no incoming edge")
    total = values[0]
    for extra in values[1:]:
        if extra.shape != total.shape and extra.reshape(-1).shape == total.reshape(-1).shape:
            extra = extra.reshape(total.shape)
        if extra.shape != total.shape:
            raise InputError(f"node '{node}': incoming edges carry shapes {tuple(total.shape)} and {tuple(extra.shape)}")
        total = total + extra
    return total
