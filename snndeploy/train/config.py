"""Model configs: ``models/NAME.toml`` (or a path), read and checked for their top-level keys."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import InputError
from ..util.files import load_toml

#: the model configs shipped with the package: ``snndeploy/resources/models`` links to the top-level
#: ``models/`` (the source of truth) in a checkout, and is a copy of it inside a wheel
MODELS_DIR = Path(__file__).resolve().parents[1] / "resources" / "models"
#: the top-level keys every model config has
REQUIRED_KEYS = ("name", "dataset", "dt", "model", "encoding", "train")


def load_model_config(name_or_path: str) -> dict:
    """A model config by name (``models/NAME.toml``) or by path to a TOML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = MODELS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in MODELS_DIR.glob("*.toml"))
        raise InputError(
            f"model config '{name_or_path}' not found (looked for {path}); known models: {', '.join(known)}"
        )
    cfg = load_toml(path, "model config")
    for key in REQUIRED_KEYS:
        if key not in cfg:
            raise InputError(f"model config {path} lacks the key '{key}'")
    return cfg


def config_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]
