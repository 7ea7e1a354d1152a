"""Loading, validating and ordering NIR graphs.

NIR is this project's IR: nothing here converts a graph into another form.
Functions are pure: they never mutate the graph they are given.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, FrozenSet, List, Optional, Tuple

import numpy as np

from ..errors import GraphError, InputError
from ..util.files import atomic_path
from ..util.memory import check_fits
from .exporters import META_DT

if TYPE_CHECKING:
    import nir

#: Graph-metadata keys written by our exporter (the exporter profile's key: :mod:`.exporters`).
META_CONFIG = "snndeploy_config"  # JSON string: encoding, readout, model config


def load_graph(path) -> nir.NIRGraph:
    """Read a NIR file with type checking; errors name the file and the cause (see :func:`read_graph`)."""
    return read_graph(path)[0]


def read_graph(path) -> Tuple[nir.NIRGraph, List[str]]:
    """Read a NIR file: the type-checked graph and the repairs made to what the exporter wrote
    (scalar parameters broadcast, a batch axis dropped; :mod:`.ingest`), one sentence each."""
    import h5py
    from nir.serialization import hdf2dict

    from .ingest import graph_from_raw

    path = Path(path)
    if not path.exists():
        raise InputError(f"graph file '{path}' does not exist")
    if not path.is_file():
        raise InputError(f"graph path '{path}' is not a file")
    if not h5py.is_hdf5(str(path)):
        raise GraphError(f"'{path}' is not a NIR file (NIR files are HDF5; this file is not)")
    check_parameter_sizes(path)
    try:
        with h5py.File(str(path), "r") as f:
            if "node" not in f:
                raise GraphError(f"'{path}' has no 'node' group: not a NIR file")
            data = hdf2dict(f["node"])
    except GraphError:
        raise
    except Exception as exc:  # h5py/nir raise many types; keep the cause
        raise GraphError(f"'{path}' could not be read as a NIR graph: {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict) or "nodes" not in data:
        kind = data.get("type", "?") if isinstance(data, dict) else type(data).__name__
        raise GraphError(f"'{path}' holds a single {kind!s} node, not a NIRGraph")
    graph, notes = graph_from_raw(data, where=f"'{path}'")
    validate_graph(graph, where=str(path))
    return graph, notes


def open_graph(path, exporter: Optional[str] = None, dt: Optional[float] = None):
    """Read a NIR file and put it in the reference's conventions: (graph, :class:`~.exporters.Conventions`).

    The conventions say which exporter profile and dt apply and why, and list every change made
    to the file's graph (repairs on load, the profile's rescaling) and every warning."""
    from .exporters import prepare

    graph, notes = read_graph(path)
    return prepare(graph, exporter, dt, where=f"graph '{path}'", notes=notes)


def check_parameter_sizes(path) -> None:
    """Refuse, from the HDF5 headers alone, a file whose parameters would not fit in memory once read
    (a small file can hold compressed datasets of 10^9 elements, which ``nir.read`` would allocate)."""
    import h5py

    sizes = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            sizes.append((int(np.prod(obj.shape, dtype=np.float64)) * 8, name, obj.shape))

    try:
        with h5py.File(str(path), "r") as f:
            f.visititems(visit)
    except (OSError, RuntimeError) as exc:
        raise GraphError(f"'{path}' could not be read as HDF5: {exc}") from exc
    if sizes:
        total = sum(s for s, _, _ in sizes)
        _, name, shape = max(sizes)
        # read once by nir, once more as float64 records: twice the float64 size
        check_fits(2 * total, f"'{path}': its parameters (largest: dataset '{name}' of shape {tuple(shape)})")


def save_graph(graph, path) -> None:
    """Write a NIR file atomically (temp file + rename): no half-written file on error."""
    import nir

    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)


def graph_dt(graph, dt: Optional[float], where: str = "graph") -> float:
    """The time step in seconds: from ``--dt`` or from the graph's metadata.

    Graphs written by other tools carry no dt; then ``dt`` must be given.
    Both given and different is an error, not a silent choice.
    """
    meta = getattr(graph, "metadata", None) or {}
    stored = meta.get(META_DT)
    if stored is not None:
        arr = np.asarray(stored)
        if arr.size != 1 or arr.dtype.kind not in "iuf":
            raise GraphError(f"{where}: metadata '{META_DT}' is {stored!r}; expected one number of seconds")
        stored = float(arr.reshape(-1)[0])
    if dt is None and stored is None:
        raise InputError(
            f"{where} carries no dt in its metadata (key '{META_DT}'); "
            "pass the time step in seconds with --dt (for example --dt 1e-4)"
        )
    if dt is not None:
        if not (math.isfinite(dt) and dt > 0):
            raise InputError(f"--dt must be a positive number of seconds, got {dt}")
        if stored is not None and not math.isclose(dt, stored, rel_tol=1e-9):
            raise InputError(f"--dt {dt} contradicts the dt {stored} stored in {where}")
        return float(dt)
    if not (math.isfinite(stored) and stored > 0):
        raise GraphError(f"{where}: metadata dt must be a positive number of seconds, got {stored}")
    return stored


def graph_config(graph) -> dict:
    """The snndeploy config stored in graph metadata (encoding, readout), or {}."""
    meta = getattr(graph, "metadata", None) or {}
    raw = meta.get(META_CONFIG)
    if raw is None:
        return {}
    try:
        cfg = json.loads(raw.decode("utf8") if isinstance(raw, bytes) else str(raw))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GraphError(f"graph metadata '{META_CONFIG}' is not valid JSON: {exc}") from exc
    if not isinstance(cfg, dict):
        raise GraphError(f"graph metadata '{META_CONFIG}' is a JSON {type(cfg).__name__}; expected an object")
    return cfg


def io_nodes(graph) -> Tuple[str, str]:
    """The names of the single Input and single Output node."""
    import nir

    ins = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(ins) != 1:
        raise GraphError(f"graph must have exactly one Input node, found {len(ins)}: {ins}")
    if len(outs) != 1:
        raise GraphError(f"graph must have exactly one Output node, found {len(outs)}: {outs}")
    return ins[0], outs[0]


def predecessors(graph) -> Dict[str, List[str]]:
    pred: Dict[str, List[str]] = {k: [] for k in graph.nodes}
    for src, dst in graph.edges:
        pred[dst].append(src)
    return pred


def successors(graph) -> Dict[str, List[str]]:
    succ: Dict[str, List[str]] = {k: [] for k in graph.nodes}
    for src, dst in graph.edges:
        succ[src].append(dst)
    return succ


def topological_order(graph) -> List[str]:
    """Nodes of a DAG in an order where every node comes after its inputs.

    Recurrent cycles are refused here with the nodes of the cycle named; use
    :func:`recurrent_order` for graphs with cycles.
    """
    order = _kahn(graph, frozenset())
    if len(order) != len(graph.nodes):
        cycle = find_cycle(graph, [k for k in graph.nodes if k not in order])
        raise GraphError(
            f"graph has a recurrent cycle {' -> '.join(cycle + cycle[:1])}; "
            "topological_order takes DAGs only (recurrent_order cuts cycles at their back edges)"
        )
    return order


Edge = Tuple[str, str]


@dataclass(frozen=True)
class Schedule:
    """An evaluation order plus the back edges that were cut to get it.

    ``order`` is a topological order of the graph without ``back_edges``. A back edge
    carries its source's output of the previous step (zero at step 0), see docs/conventions.md.
    """

    order: Tuple[str, ...]
    back_edges: FrozenSet[Edge]


def back_edges(graph) -> FrozenSet[Edge]:
    """The back edges of a depth-first search from the Input, successors taken in ``graph.edges`` order.

    An edge is a back edge when its target is on the current DFS path (an ancestor of its
    source, or the source itself). Every cycle reachable from the Input holds at least one,
    and removing them all leaves a DAG. For a cycle hanging off a chain this is the edge that
    re-enters the cycle's node nearest to the Input (Braille: ``lif1.w_rec -> lif1.lif``).
    """
    in_node, _ = io_nodes(graph)
    succ = successors(graph)
    on_path, done, back = set(), set(), set()
    stack = [(in_node, iter(succ[in_node]))]  # iterative DFS: no recursion limit on deep graphs
    on_path.add(in_node)
    while stack:
        node, it = stack[-1]
        nxt = next(it, None)
        if nxt is None:
            stack.pop()
            on_path.discard(node)
            done.add(node)
        elif nxt in on_path:
            back.add((node, nxt))
        elif nxt not in done:
            on_path.add(nxt)
            stack.append((nxt, iter(succ[nxt])))
    return frozenset(back)


def recurrent_order(graph) -> Schedule:
    """An evaluation order for a graph that may hold recurrent cycles, plus its back edges.

    Back edges are chosen by :func:`back_edges` (DFS from the Input in edge order). A cycle
    that the Input does not reach has no back edge under that rule; it is refused, named.
    For a DAG this is :func:`topological_order` with no back edges.
    """
    back = back_edges(graph)
    order = _kahn(graph, back)
    if len(order) != len(graph.nodes):
        cycle = find_cycle(graph, [k for k in graph.nodes if k not in order])
        raise GraphError(
            f"graph has a recurrent cycle {' -> '.join(cycle + cycle[:1])} that is not reachable from "
            "the Input; back edges are chosen by a depth-first search from the Input, so this cycle "
            "cannot be cut"
        )
    return Schedule(tuple(order), back)


def _kahn(graph, skip: FrozenSet[Edge]) -> List[str]:
    """Kahn's topological sort over the edges not in ``skip``, ties in ``graph.nodes`` order."""
    indeg = dict.fromkeys(graph.nodes, 0)
    succ: Dict[str, List[str]] = {k: [] for k in graph.nodes}
    for src, dst in graph.edges:
        if (src, dst) not in skip:
            indeg[dst] += 1
            succ[src].append(dst)
    ready = [k for k in graph.nodes if indeg[k] == 0]
    order: List[str] = []
    while ready:
        k = ready.pop(0)
        order.append(k)
        for s in succ[k]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    return order


def find_cycle(graph, candidates: List[str]) -> List[str]:
    """One cycle (node names in edge order) among ``candidates``, the nodes a topological sort left."""
    succ = successors(graph)
    left = set(candidates)
    for start in candidates:
        path, seen, node = [], {}, start
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            nxt = [s for s in succ[node] if s in left]
            if not nxt:
                break
            node = nxt[0]
        else:
            return path[seen[node] :]
    return sorted(left)


def node_shape(node, name: Optional[str] = None) -> Tuple[int, ...]:
    """The output shape of a node (without batch and time)."""
    out = node.output_type.get("output") if node.output_type else None
    if out is None:
        named = f"node '{name}'" if name is not None else "node"
        raise GraphError(f"{named} of type {type(node).__name__} has no output type")
    return tuple(int(x) for x in np.asarray(out).reshape(-1))


def validate_graph(graph, where: str = "graph") -> None:
    """Structural checks: edges name existing nodes, one Input, one Output, finite parameters."""
    names = set(graph.nodes)
    for i, edge in enumerate(graph.edges):
        if len(edge) != 2:
            raise GraphError(f"{where}: edge {i} is {edge!r}, expected a (source, target) pair")
        for end in edge:
            if end not in names:
                raise GraphError(f"{where}: edge {edge!r} names node '{end}', which is not in the graph")
    io_nodes(graph)
    for name, node in graph.nodes.items():
        for field, value in vars(node).items():
            if field in ("input_type", "output_type", "metadata"):
                continue
            if isinstance(value, np.ndarray) and value.dtype.kind in "fiu" and not np.all(np.isfinite(value)):
                bad = np.argwhere(~np.isfinite(value))[0].tolist()
                raise GraphError(
                    f"{where}: node '{name}' ({type(node).__name__}) field '{field}' holds "
                    f"{value[tuple(bad)]} at index {bad}; parameters must be finite"
                )


@dataclass(frozen=True)
class InputSpec:
    """What a graph expects as input: the Input node and its shape."""

    node: str
    shape: Tuple[int, ...]


def input_spec(graph) -> InputSpec:
    name, _ = io_nodes(graph)
    return InputSpec(name, node_shape(graph.nodes[name]))


def check_input(graph, spikes: np.ndarray, where: str = "input") -> np.ndarray:
    """Check that ``spikes`` is (batch, time, *input_shape) for this graph; return it as float64."""
    spec = input_spec(graph)
    arr = np.asarray(spikes)
    if arr.ndim < 3:
        raise InputError(
            f"{where}: array 'spikes' has shape {arr.shape}; expected (batch, time, "
            f"{', '.join(map(str, spec.shape))}) for graph input '{spec.node}'"
        )
    if tuple(arr.shape[2:]) != spec.shape and int(np.prod(arr.shape[2:])) != int(np.prod(spec.shape)):
        raise InputError(
            f"{where}: array 'spikes' has shape {arr.shape}, i.e. per step {tuple(arr.shape[2:])}; "
            f"graph input '{spec.node}' expects per step {spec.shape} (array shape (batch, time, "
            f"{', '.join(map(str, spec.shape))}))"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{where}: array 'spikes' has shape {arr.shape}; batch and time must be non-empty")
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{where}: array 'spikes' has dtype {arr.dtype}; expected numbers")
    arr = arr.astype(np.float64).reshape(arr.shape[:2] + spec.shape)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{where}: array 'spikes' holds NaN or inf")
    return arr
