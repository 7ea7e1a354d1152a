"""For a user's own test suite: backends must agree on their model.

::

    from snndeploy.testing import assert_equivalent

    def test_my_model_runs_the_same_on_lava(spikes):
        assert_equivalent("model.nir", spikes, ["norse", "lava-float"])
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .api import DEFAULT_BACKENDS, compare


def assert_equivalent(
    graph,
    spikes: np.ndarray,
    backends: Sequence[str] = DEFAULT_BACKENDS,
    min_spike_agreement: float = 1.0,
    min_prediction_agreement: float = 1.0,
    dt: Optional[float] = None,
    require_spikes: bool = True,
):
    """Raise ``AssertionError`` unless every backend agrees with the first within the tolerances; the
    message names the pair, node, sample, step and neuron of the first divergence. With
    ``require_spikes`` the reference must spike somewhere: two silent networks agree trivially.
    Returns the :class:`~snndeploy.api.Report` when it passes."""
    report = compare(
        graph,
        spikes,
        backends,
        dt=dt,
        tolerances={"min_spike_agreement": min_spike_agreement, "min_prediction_agreement": min_prediction_agreement},
    )
    if require_spikes:
        ref = report.data["backends"][report.data["reference"]]["ops"]["totals"]
        spiking = [
            n
            for n, v in report.data["backends"][report.data["reference"]]["ops"]["per_node"].items()
            if v.get("spiking")
        ]
        if spiking and ref.get("spikes", 0) == 0:
            raise AssertionError(
                f"the reference '{report.data['reference']}' does not spike on this input "
                f"(populations {', '.join(spiking)}): agreement would prove nothing"
            )
    if report.passed:
        return report
    lines = []
    for p in report.pairs:
        if p["passed"]:
            continue
        fd = p["first_divergence"]
        where = (
            "no spike differs"
            if fd is None
            else (
                f"first divergence at node '{fd['node']}', sample {fd['sample']}, step {fd['step']}, "
                f"neuron {fd['neuron']}"
            )
        )
        lines.append(
            f"{p['b']} differs from {p['a']}: spike agreement {p['spike_agreement']:.6f} "
            f"(min {min_spike_agreement}), prediction agreement {p['prediction_agreement']:.6f} "
            f"(min {min_prediction_agreement}); {where}"
        )
    raise AssertionError("; ".join(lines))
