"""Our Norse -> NIR exporter (``norse.torch.to_nir`` 1.1.0 is not used; see README).

A dict from module type to a small mapper function. Every mapper writes full
per-neuron float32 numpy arrays, time constants in seconds, and keeps biases.
The graph carries ``dt`` (seconds) and our config (encoding, readout) in its
metadata so that ``compare`` can encode inputs identically.
"""

from __future__ import annotations

import json
from typing import Callable, Dict, Tuple

import numpy as np
import torch
from torch import nn

from .errors import GraphError
from .graph import META_CONFIG, META_DT


def _np(t, shape=None) -> np.ndarray:
    a = torch.as_tensor(t).detach().cpu().to(torch.float64).numpy().astype(np.float32)
    return np.broadcast_to(a, shape).copy() if shape is not None else a.copy()


def export_linear(name: str, m: nn.Linear, dt: float, n: int):
    import nir

    w = _np(m.weight)
    if m.bias is None:
        return nir.Linear(weight=w)
    return nir.Affine(weight=w, bias=_np(m.bias))


def export_lif_box(name: str, m, dt: float, n: int):
    """Norse LIFBoxCell: tau = 1/tau_mem_inv seconds (not multiplied by dt), r = 1."""
    import nir

    p = m.p
    if getattr(p, "reset_method", None) is not None and p.reset_method.__name__ != "reset_value":
        raise GraphError(f"module '{name}': reset method {p.reset_method.__name__} has no NIR LIF equivalent")
    if abs(float(m.dt) - dt) > 1e-12:
        raise GraphError(f"module '{name}' uses dt={m.dt}, the model uses dt={dt}; NIR graphs have one dt")
    shape = (n,)
    return nir.LIF(tau=1.0 / _np(p.tau_mem_inv, shape), r=np.ones(shape, np.float32),
                   v_leak=_np(p.v_leak, shape), v_threshold=_np(p.v_th, shape), v_reset=_np(p.v_reset, shape))


def _exporters() -> Dict[type, Callable]:
    from norse.torch import LIFBoxCell

    return {nn.Linear: export_linear, LIFBoxCell: export_lif_box}


def to_nir(model: nn.Module, in_shape, dt: float, config: dict | None = None):
    """Export a model with an ordered ``layers`` ModuleDict (see networks.py) to a NIRGraph."""
    import nir

    exporters = _exporters()
    in_shape = (int(in_shape),) if np.isscalar(in_shape) else tuple(int(d) for d in in_shape)
    nodes = {"input": nir.Input(input_type={"input": np.array(in_shape)})}
    edges = []
    prev, width = "input", int(np.prod(in_shape))
    for name, m in model.layers.items():
        fn = exporters.get(type(m))
        if fn is None:
            raise GraphError(f"module '{name}' of type {type(m).__name__} has no NIR exporter; "
                             f"supported: {', '.join(t.__name__ for t in exporters)}")
        if isinstance(m, nn.Linear):
            if m.in_features != width:
                raise GraphError(f"module '{name}' expects {m.in_features} inputs, previous layer gives {width}")
            width = m.out_features
        nodes[name] = fn(name, m, dt, width)
        edges.append((prev, name))
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.array([width])})
    edges.append((prev, "output"))
    metadata = {META_DT: float(dt)}
    if config is not None:
        metadata[META_CONFIG] = json.dumps(config, sort_keys=True)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)


def nirtorch_node_map(dt: float) -> Dict[type, Callable]:
    """An explicit nirtorch node map (nirtorch's default Affine drops the bias)."""
    import nir
    from norse.torch import LIFBoxCell, LIFBoxParameters

    def affine(node):
        lin = nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=True)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(node.weight))
            lin.bias.copy_(torch.as_tensor(node.bias))
        return lin

    def lif(node):
        if not np.all(np.asarray(node.r) == 1):
            raise GraphError("nirtorch map: LIF with r != 1 has no LIFBoxCell equivalent")
        p = LIFBoxParameters(tau_mem_inv=torch.as_tensor(1.0 / node.tau), v_leak=torch.as_tensor(node.v_leak),
                             v_th=torch.as_tensor(node.v_threshold), v_reset=torch.as_tensor(node.v_reset))
        return LIFBoxCell(p, dt=dt)

    return {nir.Affine: affine, nir.LIF: lif}
