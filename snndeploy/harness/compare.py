"""Comparing backends on one input, in chunks when the records would not fit: the report dict.

Every figure is merged exactly over chunks (mismatches and entries add, the first divergence is the
earliest, predictions and per-sample operation counts are concatenated, per-step mismatch counts add).
Only one sample's records are kept from chunk to chunk, for the report's plots.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..backends import RunResult
from ..energy.counts import count_ops, counts_equal, merge_counts
from ..energy.estimate import DEFAULT_TARGET, energy_report, energy_target
from ..errors import InputError
from ..ir import graph as G
from ..ir.analysed import AnalysedGraph, as_analysed
from .agreement import Tolerances, accuracy, compare_pair, merge_pairs, predictions, readout_description
from .inputs import check_labels
from .memory import chunk_size
from .run import refusal, run_backends, split_refusals

CHUNKS_HOW = (
    "samples run in chunks of this size, one Lava network per chunk; every figure is merged over all "
    "chunks (counts add, first divergence is the earliest)"
)
PLOTTED_HOW = (
    "the records of one sample are kept for the plots: the first where backends diverge, else the first sample"
)
COUNTS_HOW = (
    "per-sample operation counts of every node exactly equal; backends whose input and spike records are "
    "equal must give equal counts"
)


@dataclass
class _Merged:
    """What the chunks of one comparison add up to, chunk by chunk."""

    names: Sequence[str]
    preds: Dict[str, list] = field(default_factory=dict)
    counts: Dict[str, list] = field(default_factory=dict)
    infos: Dict[str, list] = field(default_factory=dict)
    pairs: Dict[str, list] = field(default_factory=dict)
    kept: Optional[Dict[str, RunResult]] = None
    kept_start: int = 0
    kept_diverged: bool = False

    def __post_init__(self):
        for d in (self.preds, self.counts, self.infos):
            d.update({n: [] for n in self.names})
        self.pairs.update({n: [] for n in self.names[1:]})

    def add(self, ag: AnalysedGraph, results: Dict[str, RunResult], start: int, tol: Tolerances) -> None:
        ref = self.names[0]
        for name, r in results.items():
            self.preds[name].append(predictions(r.outputs[ag.output_node]))
            self.counts[name].append(count_ops(ag, r.outputs))
            self.infos[name].append(r.info)
        diverged = False
        for other in self.names[1:]:
            part = compare_pair(
                ag, ref, results[ref].outputs, other, results[other].outputs, ag.output_node, tol, sample_offset=start
            )
            self.pairs[other].append(part)
            diverged = diverged or part["first_divergence"] is not None
        if self.kept is None or (diverged and not self.kept_diverged):
            local = min(
                (
                    p[-1]["first_divergence"]["sample"] - start
                    for p in self.pairs.values()
                    if p[-1]["first_divergence"] is not None
                ),
                default=0,
            )
            self.kept, self.kept_start, self.kept_diverged = one_sample(results, local), start + local, diverged


def check_backend_names(names: Sequence[str]) -> None:
    if len(names) < 2:
        raise InputError(f"--backends needs at least two names separated by commas, got {','.join(names)}")
    if len(set(names)) != len(names):
        raise InputError(f"--backends lists a backend twice: {','.join(names)}")


def compare_runs(
    graph,
    graph_path: str,
    names: Sequence[str],
    spikes: np.ndarray,
    labels: Optional[np.ndarray],
    dt: float,
    input_desc: str,
    tol: Tolerances = Tolerances(),
    target: str = DEFAULT_TARGET,
    show_progress: bool = True,
    chunk: Optional[int] = None,
    conventions: Optional[dict] = None,
):
    """Run every backend on the same input and compare them: (report dict, {backend: RunResult}).

    A backend that refuses a node of the graph does not stop the others: it is listed under
    ``report["refused"]`` (backend, node, type, reason), the others run and are compared (the first
    that runs is the reference), and the report does not pass. ``conventions`` (the exporter
    profile, dt and the changes made on load, :class:`~snndeploy.ir.exporters.Conventions`) goes
    into the report as given.

    The samples run in chunks (``chunk``, or automatically when all records would not fit in
    memory); agreement (also per step), first divergence, predictions and operation counts are
    merged exactly across chunks. The RunResults returned (for the HTML plots) hold one sample: the
    first where two backends diverge, else the first; ``report["plotted_samples"]`` says which.
    """
    check_backend_names(names)
    energy_target(target)  # a bad target fails before anything runs
    ag = as_analysed(graph)
    x = G.check_input(ag.graph, spikes, where=input_desc)
    backends, refused = split_refusals(ag, names, dt, x)  # an input any backend refuses fails here
    if not backends:
        raise refused[0]
    ran = [b.name for b in backends]
    n, steps = int(x.shape[0]), int(x.shape[1])
    if labels is not None:
        labels = check_labels(labels, n, input_desc, n_classes=int(np.prod(ag.shape(ag.output_node))))
    size = chunk_size(ag, n, steps, ran, chunk)
    merged = _Merged(ran)
    for start in range(0, n, size):
        if show_progress and size < n:
            why = " (records of all samples would not fit at once)" if chunk is None else ""
            print(
                f"chunk {start // size + 1} of {-(-n // size)}: samples {start}-{min(n, start + size) - 1}{why}",
                file=sys.stderr,
                flush=True,
            )
        results = run_backends(ag, ran, x[start : start + size], dt, show_progress, backends)
        merged.add(ag, results, start, tol)
        del results  # a chunk's records are freed before the next chunk runs
    report = {
        "graph": str(graph_path),
        "dt": dt,
        "input": input_desc,
        "samples": n,
        "steps": steps,
        "reference": ran[0],
        "requested": list(names),
        "refused": [refusal(e) for e in refused],
        "conventions": dict(conventions or {}),
        "backends": {},
        "pairs": [],
        "accuracy_how": readout_description(ag),
        "chunks": {"size": size, "count": -(-n // size), "how": CHUNKS_HOW},
        "plotted_samples": {"start": merged.kept_start, "count": 1, "how": PLOTTED_HOW},
        "tolerances": {
            "min_spike_agreement": tol.min_spike_agreement,
            "min_prediction_agreement": tol.min_prediction_agreement,
        },
    }
    _fill_backends(report, ag, merged, labels, target, n)
    report["passed"] = not refused and all(p["passed"] for p in report["pairs"])
    return report, merged.kept


def _fill_backends(report: dict, ag: AnalysedGraph, merged: _Merged, labels, target: str, n: int) -> None:
    """Per backend: accuracy, counts and energy; per pair: merged agreement and equal counts."""
    names = merged.names
    counts = {}
    for name in names:
        counts[name] = merge_counts(merged.counts[name])
        er = energy_report(ag, counts[name], target)
        energy = er["estimates"][er["headline"]]
        report["backends"][name] = {
            "accuracy": accuracy(np.concatenate(merged.preds[name]), labels),
            "samples": n,
            "synops_per_sample": energy["synops_per_sample"],
            "neuron_updates_per_sample": energy["neuron_updates_per_sample"],
            "energy_nj_per_sample": energy["energy_nj_per_sample"],
            "energy": energy,
            "ops": er["ops"],
            "estimates": er["estimates"],
            "info": _merge_infos(merged.infos[name]),
        }
        if name == names[0]:
            report["energy"] = {"headline": er["headline"], "from_backend": name, "mapping": er["mapping"]}
    for other in names[1:]:
        pair = merge_pairs(
            merged.pairs[other],
            Tolerances(report["tolerances"]["min_spike_agreement"], report["tolerances"]["min_prediction_agreement"]),
        )
        pair["spikes_equal"] = all(v["mismatches"] == 0 for v in pair["nodes"].values())
        pair["counts_equal"] = counts_equal(counts[names[0]], counts[other])
        pair["counts_how"] = COUNTS_HOW
        report["pairs"].append(pair)


def one_sample(results: Dict[str, RunResult], i: int) -> Dict[str, RunResult]:
    """Copies of every backend's records of sample ``i`` only (batch axis kept, length 1): what the
    report's plots need, without keeping a whole chunk's records alive."""
    return {
        name: RunResult(
            backend=r.backend,
            outputs={n: a[i : i + 1].copy() for n, a in r.outputs.items()},
            states={n: {k: a[i : i + 1].copy() for k, a in st.items()} for n, st in r.states.items()},
            info=r.info,
        )
        for name, r in results.items()
    }


def _merge_infos(infos: List[dict]) -> dict:
    """A backend's run info over chunks: wall time summed, the rest from the first chunk."""
    info = {k: v for k, v in infos[0].items() if _jsonable(v)}
    if len(infos) > 1:
        info["wall_s"] = sum(float(i.get("wall_s", 0.0)) for i in infos)
        info["chunks"] = len(infos)
    return info


def _jsonable(v) -> bool:
    try:
        json.dumps(v)
        return True
    except TypeError:
        return False
