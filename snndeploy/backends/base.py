"""The one small interface every backend offers, and what a run returns.

A backend is an object with a ``name``, the set of NIR node type names it ``supports``
(derived from the registries of the stages it uses, never typed by hand), ``check(graph, dt)``
and ``check_input(x)`` which refuse before anything runs what it cannot run, and ``run(graph, spikes, dt) ->
RunResult``. ``graph`` is an :class:`~snndeploy.ir.analysed.AnalysedGraph` (a plain NIR graph is
analysed on the way in). Every record in a RunResult is on the *NIR timeline*: entry ``[b, t]``
is the event caused by input step ``t`` of sample ``b`` as NIR's instantaneous Affine/Linear
semantics define it. A backend that delays internally (Lava: one step per Dense) shifts its
records back before returning them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Protocol

import numpy as np

#: ``RunResult.info["units"]`` of the fixed-point backends: u and v (and a graded output) as Lava's
#: raw 24-bit state, ``v_raw = scale * (v - v_offset)`` (docs/fixed_point.md)
RAW_UNITS = "raw 24-bit state"

Progress = Optional[Callable[[str, float], None]]  # (message, fraction done)


@dataclass(frozen=True, eq=False)
class RunResult:
    """What one backend produced for one batch of inputs.

    outputs: node name -> array (batch, time, *node_shape); every node the backend records.
    states:  node name -> {"v": array (batch, time, *shape), ...}, post-step state where recorded.
    info:    how it ran (precision, device, wall time, notes), for the report.
    """

    backend: str
    outputs: Dict[str, np.ndarray]
    states: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    info: Dict[str, object] = field(default_factory=dict)


class Backend(Protocol):
    name: str
    supports: frozenset

    def check(self, graph, dt: float) -> None: ...

    def run(self, graph, spikes: np.ndarray, dt: float, progress: Progress = None) -> RunResult: ...
