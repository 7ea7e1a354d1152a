"""Targets as data: ``targets/NAME.toml``, every constant with its source and an estimate flag.

A target file has ``name``, ``description``, ``kind`` (``"snn"``: a neuromorphic chip that runs the
spiking network; ``"ann"``: a conventional baseline that runs the same weights as a non-spiking
network, one forward pass per inference) and up to two tables:

- ``[energy]``: ``key = { value = pJ, per = COUNT, source = "...", estimate = bool }``.
  ``per`` names the operation count it multiplies (one of
  :data:`snndeploy.energy.counts.COUNT_KEYS`); a constant without ``per`` is listed in reports
  but not charged (e.g. Loihi's per-hop energy, which needs a placement).
- ``[resources]``: ``key = { value = number, unit = "...", source = "...", estimate = bool }``,
  limits for a mapping estimate (Loihi 2 cores).

``estimate = true`` marks a number (or its use here) that is not a published measurement;
reports print "(estimate)" next to it. Every energy constant also has a ``grade``, the evidence
behind it: ``"measured silicon"`` (measured on a fabricated chip), ``"pre-silicon simulation"``
(a design-time table), ``"derived"`` (computed from published figures by a stated rule, e.g. chip
power divided by events, or an SRAM access split into words) or ``"estimate"``.

``[regimes.NAME]`` tables (optional) hold constants *added* to ``[energy]`` in one operating
regime (e.g. where an ANN's weights live: SRAM of 8 KB or 1 MB; how far a spike travels on the
mesh). A target's energy is reported as a range: the lowest and highest over its base constants
and each regime, each end named (:func:`snndeploy.energy.estimate.energy_range`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ..errors import InputError
from ..util.files import load_toml
from .counts import COUNT_KEYS

#: the targets shipped with the package: ``snndeploy/resources/targets`` links to the top-level
#: ``targets/`` (the source of truth) in a checkout, and is a copy of it inside a wheel
TARGETS_DIR = Path(__file__).resolve().parents[1] / "resources" / "targets"
#: what a target is: runs the spiking network, or the same weights as a non-spiking baseline
TARGET_KINDS = ("snn", "ann")
#: the evidence grades of energy constants, strongest first
GRADES = ("measured silicon", "pre-silicon simulation", "derived", "estimate")


@dataclass(frozen=True)
class Constant:
    value: float
    source: str
    estimate: bool
    per: Optional[str] = None  # the count this energy constant multiplies; None: listed, not charged
    unit: str = "pJ"
    grade: Optional[str] = None  # one of GRADES (energy constants); None for resources

    def as_dict(self) -> dict:
        return {
            "value": self.value,
            "unit": self.unit,
            "per": self.per,
            "source": self.source,
            "estimate": self.estimate,
            "grade": self.grade,
        }


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    energy: Dict[str, Constant]
    path: str
    resources: Dict[str, Constant] = field(default_factory=dict)
    kind: str = "snn"  # one of TARGET_KINDS
    regimes: Dict[str, Dict[str, Constant]] = field(default_factory=dict)  # name -> constants added

    @property
    def is_ann_baseline(self) -> bool:
        return self.kind == "ann"

    def resource(self, key: str) -> Constant:
        if key not in self.resources:
            raise InputError(f"target '{self.name}' ({self.path}) has no resource '{key}'")
        return self.resources[key]

    @property
    def has_energy_model(self) -> bool:
        return any(c.per for c in self.energy.values())


def known_targets() -> List[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.toml"))


def _constants(path: Path, table: str, raw: dict, unit: str) -> Dict[str, Constant]:
    out = {}
    for key, c in raw.get(table, {}).items():
        if not isinstance(c, dict) or "value" not in c or "source" not in c:
            raise InputError(f"{path}: {table}.{key} must be a table with 'value' and 'source'")
        try:
            value = float(c["value"])
        except (TypeError, ValueError):
            raise InputError(f"{path}: {table}.{key}.value must be a number, got {c['value']!r}") from None
        if not math.isfinite(value) or value < 0:
            raise InputError(f"{path}: {table}.{key}.value must be a finite number >= 0, got {value}")
        per = c.get("per")
        if per is not None and per not in COUNT_KEYS:
            raise InputError(f"{path}: {table}.{key}.per is '{per}'; known counts: {', '.join(COUNT_KEYS)}")
        if not isinstance(c.get("estimate", False), bool):
            raise InputError(f"{path}: {table}.{key}.estimate must be true or false")
        grade = c.get("grade")
        if table != "resources" and grade not in GRADES:
            raise InputError(f"{path}: {table}.{key}.grade is {grade!r}; expected one of: {', '.join(GRADES)}")
        out[key] = Constant(value, str(c["source"]), c.get("estimate", False), per, str(c.get("unit", unit)), grade)
    return out


def _regimes(path: Path, raw: dict) -> Dict[str, Dict[str, Constant]]:
    regimes = raw.get("regimes", {})
    if not isinstance(regimes, dict):
        raise InputError(f"{path}: regimes must be a table of tables")
    out = {}
    for name, table in regimes.items():
        if not isinstance(table, dict) or not table:
            raise InputError(f"{path}: regimes.{name} must be a non-empty table of constants")
        out[str(name)] = _constants(path, "regimes", {"regimes": table}, "pJ")
        if not all(c.per for c in out[str(name)].values()):
            raise InputError(f"{path}: every constant of regimes.{name} needs 'per' (it is charged)")
    return out


def load_target(name_or_path: str) -> Target:
    path = Path(name_or_path)
    if not path.suffix:
        path = TARGETS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise InputError(
            f"target '{name_or_path}' not found (looked for {path}); known targets: {', '.join(known_targets())}"
        )
    raw = load_toml(path, "target file")
    kind = raw.get("kind", "snn")
    if kind not in TARGET_KINDS:
        raise InputError(f"{path}: kind is {kind!r}; expected one of {', '.join(TARGET_KINDS)}")
    return Target(
        str(raw.get("name", path.stem)),
        str(raw.get("description", "")),
        _constants(path, "energy", raw, "pJ"),
        str(path),
        _constants(path, "resources", raw, ""),
        kind,
        _regimes(path, raw),
    )
