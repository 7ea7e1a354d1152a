"""``snndeploy convert``: a trained ReLU ANN (ONNX) -> a rate-coded spiking NIR graph, evaluated.

The conversion itself is :mod:`snndeploy.frontends.onnx`; here the data: thresholds balanced on
calibration samples of the training split, the ANN's own accuracy (onnxruntime), a check that our
reading of the ONNX file computes what onnxruntime computes, and the SNN's accuracy on the test
split on ``norse`` and ``loihi-emu``; with rate calibration (default) each hidden layer's
rate-to-activation gain is fitted on the calibration samples simulated on ``norse``
(:func:`fit_scales`). The input code (:data:`ENCODINGS`: Poisson rate code with
``max_prob`` 1, or the intensity as a current at every step) goes into
the graph's metadata, so ``snndeploy compare GRAPH --dataset NAME`` encodes the same way.
Writes ``model.nir`` and ``conversion.json`` together, or nothing.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import GraphError, InputError

#: backends the converted SNN is evaluated on
EVAL_BACKENDS = ("norse", "loihi-emu")
#: samples per evaluation chunk (records of one chunk are kept in memory)
EVAL_CHUNK = 500
#: |our logits - onnxruntime's| allowed, relative to the largest logit
PARITY_RTOL = 1e-4
#: samples used to check our reading of the ONNX file against onnxruntime
PARITY_SAMPLES = 256
#: ``headroom="auto"``: the candidates tried, and how many samples from the END of the training split
#: (disjoint from the calibration samples at its start; never the test split) choose among them
AUTO_HEADROOMS = (1.0, 1.25, 1.5, 2.0, 2.5)
AUTO_VALIDATION = 1000
#: what a prediction is read from, per readout (frontends.onnx.READOUTS)
READOUT_HOW = {
    "membrane": "the output LI's membrane potential summed over time",
    "spike_count": "the output IF population's spike counts",
}
RATE_CALIBRATION_HOW = (
    "per hidden population, layer by layer: norse simulates the calibration samples (encoded as the test set); "
    "the next layer's input gain per channel (per neuron of a dense layer) is the least-squares factor "
    "mu = sum(a r) / sum(r^2) from spike rates r to ANN activations a"
)
#: input codes of a converted graph: intensity x in [0, 1] -> a spike with probability x per step
#: (Poisson), or the current x at every step into the first population (direct, as Rueckauer et
#: al. 2017's analog input): the same mean drive, without the input's sampling noise
ENCODINGS = {
    "poisson": {"kind": "poisson", "max_prob": 1.0, "seed": 0},
    "direct": {"kind": "direct", "scale": 1.0},
}


def _shaped(x: np.ndarray, shape, dataset: str, path) -> np.ndarray:
    if int(np.prod(x.shape[1:])) != int(np.prod(shape)):
        raise InputError(
            f"{path} takes input of shape {tuple(shape)} per sample; dataset '{dataset}' has {tuple(x.shape[1:])}"
        )
    return x.reshape((len(x),) + tuple(shape)).astype(np.float32)


def ann_logits(path, input_name: str, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    """The ANN's logits by onnxruntime (CPU), batch by batch."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {input_name: x[i : i + batch]})[0] for i in range(0, len(x), batch)])


def check_parity(ann, x: np.ndarray) -> float:
    """Our reading of the ONNX file (frontends.onnx.forward) against onnxruntime on ``x``: the largest
    difference; refuses the model when they disagree (an op read wrongly must not convert silently)."""
    import torch

    from ..frontends.onnx import forward

    ours = forward(list(ann.ops), torch.as_tensor(x, dtype=torch.float64)).numpy()
    ref = ann_logits(ann.path, ann.input_name, x)
    diff = float(np.max(np.abs(ours.reshape(ref.shape) - ref)))
    if diff > PARITY_RTOL * max(1.0, float(np.max(np.abs(ref)))):
        raise GraphError(
            f"{ann.path}: the converter's reading of the network differs from onnxruntime by {diff:.3g}; "
            "an op is not read as onnxruntime runs it"
        )
    return diff


def evaluate_snn(graph, x_enc: np.ndarray, labels: np.ndarray, dt: float, backend: str) -> Dict[str, object]:
    """Accuracy (argmax of the output summed over time: spike counts, or an LI readout's potential) and
    per-population firing rates on ``backend``."""
    from ..harness.agreement import predictions
    from ..ir.analysed import analyse

    ag = analyse(graph)
    preds, spikes, entries = [], dict.fromkeys(ag.spiking_nodes, 0.0), dict.fromkeys(ag.spiking_nodes, 0)
    start = time.perf_counter()
    for out in _chunk_outputs(ag, x_enc, dt, backend):
        preds.append(predictions(out[ag.output_node]))
        for n in spikes:
            spikes[n] += float(out[n].sum())
            entries[n] += int(out[n].size)
    pred = np.concatenate(preds)
    return {
        "accuracy": float(np.mean(pred == labels)),
        "samples": int(len(labels)),
        "firing_rate": {n: spikes[n] / max(entries[n], 1) for n in spikes},
        "wall_s": time.perf_counter() - start,
    }


def _chunk_outputs(ag, x_enc: np.ndarray, dt: float, backend: str):
    """``backend``'s output records of ``x_enc``, :data:`EVAL_CHUNK` samples at a time."""
    from ..backends import get_backend

    b = get_backend(backend, record_states=False) if backend != "norse" else get_backend(backend)
    for i in range(0, len(x_enc), EVAL_CHUNK):
        yield b.run(ag, x_enc[i : i + EVAL_CHUNK].astype(np.float64), dt).outputs


def population_rates(graph, x_enc: np.ndarray, dt: float, node: str) -> np.ndarray:
    """``node``'s spikes averaged over time on ``norse`` (the reference): (N, *population shape)."""
    from ..ir.analysed import analyse

    return np.concatenate([out[node].mean(axis=1) for out in _chunk_outputs(analyse(graph), x_enc, dt, "norse")])


@dataclass(frozen=True)
class Calibration:
    """The calibration samples (the start of the training split), computed once per conversion: the
    inputs, the ANN's activations per segment, and the inputs encoded as the test set will be."""

    x: np.ndarray
    acts: List[np.ndarray]
    x_enc: np.ndarray

    @staticmethod
    def of(ann, x: np.ndarray, enc: dict) -> Calibration:
        from ..data.encoding import encode
        from ..frontends.onnx import activations

        n = len(x)
        x_enc = encode(x.reshape(n, -1), enc).reshape((n, enc["steps"]) + ann.input_shape)
        return Calibration(x, activations(ann, x), x_enc)


def fit_scales(ann, cal: Calibration, normalization: str, headroom: float, dt: float, rate_calibration: bool):
    """Per segment its lambda and its input gain. With ``rate_calibration`` the gain from each hidden
    population's rates back to activations is fitted layer by layer (frontends.onnx.rate_gains) on
    the calibration samples, encoded as the test set will be, simulated on ``norse``; without it the
    gain is the previous lambda (plain threshold balancing). Segment i's gain is fitted on the rates
    of population ``if{i-1}``."""
    from ..frontends.onnx import rate_gains, scales, to_snn

    lambdas = scales(ann, cal.x, normalization, headroom, acts=cal.acts)
    gains = [1.0] + list(lambdas[:-1])
    if rate_calibration:
        for layer in range(len(lambdas) - 1):
            graph = to_snn(ann, lambdas, dt, {}, gains=gains, readout="spike_count")
            rates = population_rates(graph, cal.x_enc, dt, f"if{layer}")
            gains[layer + 1] = rate_gains(cal.acts[layer], rates, lambdas[layer])
    return lambdas, gains


def _gain_summary(gain, lam: float) -> dict:
    g = np.atleast_1d(np.asarray(gain, dtype=np.float64))
    return {
        "values": [float(v) for v in g],
        "over_lambda": {"min": float(g.min() / lam), "median": float(np.median(g) / lam), "max": float(g.max() / lam)},
    }


def convert(
    model_path,
    dataset: str,
    out_dir,
    steps: int = 64,
    calibration: int = 1000,
    normalization: str = "percentile:99.9",
    samples: Optional[int] = None,
    dt: float = 1e-3,
    data_dir: Optional[str] = None,
    backends: Sequence[str] = EVAL_BACKENDS,
    headroom=None,
    encoding: str = "poisson",
    readout: str = "membrane",
    rate_calibration: bool = True,
) -> dict:
    """Convert, evaluate, write ``model.nir`` and ``conversion.json`` under ``out_dir``; the report."""
    from ..backends import get_backend
    from ..data.datasets import get_dataset
    from ..data.encoding import encode
    from ..frontends.onnx import DEFAULT_HEADROOM, READOUT_TAU_STEPS, READOUTS, parse_normalization, read_onnx, to_snn
    from ..util.files import check_out_dir, json_bytes, write_files

    check_out_dir(out_dir)
    parse_normalization(normalization)
    if encoding not in ENCODINGS:
        raise InputError(f"--encoding must be one of {', '.join(ENCODINGS)}, got '{encoding}'")
    if readout not in READOUTS:
        raise InputError(f"--readout must be one of {', '.join(READOUTS)}, got '{readout}'")
    if steps < 1 or calibration < 1:
        raise InputError(f"--steps and --calibration must be positive, got {steps} and {calibration}")
    if samples is not None and samples < 1:
        raise InputError(f"--samples must be >= 1 (or left out for the whole test split), got {samples}")
    if not (math.isfinite(dt) and dt > 0):
        raise InputError(f"--dt must be a finite number of seconds > 0, got {dt}")
    if headroom is not None and headroom != "auto":
        _headroom_value(headroom)  # a bad value fails before anything is read
    ann = read_onnx(model_path)
    ds = get_dataset(dataset, data_dir)
    if headroom == "auto" and len(ds.x_train) < calibration + AUTO_VALIDATION:
        raise InputError(
            f"--headroom auto needs {calibration} calibration + {AUTO_VALIDATION} validation training samples; "
            f"dataset '{dataset}' has {len(ds.x_train)}"
        )
    x_train = _shaped(ds.x_train[:calibration], ann.input_shape, dataset, model_path)
    n = len(ds.x_test) if samples is None else min(int(samples), len(ds.x_test))
    x_test, y_test = _shaped(ds.x_test[:n], ann.input_shape, dataset, model_path), ds.y_test[:n]
    parity = check_parity(ann, x_test[:PARITY_SAMPLES])
    ann_acc = float(np.mean(ann_logits(model_path, ann.input_name, x_test).argmax(axis=1) == y_test))
    enc = dict(ENCODINGS[encoding], steps=int(steps))
    auto, fits = None, {}
    cal = Calibration.of(ann, x_train, enc)
    if headroom == "auto":
        x_val = _shaped(ds.x_train[-AUTO_VALIDATION:], ann.input_shape, dataset, model_path)
        y_val = ds.y_train[-AUTO_VALIDATION:]
        auto, fits = choose_headroom(ann, cal, x_val, y_val, normalization, enc, dt, readout, rate_calibration)
        headroom = auto["chosen"]
    headroom = DEFAULT_HEADROOM if headroom is None else _headroom_value(headroom)
    meta_cfg = {
        "model": Path(model_path).stem,
        "dataset": dataset,
        "encoding": enc,
        "readout": {"kind": readout},
        "converted_from": Path(model_path).name,
    }
    import json

    from ..frontends.norse import EXPORTER_PROFILE
    from ..ir.exporters import META_EXPORTER
    from ..ir.graph import META_CONFIG

    meta = {META_CONFIG: json.dumps(meta_cfg, sort_keys=True), META_EXPORTER: EXPORTER_PROFILE}
    if headroom in fits:  # fitted while choosing it
        lambdas, gains = fits[headroom]
    else:
        lambdas, gains = fit_scales(ann, cal, normalization, headroom, dt, rate_calibration)
    graph = to_snn(ann, lambdas, dt, meta, gains=gains, readout=readout)
    x_enc = encode(x_test.reshape(n, -1), enc).reshape((n, steps) + ann.input_shape)
    results = {}
    for b in backends:
        try:  # loihi-emu and lava-fixed take binary spikes only: direct input (graded) is refused, recorded
            get_backend(b).check_input(x_enc)
        except InputError as e:
            results[b] = {"refused": str(e)}
            continue
        results[b] = evaluate_snn(graph, x_enc, y_test, dt, b)
    if not any("accuracy" in r for r in results.values()):
        raise InputError(f"no backend of {', '.join(backends)} could evaluate the converted graph: {results}")
    report = {
        "onnx": str(model_path),
        "dataset": dataset,
        "test_samples": n,
        "ann_accuracy": ann_acc,
        "ann_how": "onnxruntime (CPUExecutionProvider) on the test split, argmax of the logits",
        "snn": results,
        "snn_how": f"argmax of {READOUT_HOW[readout]}; input {encoding}-coded as in the metadata",
        "readout": readout,
        "rate_calibration": RATE_CALIBRATION_HOW if rate_calibration else None,
        "steps": int(steps),
        "encoding": enc,
        "normalization": normalization,
        "headroom": headroom,
        "headroom_auto": auto,
        "calibration_samples": int(len(x_train)),
        "layers": [
            {
                "population": f"li{i}" if i == len(lambdas) - 1 and readout == "membrane" else f"if{i}",
                "onnx_nodes": [op.onnx_node for op in seg],
                "lambda": lam,
                "threshold": None if i == len(lambdas) - 1 and readout == "membrane" else 1.0,
                "input_gain": _gain_summary(gain, lambdas[i - 1] if i else 1.0),
            }
            for i, (seg, lam, gain) in enumerate(zip(ann.segments(), lambdas, gains))
        ],
        "parity_max_abs_diff": parity,
        "neuron": "hidden: IF, threshold 1, reset to 0 (NIR), per-step integration; weights scaled by "
        "input_gain / lambda_out; output: "
        + (
            f"LI, tau = {READOUT_TAU_STEPS:g} dt, r = tau/dt, v_leak = 0 "
            f"(v <- {1 - 1 / READOUT_TAU_STEPS:g} v + I per step)"
            if readout == "membrane"
            else "IF as the hidden ones"
        ),
    }
    from ..ir.graph import save_graph

    with tempfile.TemporaryDirectory(prefix="snndeploy-convert-") as tmp:  # nir writes to a path
        save_graph(graph, Path(tmp) / "model.nir")
        nir_bytes = (Path(tmp) / "model.nir").read_bytes()
    write_files(out_dir, {"model.nir": nir_bytes, "conversion.json": json_bytes(report)})
    return report


def _headroom_value(h) -> float:
    try:
        v = float(h)
    except (TypeError, ValueError):
        raise InputError(f"--headroom must be 'auto' or a finite number >= 1, got '{h}'") from None
    if not (v >= 1 and math.isfinite(v)):
        raise InputError(f"--headroom must be 'auto' or a finite number >= 1, got '{h}'")
    return v


def choose_headroom(
    ann, cal: Calibration, x_val, y_val, normalization: str, enc: dict, dt: float, readout: str, rate_calibration: bool
) -> Tuple[dict, dict]:
    """``--headroom auto``: convert with each of :data:`AUTO_HEADROOMS` and keep the one with the best
    ``norse`` accuracy on ``x_val`` (training samples, encoded as the test set will be; ties: the
    smaller headroom). The best headroom depends on T: fewer steps need the rate resolution of a
    small one, more steps tolerate a larger one, which loses less charge at reset. Returns the
    report and, per headroom tried, its (lambdas, gains) (:func:`fit_scales`), so the chosen one is
    not fitted twice."""
    from ..data.encoding import encode
    from ..frontends.onnx import to_snn

    n = len(x_val)
    x_enc = encode(x_val.reshape(n, -1), enc).reshape((n, enc["steps"]) + ann.input_shape)
    tried, fits = [], {}
    for h in AUTO_HEADROOMS:
        fits[h] = fit_scales(ann, cal, normalization, h, dt, rate_calibration)
        graph = to_snn(ann, fits[h][0], dt, {}, gains=fits[h][1], readout=readout)
        tried.append({"headroom": h, "validation_accuracy": evaluate_snn(graph, x_enc, y_val, dt, "norse")["accuracy"]})
    best = max(tried, key=lambda t: (t["validation_accuracy"], -t["headroom"]))
    report = {
        "chosen": best["headroom"],
        "tried": tried,
        "how": f"norse accuracy on the last {n} samples of the training split (disjoint from the calibration "
        "samples, never the test split), encoded as the test set; the best, ties to the smaller headroom",
    }
    return report, fits


def convert_cli(args) -> int:
    from ..errors import EXIT_OK

    rep = convert(
        args.model,
        args.dataset,
        args.out,
        steps=args.steps,
        calibration=args.calibration,
        normalization=args.normalization,
        samples=args.samples,
        dt=args.dt,
        data_dir=args.data_dir,
        headroom=args.headroom,
        encoding=getattr(args, "encoding", "poisson"),
        readout=getattr(args, "readout", "membrane"),
        rate_calibration=not getattr(args, "no_rate_calibration", False),
    )
    print(f"converted {args.model} ({rep['dataset']}, {rep['test_samples']} test samples, T = {rep['steps']}):")
    print(f"  ANN (onnxruntime)  accuracy {100 * rep['ann_accuracy']:.2f} %")
    if rep.get("headroom_auto"):
        tried = ", ".join(
            f"{t['headroom']:g}: {100 * t['validation_accuracy']:.2f} %" for t in rep["headroom_auto"]["tried"]
        )
        print(f"  headroom {rep['headroom']:g} chosen on training samples ({tried})")
    if rep["rate_calibration"]:
        medians = ", ".join(
            f"{layer['population']} {layer['input_gain']['over_lambda']['median']:.3f}" for layer in rep["layers"][1:]
        )
        print(
            f"  rate calibration on {rep['calibration_samples']} training samples, "
            f"input gain / lambda (median): {medians}"
        )
    print(f"  readout: {READOUT_HOW[rep['readout']]}")
    for b, r in rep["snn"].items():
        if "refused" in r:
            print(f"  SNN on {b:<11} not evaluated: {r['refused']}")
            continue
        print(f"  SNN on {b:<11} accuracy {100 * r['accuracy']:.2f} %  ({r['wall_s']:.1f} s)")
    print(f"wrote {Path(args.out) / 'model.nir'}, {Path(args.out) / 'conversion.json'}")
    return EXIT_OK
