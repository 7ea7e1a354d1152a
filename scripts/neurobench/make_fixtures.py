"""NeuroBench 2.3.0 reference figures for two small snnTorch networks, and the same networks as NIR.

Run inside build/neurobench-venv (scripts/neurobench_counts.sh creates it); not imported by the tests.

For each model (``mlp``: 64-32-10, ``cnn``: Conv2d-Leaky-AvgPool2d-Flatten-Linear-Leaky), all
snnTorch ``Leaky`` with ``reset_mechanism="zero"``, ``reset_delay=False`` (the NIR-expressible
variant, see tests/fixtures/peers/manifest.json ``*_zero``), seeded weights (some pruned to zero),
seeded Bernoulli spike input, and a third fixture ``mlp_graded`` (the mlp network, same mlp.nir, on an
input with 0.5 and +-1 entries at some steps, where NeuroBench's per-step AC/MAC decision differs from
ours), it writes into tests/fixtures/neurobench/:

  <net>.nir    snnTorch's own ``export_to_nir`` (dt = 1e-4 is the exporter's), written with nir.write
  <name>.npz   input (batch, time, ...) and spikes__<NIR node> (batch, time, ...) for every Leaky layer
               (the last one is the output): the spikes snnTorch produced inside NeuroBench's own run
               (NeuroBench's activation hooks); 0/1 stored as uint8 (mlp_graded's input: float32)
  <name>.json  NeuroBench's figures exactly as ``Benchmark.run`` returns them, per sample (one run per
               sample, batch size 1) and for the whole batch (one run, batch size B); a per-layer
               breakdown made with NeuroBench's own ``single_layer_MACs`` on NeuroBench's own hook
               records (checked here to add up to SynapticOperations); versions; the metric
               definitions with file:line in the installed NeuroBench source.

Deterministic: fixed seeds, CPU, torch.use_deterministic_algorithms(True), PYTHONHASHSEED=0.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import inspect
import io
import json
import os
import platform
import re
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fixtures" / "neurobench"

SEED = 2024
B, T = 6, 25
B_GRADED = 4
IN_RATE = 0.2
BETA = 0.9
DT_EXPORTER = 1e-4
PRUNE = 0.25  # fraction of the first layer's weights set to exactly 0 (exercises "non-zero weights")
TARGET = (0.05, 0.25)  # spike-rate window the gain calibration aims each Leaky layer at

warnings.simplefilter("ignore")

import nir  # noqa: E402
import snntorch as snn  # noqa: E402
import snntorch.utils  # noqa: E402
import torch  # noqa: E402
from neurobench.benchmarks import Benchmark  # noqa: E402
from neurobench.metrics.utils.layers import single_layer_MACs  # noqa: E402
from neurobench.metrics.workload import (  # noqa: E402
    ActivationSparsity,
    ActivationSparsityByLayer,
    MembraneUpdates,
    NeuronOperations,
    SynapticOperations,
)
from neurobench.metrics.workload.neuron_operations import neuron_ops_reset_operations  # noqa: E402
from neurobench.models import SNNTorchModel  # noqa: E402
from snntorch.export_nir import export_to_nir  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

WORKLOAD = [SynapticOperations, ActivationSparsity, MembraneUpdates, NeuronOperations, ActivationSparsityByLayer]
STATIC: list = []  # static metrics (ParameterCount, ...) are not compared; left out to keep the fixture small


# --------------------------------------------------------------------------- provenance


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def ref(module: str, pattern: str, nth: int = 0) -> str:
    """'pkg/file.py:LINE' of the nth line of an installed module's source matching pattern."""
    mod = importlib.import_module(module)
    path = Path(inspect.getsourcefile(mod))
    rx = re.compile(pattern)
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if rx.search(line)]
    if len(hits) <= nth:
        raise LookupError(f"pattern {pattern!r} not found in {path}")
    root = Path(inspect.getsourcefile(importlib.import_module(module.split(".")[0]))).parent.parent
    return f"{path.relative_to(root)}:{hits[nth]}"


def definitions() -> list:
    """What each NeuroBench figure is, read from the installed source (file:line computed here)."""
    so, macs, inp, binc = (
        "neurobench.metrics.workload.synaptic_operations",
        "neurobench.metrics.utils.layers.macs",
        "neurobench.metrics.utils.layers.input",
        "neurobench.metrics.utils.layers.binary_copy",
    )
    asp, mu, no = (
        "neurobench.metrics.workload.activation_sparsity",
        "neurobench.metrics.workload.membrane_updates",
        "neurobench.metrics.workload.neuron_operations",
    )
    return [
        {
            "metric": "SynapticOperations",
            "definition": "connection hooks (forward pre-hooks) on every torch Linear/Conv1d/2d/3d and RNN layer "
            "record the layer's input at every forward call (one call per time step); for each recorded input, "
            "single_layer_MACs binarises input (x != 0 -> 1) and weights (w != 0 -> 1), sets the bias to 0, "
            "runs the binary layer and sums its output: effective ops = sum_j [x_j != 0] * (non-zero weights "
            "input j reaches); the call's ops go to Effective_ACs when every entry of THAT call's input (the "
            "whole batch at that step) is in {0, 1, -1}, else to Effective_MACs; Dense runs the same with "
            "input and weights all ones (total=True), i.e. every weight, zero or not, every step, but only the "
            "kernel taps that fall inside the input (zero padding is not counted); each sum is divided by the "
            "number of samples",
            "refs": {
                "hook_inputs_per_forward_call": ref("neurobench.hooks.layer", r"self.inputs.append\(input\)"),
                "hooked_layer_types": ref("neurobench.blocks.layer", r"^STATELESS_LAYERS = \("),
                "per_call_loop": ref(so, r"for spikes in inputs:"),
                "effective_ops": ref(so, r"operations, spiking = single_layer_MACs\(spikes, hook.layer\)"),
                "dense_ops_total_true": ref(so, r"total_ops, _ = single_layer_MACs\(spikes, hook.layer, total=True\)"),
                "ac_if_spiking_else_mac": ref(so, r"if spiking:"),
                "per_sample_division": ref(so, r"ac = self.AC / self.total_samples"),
                "samples_counted_per_batch": ref(so, r"self.total_samples \+= data\[0\].size\(0\)"),
                "spiking_test_0_1_minus1": ref(
                    inp, r"if len\(inputs\[\(inputs != 0\) & \(inputs != 1\) & \(inputs != -1\)\]\) == 0:"
                ),
                "input_binarised": ref(inp, r"inputs\[inputs != 0\] = 1"),
                "input_all_ones_for_dense": ref(inp, r"inputs\[inputs == 0\] = 1", 0),
                "weights_binarised": ref(binc, r"layer_copy.weight.data = binarize_tensor"),
                "bias_not_counted": ref(macs, r"layer_bin.bias.data = torch.zeros_like"),
                "sum_of_binary_layer_output": ref(macs, r"return nr_updates.sum\(\)"),
            },
        },
        {
            "metric": "ActivationSparsity",
            "definition": "over every activation hook (snnTorch SpikingNeuron layers, nn.ReLU, nn.Sigmoid; here the "
            "two Leaky layers) and every recorded step: (entries - non-zero entries) / entries, pooled over "
            "layers, steps and the batch; stateless metric: Benchmark adds result * batch_size / dataset_len",
            "refs": {
                "spiking_neuron_layers_hooked": ref(
                    "neurobench.models.snntorch_models", r"self.add_activation_module\(snn.SpikingNeuron\)"
                ),
                "output_recorded": ref("neurobench.hooks.neuron", r"self.activation_outputs.append\(output\[0\]\)"),
                "count_nonzero": ref(
                    asp, r"spike_num, neuro_num = torch.count_nonzero\(spikes\).item\(\), torch.numel\("
                ),
                "sparsity": ref(asp, r"sparsity = \(total_neuro_num - total_spike_num\) / total_neuro_num"),
                "stateless_accumulation": ref(
                    "neurobench.metrics.manager.workload_manager",
                    r"self.results\[name\] \+= \(result \* batch_size\) / dataset_len",
                ),
            },
        },
        {
            "metric": "MembraneUpdates",
            "definition": "per SpikingNeuron layer: all neurons of the batch at the first step (numel of the first "
            "recorded membrane), plus, for every later step, the neurons whose membrane after the step "
            "(post-reset) differs from the membrane before it (count_nonzero(pre - post)); summed over layers, "
            "divided by the number of samples. A neuron whose membrane stays exactly the same (e.g. 0 -> 0: "
            "reset to 0 by a spike in the previous step and again in this one, or no input) is not counted",
            "refs": {
                "pre_fire_mem_is_layer_mem_before_forward": ref(
                    "neurobench.hooks.neuron", r"self.pre_fire_mem_potential.append\(layer.mem\)"
                ),
                "post_fire_mem_after_forward": ref(
                    "neurobench.hooks.neuron", r"self.post_fire_mem_potential.append\(layer.mem\)"
                ),
                "changed_membranes_after_first_step": ref(
                    mu, r"updates \+= torch.count_nonzero\(pre_fire_mem - post_fire_mem\).item\(\)"
                ),
                "first_step_all_neurons": ref(mu, r"updates \+= hook.post_fire_mem_potential\[0\].numel\(\)"),
                "per_sample_division": ref(mu, r"return total_mem_updates / self.total_samples"),
            },
        },
        {
            "metric": "NeuronOperations",
            "definition": "Effective Neuron Ops = MembraneUpdates' count x ops per update of the neuron type and reset "
            "(Leaky, 'zero': 4); Neuron Dense Ops = neurons x batch x steps x the same factor; per sample",
            "refs": {
                "ops_per_update_table": ref(no, r"^neuron_ops_reset_operations = \{"),
                "effective": ref(no, r"updates \* neuron_ops_reset_operations\[layer_type\]\[reset_mechanism\]"),
                "dense": ref(no, r"\* len\(hook.post_fire_mem_potential\)"),
            },
        },
        {
            "metric": "ActivationSparsityByLayer",
            "definition": "ActivationSparsity per activation hook, keyed by the child module's name",
            "refs": {
                "per_layer": ref(
                    "neurobench.metrics.workload.activation_sparsity_by_layer",
                    r"self.layer_spike_num\[name\] \+= spike_num",
                ),
            },
        },
        {
            "metric": "SNNTorchModel forward",
            "definition": "resets the net, then calls it once per time step on data[:, step]: data is (batch, time, "
            "...); the net must return (spikes, membrane) (last Leaky output=True)",
            "refs": {
                "time_loop": ref("neurobench.models.snntorch_models", r"for step in range\(data.shape\[1\]\):"),
                "reset": ref("neurobench.models.snntorch_models", r"utils.reset\(self.net\)"),
            },
        },
    ]


# --------------------------------------------------------------------------- models


def leaky(shape, output=False):
    return snn.Leaky(
        beta=torch.full(shape, BETA),
        threshold=torch.ones(shape),
        init_hidden=True,
        reset_mechanism="zero",
        reset_delay=False,
        output=output,
    )


def prune_(layer: torch.nn.Module, frac: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mask = torch.rand(layer.weight.shape, generator=gen) < frac
        layer.weight[mask] = 0.0


def build(kind: str, gains):
    torch.manual_seed(SEED)
    if kind == "mlp":
        l1, l2 = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)
        net = torch.nn.Sequential(OrderedDict(fc1=l1, lif1=leaky((32,)), fc2=l2, lif2=leaky((10,), output=True)))
    elif kind == "cnn":
        l1, l2 = torch.nn.Conv2d(2, 8, 3, padding=1), torch.nn.Linear(8 * 4 * 4, 10)
        net = torch.nn.Sequential(
            OrderedDict(
                conv1=l1,
                lif1=leaky((8, 8, 8)),
                pool1=torch.nn.AvgPool2d(2),
                flat=torch.nn.Flatten(),
                fc2=l2,
                lif2=leaky((10,), output=True),
            )
        )
    else:
        raise ValueError(kind)
    with torch.no_grad():
        for layer, g in zip((l1, l2), gains):
            layer.weight.mul_(g)
            layer.bias.mul_(g)
    prune_(l1, PRUNE, SEED + 7)
    net.eval()
    return net


IN_SHAPE = {"mlp": (64,), "cnn": (2, 8, 8)}
#: fixture name -> (network kind, input kind); mlp_graded runs the mlp network (same weights, same mlp.nir)
FIXTURES = {"mlp": ("mlp", "spikes"), "cnn": ("cnn", "spikes"), "mlp_graded": ("mlp", "graded")}
INPUT_DOC = {
    "spikes": f"Bernoulli({IN_RATE}) spikes (0/1)",
    "graded": f"Bernoulli({IN_RATE}) events; value per step t: t % 4 in (0, 2): 1 (spikes); t % 4 == 1: 0.5 "
    "(graded); t % 4 == 3: +1 or -1 (seeded signs; signed spikes)",
}


def seed_of(name: str) -> int:
    return SEED + sum(map(ord, name))


def spike_input(kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed_of(kind))
    return (rng.random((B, T, *IN_SHAPE[kind])) < IN_RATE).astype(np.float32)


def graded_input(kind: str, name: str) -> np.ndarray:
    """Spikes at even steps, 0.5 at steps 1 mod 4, signed +-1 at steps 3 mod 4: NeuroBench decides AC/MAC per
    step ({0, 1, -1} is 'spiking'), snndeploy per layer over the whole run (only {0, 1} is binary)."""
    rng = np.random.default_rng(seed_of(name))
    ev = (rng.random((B_GRADED, T, *IN_SHAPE[kind])) < IN_RATE).astype(np.float32)
    sign = np.where(rng.random(ev.shape) < 0.5, -1.0, 1.0).astype(np.float32)
    t = np.arange(T).reshape(1, T, *([1] * len(IN_SHAPE[kind])))
    return np.where(t % 4 == 1, 0.5 * ev, np.where(t % 4 == 3, sign * ev, ev)).astype(np.float32)


def plain_run(net, x: np.ndarray):
    """snnTorch on its own (no NeuroBench): {leaky name: spikes (B, T, ...)} - a cross-check of the hooks."""
    snntorch.utils.reset(net)
    rec = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o, n=n: rec.setdefault(n, []).append(o[0] if isinstance(o, tuple) else o))
        for n, m in net.named_children()
        if isinstance(m, snn.SpikingNeuron)
    ]
    with torch.no_grad():
        for t in range(x.shape[1]):
            net(torch.from_numpy(x[:, t]))
    for h in hooks:
        h.remove()
    snntorch.utils.reset(net)
    return {n: torch.stack(v, 1).numpy() for n, v in rec.items()}


def calibrate(kind: str, x: np.ndarray):
    gains = [1.0, 1.0]
    for i, layer in enumerate(("lif1", "lif2")):
        step, last = 1.6, 0
        for _ in range(40):
            r = float(plain_run(build(kind, gains), x)[layer].mean())
            if TARGET[0] <= r <= TARGET[1]:
                break
            d = 1 if r < TARGET[0] else -1
            if last and d != last:
                step = step**0.5
            last = d
            gains[i] *= step if d > 0 else 1 / step
        else:
            raise RuntimeError(f"{kind}: calibration of {layer} did not converge")
    return gains


# --------------------------------------------------------------------------- NeuroBench


def bench_run(bench: Benchmark, x: np.ndarray) -> dict:
    """One Benchmark.run over x as a single batch; NeuroBench's results dict, verbatim (floats/ints/dicts)."""
    ds = TensorDataset(torch.from_numpy(x), torch.zeros(x.shape[0], dtype=torch.long))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        res = bench.run(dataloader=DataLoader(ds, batch_size=x.shape[0], shuffle=False))
    text = buf.getvalue()
    if "Error running workload metric" in text:  # NeuroBench swallows metric errors and reports 0.0
        raise RuntimeError(f"a NeuroBench metric failed:\n{text}")
    return json.loads(json.dumps(res))


def per_layer(net, x: np.ndarray, names: dict) -> dict:
    """The per-layer, per-step terms NeuroBench's metrics sum, computed with NeuroBench's own hooks and
    functions (SynapticOperations' loop and MembraneUpdates' formula, one layer at a time), on one batch.

    Returns {nir node: {...}} and the Leaky spikes NeuroBench's activation hooks recorded."""
    model = SNNTorchModel(net)
    model.register_hooks()
    with torch.no_grad():
        model(torch.from_numpy(x))
    out, spikes = {}, {}
    for hook in model.connection_hooks:
        eff, spk, dense = [], [], []
        for inp in hook.inputs:  # one entry per forward call = per time step (synaptic_operations.py loop)
            s = inp[0] if len(inp) == 1 else inp
            ops, spiking = single_layer_MACs(s, hook.layer)
            tot, _ = single_layer_MACs(s, hook.layer, total=True)
            eff.append(int(ops))
            spk.append(bool(spiking))
            dense.append(int(tot))
        out[names[hook.layer]] = {
            "layer": "synapse",
            "torch_module": type(hook.layer).__name__,
            "effective_ops_per_step": eff,
            # "1": single_layer_MACs called this step's input spiking (its ops went to Effective_ACs), "0": MACs
            "spiking_per_step": "".join("1" if b else "0" for b in spk),
            "dense_ops_per_step": dense[0] if len(set(dense)) == 1 else dense,
        }
    for hook in model.activation_hooks:
        pre, post = hook.pre_fire_mem_potential, hook.post_fire_mem_potential
        upd = post[0].numel() + (
            torch.count_nonzero(torch.stack(pre[1:]) - torch.stack(post[1:])).item() if len(pre) > 1 else 0
        )
        s = torch.stack(hook.activation_outputs, 1)
        spikes[names[hook.layer]] = s.numpy()
        out[names[hook.layer]] = {
            "layer": "neuron",
            "torch_module": type(hook.layer).__name__,
            "reset_mechanism": hook.layer._reset_mechanism,
            "membrane_updates": int(upd),
            "numel_all_steps": int(s.numel()),
            "nonzero_outputs": int(torch.count_nonzero(s).item()),
        }
    model.cleanup_hooks()
    return out, spikes


def check_breakdown(kind, layers, res, nb):
    """The per-layer terms must add up to what Benchmark.run reported (else the breakdown is wrong)."""
    syn = [v for v in layers.values() if v["layer"] == "synapse"]
    ac = sum(o for v in syn for o, s in zip(v["effective_ops_per_step"], v["spiking_per_step"]) if s == "1")
    mac = sum(o for v in syn for o, s in zip(v["effective_ops_per_step"], v["spiking_per_step"]) if s == "0")
    dense = sum(d * T if isinstance(d, int) else sum(d) for d in (v["dense_ops_per_step"] for v in syn))
    so = res["SynapticOperations"]
    assert (ac / nb, mac / nb, dense / nb) == (so["Effective_ACs"], so["Effective_MACs"], so["Dense"]), (kind, so)
    neu = [v for v in layers.values() if v["layer"] == "neuron"]
    assert sum(v["membrane_updates"] for v in neu) / nb == res["MembraneUpdates"], kind
    tot, nz = sum(v["numel_all_steps"] for v in neu), sum(v["nonzero_outputs"] for v in neu)
    assert res["ActivationSparsity"] == ((tot - nz) / tot) * nb / nb, kind


def make(name: str) -> dict:
    kind, input_kind = FIXTURES[name]
    gains = calibrate(kind, spike_input(kind))
    net = build(kind, gains)
    x = spike_input(kind) if input_kind == "spikes" else graded_input(kind, name)
    nb = x.shape[0]

    # NIR: snnTorch's own exporter (as tests/fixtures/peers does)
    snntorch.utils.reset(net)
    graph = export_to_nir(net, torch.zeros(1, *IN_SHAPE[kind]), ignore_dims=[0])
    snntorch.utils.reset(net)
    mods = dict(net.named_children())
    names = {}
    for n, m in mods.items():
        nir_name = f"{n}.lif" if f"{n}.lif" in graph.nodes else n
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, snn.SpikingNeuron)):
            assert nir_name in graph.nodes, (n, list(graph.nodes))
            names[m] = nir_name
    nir.write(str(OUT / f"{kind}.nir"), graph)  # mlp_graded rewrites mlp.nir: the same network, the same bytes

    # NeuroBench: one Benchmark, run once per sample (batch size 1) and once on the whole batch
    bench = Benchmark(SNNTorchModel(net), None, [], [], [STATIC, WORKLOAD])
    per_sample = [bench_run(bench, x[i : i + 1]) for i in range(nb)]
    batch = bench_run(bench, x)
    bench.workload_metric_manager.cleanup_hooks(bench.model)

    layers_per_sample = []
    for i in range(nb):
        lay, _ = per_layer(net, x[i : i + 1], names)
        check_breakdown(kind, lay, per_sample[i], 1)
        layers_per_sample.append(lay)
    layers_batch, spikes = per_layer(net, x, names)
    check_breakdown(kind, layers_batch, batch, nb)

    plain = plain_run(net, x)
    for n, m in mods.items():
        if m in names and isinstance(m, snn.SpikingNeuron):
            assert np.array_equal(plain[n], spikes[names[m]]), f"{kind}/{n}: hooks and plain snnTorch run differ"
    rates = {k: round(float(v.mean()), 4) for k, v in spikes.items()}
    assert all(0.01 <= r <= 0.4 for r in rates.values()), rates

    with torch.no_grad():
        snntorch.utils.reset(net)
        out = torch.stack([net(torch.from_numpy(x[:, t]))[0] for t in range(T)], 1).numpy()
        snntorch.utils.reset(net)
    assert np.array_equal(out, spikes[names[mods["lif2"]]]), "the output is the last Leaky's spikes"
    # every array is 0/1: stored as uint8 (the output is spikes__<last Leaky>)
    arrays = {"input": x}
    arrays.update({f"spikes__{k}": v for k, v in spikes.items()})
    assert all(set(np.unique(v)) <= {0.0, 1.0} for k, v in arrays.items() if k != "input" or input_kind == "spikes")
    # spikes are 0/1: stored as uint8; a graded input is stored as float32
    stored = {
        k: v.astype(np.float32 if k == "input" and input_kind != "spikes" else np.uint8) for k, v in arrays.items()
    }
    np.savez_compressed(OUT / f"{name}.npz", **stored)

    leaky_type = "Leaky"
    return {
        "name": name,
        "files": {"nir": f"{kind}.nir", "npz": f"{name}.npz"},
        "versions": {
            "neurobench": version("neurobench"),
            "snntorch": version("snntorch"),
            "torch": version("torch"),
            "nir": version("nir"),
            "nirtorch": version("nirtorch"),
            "numpy": version("numpy"),
            "python": platform.python_version(),
        },
        "install_note": "neurobench 2.3.0 installed with --no-deps: its pins torchaudio (no release matches the CPU "
        "torch used here), tonic, numba and llvmlite are needed only by its datasets and audio preprocessors, "
        "which the metric code path never imports (checked at run time: see imported_modules_check)",
        "imported_modules_check": {m: (m in sys.modules) for m in ("torchaudio", "tonic", "numba")},
        "model": {
            "layers": [f"{n}: {m!r}" for n, m in mods.items()],
            "neuron": "snn.Leaky(beta=0.9 per neuron, threshold=1 per neuron, init_hidden=True, "
            "reset_mechanism='zero', reset_delay=False); last layer output=True (SNNTorchModel needs (spikes, mem))",
            "seed": SEED,
            "batch": nb,
            "steps": T,
            "input_shape": list(IN_SHAPE[kind]),
            "input": f"{INPUT_DOC[input_kind]}, numpy default_rng({seed_of(name if input_kind != 'spikes' else kind)})",
            "gains": gains,
            "first_layer_pruned_fraction": PRUNE,
            "nonzero_weights": {
                names[m]: int((m.weight != 0).sum()) for m in mods.values() if hasattr(m, "weight") and m in names
            },
            "weights": {names[m]: int(m.weight.numel()) for m in mods.values() if hasattr(m, "weight") and m in names},
            "spike_rates": rates,
            "nir_node_of_torch_module": {n: names[m] for n, m in mods.items() if m in names},
            "export_call": "snntorch.export_nir.export_to_nir(net, "
            f"torch.zeros(1, *{IN_SHAPE[kind]}), ignore_dims=[0])",
            "dt_assumed_by_exporter": DT_EXPORTER,
        },
        "neurobench": {
            "metric_list": [[m.__name__ for m in STATIC], [m.__name__ for m in WORKLOAD]],
            "how_run": "Benchmark(SNNTorchModel(net), ...).run(dataloader=DataLoader(TensorDataset(x, zeros), "
            "batch_size=len(x))): per_sample: one run per sample (batch size 1); batch: one run on all samples",
            "neuron_ops_per_update": {leaky_type: neuron_ops_reset_operations[leaky_type]["zero"]},
            "per_sample": per_sample,
            "batch": batch,
        },
        "per_layer": {
            "how": "NeuroBench's own hook records and functions, one layer at a time: synapse layers: "
            "single_layer_MACs(input of each forward call) and (total=True), as SynapticOperations.__call__ does; "
            "neuron layers: MembraneUpdates' formula and ActivationSparsity's counts; checked to add up to the "
            "Benchmark.run figures above",
            "per_sample": layers_per_sample,
            "batch": layers_batch,
        },
        "definitions": definitions(),
    }


def dumps(obj, level: int = 0) -> str:
    """JSON with one-space indentation, lists of scalars kept on one line (keeps the fixture small)."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(str(k))}: {dumps(v, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        return "[\n" + ",\n".join(inner + dumps(v, level + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def main(names):
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        entry = make(name)
        (OUT / f"{name}.json").write_text(dumps(entry) + "\n")
        so = entry["neurobench"]["batch"]["SynapticOperations"]
        print(
            f"wrote tests/fixtures/neurobench/{name}.{{json,npz}} ({entry['files']['nir']}): "
            f"rates {entry['model']['spike_rates']}; "
            f"batch: ACs {so['Effective_ACs']}, MACs {so['Effective_MACs']}, Dense {so['Dense']}, "
            f"sparsity {entry['neurobench']['batch']['ActivationSparsity']:.4f}, "
            f"membrane updates {entry['neurobench']['batch']['MembraneUpdates']}"
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main(sys.argv[1:] or list(FIXTURES))
