"""Targets as data: ``targets/NAME.toml``, every constant with its source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict

from .errors import InputError

TARGETS_DIR = Path(__file__).resolve().parents[1] / "targets"


@dataclass(frozen=True)
class Constant:
    value: float
    source: str
    estimate: bool


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    energy: Dict[str, Constant]
    path: str

    def pj(self, key: str) -> Constant:
        if key not in self.energy:
            raise InputError(f"target '{self.name}' ({self.path}) has no energy constant '{key}'")
        return self.energy[key]


def load_target(name_or_path: str) -> Target:
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:
        import tomli as tomllib
    path = Path(name_or_path)
    if not path.suffix:
        path = TARGETS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in TARGETS_DIR.glob("*.toml"))
        raise InputError(f"target '{name_or_path}' not found (looked for {path}); known targets: {', '.join(known)}")
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    energy = {}
    for key, c in raw.get("energy", {}).items():
        if not isinstance(c, dict) or "value" not in c or "source" not in c:
            raise InputError(f"{path}: energy.{key} must be a table with 'value' and 'source'")
        energy[key] = Constant(float(c["value"]), str(c["source"]), bool(c.get("estimate", False)))
    return Target(raw.get("name", path.stem), raw.get("description", ""), energy, str(path))
