"""Our Norse -> NIR exporter (``norse.torch.to_nir`` 1.1.0 is not used; see README).

Models: this project's networks (an ordered ``layers`` ModuleDict), and a user's ``nn.Sequential``
or Norse ``SequentialState``, nested as deep as they like; the leaves become a chain of NIR nodes
named by their module path (``block.0``). ``Dropout`` and ``Identity`` are identities (eval mode).
A container with its own ``forward`` is not traced yet, and recurrent cells are not exported yet:
both are refused naming the module path, its type and what is supported.

A dict from module type to a small mapper function. Every mapper writes full
per-neuron float32 numpy arrays, time constants in seconds, and keeps biases.
The graph carries ``dt`` (seconds) and our config (encoding, readout) in its
metadata so that ``compare`` can encode inputs identically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import GraphError
from ..ir.exporters import META_DT, META_EXPORTER
from ..ir.graph import META_CONFIG


def _np(t, shape=None) -> np.ndarray:
    a = torch.as_tensor(t).detach().cpu().to(torch.float64).numpy().astype(np.float32)
    return np.broadcast_to(a, shape).copy() if shape is not None else a.copy()


def export_linear(name: str, m: nn.Linear, dt: float, shape):
    import nir

    w = _np(m.weight)
    if m.bias is None:
        return nir.Linear(weight=w)
    return nir.Affine(weight=w, bias=_np(m.bias))


def export_conv2d(name: str, m: nn.Conv2d, dt: float, shape):
    import nir

    if m.padding_mode != "zeros":
        raise GraphError(f"module '{name}': Conv2d padding_mode '{m.padding_mode}' has no NIR equivalent (zeros only)")
    bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
    padding = m.padding if isinstance(m.padding, str) else tuple(int(p) for p in m.padding)
    return nir.Conv2d(
        input_shape=tuple(int(d) for d in shape[1:]),
        weight=_np(m.weight),
        stride=tuple(int(v) for v in m.stride),
        padding=padding,
        dilation=tuple(int(v) for v in m.dilation),
        groups=int(m.groups),
        bias=bias,
    )


def _pair(v) -> np.ndarray:
    return np.array([v, v] if np.isscalar(v) else list(v), dtype=np.int64)


def export_avgpool2d(name: str, m: nn.AvgPool2d, dt: float, shape):
    import nir

    if m.ceil_mode or (not m.count_include_pad and np.any(_pair(m.padding))) or m.divisor_override:
        raise GraphError(
            f"module '{name}': AvgPool2d with ceil_mode/count_include_pad=False/divisor_override has no NIR equivalent"
        )
    return nir.AvgPool2d(
        kernel_size=_pair(m.kernel_size), stride=_pair(m.stride or m.kernel_size), padding=_pair(m.padding)
    )


def export_flatten(name: str, m: nn.Flatten, dt: float, shape):
    """NIR Flatten dims count without the batch axis (docs/conventions.md); torch's do count it."""
    import nir

    if m.start_dim != 1 or m.end_dim != -1:
        raise GraphError(f"module '{name}': only Flatten(start_dim=1, end_dim=-1) is exported")
    return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)


def export_lif_box(name: str, m, dt: float, shape):
    """Norse LIFBoxCell: tau = 1/tau_mem_inv seconds (not multiplied by dt), r = 1."""
    import nir

    p = m.p
    if getattr(p, "reset_method", None) is not None and p.reset_method.__name__ != "reset_value":
        raise GraphError(f"module '{name}': reset method {p.reset_method.__name__} has no NIR LIF equivalent")
    if abs(float(m.dt) - dt) > 1e-12:
        raise GraphError(f"module '{name}' uses dt={m.dt}, the model uses dt={dt}; NIR graphs have one dt")
    return nir.LIF(
        tau=1.0 / _np(p.tau_mem_inv, shape),
        r=np.ones(shape, np.float32),
        v_leak=_np(p.v_leak, shape),
        v_threshold=_np(p.v_th, shape),
        v_reset=_np(p.v_reset, shape),
    )


def export_li_box(name: str, m, dt: float, shape):
    """Norse LIBoxCell (leaky integrator, no current term): NIR LI with tau = 1/tau_mem_inv s, r = 1."""
    import nir

    if abs(float(m.dt) - dt) > 1e-12:
        raise GraphError(f"module '{name}' uses dt={m.dt}, the model uses dt={dt}; NIR graphs have one dt")
    p = m.p
    return nir.LI(tau=1.0 / _np(p.tau_mem_inv, shape), r=np.ones(shape, np.float32), v_leak=_np(p.v_leak, shape))


def export_lif_cell(name: str, m, dt: float, shape):
    """Norse LIFCell (current-based) -> NIR CubaLIF.

    Norse per step: ``i <- i + x``; ``v <- v + dt/tau_mem ((v_leak - v) + i)``; spike, reset;
    ``i <- i (1 - dt/tau_syn)``. NIR CubaLIF integrates ``tau_syn dI/dt = -I + w_in S``, one
    Euler step adds ``dt/tau_syn * w_in * S``: so ``w_in = tau_syn / dt`` (Norse 1.1.0's to_nir
    writes another value), r = 1, taus in seconds.
    """
    import nir

    p = m.p
    if float(m.dt) != dt:
        raise GraphError(f"module '{name}' uses dt={m.dt}, the model uses dt={dt}; NIR graphs have one dt")
    tau_syn = 1.0 / _np(p.tau_syn_inv, shape)
    return nir.CubaLIF(
        tau_syn=tau_syn,
        tau_mem=1.0 / _np(p.tau_mem_inv, shape),
        r=np.ones(shape, np.float32),
        v_leak=_np(p.v_leak, shape),
        v_threshold=_np(p.v_th, shape),
        v_reset=_np(p.v_reset, shape),
        w_in=(tau_syn / np.float32(dt)).astype(np.float32),
    )


def _check_dt(name: str, m, dt: float) -> None:
    if abs(float(m.dt) - dt) > 1e-12:
        raise GraphError(f"module '{name}' uses dt={m.dt}, the model uses dt={dt}; NIR graphs have one dt")


def export_iaf_cell(name: str, m, dt: float, shape):
    """Norse IAFCell: ``v <- v + x`` per step, spike, reset to v_reset; initial v = v_reset -> NIR IF
    with r = 1 (this project's per-step IF, docs/semantics.md)."""
    import nir

    _check_dt(name, m, dt)
    p = m.p
    return nir.IF(r=np.ones(shape, np.float32), v_threshold=_np(p.v_th, shape), v_reset=_np(p.v_reset, shape))


def export_li_cell(name: str, m, dt: float, shape):
    """Norse LICell (current-based leaky integrator) -> NIR CubaLI, ``w_in = tau_syn / dt`` as LIFCell."""
    import nir

    _check_dt(name, m, dt)
    p = m.p
    tau_syn = 1.0 / _np(p.tau_syn_inv, shape)
    return nir.CubaLI(
        tau_syn=tau_syn,
        tau_mem=1.0 / _np(p.tau_mem_inv, shape),
        r=np.ones(shape, np.float32),
        v_leak=_np(p.v_leak, shape),
        w_in=(tau_syn / np.float32(dt)).astype(np.float32),
    )


@dataclass(frozen=True)
class Subgraph:
    """What an exporter returns for a module that is several NIR nodes: nodes named by suffix (the
    graph names them ``<module path>.<suffix>``), edges between them, where the input enters and
    where the output leaves."""

    nodes: Dict[str, object]
    edges: List[Tuple[str, str]]
    entry: str
    exit: str


def export_lif_recurrent_cell(name: str, m, dt: float, shape):
    """Norse LIFRecurrentCell -> Linear (input_weights) -> CubaLIF <-> Linear (recurrent_weights).

    Norse's ``lif_step``: ``i_jump = i + W_in x(t) + W_rec z(t-1)``; ``v`` integrates ``i_jump``
    (this step's input, as LIFCell); then ``i`` decays. That is NIR's CubaLIF (``w_in = tau_syn/dt``,
    as LIFCell) fed by ``W_in x`` and by a back edge ``lif -> w_rec -> lif``, which carries the
    previous step's spikes (none at step 0: ``w_rec`` has no bias). The recurrent weights are
    exported as the cell holds them (Norse zeroes the diagonal without autapses). Initial state
    ``v = v_leak``, ``i = 0``, ``z = 0`` as in Norse.
    """
    import nir

    _check_dt(name, m, dt)
    hidden = (int(m.hidden_size),)
    lif = export_lif_cell(name, m, dt, hidden)
    w_in, w_rec = _np(m.input_weights), _np(m.recurrent_weights)
    if w_in.shape != (hidden[0], int(np.prod(shape))):
        raise GraphError(f"module '{name}': input_weights {w_in.shape} do not take input of shape {shape}")
    nodes = {"w_in": nir.Linear(weight=w_in), "lif": lif, "w_rec": nir.Linear(weight=w_rec)}
    for node, i, o in ((nodes["w_in"], shape, hidden), (lif, hidden, hidden), (nodes["w_rec"], hidden, hidden)):
        node.input_type = {"input": np.array(i)}
        node.output_type = {"output": np.array(o)}
    return Subgraph(nodes, [("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif")], "w_in", "lif")


def _neuron_exporters() -> Dict[type, Callable]:
    from norse.torch import IAFCell, LIBoxCell, LICell, LIFBoxCell, LIFCell

    return {
        LIFBoxCell: export_lif_box,
        LIFCell: export_lif_cell,
        LIBoxCell: export_li_box,
        LICell: export_li_cell,
        IAFCell: export_iaf_cell,
    }


#: modules that are the identity in eval mode: no node
IDENTITIES = (nn.Dropout, nn.Identity)


def leaves(model: nn.Module, prefix: str = "") -> List[Tuple[str, nn.Module]]:
    """The modules a model applies in order, named by path: our networks' ``layers``, or the leaves of
    nested ``nn.Sequential`` / ``SequentialState`` containers; identities dropped."""
    layers = getattr(model, "layers", None)
    if isinstance(layers, nn.ModuleDict) and not isinstance(model, nn.Sequential):
        return [(f"{prefix}{n}", m) for n, m in layers.items() if not isinstance(m, IDENTITIES)]
    if isinstance(model, nn.Sequential):
        out = []
        for n, child in model.named_children():
            out += leaves(child, f"{prefix}{n}.")
        return out
    if isinstance(model, IDENTITIES):
        return []
    return [(prefix.rstrip(".") or type(model).__name__, model)]


def _exporters() -> Dict[type, Callable]:
    """Module type -> exporter: the registry (neurons keep their input's shape)."""
    from norse.torch import LIFRecurrentCell

    return {
        nn.Linear: export_linear,
        nn.Conv2d: export_conv2d,
        nn.AvgPool2d: export_avgpool2d,
        nn.Flatten: export_flatten,
        **_neuron_exporters(),
        LIFRecurrentCell: export_lif_recurrent_cell,
    }


def _refuse(name: str, m: nn.Module, exporters) -> None:
    """A module without exporter: refused naming it, with its own reason where it gives one
    (a ``nir_refusal(name) -> str`` method, e.g. the graded neuron of snndeploy.train.networks)."""
    own = getattr(m, "nir_refusal", None)
    if callable(own):
        raise GraphError(own(name))
    hint = ""
    if any(True for _ in m.children()):
        hint = " (a container inside a Sequential is not traced: export the container itself, or flatten it)"
    if "Recurrent" in type(m).__name__:
        hint = " (of Norse's recurrent cells, LIFRecurrentCell is exported)"
    supported = [t.__name__ for t in exporters] + [t.__name__ for t in IDENTITIES] + ["Sequential", "SequentialState"]
    raise GraphError(
        f"module '{name}' of type {type(m).__name__} has no NIR exporter{hint}; supported: {', '.join(supported)}"
    )


def _out_shape(name: str, m: nn.Module, shape: Tuple[int, ...]) -> Tuple[int, ...]:
    if type(m) in _neuron_exporters():  # neurons keep their input's shape
        return shape
    if hasattr(m, "hidden_size") and hasattr(m, "recurrent_weights"):  # a recurrent cell
        return (int(m.hidden_size),)
    try:
        with torch.no_grad():
            y = m(torch.zeros((1,) + shape, dtype=next(m.parameters(), torch.zeros(1)).dtype))
    except RuntimeError as exc:
        raise GraphError(
            f"module '{name}' ({type(m).__name__}) does not accept input of shape {shape}: {exc}"
        ) from None
    return tuple(int(d) for d in y.shape[1:])


def _program(model: nn.Module, exporters):
    """The module calls to export: a container's leaves in order, else the traced forward
    (:mod:`.trace`)."""
    from .trace import Program, Step, trace

    containers = isinstance(model, nn.Sequential) or isinstance(getattr(model, "layers", None), nn.ModuleDict)
    if not containers and type(model) not in exporters and any(True for _ in model.children()):
        return trace(model, tuple(exporters) + IDENTITIES)
    chain = leaves(model)
    if not chain:
        raise GraphError(f"model of type {type(model).__name__} has no module to export")
    steps, prev = [], "input"
    for name, m in chain:
        steps.append(Step(name, m, (prev,)))
        prev = name
    return Program(tuple(steps), (prev,))


def to_nir(model: nn.Module, in_shape, dt: float, config: dict | None = None):
    """Export a model (this project's networks, nested ``nn.Sequential`` / ``SequentialState``, or a
    module whose ``forward`` torch.fx can trace, :mod:`.trace`) to a NIRGraph, per sample
    ``in_shape`` (no batch or time axis), one time step ``dt`` in seconds.

    Every node gets explicit input/output types (nir 1.0.8 infers Conv2d shapes from the
    kernel height only), and neuron parameters are full per-neuron arrays of the node's shape.
    """
    import nir

    exporters = _exporters()
    shape = (int(in_shape),) if np.isscalar(in_shape) else tuple(int(d) for d in in_shape)
    program = _program(model, exporters)
    nodes = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges = []
    shapes = {"input": shape}
    exits = {"input": "input"}  # step name -> the node its output leaves from
    for step in program.steps:
        name, m = step.name, step.module
        srcs = {shapes[s] for s in step.sources}
        if len(srcs) != 1:
            raise GraphError(f"module '{name}': the values summed into its input have shapes {sorted(srcs)}")
        (in_shape_,) = srcs
        fn = exporters.get(type(m))
        if fn is None:
            _refuse(name, m, exporters)
        out = _out_shape(name, m, in_shape_)
        node = fn(name, m, dt, in_shape_)
        if isinstance(node, Subgraph):
            nodes.update({f"{name}.{k}": v for k, v in node.nodes.items()})
            edges += [(exits[s], f"{name}.{node.entry}") for s in step.sources]
            edges += [(f"{name}.{a}", f"{name}.{b}") for a, b in node.edges]
            exits[name] = f"{name}.{node.exit}"
        else:
            node.input_type = {"input": np.array(in_shape_)}
            node.output_type = {"output": np.array(out)}
            nodes[name] = node
            edges += [(exits[s], name) for s in step.sources]
            exits[name] = name
        shapes[name] = out
    out_shapes = {shapes[s] for s in program.output}
    if len(out_shapes) != 1:
        raise GraphError(f"the values summed into the model's output have shapes {sorted(out_shapes)}")
    (shape,) = out_shapes
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges += [(exits[s], "output") for s in program.output]
    metadata = {META_DT: float(dt), META_EXPORTER: EXPORTER_PROFILE, META_WRITER: _provenance()}
    if config is not None:
        metadata[META_CONFIG] = json.dumps(config, sort_keys=True)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)


#: graph-metadata key: which program wrote the graph, with versions
META_WRITER = "exporter"
#: the exporter profile of what we write (snndeploy.ir.exporters: per-step IF, tau in seconds, dt above)
EXPORTER_PROFILE = "snndeploy"


def _provenance() -> str:
    import norse

    from ..util.version import __version__

    return f"snndeploy {__version__} (Norse {getattr(norse, '__version__', '?')}, torch {torch.__version__})"


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
        p = LIFBoxParameters(
            tau_mem_inv=torch.as_tensor(1.0 / node.tau),
            v_leak=torch.as_tensor(node.v_leak),
            v_th=torch.as_tensor(node.v_threshold),
            v_reset=torch.as_tensor(node.v_reset),
        )
        return LIFBoxCell(p, dt=dt)

    return {nir.Affine: affine, nir.LIF: lif}
