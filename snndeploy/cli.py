"""Command line: ``snndeploy train | run | compare | demo | energy | qat``.

Exit codes: 0 success (compare: passed), 1 compare ran but a tolerance failed (or a shard failed twice),
2 unusable input (the message names file, node, field, expected vs got; checked before any
work where it can be: ``--out``, every backend's support), 3 a backend failed while running or
anything unexpected (one line; ``--debug`` prints the traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from pathlib import Path
from typing import List, Optional

from .errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_NOT_PASSED,
    EXIT_OK,
    EXIT_RUNTIME,
    BackendError,
    InputError,
    Interrupted,
    SnnDeployError,
)
from .util.version import __version__

DEMO_MODEL = "digits_mlp"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="snndeploy", description="Train SNNs in Norse, export NIR, run on Lava, compare.")
    p.add_argument("--debug", action="store_true", help="print the traceback of an unexpected error")
    p.add_argument("--version", action="version", version=f"snndeploy {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train a model from models/NAME.toml and export model.nir")
    t.add_argument("--model", required=True, help="model config name (models/NAME.toml) or path")
    t.add_argument("--dataset", required=True)
    t.add_argument("--epochs", type=int)
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t.add_argument("--seed", type=int)
    t.add_argument("--data-dir")
    t.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt (same config)")
    t.add_argument(
        "--ann-twin",
        action="store_true",
        help="also train the same architecture with ReLU instead of spiking neurons; write DIR/ann.onnx",
    )
    t.add_argument("--out", required=True)

    r = sub.add_parser("run", help="run one backend on encoded input; write every node's output")
    r.add_argument("graph")
    r.add_argument("--backend", required=True)
    r.add_argument("--input", required=True)
    r.add_argument("--out", required=True)
    _convention_args(r)
    r.add_argument(
        "--chunk", type=int, help="samples per shard (one Lava network each); default: all at once in-process"
    )
    _shard_args(r)
    r.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run: load the finished shards in OUT.shards, run the others; a run given "
        "--resume (or --workers/--scheduler) writes each finished shard there (kept after the run: remove it "
        "when done)",
    )

    c = sub.add_parser("compare", help="run several backends on the same input and compare them")
    c.add_argument("graph")
    c.add_argument("--backends", required=True, help="comma-separated, the first is the reference")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset")
    src.add_argument("--input")
    c.add_argument("--samples", type=int, help="with --dataset: how many test samples (default: all)")
    c.add_argument("--data-dir")
    c.add_argument("--out", required=True)
    _convention_args(c)
    c.add_argument(
        "--chunk",
        type=int,
        help="samples per chunk (one Lava network each; default: all at once when "
        "the records fit in memory, else as many as fit; with --workers/--scheduler/--resume: two shards per "
        "worker thread); figures are merged over chunks",
    )
    _shard_args(c)
    c.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run: load the finished shards in OUT/shards, run the others (without "
        "--workers/--scheduler: in-process); a run given --resume (or --workers/--scheduler) writes each "
        "finished shard there",
    )
    c.add_argument(
        "--integration-check",
        type=int,
        metavar="N",
        help="also run brian2 with forward Euler and with exact integration on the first N samples and report "
        "their spike agreement (how far the per-step convention is from continuous time on this graph at its "
        "dt; informative, never fails the comparison); default: 32 when brian2 is among --backends, else 0 (off)",
    )
    _tolerance_args(c)

    e = sub.add_parser("energy", help="operation counts and energy per inference of one backend's run")
    e.add_argument("graph")
    e.add_argument("--input", required=True, help="IN.npz with 'spikes' (batch, time, *input_shape)")
    e.add_argument(
        "--target",
        default="loihi",
        help="headline target: targets/NAME.toml or a path (every target in targets/ is estimated too)",
    )
    e.add_argument("--backend", default="norse", help="whose records to count (default: norse)")
    _convention_args(e)

    _more_commands(sub)
    return p


def _convention_args(p) -> None:
    from .ir.exporters import EXPORTERS

    p.add_argument(
        "--exporter",
        metavar="NAME",
        help=f"the framework that wrote the graph ({', '.join(EXPORTERS)}): supplies the dt it assumed and "
        "its conventions (docs/exporters.md); default: the graph's metadata, else the NIR spec",
    )
    p.add_argument(
        "--dt", type=float, help="seconds per step; overrides the exporter's; required when nothing supplies one"
    )


def _shard_args(p) -> None:
    w = p.add_mutually_exclusive_group()
    w.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run the shards on a local Dask cluster of N worker processes (one thread each)",
    )
    w.add_argument("--scheduler", metavar="ADDRESS", help="run the shards on an existing Dask cluster")
    p.add_argument(
        "--shard-timeout",
        type=float,
        metavar="SECONDS",
        help="wall-clock limit of one shard in a worker (default: generous, from its size); a shard past it "
        "is killed with its worker and run once more, then reported as failed",
    )


def _shard_options(args):
    """The --workers/--scheduler/--shard-timeout/--resume options (checked before any work); the
    finished shards go to OUT/shards (compare) or OUT.shards (run, OUT a file) when the run is
    distributed or resumable."""
    from .harness.shards import ShardOptions

    workers, scheduler = getattr(args, "workers", None), getattr(args, "scheduler", None)
    resume = bool(getattr(args, "resume", False))
    keep = resume or workers is not None or scheduler is not None
    if not keep:
        folder = None
    elif OUT_KINDS.get(args.cmd) == "dir":
        folder = Path(args.out) / "shards"
    else:  # run: beside the output file
        folder = Path(str(args.out) + ".shards")
    if folder is not None:
        from .util.files import check_out_dir

        check_out_dir(folder, option="--out's shard folder")
    return ShardOptions(workers, scheduler, getattr(args, "shard_timeout", None), folder=folder, resume=resume)


def _more_commands(sub) -> None:
    """The export, qat and demo commands' arguments."""
    x = sub.add_parser("export", help="export a user's Norse model (a factory returning the module) to NIR")
    x.add_argument(
        "--model", required=True, help="MODULE:FACTORY or path/to/file.py:FACTORY (a callable, no arguments)"
    )
    x.add_argument("--weights", help="a state_dict file (torch.save) to load into the module")
    x.add_argument("--input-shape", required=True, help="per-sample input shape, e.g. 64 or 1,28,28")
    x.add_argument("--dt", type=float, required=True, help="seconds per step")
    x.add_argument("--out", required=True, help="the .nir file to write")

    q = sub.add_parser("qat", help="fixed-point-aware fine-tuning of a trained model (straight-through estimator)")
    q.add_argument("--from", dest="from_dir", required=True, help="a `snndeploy train` output folder")
    q.add_argument("--epochs", type=int, default=3)
    q.add_argument("--lr", type=float, help="default: the model's learning rate / 10")
    q.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    q.add_argument("--data-dir")
    q.add_argument("--out", required=True)

    v = sub.add_parser("convert", help="convert a trained ReLU ANN (ONNX) into a rate-coded spiking NIR graph")
    v.add_argument("model", help="the ANN as an .onnx file")
    v.add_argument("--dataset", required=True, help="for calibration (training split) and evaluation (test split)")
    v.add_argument("--data-dir")
    v.add_argument("--steps", type=int, default=64, help="time steps per sample (default 64)")
    v.add_argument(
        "--calibration",
        type=int,
        default=1000,
        help="training samples for threshold balancing and rate calibration (default 1000)",
    )
    v.add_argument("--normalization", default="percentile:99.9", help="max | percentile:P (default percentile:99.9)")
    v.add_argument("--samples", type=int, help="test samples to evaluate (default: the whole test set)")
    v.add_argument("--dt", type=float, default=1e-3, help="seconds per step written to the graph (default 1e-3)")
    v.add_argument(
        "--headroom",
        help="hidden layers' scale x this (default 1.5; reset-to-zero loses charge near rate 1), or 'auto': "
        "the best of 1, 1.25, 1.5, 2, 2.5 on the last 1000 training samples (norse, at --steps)",
    )
    v.add_argument(
        "--encoding",
        default="poisson",
        help="input code written to the graph: poisson (a spike with probability x per step, default) or "
        "direct (the intensity x as a current at every step: no input sampling noise)",
    )
    v.add_argument(
        "--readout",
        default="membrane",
        help="membrane (default: a non-spiking LI output, its potential summed over time) or spike_count "
        "(an IF output, its spike counts)",
    )
    v.add_argument(
        "--no-rate-calibration",
        action="store_true",
        help="use plain threshold balancing: skip fitting each hidden layer's rate-to-activation gain on "
        "the calibration samples (simulated on norse)",
    )
    v.add_argument("--out", required=True, help="folder for model.nir and conversion.json")

    w = sub.add_parser("sweep", help="accuracy and energy over time steps x encodings x spike-rate penalties")
    w.add_argument("--model", required=True, help="model config name (models/NAME.toml) or path")
    w.add_argument("--dataset", help="default: the config's")
    w.add_argument("--steps", default="8,16,32", help="comma-separated time steps (default 8,16,32)")
    w.add_argument("--encodings", default="poisson,latency", help="comma-separated: poisson, latency, direct")
    w.add_argument("--penalties", default="0,1", help="comma-separated train.spike_rate_penalty values (default 0,1)")
    w.add_argument("--epochs", type=int, help="per point (default: the config's)")
    w.add_argument("--samples", type=int, default=200, help="test samples per point (default 200)")
    w.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    w.add_argument("--data-dir")
    w.add_argument("--out", required=True)

    nw = sub.add_parser("network", help="a network given by physical parameters (models/networks) on several backends")
    nw.add_argument("config", help="network config name (models/networks/NAME.toml) or path, e.g. seed_poisson_lif")
    nw.add_argument("--backends", default="norse,brian2,lava-float,lava-fixed")
    nw.add_argument("--out", required=True)

    d = sub.add_parser("demo", help="train (or reuse), export, compare norse vs lava-float on digits")
    d.add_argument("--out", default="out/demo")
    d.add_argument("--samples", type=int, help="test samples to compare (default: the whole test split, 450)")
    d.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    d.add_argument("--retrain", action="store_true", help="train even if a matching checkpoint exists")
    _tolerance_args(d)


def _tolerance_args(p) -> None:
    p.add_argument("--junit", help="also write the comparison as JUnit XML to this file (one case per pair and node)")
    p.add_argument("--verbose", action="store_true", help="print the whole Markdown report, not the summary")
    from .harness.agreement import DEFAULT_MIN_PREDICTION_AGREEMENT, DEFAULT_MIN_SPIKE_AGREEMENT

    p.add_argument("--min-spike-agreement", type=float, default=DEFAULT_MIN_SPIKE_AGREEMENT)
    p.add_argument("--min-prediction-agreement", type=float, default=DEFAULT_MIN_PREDICTION_AGREEMENT)
    p.add_argument("--target", default="loihi", help="energy target: targets/NAME.toml or a path")


def _tolerances(args):
    from .harness.agreement import Tolerances

    return Tolerances(args.min_spike_agreement, args.min_prediction_agreement)


def cmd_train(args) -> int:
    from .train.config import load_model_config
    from .train.loop import train

    cfg = load_model_config(args.model)
    cfg["dataset"] = args.dataset
    metrics, artifacts = train(
        cfg,
        args.out,
        device=args.device,
        epochs=args.epochs,
        seed=args.seed,
        data_dir=args.data_dir,
        resume=args.resume,
        ann_twin=args.ann_twin,
    )
    print(
        f"test accuracy ({metrics['test_samples']} samples, norse float32, {metrics['device']}): "
        f"{100 * metrics['test_accuracy']:.2f} %  [{metrics['how']}]"
    )
    twin = metrics.get("ann_twin")
    if twin:
        print(
            f"ANN twin (ReLU, same architecture/data/epochs/seed): test accuracy {100 * twin['test_accuracy']:.2f} % "
            f"(onnxruntime), {twin['train_wall_s']:.1f} s training, {twin['parameters']} parameters"
        )
    for k, v in artifacts.items():
        print(f"wrote {k}: {v}")
    return EXIT_OK


def cmd_qat(args) -> int:
    from .train.qat import finetune

    rep = finetune(args.from_dir, args.out, epochs=args.epochs, device=args.device, lr=args.lr, data_dir=args.data_dir)
    print(f"fixed-point fine-tuning, {rep['epochs']} epochs on {rep['device']}, {rep['test_samples']} test samples:")
    spikes = rep["before"].get("output_spike_agreement") is not None
    last = "output spike agreement" if spikes else "readout largest difference (NIR units)"
    print(f"| | norse accuracy | loihi-emu accuracy | prediction agreement | {last} |")
    print("|---|---|---|---|---|")
    for when in ("before", "after"):
        r = rep[when]
        out = f"{r['output_spike_agreement']:.6f}" if spikes else f"{r['output_max_abs_diff']:.4g}"
        print(
            f"| {when} | {100 * r['norse_accuracy']:.2f} % | {100 * r['loihi_emu_accuracy']:.2f} % | "
            f"{100 * r['prediction_agreement']:.2f} % | {out} |"
        )
    print(f"({rep['how']})")
    print(f"wrote {args.out}/model.nir, checkpoint.pt, qat.json")
    return EXIT_OK


def cmd_run(args) -> int:
    from .harness.inputs import load_input_npz
    from .harness.run import run_backends, run_sharded
    from .ir import graph as G
    from .util.files import npz_bytes, write_bytes

    opts = _shard_options(args)
    graph, conv = _open(args)
    dt = conv.dt
    spikes, _ = load_input_npz(args.input)
    x = G.check_input(graph, spikes, where=f"input '{args.input}'")
    from .backends import get_backend

    get_backend(args.backend)  # unknown name: fail before anything runs
    if opts.distributed or args.chunk is not None or opts.resume:
        result = run_sharded(graph, args.backend, x, dt, args.chunk, opts)
    else:
        result = run_backends(graph, [args.backend], x, dt)[args.backend]
    write_bytes(args.out, npz_bytes(result.outputs))
    print(
        f"wrote {args.out}: {', '.join(f'{k} {v.shape}' for k, v in result.outputs.items())} "
        f"(NIR timeline, {args.backend})"
    )
    sh = (result.info.get("shards") or {}).get("shards")
    if sh:
        where = f"; finished shards in {opts.folder}" if opts.folder is not None else ""
        print(f"shards: {sh['count']} ({sh['done'] - sh['resumed']} run now, {sh['resumed']} resumed){where}")
    return EXIT_OK


def _open(args):
    """The graph named on the command line in the reference's conventions, and those conventions;
    warnings go to stderr at once (the compare report repeats them)."""
    from .ir import graph as G

    graph, conv = G.open_graph(args.graph, getattr(args, "exporter", None), getattr(args, "dt", None))
    for w in conv.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return graph, conv


def _compare_and_write(graph, graph_path, names, spikes, labels, conv, desc, args, shards=None) -> int:
    from .api import Report
    from .harness.compare import compare_runs
    from .util.files import write_bytes

    rep, results = compare_runs(
        graph,
        graph_path,
        names,
        spikes,
        labels,
        conv.dt,
        desc,
        _tolerances(args),
        args.target,
        chunk=getattr(args, "chunk", None),
        conventions=conv.as_dict(),
        shards=shards,
        integration_samples=getattr(args, "integration_check", None),
    )
    report = Report(rep, results, graph)
    written = report.write(args.out)
    if getattr(args, "junit", None):
        written.append(write_bytes(args.junit, report.junit().encode()))
    print(report.markdown() if getattr(args, "verbose", False) else report.summary())
    print("wrote " + ", ".join(str(p) for p in written))
    return EXIT_OK if rep["passed"] else EXIT_NOT_PASSED


def cmd_compare(args) -> int:
    from .harness.inputs import dataset_input, load_input_npz

    shards = _shard_options(args)
    graph, conv = _open(args)
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    from .backends import get_backend

    for n in names:
        get_backend(n)
    if args.input:
        if args.samples is not None:
            raise InputError("--samples goes with --dataset; with --input every sample in the file is used")
        spikes, labels = load_input_npz(args.input)
        desc = f"file {args.input}"
    else:
        spikes, labels, desc = dataset_input(graph, args.dataset, args.samples, args.data_dir)
    return _compare_and_write(graph, args.graph, names, spikes, labels, conv, desc, args, shards)


def cmd_demo(args) -> int:
    import torch

    from .harness.inputs import dataset_input
    from .ir import graph as G
    from .train.config import config_hash, load_model_config
    from .train.loop import train

    cfg = load_model_config(DEMO_MODEL)
    out = Path(args.out)
    ckpt, graph_path = out / "checkpoint.pt", out / "model.nir"
    reuse = False
    if not args.retrain and ckpt.is_file() and graph_path.is_file():
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        reuse = saved.get("config_hash") == config_hash(cfg)
    if reuse:
        print(f"[1/3] reusing the checkpoint in {out} (its config matches models/{DEMO_MODEL}.toml)")
    else:
        print(f"[1/3] training {DEMO_MODEL} on {cfg['dataset']} ({cfg['train']['epochs']} epochs)")
        metrics, _ = train(cfg, out, device=args.device)
        print(
            f"      norse test accuracy after training: {100 * metrics['test_accuracy']:.2f} % "
            f"({metrics['train_wall_s']:.0f} s on {metrics['device']})"
        )
    print(f"[2/3] exported {graph_path} (NIR, dt and encoding in metadata)")
    graph, conv = G.open_graph(graph_path)
    spikes, labels, desc = dataset_input(graph, cfg["dataset"], args.samples)
    print(f"[3/3] comparing norse (float64) and lava-float on {len(spikes)} test samples")
    args.target = getattr(args, "target", "loihi")
    return _compare_and_write(graph, str(graph_path), ["norse", "lava-float"], spikes, labels, conv, desc, args)


def cmd_energy(args) -> int:
    from .backends import get_backend
    from .energy.counts import count_ops
    from .energy.estimate import energy_report, energy_target
    from .harness.inputs import load_input_npz
    from .harness.run import run_backends
    from .ir import graph as G
    from .report.markdown import render_energy_markdown

    graph, conv = _open(args)
    dt = conv.dt
    energy_target(args.target)  # a bad target fails before anything runs
    get_backend(args.backend)
    spikes, _ = load_input_npz(args.input)
    x = G.check_input(graph, spikes, where=f"input '{args.input}'")
    result = run_backends(graph, [args.backend], x, dt)[args.backend]
    er = energy_report(graph, count_ops(graph, result.outputs), args.target)
    head = er["estimates"][er["headline"]]
    print(f"# Energy estimate: {args.graph}, {x.shape[0]} samples x {x.shape[1]} steps, records of `{args.backend}`")
    lo, hi = head["range"]["low"], head["range"]["high"]
    print(
        f"\n{head['target']}: {head['energy_nj_per_sample']:.3f} nJ per inference"
        + (" (uses estimated constants)" if head["estimate"] else "")
        + f"; range {lo['nj']:.3f} nJ ({lo['regime']}) - {hi['nj']:.3f} nJ ({hi['regime']})"
    )
    print("\n".join(render_energy_markdown({args.backend: er}, args.backend, er["mapping"])))
    return EXIT_OK


def cmd_export(args) -> int:
    import torch

    from .api import export

    try:
        shape = tuple(int(v) for v in args.input_shape.split(","))
    except ValueError:
        raise InputError(f"--input-shape '{args.input_shape}': expected integers separated by commas") from None
    if not shape or min(shape) < 1:
        raise InputError(f"--input-shape '{args.input_shape}': every size must be >= 1")
    if not (args.dt > 0 and args.dt < float("inf")):
        raise InputError(f"--dt must be a positive number of seconds, got {args.dt}")
    from .frontends.factory import load_factory

    model = load_factory(args.model)()
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"--model '{args.model}' returned a {type(model).__name__}, not a torch.nn.Module")
    if args.weights:
        try:
            state = torch.load(args.weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except (OSError, RuntimeError, KeyError, TypeError) as exc:
            raise InputError(f"--weights '{args.weights}' cannot be loaded into the model: {exc}") from None
    graph = export(model.eval(), shape, args.dt, args.out)
    print(f"wrote {args.out}: {len(graph.nodes)} nodes ({', '.join(graph.nodes)}), dt = {args.dt:g} s")
    return EXIT_OK


def _csv(text: str, kind, option: str) -> list:
    try:
        return [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{option} must be comma-separated {kind.__name__} values, got '{text}'") from None


def cmd_sweep(args) -> int:
    from .train.sweep import SNN_TARGET, sweep

    rep = sweep(
        args.model,
        args.out,
        steps=_csv(args.steps, int, "--steps"),
        encodings=_csv(args.encodings, str, "--encodings"),
        penalties=_csv(args.penalties, float, "--penalties"),
        dataset=args.dataset,
        epochs=args.epochs,
        samples=args.samples,
        device=args.device,
        data_dir=args.data_dir,
    )
    front = set(rep["pareto"])
    print(f"sweep of {rep['model']} on {rep['dataset']}: {len(rep['points'])} points, {rep['wall_s']:.0f} s")
    for i, p in enumerate(rep["points"]):
        e = p["energy"][SNN_TARGET]
        print(
            f"  T {p['steps']:>4} {p['encoding']:<8} penalty {p['spike_rate_penalty']:<6g} accuracy "
            f"{100 * p['accuracy']:6.2f} %  {SNN_TARGET} {e['low']['nj']:.3f}-{e['high']['nj']:.3f} nJ"
            + ("  (Pareto)" if i in front else "")
        )
    print(f"ANN twin: accuracy {100 * rep['ann_twin']['accuracy']:.2f} %")
    print(f"wrote {Path(args.out) / 'sweep.json'}, report.md, report.html")
    return EXIT_OK


def cmd_network(args) -> int:
    from .report.network import run_network

    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    from .backends import get_backend

    for n in names:
        get_backend(n)
    rep = run_network(args.config, args.out, names)
    for b, r in rep["backends"].items():
        agree = r[f"spike_agreement_with_{names[0]}"]
        print(f"  {b:<11} {r['firing_rate_hz']:.2f} Hz, {r['spikes']} spikes, agreement with {names[0]} {agree:.6f}")
    print(f"wrote {Path(args.out) / 'report.html'}, network.json")
    return EXIT_OK


def cmd_convert(args) -> int:
    from .train.convert import convert_cli

    return convert_cli(args)


COMMANDS = {
    "convert": cmd_convert,
    "sweep": cmd_sweep,
    "network": cmd_network,
    "export": cmd_export,
    "qat": cmd_qat,
    "train": cmd_train,
    "run": cmd_run,
    "compare": cmd_compare,
    "demo": cmd_demo,
    "energy": cmd_energy,
}


#: what each command's --out names: checked before any work (a typo must not cost hours of Lava)
OUT_KINDS = {
    "train": "dir",
    "qat": "dir",
    "compare": "dir",
    "demo": "dir",
    "run": "file",
    "export": "file",
    "convert": "dir",
    "sweep": "dir",
    "network": "dir",
}


def _check_out(args) -> None:
    from .util.files import check_out_dir, check_out_file

    kind = OUT_KINDS.get(args.cmd)
    if kind == "dir":
        check_out_dir(args.out)
    elif kind == "file":
        check_out_file(args.out)
    if getattr(args, "junit", None) is not None:
        check_out_file(args.junit, option="--junit")


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; the exit code means one thing (see :mod:`snndeploy.errors`)."""
    import warnings

    # Norse 1.1.0 calls torch.jit.script at import, which torch now deprecates: noise, not news.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
    args = _parser().parse_args(argv)
    old_term = _raise_on_sigterm()
    try:
        _check_out(args)
        return COMMANDS[args.cmd](args)
    except BackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except SnnDeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted (SIGINT); nothing half-written was left", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Interrupted as exc:
        print(f"error: {exc}; nothing half-written was left", file=sys.stderr)
        return 128 + exc.signum
    except Exception as exc:  # a bug or an input no check caught: never a bare traceback with exit 1
        if args.debug:
            traceback.print_exc()
        where = "" if args.debug else " (run with --debug for the traceback)"
        print(f"error: unexpected {type(exc).__name__} in '{args.cmd}': {exc}{where}", file=sys.stderr)
        return EXIT_RUNTIME
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _raise_on_sigterm():
    """SIGTERM raises :class:`Interrupted` (so clean-up runs, exit 143) instead of killing outright;
    returns the previous handler (None off the main thread, where handlers cannot be set)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise Interrupted(signum)

    return signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":
    sys.exit(main())
