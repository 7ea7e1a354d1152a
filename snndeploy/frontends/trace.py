"""A user's model with its own ``forward``: traced with torch.fx into the steps the exporter writes.

Containers (``nn.Sequential``, Norse's ``SequentialState``, our networks' ``layers``) are read
without tracing (:func:`snndeploy.frontends.norse.leaves`). Any other module with children is
traced symbolically: every module the exporter knows is a leaf of the trace; the forward's
first argument is the input, every other argument is given as ``None`` (the initial state).
What the trace may contain, and how each becomes NIR:

- a call of an exportable module: one node (or a subgraph), fed by the values it is called on;
- ``out[0]`` of a Norse cell (its spikes; ``out[1]``, the state, may only flow into other calls'
  state arguments or the return value);
- ``a + b`` (``operator.add``, ``torch.add``) of two values: the edges into the next node sum
  (a skip connection);
- the return value (or its first element): the Output.

Anything else (a torch function, a method call on a tensor, a module called twice) is refused,
naming the operation and where it is in the forward.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ..errors import GraphError


@dataclass(frozen=True)
class Step:
    """One module call: its path in the model, the module, and the sources summed into its input."""

    name: str
    module: nn.Module
    sources: Tuple[str, ...]  # "input" or earlier steps' names


@dataclass(frozen=True)
class Program:
    steps: Tuple[Step, ...]
    output: Tuple[str, ...]  # the sources summed into the Output


#: values in the trace that are not data: a cell's state (anything but out[0]) and None
_STATE = "state"


def trace(model: nn.Module, leaf_types: Tuple[type, ...]) -> Program:
    """The module calls of ``model.forward`` in order, with their data sources (see the module doc)."""
    import inspect

    import torch.fx

    class _Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, leaf_types) or super().is_leaf_module(m, qualname)

    params = list(inspect.signature(model.forward).parameters)
    if not params:
        raise GraphError(f"model of type {type(model).__name__}: forward takes no input")
    try:
        graph = _Tracer().trace(model, concrete_args=dict.fromkeys(params[1:]))
    except Exception as exc:  # torch.fx raises many types (TraceError, TypeError, ...)
        raise GraphError(
            f"model of type {type(model).__name__}: its forward could not be traced by torch.fx "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); write it without "
            "data-dependent control flow, or as nn.Sequential / SequentialState"
        ) from None
    return _program(model, graph, leaf_types)


def _where(node) -> str:
    stack = (node.meta or {}).get("stack_trace") or ""
    lines = [ln.strip() for ln in stack.strip().splitlines() if ln.strip()]
    return f" ({lines[-1]})" if lines else ""


def _program(model: nn.Module, graph, leaf_types) -> Program:
    values: Dict[str, object] = {}  # fx node name -> tuple of sources | _STATE | ("cell", step name)
    steps: List[Step] = []
    called = set()
    first = True
    output: Optional[Tuple[str, ...]] = None
    for node in graph.nodes:
        if node.op == "placeholder":
            values[node.name] = ("input",) if first else _STATE
            first = False
        elif node.op == "call_module":
            module = model.get_submodule(node.target)
            if node.target in called:
                raise GraphError(f"module '{node.target}' is called twice in forward (shared weights are not exported)")
            called.add(node.target)
            data = _data(values, node.args[0], node) if node.args else None
            if data is None:
                raise GraphError(f"module '{node.target}' is called without data input{_where(node)}")
            for extra in list(node.args[1:]) + list(node.kwargs.values()):
                if _value(values, extra) not in (_STATE, None):
                    raise GraphError(f"module '{node.target}': only its first argument may carry data{_where(node)}")
            steps.append(Step(node.target, module, data))
            is_cell = not isinstance(module, (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.Flatten))
            values[node.name] = ("cell", node.target) if is_cell else (node.target,)
        elif node.op == "call_function" and node.target is operator.getitem:
            src, index = node.args
            v = _value(values, src)
            if isinstance(v, tuple) and v[:1] == ("cell",):
                values[node.name] = (v[1],) if index == 0 else _STATE
            elif v == _STATE or v is None:
                values[node.name] = _STATE
            else:
                raise GraphError(f"indexing a tensor ({node.format_node()}) is not exported{_where(node)}")
        elif node.op == "call_function" and getattr(node.target, "__name__", "") == "_assert_is_none":
            continue  # torch.fx's check that a concrete None argument stayed None
        elif node.op == "call_function" and node.target in (operator.add, torch.add):
            a, b = (_data(values, x, node) for x in node.args[:2])
            values[node.name] = tuple(a) + tuple(b)
        elif node.op == "output":
            ret = node.args[0]
            if isinstance(ret, (tuple, list)):
                ret = ret[0]
            output = _data(values, ret, node)
        else:
            what = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", node.target)
            raise GraphError(
                f"the forward of {type(model).__name__} uses '{what}' ({node.op}){_where(node)}, which has no NIR "
                "export: only calls of exportable modules, out[0] of a Norse cell and + of two values are traced"
            )
    if not steps or output is None:
        raise GraphError(f"model of type {type(model).__name__}: its forward calls no exportable module")
    return Program(tuple(steps), output)


def _value(values, arg):
    if arg is None:
        return None
    name = getattr(arg, "name", None)
    return values.get(name) if name is not None else arg


def _data(values, arg, node) -> Tuple[str, ...]:
    v = _value(values, arg)
    if isinstance(v, tuple) and v[:1] == ("cell",):
        return (v[1],)  # a cell's output used directly: its spikes
    if not isinstance(v, tuple):
        raise GraphError(f"'{node.format_node()}' uses a value that is not data (a state or a constant){_where(node)}")
    return v
