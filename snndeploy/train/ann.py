"""The ANN twin of a model config: the same layers with ReLU in place of the spiking neurons.

``train_ann_twin(cfg, ds, out_dir, dev, quiet) -> (metrics, path)`` builds the SNN that ``model.arch``
names (only for its layer list), copies its stateless layers (Linear, Conv2d, AvgPool2d, Flatten) with
their shapes, puts ``nn.ReLU`` where the SNN has a neuron layer and nothing after the last weighted
layer (its output are the logits). It trains this with the SNN's optimizer (:func:`make_optimizer`),
learning-rate schedule, batch size, epochs, augmentations and seed on cross-entropy, exports it to
``ann.onnx`` (ONNX opset 17, batch axis dynamic) and measures it with onnxruntime on the whole test split.

Input: the image scaled as the SNN's input carries it per time step (:data:`INPUT_SCALINGS`), e.g. the
spike probability ``clip(max_prob * x, 0, 1)`` of a Poisson code -- the ONNX model takes that, shaped
like the SNN's input (flat for an MLP, (C, H, W) for a conv net); the rule is written into the ONNX
metadata (``snndeploy.input``) and into the metrics (``input``).

Initialisation is PyTorch's default for each layer, drawn after ``torch.manual_seed(train.seed)``:
``model.init_gain`` scales the SNN's weights for spike rates and would blow up a ReLU network's
activations. No Lava import here.
"""

from __future__ import annotations

import io
import sys
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict, Tuple

import numpy as np

from ..errors import BackendError, InputError
from ..util.files import write_bytes
from .config import config_hash
from .loop import augmentations, autocast, lr_for_epoch, make_optimizer

#: the file the twin is written to, inside the training run's folder
ONNX_NAME = "ann.onnx"
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME, BATCH_AXIS = "x", "logits", "batch"
#: batch size of the evaluation runs (torch and onnxruntime); the last batch is smaller
EVAL_BATCH = 256
#: torch and onnxruntime may disagree on at most this fraction of the test predictions (float noise)
MAX_DISAGREEMENT = 1e-3
ORT_PROVIDERS = ["CPUExecutionProvider"]

#: encoding kind -> (x, enc) -> the twin's input, and how it is described: the per-step input the SNN
#: sees on average (its rate, its constant current), or the intensity itself where there is no rate
INPUT_SCALINGS: Dict[str, Tuple[Callable[[np.ndarray, dict], np.ndarray], str]] = {
    "poisson": (
        lambda x, e: np.clip(x * e.get("max_prob", 1.0), 0.0, 1.0),
        "clip(max_prob * x, 0, 1) with max_prob {max_prob}: the Poisson code's spike probability per step",
    ),
    "direct": (lambda x, e: x * e.get("scale", 1.0), "scale * x with scale {scale}: the direct code's input per step"),
    "noisy_repeat": (
        lambda x, e: x * e.get("keep", 0.8),
        "keep * x with keep {keep}: the noisy-repeat code's expected input per step",
    ),
    "latency": (lambda x, e: x, "x: the intensity the latency code turns into a spike time (it has no rate)"),
}
ENCODING_DEFAULTS = {"max_prob": 1.0, "scale": 1.0, "keep": 0.8}


def twin_input(x: np.ndarray, enc: dict) -> Tuple[np.ndarray, str]:
    """The twin's float32 input for intensities ``x`` under the SNN's encoding ``enc``, and the rule in words."""
    kind = enc.get("kind")
    if kind not in INPUT_SCALINGS:
        raise InputError(f"ANN twin: encoding kind '{kind}' has no input scaling; known: {', '.join(INPUT_SCALINGS)}")
    fn, rule = INPUT_SCALINGS[kind]
    return fn(np.asarray(x, dtype=np.float32), enc).astype(np.float32), rule.format(**{**ENCODING_DEFAULTS, **enc})


def _is_stateless(m) -> bool:
    from torch import nn

    return isinstance(m, (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.Flatten))


def _relu_name(name: str) -> str:
    """``lif3`` / ``li4`` / ``gn1`` -> ``relu3`` / ``relu4`` / ``relu1``: the layer's number kept."""
    return "relu" + name.lstrip("abcdefghijklmnopqrstuvwxyz_")


def build_twin(cfg: dict, in_shape, n_classes: int):
    """(the ReLU twin as an ``nn.Sequential`` with the SNN's layer names, the SNN's input shape)."""
    import copy

    import torch
    from torch import nn

    from .networks import ARCHITECTURES, _is_neuron

    snn = ARCHITECTURES[cfg["model"]["arch"]](cfg, in_shape, n_classes)
    names = list(snn.layers)
    last_weighted = max(i for i, n in enumerate(names) if isinstance(snn.layers[n], (nn.Linear, nn.Conv2d)))
    layers: Dict[str, nn.Module] = OrderedDict()
    for i, name in enumerate(names):
        m = snn.layers[name]
        if _is_stateless(m):
            layers[name] = copy.deepcopy(m)
        elif not _is_neuron(m):
            raise InputError(f"ANN twin: layer '{name}' ({type(m).__name__}) is neither a known layer nor a neuron")
        elif i < last_weighted:  # a neuron after the last weighted layer: none, the logits are the output
            layers[_relu_name(name)] = nn.ReLU()
    twin = nn.Sequential(layers)
    torch.manual_seed(cfg["train"]["seed"])
    for m in twin:
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()  # PyTorch's default initialisation, not the SNN's spike-rate gains
    return twin, tuple(snn.input_shape)


def _layer_text(name: str, m) -> str:
    from torch import nn

    if isinstance(m, nn.Linear):
        return f"{name} Linear({m.in_features}->{m.out_features})"
    if isinstance(m, nn.Conv2d):
        k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
        return f"{name} Conv2d({m.in_channels}->{m.out_channels}, k{k}, s{s}, p{p})"
    if isinstance(m, nn.AvgPool2d):
        return f"{name} AvgPool2d({m.kernel_size})"
    return f"{name} {type(m).__name__}"


def describe(twin, in_shape) -> str:
    """The layers in one line: ``input (64,) -> fc1 Linear(64->128) -> relu1 ReLU -> fc2 Linear(128->10) (logits)``."""
    parts = [f"input {tuple(in_shape)}"] + [_layer_text(n, m) for n, m in twin.named_children()]
    return " -> ".join(parts) + " (logits)"


def _epoch(step, x, y, batch_size: int, gen, augment) -> Tuple[float, float]:
    """One pass in seeded random order (as the SNN's epoch: permutation, then augmentations, from ``gen``)."""
    import torch

    perm = torch.randperm(len(x), generator=gen, device=x.device)
    tot_loss = torch.zeros((), device=x.device)
    tot_ok = torch.zeros((), device=x.device, dtype=torch.long)
    for i in range(0, len(x), batch_size):
        idx = perm[i : i + batch_size]
        xb = x[idx]
        for aug in augment:
            xb = aug(xb, gen)
        loss, ok = step(xb, y[idx])
        tot_loss += loss * len(idx)
        tot_ok += ok
    return float(tot_loss) / len(x), int(tot_ok) / len(x)


def _make_step(model, opt, dev: str, amp: bool):
    """Forward (bf16 autocast on CUDA when ``amp``), cross-entropy on the logits, optimizer step."""
    import torch

    def step(xb, yb):
        with autocast(dev, amp):
            logits = model(xb).float()
        loss = torch.nn.functional.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach(), (logits.argmax(1) == yb).sum()

    return step


def fit(cfg: dict, model, x_train: np.ndarray, y_train: np.ndarray, dev: str, quiet: bool) -> list:
    """Train ``model`` in place on the device with the SNN's training settings; the per-epoch history."""
    import torch
    from tqdm import tqdm

    tcfg = cfg["train"]
    opt = make_optimizer(model.parameters(), tcfg)
    gen = torch.Generator(device=dev).manual_seed(tcfg["seed"])
    x, y = torch.as_tensor(x_train, device=dev), torch.as_tensor(y_train, device=dev)
    augment = augmentations(tcfg, tuple(x.shape[1:]))
    step = _make_step(model, opt, dev, bool(tcfg.get("amp", True)) and dev == "cuda")
    history = []
    for epoch in tqdm(range(tcfg["epochs"]), desc=f"ANN twin {cfg['name']} on {dev}", disable=quiet, file=sys.stderr):
        model.train()
        for group in opt.param_groups:
            group["lr"] = lr_for_epoch(tcfg, epoch)
        loss, acc = _epoch(step, x, y, tcfg["batch_size"], gen, augment)
        history.append({"epoch": epoch + 1, "loss": loss, "train_accuracy": acc})
    return history


def export_onnx(model, in_shape, metadata: Dict[str, str]) -> bytes:
    """The model (on the CPU, float32, eval mode) as ONNX bytes, batch axis dynamic, ``metadata`` attached.

    The legacy TorchScript exporter (``dynamo=False``): the default dynamo exporter needs ``onnxscript``,
    which is not a dependency. Its deprecation warnings are silenced here."""
    import onnx
    import torch

    buf = io.BytesIO()
    example = torch.zeros((2,) + tuple(in_shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based ONNX export"
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.script is deprecated", from inside the exporter
        torch.onnx.export(
            model.cpu().float().eval(),
            (example,),
            buf,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=ONNX_OPSET,
            dynamic_axes={INPUT_NAME: {0: BATCH_AXIS}, OUTPUT_NAME: {0: BATCH_AXIS}},
            dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def torch_predictions(model, x: np.ndarray) -> np.ndarray:
    """Argmax of the logits, float32 on the CPU, in batches of :data:`EVAL_BATCH`."""
    import torch

    model = model.cpu().float().eval()
    with torch.no_grad():
        return np.concatenate(
            [model(torch.as_tensor(x[i : i + EVAL_BATCH])).argmax(1).numpy() for i in range(0, len(x), EVAL_BATCH)]
        )


def onnx_predictions(path: Path, x: np.ndarray) -> np.ndarray:
    """Argmax of the logits onnxruntime computes from the ONNX file, in batches of :data:`EVAL_BATCH`."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=ORT_PROVIDERS)
    return np.concatenate(
        [
            sess.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + EVAL_BATCH]})[0].argmax(1)
            for i in range(0, len(x), EVAL_BATCH)
        ]
    )


def check_agreement(torch_pred: np.ndarray, ort_pred: np.ndarray) -> None:
    """Torch and onnxruntime must predict alike but for float noise: at most :data:`MAX_DISAGREEMENT`."""
    differ = int((torch_pred != ort_pred).sum())
    if differ > MAX_DISAGREEMENT * len(torch_pred):
        raise BackendError(
            f"ANN twin: onnxruntime and torch predict differently on {differ} of {len(torch_pred)} test samples "
            f"(at most {MAX_DISAGREEMENT:g} of them may differ by float noise): the ONNX export is not faithful"
        )


def train_ann_twin(cfg: dict, ds, out_dir, dev: str, quiet: bool) -> Tuple[dict, Path]:
    """Train, export and measure the ReLU twin of ``cfg`` on ``ds``: (metrics, path of ``ann.onnx``)."""
    import torch

    twin, in_shape = build_twin(cfg, ds.shape, ds.n_classes)
    x_train, rule = twin_input(ds.x_train.reshape((len(ds.x_train),) + in_shape), cfg["encoding"])
    x_test, _ = twin_input(ds.x_test.reshape((len(ds.x_test),) + in_shape), cfg["encoding"])
    start = time.perf_counter()
    history = fit(cfg, twin.to(dev), x_train, ds.y_train, dev, quiet)
    wall = time.perf_counter() - start
    meta = {"snndeploy.input": rule, "snndeploy.model": cfg["name"], "snndeploy.config_hash": config_hash(cfg)}
    path = write_bytes(Path(out_dir) / ONNX_NAME, export_onnx(twin, in_shape, meta))
    torch_pred, ort_pred = torch_predictions(twin, x_test), onnx_predictions(path, x_test)
    check_agreement(torch_pred, ort_pred)
    n = len(ds.y_test)
    metrics = {
        "test_accuracy": float((ort_pred == ds.y_test).mean()),
        "torch_test_accuracy": float((torch_pred == ds.y_test).mean()),
        "test_samples": n,
        "train_wall_s": wall,
        "epochs": cfg["train"]["epochs"],
        "parameters": sum(p.numel() for p in twin.parameters() if p.requires_grad),
        "train_accuracy_last_epoch": history[-1]["train_accuracy"],
        "history": history,
        "onnx": ONNX_NAME,
        "input": rule,
        "architecture": describe(twin, in_shape),
        "torch": torch.__version__,
        "how": f"test accuracy: argmax of the logits that onnxruntime ({ORT_PROVIDERS[0]}) computes from {ONNX_NAME} "
        f"(float32) on all {n} test samples; the ReLU twin trained from scratch on the same data, epochs, optimizer "
        f"and seed as the SNN (cross-entropy on logits); input = {rule.split(':')[0]}",
    }
    return metrics, path
