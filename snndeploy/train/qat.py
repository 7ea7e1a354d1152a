"""Quantization-aware fine-tuning for Loihi fixed point (straight-through estimator).

A few epochs in which every Linear layer's forward uses its weights snapped to the grid that
:mod:`snndeploy.lower.quantize` will give them on ``lava-fixed`` / ``loihi-emu``::

    step_i = m * 2**(weight_exp + ACT_SHIFT) / (scale_dst * input_scale_i)      (row i)
    W_q    = clip(round_half_away(W / step), k_min, k_max) * step               (forward)
    dW_q/dW = 1                                                                 (backward, STE)

with ``m = 2`` for mixed-sign matrices (Lava drops their lowest bit), ``k`` the 8-bit range of
the matrix's sign mode, and ``scale``/``weight_exp`` re-derived from the current weights by the
real quantizer at the start of every epoch. Thresholds, decays and biases are quantized at
deployment only (their rounding errors are far smaller here: see the quantization report).
Layers that the quantizer composes with others (Conv chains) stay float during fine-tuning.

Accuracy and agreement are measured before and after on the test split, with the float
``norse`` backend and with ``loihi-emu`` (bit-exact with ``lava-fixed``). No Lava import.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from ..errors import InputError


class FakeQuant:
    """A parametrization ``W -> W_q`` on a fixed per-row grid, identity gradient."""

    def __new__(cls, step, k_min: float, k_max: float):
        import torch

        class _FQ(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("step", torch.as_tensor(step, dtype=torch.float32).reshape(-1, 1))
                self.k_min, self.k_max = float(k_min), float(k_max)

            def forward(self, w):
                x = w / self.step
                q = torch.clamp(torch.sign(x) * torch.floor(x.abs() + 0.5), self.k_min, self.k_max) * self.step
                return w + (q - w).detach()

        return _FQ()


def weight_grids(model, build, in_shape, dt: float) -> Dict[str, Tuple[np.ndarray, float, float]]:
    """Per Linear layer name: (row steps, k_min, k_max) of its fixed-point grid right now."""
    from ..frontends.norse import to_nir
    from ..lower.fixed import FIXED_SUPPORTED, quantize_plan
    from ..lower.plan import build_plan
    from ..lower.quantize import ACT_SHIFT, WEIGHT_MAX_SINGLE_SIGN, sign_mode_of

    graph = to_nir(_float_copy(model, build), in_shape, dt)
    plan = build_plan(graph, dt, "loihi-emu", supported=FIXED_SUPPORTED)
    fp = quantize_plan(plan)
    grids = {}
    for fc in fp.conns:
        if fc.via is None or "," in fc.via or fc.via not in model.layers:
            continue
        nl, fn = plan.neurons[fc.dst], fp.neurons[fc.dst]
        mode = sign_mode_of(fc.weight)
        m = 2 if mode == "mixed" else 1
        step = m * 2.0 ** (fc.weight_exp + ACT_SHIFT) / (fn.scale * nl.input_scale)
        k_min = {"mixed": -128, "excitatory": 0, "inhibitory": -WEIGHT_MAX_SINGLE_SIGN}[mode]
        k_max = {"mixed": 127, "excitatory": WEIGHT_MAX_SINGLE_SIGN, "inhibitory": 0}[mode]
        grids[fc.via] = (step, k_min, k_max)
    return grids


def _float_copy(model, build):
    """A plain (unparametrized) CPU copy of ``model`` whose Linear weights are the snapped ones."""
    import torch.nn.utils.parametrize as P

    state = {}
    for k, v in model.state_dict().items():
        if ".parametrizations." not in k:
            state[k] = v.detach().cpu()
    for name, layer in model.layers.items():
        if P.is_parametrized(layer):
            state[f"layers.{name}.weight"] = layer.weight.detach().cpu()
    fresh = build()
    fresh.load_state_dict(state)
    return fresh


def _apply_grids(model, grids) -> None:
    import torch.nn.utils.parametrize as P

    for name, (step, k_min, k_max) in grids.items():
        layer = model.layers[name]
        if P.is_parametrized(layer):
            P.remove_parametrizations(layer, "weight", leave_parametrized=False)
        P.register_parametrization(layer, "weight", FakeQuant(step, k_min, k_max).to(layer.weight.device))


def evaluate_fixed(model, in_shape, cfg, x_enc, y) -> dict:
    """Accuracy of norse (float64) and loihi-emu on the exported graph, and their agreement: on the
    output spikes (``output_spike_agreement``), or for a membrane (LI) readout the largest difference
    of the readout in NIR units (``output_max_abs_diff``; loihi-emu records raw units, converted by
    ``harness.agreement.output_in_nir_units``). ``model`` must be a plain CPU model (``_float_copy``)."""
    from ..backends import get_backend
    from ..frontends.norse import to_nir
    from ..harness.agreement import output_in_nir_units, output_is_graded, predictions
    from ..ir.analysed import analyse

    ag = analyse(to_nir(model, in_shape, cfg["dt"]))
    ref = get_backend("norse").run(ag, x_enc, cfg["dt"]).outputs[ag.output_node]
    emu = output_in_nir_units(ag, get_backend("loihi-emu", record_states=False).run(ag, x_enc, cfg["dt"]))
    pr, pe = predictions(ref), predictions(emu)
    spikes = not output_is_graded(ag)
    return {
        "norse_accuracy": float(np.mean(pr == y)),
        "loihi_emu_accuracy": float(np.mean(pe == y)),
        "prediction_agreement": float(np.mean(pr == pe)),
        "output_spike_agreement": float(np.mean(ref == emu)) if spikes else None,
        "output_max_abs_diff": None if spikes else float(np.max(np.abs(ref - emu), initial=0.0)),
    }


def _check_args(from_dir, epochs, lr) -> Path:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
        raise InputError(f"--epochs must be a whole number >= 1, got {epochs!r}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise InputError(f"--lr must be a finite number > 0, got {lr}")
    ckpt = Path(from_dir) / "checkpoint.pt"
    if not ckpt.is_file():
        raise InputError(f"no checkpoint at {ckpt}; train first (snndeploy train ... --out {from_dir})")
    return ckpt


def _fine_tune(model, build, in_shape, cfg, ds, epochs, lr, dev, quiet) -> list:
    """``epochs`` of training with every Linear snapped to its fixed-point grid (re-read each epoch)."""
    import torch
    from tqdm import tqdm

    from .loop import make_step, train_epoch

    opt = torch.optim.Adam(model.parameters(), lr=lr or cfg["train"]["lr"] / 10)
    gen = torch.Generator(device=dev).manual_seed(cfg["train"]["seed"] + 1)
    xtr = torch.as_tensor(ds.x_train.reshape((len(ds.x_train),) + in_shape), device=dev)
    ytr = torch.as_tensor(ds.y_train, device=dev)
    history = []
    for epoch in tqdm(range(epochs), desc="fixed-point fine-tuning", disable=quiet, file=sys.stderr):
        grids = weight_grids(model, build, in_shape, cfg["dt"])
        _apply_grids(model, grids)
        step = make_step(model, opt, dev, amp=False, compile_model=False)
        loss, acc = train_epoch(step, xtr, ytr, cfg["encoding"], cfg["train"]["batch_size"], gen)
        history.append({"epoch": epoch + 1, "loss": loss, "train_accuracy": acc, "layers": sorted(grids)})
    return history


def finetune(
    from_dir,
    out_dir,
    epochs: int = 3,
    device: str = "auto",
    lr: float | None = None,
    data_dir=None,
    quiet: bool = False,
) -> dict:
    """Load ``from_dir/checkpoint.pt``, fine-tune with fake-quantized weights, export to ``out_dir``."""
    import torch

    from ..data.datasets import dataset_for_config
    from ..data.encoding import encode
    from ..frontends.norse import to_nir
    from ..ir.graph import save_graph
    from ..util.device import resolve_device
    from ..util.files import write_json
    from .config import config_hash
    from .loop import save_checkpoint
    from .networks import ARCHITECTURES

    ckpt = _check_args(from_dir, epochs, lr)
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    cfg = saved["config"]
    dev = resolve_device(device)
    ds = dataset_for_config(cfg, data_dir)

    def build():
        return ARCHITECTURES[cfg["model"]["arch"]](cfg, ds.shape, ds.n_classes)

    model = build()
    model.load_state_dict(saved["state_dict"])
    in_shape = tuple(model.input_shape)
    x_test = encode(ds.x_test.reshape((len(ds.x_test),) + in_shape), cfg["encoding"])
    before = evaluate_fixed(model, in_shape, cfg, x_test, ds.y_test)
    start = time.perf_counter()
    history = _fine_tune(model.to(dev), build, in_shape, cfg, ds, epochs, lr, dev, quiet)
    final = _float_copy(model, build)  # the fine-tuned weights, snapped to their grid
    after = evaluate_fixed(final, in_shape, cfg, x_test, ds.y_test)
    out_dir = Path(out_dir)
    report = {
        "from": str(ckpt),
        "epochs": epochs,
        "device": dev,
        "wall_s": time.perf_counter() - start,
        "before": before,
        "after": after,
        "history": history,
        "test_samples": int(len(ds.y_test)),
        "how": "accuracy on the test split encoded with the stored encoding; loihi-emu is bit-exact with "
        "lava-fixed; agreement = equal predictions / equal output spike entries, norse vs loihi-emu",
    }
    graph_cfg = {
        "model": cfg["name"],
        "dataset": cfg["dataset"],
        "encoding": cfg["encoding"],
        "readout": cfg.get("readout", {"kind": "spike_count"}),
        "config_hash": config_hash(cfg),
        "qat_epochs": epochs,
    }
    save_checkpoint(
        out_dir / "checkpoint.pt",
        {"state_dict": final.state_dict(), "config": cfg, "config_hash": config_hash(cfg), "qat": report},
    )
    write_json(out_dir / "qat.json", report)
    save_graph(to_nir(final, in_shape, cfg["dt"], graph_cfg), out_dir / "model.nir")
    return report
