"""The reference: what every node type means. One registry, read by every stage.

Each node type has a record reader (NIR node -> a checked record of float64 arrays) and its
reference semantics (a step function for neurons and Delay, a forward function for
instantaneous maps), side by side in one module per family: :mod:`.neurons`, :mod:`.maps`,
:mod:`.delay`. The ``norse`` backend interprets exactly these; every other backend is tested
against them. Supported sets everywhere are derived from these registries.
"""

from __future__ import annotations

from typing import Callable, Dict, FrozenSet, Optional

from ..errors import GraphError
from .delay import delay_params, delay_step  # noqa: F401
from .maps import MAPS, WEIGHTED, forward  # noqa: F401
from .neurons import NEURONS, neuron_tensors, voltage  # noqa: F401
from .records import DelayParams, MapParams, NeuronParams, SynapseParams  # noqa: F401

#: NIR type names that carry no computation: the graph's ends
IO_TYPES: FrozenSet[str] = frozenset({"Input", "Output"})

#: NIR type name -> record reader, for every type the reference defines
READERS: Dict[str, Callable] = {
    **{k: v.read for k, v in NEURONS.items()},
    **{k: v.read for k, v in MAPS.items()},
    "Delay": delay_params,
}

#: every NIR type the reference defines (the ``norse`` backend runs all of them)
DEFINED_TYPES: FrozenSet[str] = IO_TYPES | frozenset(READERS)


def record_reader(type_name: str) -> Optional[Callable]:
    return READERS.get(type_name)


def read_record(name: str, node):
    """The canonical record of a computing node, or GraphError if its type has none."""
    fn = READERS.get(type(node).__name__)
    if fn is None:
        raise GraphError(
            f"node '{name}' has type {type(node).__name__}, which has no reference definition; "
            f"defined: {', '.join(sorted(DEFINED_TYPES))}"
        )
    return fn(name, node)
