"""The jobs behind the CLI: run one backend, compare several, write artifacts atomically.

Nothing is written until everything has been computed; each file is written to
a temporary name in its folder and renamed, so an error leaves no half-written
artifact behind.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import graph as G
from .backends.base import RunResult
from .errors import InputError
from .harness import Tolerances, accuracy, compare_pair, merge_pairs, predictions, readout_description
from .synops import count_ops, counts_equal, energy_summary, mapping_estimate, merge_counts, ops_summary
from .targets import known_targets, load_target

DEFAULT_TARGET = "loihi"
MAPPING_TARGET = "loihi2"


def load_input_npz(path) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """IN.npz: 'spikes' (batch, time, *input_shape), optional 'labels' (batch,)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file '{path}' does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            if "spikes" not in f.files:
                raise InputError(f"input file '{path}' has no array 'spikes' (it has: {', '.join(f.files) or 'none'})")
            spikes = f["spikes"]
            labels = f["labels"] if "labels" in f.files else None
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"input file '{path}' is not a readable .npz file: {type(exc).__name__}: {exc}") from exc
    if labels is not None and (labels.ndim != 1 or len(labels) != len(spikes)):
        raise InputError(f"input file '{path}': 'labels' has shape {labels.shape}, expected ({len(spikes)},)")
    return spikes, labels


def dataset_input(graph, dataset: str, samples: Optional[int], data_dir: Optional[str] = None):
    """The first ``samples`` test samples of ``dataset``, encoded as the graph's metadata says."""
    from .datasets import get_dataset
    from .encoding import encode

    cfg = G.graph_config(graph)
    enc = cfg.get("encoding")
    if not enc:
        raise InputError("the graph carries no input encoding in its metadata (it was not written by "
                         "`snndeploy train`); give encoded inputs with --input IN.npz instead of --dataset")
    if cfg.get("dataset") and cfg["dataset"] != dataset:
        raise InputError(f"the graph was trained on dataset '{cfg['dataset']}', not '{dataset}'")
    ds = get_dataset(dataset, data_dir)
    n = len(ds.x_test) if samples is None else int(samples)
    if n <= 0:
        raise InputError(f"--samples must be positive, got {samples}")
    n = min(n, len(ds.x_test))
    x = ds.x_test[:n].reshape(n, -1)
    desc = f"{dataset} test split, first {n} samples, encoding {json.dumps(enc, sort_keys=True)}"
    return encode(x, enc), ds.y_test[:n], desc


def _progress_bar(name: str):
    from tqdm import tqdm

    bar = tqdm(total=100, desc=f"run {name}", file=sys.stderr, leave=False,
               mininterval=0.5 if sys.stderr.isatty() else 15.0, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}")

    def update(_msg, frac):
        bar.update(int(round(100 * frac)) - bar.n)  # update() honours mininterval; refresh() would not

    return bar, update


#: every backend records every node's output (and each neuron's v) over time in float64
RECORD_BYTES = 8
#: a run may plan to use at most this fraction of the memory the OS reports available
MEMORY_HEADROOM = 0.8


#: an automatic chunk takes at most 1/3 of that: the one running, and two thirds left free (a chunk
#: sized to fill it was OOM-killed when a test suite started beside it). Only one sample's records
#: are kept from chunk to chunk, for the plots.
CHUNK_MEMORY_SHARES = 3


def available_memory_bytes() -> Optional[int]:
    """``MemAvailable`` from /proc/meminfo, or None where that cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def record_bytes_per_sample(graph, steps: int, n_backends: int) -> int:
    """Bytes the records of one sample take: every node's output and every neuron's v, per
    backend, in float64, plus two copies of the input (the caller's and the float64 check)."""
    from .nodes import NeuronParams, params_of

    in_node, _ = G.io_nodes(graph)
    per_step = 0
    for name, node in graph.nodes.items():
        size = int(np.prod(G.node_shape(node)))
        per_step += size
        if name != in_node and type(node).__name__ != "Output" and isinstance(params_of(name, node), NeuronParams):
            per_step += size  # v
    in_size = int(np.prod(G.node_shape(graph.nodes[in_node])))
    return steps * RECORD_BYTES * (n_backends * per_step + 2 * in_size)


def check_memory(graph, samples: int, steps: int, names: Sequence[str]) -> None:
    """Refuse, before anything runs, a job whose records would not fit in memory (instead of being
    killed by the OS half way with nothing said)."""
    per_sample = record_bytes_per_sample(graph, steps, len(names))
    avail = available_memory_bytes()
    if avail is None or per_sample * samples <= MEMORY_HEADROOM * avail:
        return
    fits = int(MEMORY_HEADROOM * avail // per_sample)
    raise InputError(f"{samples} samples x {steps} steps on {len(names)} backend(s) ({', '.join(names)}) would "
                     f"record about {per_sample * samples / 2**30:.1f} GiB (every node's output and every neuron's "
                     f"v in float64, per backend); this machine has {avail / 2**30:.1f} GiB available. "
                     f"Use --samples {fits} or fewer (or fewer backends)")


def chunk_size(graph, samples: int, steps: int, names: Sequence[str], chunk: Optional[int] = None) -> int:
    """Samples per chunk for ``compare``: ``chunk`` when given, else all samples when their records
    fit in memory, else as many as fit ``CHUNK_MEMORY_SHARES`` times (the chunk running, and room
    left for the rest of the machine), after the whole input's two copies."""
    if chunk is not None:
        if int(chunk) < 1:
            raise InputError(f"--chunk must be a positive number of samples, got {chunk}")
        return min(int(chunk), samples)
    per_sample = record_bytes_per_sample(graph, steps, len(names))
    avail = available_memory_bytes()
    if avail is None or per_sample * samples <= MEMORY_HEADROOM * avail:
        return samples
    in_node, _ = G.io_nodes(graph)
    input_bytes = 2 * steps * RECORD_BYTES * int(np.prod(G.node_shape(graph.nodes[in_node])))
    records = per_sample - input_bytes
    fits = int((MEMORY_HEADROOM * avail - input_bytes * samples) // (CHUNK_MEMORY_SHARES * records))
    if fits < 1:
        raise InputError(f"{samples} samples x {steps} steps: the input alone ({input_bytes * samples / 2**30:.1f} "
                         f"GiB in two copies) leaves no room for the records of one sample on "
                         f"{len(names)} backend(s); this machine has {avail / 2**30:.1f} GiB available. "
                         "Use fewer --samples")
    return min(fits, samples)


def run_backends(graph, names: Sequence[str], spikes: np.ndarray, dt: float, show_progress: bool = True):
    from .backends import get_backend

    backends = [get_backend(n) for n in names]  # unknown names fail before anything runs
    check_memory(graph, int(spikes.shape[0]), int(spikes.shape[1]), names)
    results = {}
    for b in backends:
        bar, update = _progress_bar(b.name) if show_progress else (None, None)
        try:
            results[b.name] = b.run(graph, spikes, dt, progress=update)
        finally:
            if bar is not None:
                bar.close()
    return results


def energy_target(target: str):
    """Load a target that can estimate energy (has constants with ``per``), or fail naming the ones that can."""
    tgt = load_target(target)
    if not tgt.has_energy_model:
        raise InputError(f"target '{target}' ({tgt.path}) has no energy constants with 'per'; "
                         "energy targets: " + ", ".join(t for t in known_targets() if load_target(t).has_energy_model))
    return tgt


def energy_report(graph, counts, target: str = DEFAULT_TARGET) -> dict:
    """Operation counts, energy on every target in targets/ (and ``target``), and the Loihi 2 core estimate."""
    headline = energy_target(target)
    targets = {headline.name: headline}
    for t in known_targets():
        tgt = load_target(t)
        if tgt.has_energy_model and tgt.name not in targets:
            targets[tgt.name] = tgt
    return {"headline": headline.name, "ops": ops_summary(counts),
            "estimates": {n: energy_summary(counts, t) for n, t in targets.items()},
            "mapping": mapping_estimate(graph, load_target(MAPPING_TARGET))}


def compare(graph, graph_path: str, names: Sequence[str], spikes: np.ndarray, labels: Optional[np.ndarray],
            dt: float, input_desc: str, tol: Tolerances = Tolerances(), target: str = DEFAULT_TARGET,
            show_progress: bool = True, chunk: Optional[int] = None) -> dict:
    """The comparison report (see :func:`compare_runs` for the RunResults too)."""
    return compare_runs(graph, graph_path, names, spikes, labels, dt, input_desc, tol, target, show_progress,
                        chunk)[0]


def compare_runs(graph, graph_path: str, names: Sequence[str], spikes: np.ndarray, labels: Optional[np.ndarray],
                 dt: float, input_desc: str, tol: Tolerances = Tolerances(), target: str = DEFAULT_TARGET,
                 show_progress: bool = True, chunk: Optional[int] = None):
    """Run every backend on the same input and compare them: (report dict, {backend: RunResult}).

    The samples run in chunks (``chunk``, or automatically when all records would not fit in
    memory); agreement (also per step), first divergence, predictions and operation counts are
    merged exactly across chunks. The RunResults returned (for the HTML plots) hold one sample: the
    first where two backends diverge, else the first; ``report["plotted_samples"]`` says which.
    """
    if len(names) < 2:
        raise InputError(f"--backends needs at least two names separated by commas, got {','.join(names)}")
    if len(set(names)) != len(names):
        raise InputError(f"--backends lists a backend twice: {','.join(names)}")
    energy_target(target)  # a bad target fails before anything runs
    x = G.check_input(graph, spikes, where=input_desc)
    _, out_node = G.io_nodes(graph)
    n, steps = int(x.shape[0]), int(x.shape[1])
    size = chunk_size(graph, n, steps, names, chunk)
    preds = {name: [] for name in names}
    counts_parts = {name: [] for name in names}
    infos = {name: [] for name in names}
    pair_parts = {other: [] for other in names[1:]}
    kept, kept_start, kept_diverged = None, 0, False
    for start in range(0, n, size):
        if show_progress and size < n:
            print(f"chunk {start // size + 1} of {-(-n // size)}: samples {start}-{min(n, start + size) - 1} "
                  f"(records of {n} samples would not fit at once)" if chunk is None else
                  f"chunk {start // size + 1} of {-(-n // size)}: samples {start}-{min(n, start + size) - 1}",
                  file=sys.stderr, flush=True)
        results = run_backends(graph, names, x[start:start + size], dt, show_progress)
        for name, r in results.items():
            preds[name].append(predictions(r.outputs[out_node]))
            counts_parts[name].append(count_ops(graph, r.outputs))
            infos[name].append(r.info)
        diverged = False
        for other in names[1:]:
            part = compare_pair(graph, names[0], results[names[0]].outputs, other, results[other].outputs, out_node,
                                tol, sample_offset=start)
            pair_parts[other].append(part)
            diverged = diverged or part["first_divergence"] is not None
        if kept is None or (diverged and not kept_diverged):
            local = min((p[-1]["first_divergence"]["sample"] - start for p in pair_parts.values()
                         if p[-1]["first_divergence"] is not None), default=0)
            kept, kept_start, kept_diverged = one_sample(results, local), start + local, diverged
        del results, r  # the loop variable would keep one backend's whole chunk alive during the next run
    report = {"graph": str(graph_path), "dt": dt, "input": input_desc, "samples": n,
              "steps": steps, "reference": names[0], "backends": {}, "pairs": [],
              "accuracy_how": readout_description(graph),
              "chunks": {"size": size, "count": -(-n // size),
                         "how": "samples run in chunks of this size, one Lava network per chunk; every figure is "
                                "merged over all chunks (counts add, first divergence is the earliest)"},
              "plotted_samples": {"start": kept_start, "count": 1,
                                  "how": "the records of one sample are kept for the plots: the first where "
                                         "backends diverge, else the first sample"},
              "tolerances": {"min_spike_agreement": tol.min_spike_agreement,
                             "min_prediction_agreement": tol.min_prediction_agreement}}
    counts = {}
    for name in names:
        counts[name] = merge_counts(counts_parts[name])
        er = energy_report(graph, counts[name], target)
        energy = er["estimates"][er["headline"]]
        report["backends"][name] = {
            "accuracy": accuracy(np.concatenate(preds[name]), labels),
            "samples": n,
            "synops_per_sample": energy["synops_per_sample"],
            "neuron_updates_per_sample": energy["neuron_updates_per_sample"],
            "energy_nj_per_sample": energy["energy_nj_per_sample"], "energy": energy,
            "ops": er["ops"], "estimates": er["estimates"],
            "info": _merge_infos(infos[name]),
        }
        if name == names[0]:
            report["energy"] = {"headline": er["headline"], "from_backend": name, "mapping": er["mapping"]}
    for other in names[1:]:
        pair = merge_pairs(pair_parts[other], tol)
        pair["spikes_equal"] = all(v["mismatches"] == 0 for v in pair["nodes"].values())
        pair["counts_equal"] = counts_equal(counts[names[0]], counts[other])
        pair["counts_how"] = ("per-sample operation counts of every node exactly equal; backends whose input and "
                              "spike records are equal must give equal counts")
        report["pairs"].append(pair)
    report["passed"] = all(p["passed"] for p in report["pairs"])
    return report, kept


def one_sample(results: Dict[str, RunResult], i: int) -> Dict[str, RunResult]:
    """Copies of every backend's records of sample ``i`` only (batch axis kept, length 1): what the
    report's plots need, without keeping a whole chunk's records alive."""
    return {name: RunResult(backend=r.backend,
                            outputs={n: a[i:i + 1].copy() for n, a in r.outputs.items()},
                            states={n: {k: a[i:i + 1].copy() for k, a in st.items()} for n, st in r.states.items()},
                            info=r.info)
            for name, r in results.items()}


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


def write_files_atomically(out_dir, files: Dict[str, bytes]) -> List[Path]:
    """Write every file under ``out_dir`` via temp name + rename; on error remove the temp files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    temps = []
    try:
        for name, data in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".tmp-{name}-", dir=str(out_dir))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            temps.append((tmp, out_dir / name))
        for tmp, final in temps:
            os.replace(tmp, final)
    except BaseException:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    return [final for _, final in temps]


def save_npz_atomically(path, arrays: Dict[str, np.ndarray]) -> None:
    import io

    path = Path(path)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_files_atomically(path.parent if str(path.parent) else ".", {path.name: buf.getvalue()})
