"""Reading what peers really write: a NIR file's raw node dictionaries made into a checked graph.

``nir.read`` builds nodes straight from the file and type-checks the graph; several real exports
fail there for reasons we can repair without guessing, each repair named in the notes that the
report prints:

- **scalar parameters** (Sinabs with a float ``tau``, snnTorch with ``beta=0.9``, Norse 1.1.0's
  ``to_nir``): a neuron whose fields have different shapes gets every field broadcast to the
  largest; a neuron whose fields are all scalars gets the shape of a neighbour (a predecessor's
  output or a successor's input), so ``tau = 0.9`` means 0.9 for every neuron of the population.
- **leading batch/time axes on Input/Output** (Rockpool writes Input [1, N] and Output [1, 1, M],
  Norse 1.1.0's ``to_nir`` [1, N], Sinabs without Squeeze layers [T, N]): dropped when the
  neighbours' shape is the rest.

An unknown node type is refused with the node, its type and the types NIR defines; when NIR's own
type check still fails after the repairs, the message says what to change.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import GraphError

#: neuron types and their parameter fields, as NIR 1.0.8 names them (w_in has a default in NIR)
NEURON_FIELDS: Dict[str, Tuple[str, ...]] = {
    "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "IF": ("r", "v_threshold", "v_reset"),
    "LI": ("tau", "r", "v_leak"),
    "I": ("r",),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
    "Threshold": ("threshold",),
}


def _text(value) -> str:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def nir_node_types() -> List[str]:
    """Every node type the installed nir defines (NIRNode subclasses, NIRGraph included)."""
    import nir.ir

    return sorted(
        n
        for n in nir.ir.__all__
        if isinstance(getattr(nir.ir, n), type) and issubclass(getattr(nir.ir, n), nir.ir.NIRNode) and n != "NIRNode"
    )


def check_node_types(nodes: dict, where: str) -> None:
    """Every raw node names a type NIR defines; else GraphError naming node, type and the known types."""
    known = nir_node_types()
    for name, raw in nodes.items():
        t = _text(raw.get("type", "")) if isinstance(raw, dict) else type(raw).__name__
        if t not in known:
            raise GraphError(
                f"{where}: node '{name}' has type '{t}', which NIR (nir 1.0.8) does not define; "
                f"NIR types: {', '.join(known)}"
            )


def _broadcast_mixed(name: str, raw: dict, notes: List[str]) -> None:
    """Fields of one neuron with different shapes: broadcast to the largest (in place on the raw dict)."""
    t = _text(raw["type"])
    fields = [f for f in NEURON_FIELDS.get(t, ()) if f in raw]
    shapes = {f: np.shape(raw[f]) for f in fields}
    if len(set(shapes.values())) <= 1:
        return
    target = max(shapes.values(), key=lambda s: (int(np.prod(s)), len(s)))
    for f, s in shapes.items():
        if s == target:
            continue
        try:
            raw[f] = np.broadcast_to(np.asarray(raw[f], dtype=np.float64), target).copy()
        except ValueError:
            raise GraphError(
                f"node '{name}' ({t}) field '{f}' has shape {s}, which does not broadcast to the population's "
                f"shape {target} (taken from its other fields: {shapes})"
            ) from None
    notes.append(f"node '{name}' ({t}): parameters of shape () broadcast to the population's shape {target}")


def _neighbour_shape(name: str, nodes: dict, edges) -> Optional[Tuple[int, ...]]:
    """A shape fixed by a neighbour: a predecessor's output type or a successor's input type."""
    for src, dst in edges:
        if dst == name:
            out = (nodes[src].output_type or {}).get("output")
            if out is not None and np.size(out) > 0 and type(nodes[src]).__name__ not in NEURON_FIELDS:
                return tuple(int(x) for x in np.asarray(out).reshape(-1))
    for src, dst in edges:
        if src == name:
            inp = (nodes[dst].input_type or {}).get("input")
            if inp is not None and np.size(inp) > 0 and type(nodes[dst]).__name__ not in NEURON_FIELDS:
                return tuple(int(x) for x in np.asarray(inp).reshape(-1))
    return None


def rebuilt(node, **changes):
    """A copy of a NIR node with some fields changed (its types recomputed by the node's constructor)."""
    fields = {k: v for k, v in vars(node).items() if k not in ("input_type", "output_type")}
    fields.update(changes)
    return type(node)(**fields)


def _scalar_neurons(nodes: dict, edges, notes: List[str]) -> None:
    """Neurons whose parameters are all scalars take a neighbour's shape (in place on ``nodes``)."""
    pending = [
        k
        for k, n in nodes.items()
        if type(n).__name__ in NEURON_FIELDS
        and all(np.ndim(getattr(n, f)) == 0 for f in NEURON_FIELDS[type(n).__name__] if hasattr(n, f))
    ]
    while pending:
        progress = False
        for name in list(pending):
            shape = _neighbour_shape(name, nodes, edges)
            if shape is None:
                continue
            node = nodes[name]
            t = type(node).__name__
            fields = {
                f: np.full(shape, float(np.asarray(getattr(node, f)))) for f in NEURON_FIELDS[t] if hasattr(node, f)
            }
            nodes[name] = rebuilt(node, **fields)
            notes.append(f"node '{name}' ({t}): scalar parameters broadcast to its neighbours' shape {shape}")
            pending.remove(name)
            progress = True
        if not progress:
            raise GraphError(
                f"node '{pending[0]}' ({type(nodes[pending[0]]).__name__}) has only scalar parameters and no "
                "neighbour with a known shape (an Affine, Linear, Conv or Input next to it); give its "
                "parameters the population's shape"
            )


def _drop_batch_axis(nodes: dict, edges, notes: List[str]) -> None:
    """Input/Output whose shape is (*lead, *rest) next to nodes of shape rest lose the leading axes: NIR
    nodes act on one sample at one step, so those can only be a batch or time axis the exporter wrote."""
    import nir

    def dims(t) -> Optional[Tuple[int, ...]]:
        return None if t is None or np.size(t) == 0 else tuple(int(x) for x in np.asarray(t).reshape(-1))

    for name, node in list(nodes.items()):
        if isinstance(node, nir.Input):
            shape = dims(node.input_type.get("input"))
            near = [dims((nodes[d].input_type or {}).get("input")) for s, d in edges if s == name]
        elif isinstance(node, nir.Output):
            shape = dims((node.output_type or {}).get("output"))
            near = [dims((nodes[s].output_type or {}).get("output")) for s, d in edges if d == name]
        else:
            continue
        if shape is None or not near or near[0] is None or len(near[0]) >= len(shape):
            continue
        lead = len(shape) - len(near[0])
        if any(n != shape[lead:] for n in near):
            continue
        rest = np.array(shape[lead:])
        if isinstance(node, nir.Input):
            nodes[name] = nir.Input(input_type={"input": rest})
        else:
            nodes[name] = nir.Output(output_type={"output": rest})
            nodes[name].input_type = {"input": rest}
        notes.append(
            f"node '{name}' ({type(node).__name__}): leading axes {shape[:lead]} dropped (a batch or time axis "
            f"the exporter wrote; NIR shapes are per sample and step), {shape} -> {tuple(rest)}"
        )


TYPE_CHECK_HELP = (
    "every edge's source output shape must equal its target's input shape; a neuron's parameters all "
    "have the population's shape (or are scalars next to an Affine/Linear/Conv that fixes it); an "
    "Input's shape is one sample's shape, without batch or time axes"
)


def graph_from_raw(data: dict, where: str) -> Tuple[object, List[str]]:
    """A type-checked ``nir.NIRGraph`` from the raw dictionaries of a NIR file, and the repairs made."""
    import nir
    from nir.ir.utils import ensure_str

    notes: List[str] = []
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, dict) or "edges" not in data:
        raise GraphError(f"{where}: the file's top node is not a NIRGraph (no 'nodes' and 'edges')")
    check_node_types(raw_nodes, where)
    nodes = {}
    for name, raw in raw_nodes.items():
        if _text(raw["type"]) in NEURON_FIELDS:
            _broadcast_mixed(name, raw, notes)
        if _text(raw["type"]) == "NIRGraph":
            raise GraphError(f"{where}: node '{name}' is a nested NIRGraph; flatten subgraphs before loading")
        try:
            nodes[name] = nir.dict2NIRNode(dict(raw))
        except Exception as exc:
            raise GraphError(
                f"{where}: node '{name}' ({_text(raw['type'])}) could not be built by nir: {type(exc).__name__}: "
                f"{exc or 'its fields are inconsistent'} (fields: {sorted(k for k in raw if k != 'type')})"
            ) from None
    try:
        edges = [(ensure_str(a), ensure_str(b)) for a, b in data["edges"]]
    except (TypeError, ValueError) as exc:
        raise GraphError(f"{where}: edges are not (source, target) pairs: {exc}") from None
    for edge in edges:
        for end in edge:
            if end not in nodes:
                raise GraphError(f"{where}: edge {edge!r} names node '{end}', which is not in the graph")
    _drop_batch_axis(nodes, edges, notes)
    _scalar_neurons(nodes, edges, notes)
    _drop_batch_axis(nodes, edges, notes)  # again: a scalar neuron next to the Output has a shape now
    metadata = data.get("metadata") or {}
    try:
        graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(metadata), type_check=True)
    except Exception as exc:
        raise GraphError(f"{where}: NIR's type check failed: {exc or type(exc).__name__}. {TYPE_CHECK_HELP}") from None
    return graph, notes
