"""Shared helpers for the peer-fixture generators (numpy + stdlib only).

Every generator in this folder runs inside its own framework venv
(build/peer-venvs/<framework>), imports this module from the same folder and
writes:
  tests/fixtures/peers/<framework>/<name>.nir   exactly as the peer's exporter wrote it
  tests/fixtures/peers/<framework>/<name>.npz   input / output / spikes__<node> arrays,
                                                always laid out (batch, time, ...)
  build/peer-fixtures/<framework>.json          manifest entries for this framework;
                                                merge_manifest.py folds them into
                                                tests/fixtures/peers/manifest.json
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import os
import platform
import re
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "peers"
PARTS = REPO / "build" / "peer-fixtures"

# Spike-rate window every spiking layer must fall in (fraction of neuron-steps).
RATE_MIN, RATE_MAX = 0.02, 0.40
# Window the calibration aims for (kept inside the hard window above).
TARGET_MIN, TARGET_MAX = 0.05, 0.25

NIR_NEURON_TYPES = {"LIF", "CubaLIF", "IF", "LI", "CubaLI", "I", "Threshold"}


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def binary_input(seed: int, shape: Sequence[int], rate: float) -> np.ndarray:
    """Seeded Bernoulli(rate) input, float32 0/1, in the shape given."""
    rng = np.random.default_rng(seed)
    return (rng.random(tuple(shape)) < rate).astype(np.float32)


def rate(x) -> float:
    return float(np.asarray(x, dtype=np.float64).mean())


def ref(module: str, pattern: str, nth: int = 0) -> str:
    """'pkg/sub/file.py:LINE' of the nth line in an installed module matching pattern.

    Line numbers are read from the installed source at generation time, so the
    manifest always points at the code that actually ran.
    """
    mod = importlib.import_module(module)
    path = Path(inspect.getsourcefile(mod))
    rx = re.compile(pattern)
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if rx.search(line)]
    if len(hits) <= nth:
        raise LookupError(f"pattern {pattern!r} not found in {path}")
    top = module.split(".")[0]
    root = Path(inspect.getsourcefile(importlib.import_module(top))).parent.parent
    return f"{path.relative_to(root)}:{hits[nth]}"


def labelled(refs: Dict[str, str]) -> Dict[str, str]:
    """{label: 'file:line'} -> {label: 'file:line (label)'} for readable manifest source_refs."""
    return {k: f"{v} ({k})" for k, v in refs.items()}


def node_types(graph) -> List[str]:
    """Sorted NIR node class names in a graph, descending into subgraphs."""
    seen = set()

    def walk(g):
        for node in g.nodes.values():
            seen.add(type(node).__name__)
            if hasattr(node, "nodes"):
                walk(node)

    walk(graph)
    return sorted(seen)


def calibrate(
    run: Callable[[List[float]], Dict[str, np.ndarray]],
    layers: Sequence[str],
    gains: Optional[List[float]] = None,
    max_iter: int = 40,
) -> List[float]:
    """Scale per-layer weight gains until every layer spikes in the target window.

    run(gains) -> {layer: spikes array}. Layers are calibrated in order (a
    layer's rate depends on the layers before it), by multiplicative steps.
    Deterministic: no randomness here, the caller seeds the weights.
    """
    gains = list(gains or [1.0] * len(layers))
    for i, layer in enumerate(layers):
        step = 1.6
        last_dir = 0
        for _ in range(max_iter):
            r = rate(run(gains)[layer])
            if TARGET_MIN <= r <= TARGET_MAX:
                break
            direction = 1 if r < TARGET_MIN else -1
            if last_dir and direction != last_dir:
                step = step**0.5
            last_dir = direction
            gains[i] *= step if direction > 0 else 1.0 / step
        else:
            raise RuntimeError(f"calibration of layer {layer!r} did not converge (rate {r:.3f})")
    return gains


def check_rates(spikes: Dict[str, np.ndarray]) -> Dict[str, float]:
    rates = {k: round(rate(v), 4) for k, v in spikes.items()}
    bad = {k: v for k, v in rates.items() if not (RATE_MIN <= v <= RATE_MAX)}
    if bad:
        raise RuntimeError(f"spike rates outside [{RATE_MIN}, {RATE_MAX}]: {bad}")
    return rates


class Writer:
    """Collects manifest entries for one framework and writes the fixture files."""

    def __init__(self, framework: str, dist: str):
        self.framework = framework
        self.dist = dist
        self.outdir = FIXTURES / framework
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.entries: List[dict] = []

    def common(self) -> dict:
        return {
            "framework": self.framework,
            "framework_version": version(self.dist),
            "nir_version_used_to_write": version("nir"),
            "nirtorch_version": version("nirtorch"),
            "python": platform.python_version(),
        }

    def save(
        self,
        name: str,
        write_nir: Callable[[str], object],
        inp: np.ndarray,
        out: np.ndarray,
        spikes: Dict[str, np.ndarray],
        entry: dict,
        rate_layers: Optional[Dict[str, np.ndarray]] = None,
    ) -> dict:
        """write_nir(path) must call the peer's own writer; returns the graph written."""
        nir_path = self.outdir / f"{name}.nir"
        npz_path = self.outdir / f"{name}.npz"
        graph = write_nir(str(nir_path))
        arrays = {"input": np.asarray(inp, np.float32), "output": np.asarray(out, np.float32)}
        for k, v in spikes.items():
            arrays[f"spikes__{k}"] = np.asarray(v, np.float32)
        # rate_layers: every spiking layer incl. a spiking output layer (defaults to spikes)
        rates = check_rates(rate_layers if rate_layers is not None else spikes)
        for k, v in arrays.items():
            assert v.shape[0] == inp.shape[0] and v.shape[1] == inp.shape[1], (k, v.shape, inp.shape)
        np.savez_compressed(npz_path, **arrays)
        full = {
            "file": f"{self.framework}/{name}.nir",
            "npz": f"{self.framework}/{name}.npz",
            **self.common(),
            **entry,
            "node_types": node_types(graph),
            "neuron_types": [t for t in node_types(graph) if t in NIR_NEURON_TYPES],
            "npz_arrays": {k: list(v.shape) for k, v in arrays.items()},
            "spike_rates": rates,
        }
        self.entries.append(full)
        print(f"wrote {nir_path.relative_to(REPO)} + .npz  rates={rates}")
        return full

    def skip(self, name: str, kind: str, reason: str, entry: Optional[dict] = None) -> None:
        self.entries.append(
            {
                "file": None,
                "status": "not_produced",
                "name": name,
                "kind": kind,
                **self.common(),
                **(entry or {}),
                "reason": reason,
            }
        )
        print(f"NOT produced {self.framework}/{name}: {reason}")

    def finish(self) -> None:
        PARTS.mkdir(parents=True, exist_ok=True)
        for e in self.entries:
            e.setdefault("status", "ok")
        (PARTS / f"{self.framework}.json").write_text(json.dumps(self.entries, indent=1) + "\n")
        print(f"{len(self.entries)} manifest entries -> {(PARTS / (self.framework + '.json')).relative_to(REPO)}")


def seed_everything(seed: int) -> None:
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
    except ImportError:
        pass
    os.environ.setdefault("PYTHONHASHSEED", "0")


def here() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))


if __name__ == "__main__":
    # make_peer_fixtures.sh: record an optional framework that could not be installed
    #   python _common.py skip <framework> <reason>
    if len(sys.argv) >= 4 and sys.argv[1] == "skip":
        w = Writer(sys.argv[2], sys.argv[2])
        w.skip("all", "-", " ".join(sys.argv[3:]))
        for e in w.entries:
            e["framework_version"] = "not installed"
            e["nir_version_used_to_write"] = None
            e["nirtorch_version"] = None
        w.finish()
    else:
        sys.exit(__doc__)
