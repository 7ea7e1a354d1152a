"""Training in Norse: ``train(cfg, out_dir) -> (metrics, artifacts)``. No Lava import.

Writes ``checkpoint.pt`` (state dict + resolved config), ``metrics.json`` and
``model.nir`` (our exporter; dt and encoding in metadata) into ``out_dir``,
each atomically.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from ..data.datasets import dataset_for_config
from ..data.encoding import encode
from ..errors import InputError
from ..util.files import atomic_path, write_json
from .config import config_hash


def save_checkpoint(path: Path, obj) -> None:
    """``torch.save`` through the project's one atomic write."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _poisson_torch(x, steps: int, max_prob: float, gen):
    import torch

    p = (x * max_prob).clamp(0, 1)
    return (torch.rand((steps,) + tuple(p.shape), generator=gen, device=p.device) < p).to(x.dtype)


def encode_batch(x, enc: dict, gen):
    """Training-time encoding of a device batch (B, *shape) -> (T, B, *shape)."""
    import torch

    if enc["kind"] == "poisson":  # drawn on the device; same distribution as encoding.poisson
        return _poisson_torch(x, enc["steps"], enc.get("max_prob", 1.0), gen)
    if enc["kind"] == "direct":  # deterministic: x (times scale) every step, without a host round trip
        return (x * enc.get("scale", 1.0)).unsqueeze(0).expand((enc["steps"],) + tuple(x.shape)).contiguous()
    seed_b = int(torch.randint(0, 2**31 - 1, (1,), generator=gen, device=x.device))
    return torch.as_tensor(encode(x.cpu().numpy(), {**enc, "seed": seed_b}), device=x.device).transpose(0, 1)


def autocast(device: str, amp: bool):
    """bf16 autocast on CUDA for matmuls/convs when ``amp``; a no-op context otherwise."""
    import contextlib

    import torch

    if amp and device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def evaluate(model, x_enc: np.ndarray, y: np.ndarray, device: str, batch: int = 256, amp: bool = False) -> float:
    """Accuracy on pre-encoded inputs (n, T, *shape): argmax of the output summed over time (spike
    counts, or the LI readout's summed membrane potential), as the harness predicts."""
    import torch

    correct = 0
    model.eval()
    with torch.no_grad(), autocast(device, amp):
        for i in range(0, len(x_enc), batch):
            xb = torch.as_tensor(x_enc[i : i + batch], device=device).transpose(0, 1)
            pred = model(xb).sum(0).argmax(1).cpu().numpy()
            correct += int((pred == y[i : i + batch]).sum())
    return correct / len(x_enc)


#: learning-rate schedules by name: (base lr, epoch index, total epochs) -> lr of that epoch
LR_SCHEDULES = {
    "constant": lambda lr, e, n: lr,
    "cosine": lambda lr, e, n: lr * 0.5 * (1.0 + math.cos(math.pi * e / max(n, 1))),
}


def lr_for_epoch(tcfg: dict, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based): a pure function of the config, so resume needs no state."""
    name = tcfg.get("lr_schedule", "constant")
    if name not in LR_SCHEDULES:
        raise InputError(f"train.lr_schedule '{name}' unknown; available: {', '.join(LR_SCHEDULES)}")
    return LR_SCHEDULES[name](float(tcfg["lr"]), epoch, int(tcfg["epochs"]))


def hflip(xb, gen):
    """Mirror a seeded random half of the images left-right (last axis); (B, ..., W) -> same shape."""
    import torch

    flip = torch.rand(len(xb), generator=gen, device=xb.device) < 0.5
    return torch.where(flip.view((-1,) + (1,) * (xb.dim() - 1)), xb.flip(-1), xb)


#: largest translation of the "shift" augmentation, in pixels along each image axis
SHIFT_MAX_PIXELS = 2


def shift(xb, gen, max_pixels: int = SHIFT_MAX_PIXELS):
    """Translate each image by its own seeded random offset in [-max_pixels, max_pixels] along each of the
    last two axes, filling with zeros; (B, ..., H, W) -> same shape."""
    import torch

    m = int(max_pixels)
    h, w = xb.shape[-2:]
    padded = torch.nn.functional.pad(xb, (m, m, m, m))
    b = len(xb)
    dy = torch.randint(0, 2 * m + 1, (b,), generator=gen, device=xb.device)
    dx = torch.randint(0, 2 * m + 1, (b,), generator=gen, device=xb.device)
    rows = torch.arange(h, device=xb.device)[None, :] + dy[:, None]  # (B, H) rows of the padded image
    cols = torch.arange(w, device=xb.device)[None, :] + dx[:, None]  # (B, W)
    flat = padded.reshape(b, -1, h + 2 * m, w + 2 * m)
    out = flat[
        torch.arange(b, device=xb.device)[:, None, None, None],
        torch.arange(flat.shape[1], device=xb.device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    return out.reshape(xb.shape)


#: training-set augmentations by name (``train.augment = [...]``): (batch, generator) -> batch
AUGMENTATIONS = {"hflip": hflip, "shift": shift}


def augmentations(tcfg: dict, in_shape) -> list:
    names = list(tcfg.get("augment", []))
    for n in names:
        if n not in AUGMENTATIONS:
            raise InputError(f"train.augment '{n}' unknown; available: {', '.join(AUGMENTATIONS)}")
    if names and len(in_shape) < 2:
        raise InputError(f"train.augment {names} needs image input (C, H, W); this model's input is {tuple(in_shape)}")
    return [AUGMENTATIONS[n] for n in names]


def train_epoch(step, x, y, enc: dict, batch_size: int, gen, augment=()) -> Tuple[float, float]:
    """One pass over (x, y) on the device in seeded random order; returns (mean loss, accuracy)."""
    import torch

    perm = torch.randperm(len(x), generator=gen, device=x.device)
    tot_loss = torch.zeros((), device=x.device)
    tot_ok = torch.zeros((), device=x.device, dtype=torch.long)
    for i in range(0, len(x), batch_size):
        idx = perm[i : i + batch_size]
        xb = x[idx]
        for aug in augment:
            xb = aug(xb, gen)
        if enc["kind"] == "direct":  # constant input: the model runs its first stateless layers once
            loss, ok = step(xb * enc.get("scale", 1.0), y[idx], enc["steps"])
        else:
            loss, ok = step(encode_batch(xb, enc, gen), y[idx])
        tot_loss += loss * len(idx)
        tot_ok += ok
    return float(tot_loss) / len(x), int(tot_ok) / len(x)  # one host sync per epoch


def make_step(model, opt, device: str, amp: bool, compile_model: bool, spike_rate_penalty: float = 0.0):
    """The training step: forward (optionally compiled, bf16 autocast), CE on the output summed over
    time (spike counts, or the LI readout's summed membrane potential), plus ``spike_rate_penalty``
    times the mean spike rate of the spiking layers (``train.spike_rate_penalty``: fewer spikes, less
    energy), Adam."""
    import torch

    fwd = torch.compile(model) if compile_model else model

    def step(spikes, labels, steps=None):
        with autocast(device, amp):
            counts = fwd(spikes, steps).sum(0).float()
        loss = torch.nn.functional.cross_entropy(counts, labels)
        rate = getattr(model, "spike_rate", None)
        if spike_rate_penalty and rate is not None:
            loss = loss + spike_rate_penalty * rate.float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach(), (counts.argmax(1) == labels).sum()

    return step


def make_optimizer(params, tcfg: dict):
    """Adam; AdamW (decoupled weight decay, Loshchilov & Hutter) when ``train.weight_decay`` > 0."""
    import torch

    wd = tcfg.get("weight_decay", 0.0)
    if isinstance(wd, bool) or not isinstance(wd, (int, float)) or not 0 <= wd < math.inf:
        raise InputError(f"train.weight_decay must be a finite number >= 0, got {wd!r}")
    if wd > 0:
        return torch.optim.AdamW(params, lr=tcfg["lr"], weight_decay=float(wd))
    return torch.optim.Adam(params, lr=tcfg["lr"])


def resolve_config(cfg: dict, epochs: Optional[int] = None, seed: Optional[int] = None) -> dict:
    """A resolved copy of ``cfg`` with the command line's epochs and seed; epochs, learning rate and
    architecture checked (an untrained model is never written)."""
    from .networks import ARCHITECTURES

    cfg = json.loads(json.dumps(cfg))
    if epochs is not None:
        cfg["train"]["epochs"] = epochs
    if seed is not None:
        cfg["train"]["seed"] = int(seed)
    n = cfg["train"].get("epochs")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"train.epochs (or --epochs) must be a whole number >= 1, got {n!r}")
    lr = cfg["train"].get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise InputError(f"train.lr must be a finite number > 0, got {lr!r}")
    arch = cfg["model"].get("arch")
    if arch not in ARCHITECTURES:
        raise InputError(f"model.arch '{arch}' unknown; available: {', '.join(ARCHITECTURES)}")
    return cfg


def _resume_hash(cfg: dict) -> str:
    """More epochs may be asked for on resume, unless the schedule depends on the total."""
    tcfg = cfg["train"]
    extendable = tcfg.get("lr_schedule", "constant") == "constant"
    return config_hash({**cfg, "train": {**tcfg, "epochs": None if extendable else tcfg["epochs"]}})


def _resume(ckpt_path: Path, cfg: dict, model, opt, gen) -> Tuple[list, int]:
    """Load model, optimizer and generator state from a checkpoint of the same config: (history, epoch)."""
    import torch

    saved = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    if saved.get("resume_hash") != _resume_hash(cfg):
        raise InputError(f"cannot resume from {ckpt_path}: it was trained with another config")
    model.load_state_dict(saved["state_dict"])
    opt.load_state_dict(saved["optimizer"])
    gen.set_state(saved["generator"])
    return saved["history"], saved["epoch"]


def _fit(cfg: dict, model, opt, gen, data, history: list, first_epoch: int, ckpt_path: Path, dev: str, quiet: bool):
    """The epochs from ``first_epoch`` on, a checkpoint after each; ``history`` grows in place."""
    from tqdm import tqdm

    tcfg = cfg["train"]
    xtr, ytr = data
    amp = bool(tcfg.get("amp", True)) and dev == "cuda"
    augment = augmentations(tcfg, tuple(model.input_shape))
    penalty = tcfg.get("spike_rate_penalty", 0.0)
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not 0 <= penalty < math.inf:
        raise InputError(f"train.spike_rate_penalty must be a finite number >= 0, got {penalty!r}")
    step = make_step(model, opt, dev, amp, bool(tcfg.get("compile", False)), float(penalty))
    bar = tqdm(
        range(first_epoch, tcfg["epochs"]),
        desc=f"train {cfg['name']} on {dev}",
        disable=quiet,
        file=sys.stderr,
        mininterval=0.5 if sys.stderr.isatty() else 10.0,
    )
    for epoch in bar:
        began = time.perf_counter()
        model.train()
        for group in opt.param_groups:
            group["lr"] = lr_for_epoch(tcfg, epoch)
        loss, acc = train_epoch(step, xtr, ytr, cfg["encoding"], tcfg["batch_size"], gen, augment)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": loss,
                "train_accuracy": acc,
                "lr": opt.param_groups[0]["lr"],
                "wall_s": time.perf_counter() - began,
            }
        )
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.3f}")
        save_checkpoint(
            ckpt_path,
            {
                "state_dict": model.state_dict(),
                "optimizer": opt.state_dict(),
                "generator": gen.get_state(),
                "epoch": epoch + 1,
                "history": history,
                "config": cfg,
                "config_hash": config_hash(cfg),
                "resume_hash": _resume_hash(cfg),
            },
        )
    return amp


def _metrics(
    cfg: dict, dev: str, test_acc: float, n_test: int, n_train: int, history: list, trained: int, wall: float, amp: bool
) -> dict:
    import torch

    from .networks import READOUTS, readout_kind

    tcfg = cfg["train"]
    return {
        "model": cfg["name"],
        "dataset": cfg["dataset"],
        "device": dev,
        "epochs": tcfg["epochs"],
        "test_accuracy": test_acc,
        "test_samples": n_test,
        "train_accuracy_last_epoch": history[-1]["train_accuracy"] if history else None,
        # every epoch's time, also those of earlier runs this one resumed (where their history has it)
        "train_wall_s": sum(h["wall_s"] for h in history) if all("wall_s" in h for h in history) else wall,
        "train_wall_s_this_run": wall,
        # False where an earlier run's epochs have no time in the checkpoint: train_wall_s is this run's only
        "train_wall_s_complete": all("wall_s" in h for h in history),
        "amp_bf16": amp,
        "compiled": bool(tcfg.get("compile", False)),
        "train_samples_per_s": trained * n_train / wall if trained else None,
        "history": history,
        "config_hash": config_hash(cfg),
        "torch": torch.__version__,
        "readout": readout_kind(cfg),
        "how": f"test accuracy: {READOUTS[readout_kind(cfg)]}, of the trained Norse model (float32) on the "
        "test split, encoded with the stored seeded encoding",
    }


def train(
    cfg: dict,
    out_dir,
    device: str = "auto",
    epochs: Optional[int] = None,
    seed: Optional[int] = None,
    data_dir: Optional[str] = None,
    quiet: bool = False,
    resume: bool = False,
    ann_twin: bool = False,
) -> Tuple[Dict, Dict[str, Path]]:
    """Train, checkpoint every epoch (``resume`` continues from it), evaluate, export; ``ann_twin``: also
    train the same architecture with ReLU (:mod:`snndeploy.train.ann`, metrics under ``ann_twin``)."""
    import torch

    from ..frontends.norse import to_nir
    from ..ir.graph import save_graph
    from ..util.device import resolve_device
    from .networks import ARCHITECTURES

    cfg = resolve_config(cfg, epochs, seed)
    dev = resolve_device(device)
    ds = dataset_for_config(cfg, data_dir)
    out_dir = Path(out_dir)
    tcfg, enc = cfg["train"], cfg["encoding"]
    torch.manual_seed(tcfg["seed"])
    model = ARCHITECTURES[cfg["model"]["arch"]](cfg, ds.shape, ds.n_classes).to(dev)
    in_shape = tuple(model.input_shape)
    opt = make_optimizer(model.parameters(), tcfg)
    gen = torch.Generator(device=dev).manual_seed(tcfg["seed"])
    ckpt_path = out_dir / "checkpoint.pt"
    history, first_epoch = _resume(ckpt_path, cfg, model, opt, gen) if resume and ckpt_path.is_file() else ([], 0)
    # the whole training set stays on the device (Fashion-MNIST: 188 MB as float32)
    data = (
        torch.as_tensor(ds.x_train.reshape((len(ds.x_train),) + in_shape), device=dev),
        torch.as_tensor(ds.y_train, device=dev),
    )
    start = time.perf_counter()
    amp = _fit(cfg, model, opt, gen, data, history, first_epoch, ckpt_path, dev, quiet)
    wall = time.perf_counter() - start
    x_test_enc = encode(ds.x_test.reshape((len(ds.x_test),) + in_shape), enc)
    test_acc = evaluate(model, x_test_enc, ds.y_test, dev, amp=False)
    metrics = _metrics(
        cfg, dev, test_acc, int(len(ds.y_test)), len(ds.x_train), history, tcfg["epochs"] - first_epoch, wall, amp
    )
    graph_cfg = {
        "model": cfg["name"],
        "dataset": cfg["dataset"],
        "encoding": enc,
        "readout": cfg.get("readout", {"kind": "spike_count"}),
        "config_hash": config_hash(cfg),
    }
    artifacts = {"checkpoint": ckpt_path, "metrics": out_dir / "metrics.json", "graph": out_dir / "model.nir"}
    if ann_twin:
        from .ann import train_ann_twin

        metrics["ann_twin"], artifacts["ann"] = train_ann_twin(cfg, ds, out_dir, dev, quiet)
    write_json(artifacts["metrics"], metrics)
    # export last: a model NIR cannot express is trained and saved, then refused with the reason
    save_graph(to_nir(model.cpu(), in_shape, cfg["dt"], graph_cfg), artifacts["graph"])
    return metrics, artifacts
