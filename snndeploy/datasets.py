"""Dataset registry: name -> loader returning a fixed train/test split.

Every loader returns float32 intensities in [0, 1] of shape (n, *shape) and
int64 labels. A missing dataset is a :class:`DatasetError` that says what to
install or which ``--data-dir`` to give. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from .errors import DatasetError

#: the fixed split of the digits set
DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    source: str

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def load_digits(data_dir: Optional[str] = None) -> Dataset:
    """scikit-learn's embedded 8x8 digits (1797 images, 16 grey levels), stratified 75/25 split."""
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    d = _load()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED,
                                          stratify=y)
    return Dataset("digits", xtr, ytr, xte, yte, 10, "scikit-learn load_digits (embedded UCI 8x8 digits)")


#: dataset name -> loader(data_dir)
DATASETS: Dict[str, Callable[[Optional[str]], Dataset]] = {
    "digits": load_digits,
}


def get_dataset(name: str, data_dir: Optional[str] = None) -> Dataset:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset '{name}'; available: {', '.join(DATASETS)}")
    return DATASETS[name](data_dir)
