"""What a run is fed: encoded inputs from an ``.npz`` file, or a dataset encoded as the graph says."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from ..errors import InputError
from ..ir import graph as G
from ..util.memory import check_fits


def npz_shapes(path) -> Dict[str, Tuple[Tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in an ``.npz``, read from the ``.npy`` headers only."""
    out = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if not name.endswith(".npy"):
                continue
            with z.open(name) as f:
                major, _ = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
            out[name[:-4]] = (tuple(shape), dtype)
    return out


def load_input_npz(path) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """IN.npz: 'spikes' (batch, time, *input_shape), optional 'labels' (batch,).

    The arrays' sizes are read from their headers first: an input whose float64 copies (two, see
    :func:`snndeploy.ir.graph.check_input`) would not fit in memory is refused before it is loaded."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file '{path}' does not exist")
    try:
        shapes = npz_shapes(path)
    except Exception as exc:
        raise InputError(f"input file '{path}' is not a readable .npz file: {type(exc).__name__}: {exc}") from exc
    if "spikes" in shapes:
        shape = shapes["spikes"][0]
        check_fits(2 * 8 * int(np.prod(shape, dtype=np.float64)), f"input file '{path}': array 'spikes' {shape}")
    try:
        with np.load(path, allow_pickle=False) as f:
            if "spikes" not in f.files:
                raise InputError(f"input file '{path}' has no array 'spikes' (it has: {', '.join(f.files) or 'none'})")
            spikes = f["spikes"]
            labels = f["labels"] if "labels" in f.files else None
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"input file '{path}' is not a readable .npz file: {type(exc).__name__}: {exc}") from exc
    if labels is not None:
        labels = check_labels(labels, len(spikes), f"input file '{path}'")
    return spikes, labels


def check_labels(labels: np.ndarray, n: int, where: str, n_classes: Optional[int] = None) -> np.ndarray:
    """Labels must be n whole numbers >= 0 (and < n_classes when known): floats, strings or NaN
    would make every prediction wrong (accuracy 0 %, exit 0) instead of an error."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise InputError(f"{where}: 'labels' has shape {labels.shape}, expected ({n},)")
    if labels.dtype.kind not in "iu":
        raise InputError(f"{where}: 'labels' has dtype {labels.dtype}; expected whole numbers (class indices)")
    if n and labels.min() < 0:
        raise InputError(f"{where}: 'labels' holds {int(labels.min())}; class indices are >= 0")
    if n and n_classes is not None and labels.max() >= n_classes:
        raise InputError(f"{where}: 'labels' holds {int(labels.max())}; the output has {n_classes} classes")
    return labels


def dataset_input(graph, dataset: str, samples: Optional[int], data_dir: Optional[str] = None):
    """The first ``samples`` test samples of ``dataset``, encoded as the graph's metadata says."""
    from ..data.datasets import get_dataset
    from ..data.encoding import encode

    cfg = G.graph_config(graph)
    enc = cfg.get("encoding")
    if not enc:
        raise InputError(
            "the graph carries no input encoding in its metadata (it was not written by "
            "`snndeploy train`); give encoded inputs with --input IN.npz instead of --dataset"
        )
    if cfg.get("dataset") and cfg["dataset"] != dataset:
        raise InputError(f"the graph was trained on dataset '{cfg['dataset']}', not '{dataset}'")
    ds = get_dataset(dataset, data_dir)
    n = len(ds.x_test) if samples is None else int(samples)
    if n <= 0:
        raise InputError(f"--samples must be positive, got {samples}")
    n = min(n, len(ds.x_test))
    x = ds.x_test[:n].reshape(n, -1)
    steps = enc.get("steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"graph metadata encoding.steps is {steps!r}; expected a whole number >= 1")
    # the encoded input and the two float64 copies a run makes of it
    check_fits(3 * 8 * n * steps * x.shape[1], f"{n} samples of {dataset} encoded over {steps} steps")
    desc = f"{dataset} test split, first {n} samples, encoding {json.dumps(enc, sort_keys=True)}"
    return encode(x, enc), check_labels(ds.y_test[:n], n, dataset), desc
