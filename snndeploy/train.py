"""Training in Norse: ``train(cfg, out_dir) -> (metrics, artifacts)``. No Lava import.

Writes ``checkpoint.pt`` (state dict + resolved config), ``metrics.json`` and
``model.nir`` (our exporter; dt and encoding in metadata) into ``out_dir``,
each atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from .datasets import dataset_for_config
from .encoding import encode
from .errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO_ROOT / "models"


def load_model_config(name_or_path: str) -> dict:
    """A model config by name (``models/NAME.toml``) or by path to a TOML file."""
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:
        import tomli as tomllib
    path = Path(name_or_path)
    if not path.suffix:
        path = MODELS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in MODELS_DIR.glob("*.toml"))
        raise InputError(f"model config '{name_or_path}' not found (looked for {path}); known models: {', '.join(known)}")
    with open(path, "rb") as f:
        try:
            cfg = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"model config {path} is not valid TOML: {exc}") from exc
    for key in ("name", "dataset", "dt", "model", "encoding", "train"):
        if key not in cfg:
            raise InputError(f"model config {path} lacks the key '{key}'")
    return cfg


def config_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _poisson_torch(x, steps: int, max_prob: float, gen):
    import torch

    p = (x * max_prob).clamp(0, 1)
    return (torch.rand((steps,) + tuple(p.shape), generator=gen, device=p.device) < p).to(x.dtype)


def evaluate(model, x_enc: np.ndarray, y: np.ndarray, device: str, batch: int = 256) -> float:
    """Accuracy of spike-count readout on pre-encoded inputs (n, T, *shape)."""
    import torch

    correct = 0
    model.eval()
    with torch.no_grad():
        for i in range(0, len(x_enc), batch):
            xb = torch.as_tensor(x_enc[i:i + batch], device=device).transpose(0, 1)
            pred = model(xb).sum(0).argmax(1).cpu().numpy()
            correct += int((pred == y[i:i + batch]).sum())
    return correct / len(x_enc)


def train(cfg: dict, out_dir, device: str = "auto", epochs: Optional[int] = None, seed: Optional[int] = None,
          data_dir: Optional[str] = None, quiet: bool = False) -> Tuple[Dict, Dict[str, Path]]:
    import torch
    from tqdm import tqdm

    from .backends.norse_backend import resolve_device
    from .export import to_nir
    from .graph import save_graph
    from .networks import ARCHITECTURES

    cfg = json.loads(json.dumps(cfg))  # resolved copy
    if epochs is not None:
        cfg["train"]["epochs"] = int(epochs)
    if seed is not None:
        cfg["train"]["seed"] = int(seed)
    arch = cfg["model"].get("arch")
    if arch not in ARCHITECTURES:
        raise InputError(f"model.arch '{arch}' unknown; available: {', '.join(ARCHITECTURES)}")
    dev = resolve_device(device)
    ds = dataset_for_config(cfg, data_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tcfg, enc = cfg["train"], cfg["encoding"]
    torch.manual_seed(tcfg["seed"])
    n_in = int(np.prod(ds.shape))
    model = ARCHITECTURES[arch](cfg, n_in, ds.n_classes).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=tcfg["lr"])
    xtr = torch.as_tensor(ds.x_train.reshape(len(ds.x_train), -1), device=dev)
    ytr = torch.as_tensor(ds.y_train, device=dev)
    gen = torch.Generator(device=dev).manual_seed(tcfg["seed"])
    x_test_enc = encode(ds.x_test.reshape(len(ds.x_test), -1), enc)
    start = time.perf_counter()
    bar = tqdm(range(tcfg["epochs"]), desc=f"train {cfg['name']} on {dev}", disable=quiet, file=sys.stderr,
               mininterval=0.5 if sys.stderr.isatty() else 10.0)
    history = []
    for epoch in bar:
        model.train()
        perm = torch.randperm(len(xtr), generator=gen, device=dev)
        tot_loss, tot_ok = 0.0, 0
        for i in range(0, len(xtr), tcfg["batch_size"]):
            idx = perm[i:i + tcfg["batch_size"]]
            if enc["kind"] == "poisson":  # drawn on the device; same distribution as encoding.poisson
                spikes = _poisson_torch(xtr[idx], enc["steps"], enc.get("max_prob", 1.0), gen)
            else:
                seed_b = int(torch.randint(0, 2**31 - 1, (1,), generator=gen, device=dev))
                spikes = torch.as_tensor(encode(xtr[idx].cpu().numpy(), {**enc, "seed": seed_b}),
                                         device=dev).transpose(0, 1)
            counts = model(spikes).sum(0)
            loss = torch.nn.functional.cross_entropy(counts, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot_loss += float(loss.detach()) * len(idx)
            tot_ok += int((counts.argmax(1) == ytr[idx]).sum())
        history.append({"epoch": epoch + 1, "loss": tot_loss / len(xtr), "train_accuracy": tot_ok / len(xtr)})
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", acc=f"{history[-1]['train_accuracy']:.3f}")
    wall = time.perf_counter() - start
    test_acc = evaluate(model, x_test_enc, ds.y_test, dev)
    graph_cfg = {"model": cfg["name"], "dataset": cfg["dataset"], "encoding": enc,
                 "readout": cfg.get("readout", {"kind": "spike_count"}), "config_hash": config_hash(cfg)}
    graph = to_nir(model.cpu(), n_in, cfg["dt"], graph_cfg)
    metrics = {"model": cfg["name"], "dataset": cfg["dataset"], "device": dev, "epochs": tcfg["epochs"],
               "test_accuracy": test_acc, "test_samples": int(len(ds.y_test)),
               "train_accuracy_last_epoch": history[-1]["train_accuracy"], "train_wall_s": wall,
               "train_samples_per_s": tcfg["epochs"] * len(xtr) / wall, "history": history,
               "config_hash": config_hash(cfg), "torch": torch.__version__,
               "how": "test accuracy: argmax of output spike counts of the trained float32 Norse model on the "
                      "test split, encoded with the stored seeded encoding"}
    artifacts = {"checkpoint": out_dir / "checkpoint.pt", "metrics": out_dir / "metrics.json",
                 "graph": out_dir / "model.nir"}
    tmp = out_dir / ".tmp-checkpoint.pt"
    torch.save({"state_dict": model.state_dict(), "config": cfg, "config_hash": config_hash(cfg)}, tmp)
    os.replace(tmp, artifacts["checkpoint"])
    save_graph(graph, artifacts["graph"])
    write_json(artifacts["metrics"], metrics)
    return metrics, artifacts
