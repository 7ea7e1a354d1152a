"""The analysed graph: every fact a stage needs about a NIR graph, computed once.

``analyse(graph)`` validates the graph and records, in one frozen object, what every later
stage (backends, lowering, operation counts, the harness, reports) used to re-derive for
itself: the evaluation order with its recurrent back edges, predecessors and successors,
each node's type name, output shape and canonical record (:mod:`snndeploy.reference`), the
Input and Output nodes, and the spiking populations. Stages take an ``AnalysedGraph``;
:func:`as_analysed` lets a caller hand them a plain ``nir.NIRGraph`` too (it is analysed then).

A node whose type has no reference definition gets ``record = None``: the backends refuse it,
naming themselves and their supported types (the analysis does not, since which types are
supported is a backend's business).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, Mapping, Optional, Tuple

from ..errors import UnsupportedNodeError
from ..reference import DEFINED_TYPES, NeuronParams, read_record, record_reader
from . import graph as G


@dataclass(frozen=True, eq=False)
class NodeInfo:
    """One node: its NIR object and the facts derived from it."""

    name: str
    type_name: str
    nir_node: object
    shape: Tuple[int, ...]  # per-sample output shape
    preds: Tuple[str, ...]  # sources of incoming edges, in edge order
    succs: Tuple[str, ...]
    record: Optional[object]  # NeuronParams / SynapseParams / MapParams / DelayParams; None for Input/Output

    @property
    def is_neuron(self) -> bool:
        return isinstance(self.record, NeuronParams)

    @property
    def is_spiking(self) -> bool:
        return self.is_neuron and self.record.spiking


@dataclass(frozen=True, eq=False)
class AnalysedGraph:
    """A validated NIR graph and its analysis (see the module docstring). Never mutated."""

    graph: object  # the nir.NIRGraph
    order: Tuple[str, ...]  # evaluation order: every node after its forward inputs
    back_edges: FrozenSet[Tuple[str, str]]
    input_node: str
    output_node: str
    nodes: Mapping[str, NodeInfo]

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return self.nodes[self.input_node].shape

    @property
    def metadata(self) -> dict:
        return getattr(self.graph, "metadata", None) or {}

    def preds(self, name: str) -> Tuple[str, ...]:
        return self.nodes[name].preds

    def record(self, name: str):
        return self.nodes[name].record

    def type_name(self, name: str) -> str:
        return self.nodes[name].type_name

    def shape(self, name: str) -> Tuple[int, ...]:
        return self.nodes[name].shape

    @property
    def records(self) -> Dict[str, object]:
        """Records of the computing nodes (not Input/Output), in evaluation order."""
        return {n: self.nodes[n].record for n in self.order if self.nodes[n].record is not None}

    @property
    def neurons(self) -> Tuple[str, ...]:
        """Neuron populations in evaluation order."""
        return tuple(n for n in self.order if self.nodes[n].is_neuron)

    @property
    def spiking_nodes(self) -> Tuple[str, ...]:
        """Spiking neuron populations in evaluation order."""
        return tuple(n for n in self.order if self.nodes[n].is_spiking)

    def is_back_edge(self, src: str, dst: str) -> bool:
        return (src, dst) in self.back_edges


def analyse(graph, where: str = "graph") -> AnalysedGraph:
    """Validate ``graph`` and analyse it once (pure: the graph is not changed)."""
    G.validate_graph(graph, where=where)
    schedule = G.recurrent_order(graph)
    in_node, out_node = G.io_nodes(graph)
    pred, succ = G.predecessors(graph), G.successors(graph)
    nodes = {}
    for name, node in graph.nodes.items():
        tname = type(node).__name__
        record = read_record(name, node) if record_reader(tname) is not None else None
        nodes[name] = NodeInfo(
            name, tname, node, G.node_shape(node, name), tuple(pred[name]), tuple(succ[name]), record
        )
    return AnalysedGraph(graph, schedule.order, schedule.back_edges, in_node, out_node, nodes)


def as_analysed(graph) -> AnalysedGraph:
    """``graph`` itself when it is already analysed, else :func:`analyse` of it."""
    return graph if isinstance(graph, AnalysedGraph) else analyse(graph)


#: the refusal's reason for a NIR type that snndeploy has not placed at all
NOT_DEFINED_WHY = "snndeploy's reference (snndeploy.reference) defines no semantics for this NIR type yet"


def check_supported(graph, backend: str, supported: Iterable[str], why: Optional[Mapping[str, str]] = None) -> None:
    """Refuse the first node (in graph order) whose type ``backend`` does not run, naming it, its type,
    the supported types and, where ``why`` documents one for the type, the reason."""
    supported = frozenset(supported)
    nodes = graph.graph.nodes if isinstance(graph, AnalysedGraph) else graph.nodes
    for name, node in nodes.items():
        tname = type(node).__name__
        if tname not in supported:
            reason = (why or {}).get(tname) or ("" if tname in DEFINED_TYPES else NOT_DEFINED_WHY)
            raise UnsupportedNodeError(backend, name, tname, supported, why=reason)
