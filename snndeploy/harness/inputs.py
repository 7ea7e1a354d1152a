"""What a run is fed: encoded inputs from an ``.npz`` file, or a dataset encoded as the graph says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..errors import InputError
from ..ir import graph as G


def load_input_npz(path) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """IN.npz: 'spikes' (batch, time, *input_shape), optional 'labels' (batch,)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file '{path}' does not exist")
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
    if labels is not None and (labels.ndim != 1 or len(labels) != len(spikes)):
        raise InputError(f"input file '{path}': 'labels' has shape {labels.shape}, expected ({len(spikes)},)")
    return spikes, labels


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
    desc = f"{dataset} test split, first {n} samples, encoding {json.dumps(enc, sort_keys=True)}"
    return encode(x, enc), ds.y_test[:n], desc
