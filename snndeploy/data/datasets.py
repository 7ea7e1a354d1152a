"""Dataset registry: name -> loader returning a fixed train/test split.

Every loader returns float32 intensities in [0, 1] of shape (n, *shape) and
int64 labels. A missing dataset is a :class:`DatasetError` that says what to
install or which ``--data-dir`` to give. Nothing is downloaded.

=================  ==========================================  ===============
name               where the files come from                   image shape
=================  ==========================================  ===============
``digits``         embedded in scikit-learn                    (64,)
``fashion-mnist``  Debian ``dataset-fashion-mnist`` (gzipped   (28, 28)
                   IDX in :data:`FASHION_MNIST_DIR`) or
                   ``--data-dir``
``mnist``          ``--data-dir`` with the four IDX files      (28, 28)
``cifar10``        ``--data-dir`` with ``cifar-10-batches-py`` (3, 32, 32)
=================  ==========================================  ===============

IDX files (LeCun's MNIST format) are parsed by torchvision's ``MNIST`` /
``FashionMNIST`` classes (``download=False``), pointed at a temporary folder of
symlinks (plain files) or inflated copies (gzipped files); header, length and
inflated size are checked first by :mod:`snndeploy.data.idx`, which torchvision
does not do. CIFAR-10 python batches are pickles; they are read here with an
unpickler that only admits the numpy globals an array needs, so a foreign pickle
cannot run code (torchvision's ``CIFAR10`` calls ``pickle.load`` on them).
"""

from __future__ import annotations

import pickle
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..errors import DatasetError
from ..util.memory import MEMORY_HEADROOM, available_memory_bytes
from .idx import stage_idx

#: the fixed split of the digits set
DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0

#: where the Debian package ``dataset-fashion-mnist`` puts its (gzipped) IDX files
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"

#: IDX file stems of the MNIST family (each may also be stored as ``STEM.gz``)
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: CIFAR-10 python batches
CIFAR10_SUBDIR = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_SHAPE = (3, 32, 32)  # channel-major rows of 3072 bytes: 1024 R, 1024 G, 1024 B
N_CLASSES_10 = 10
UINT8_MAX = 255.0


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


# ---------------------------------------------------------------------------
# MNIST-style IDX files, read by torchvision


def _find_idx(directory: Path, stem: str, how_to_get: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise DatasetError(f"missing {directory / stem}[.gz]; {how_to_get}")


def _inflate_limit() -> int:
    """Bytes a gzipped IDX file may inflate to: the memory this machine may plan to use (0: unknown, no limit)."""
    avail = available_memory_bytes()
    return int(MEMORY_HEADROOM * avail) if avail else 0


def _idx_split(directory: Path, how_to_get: str, tv_class: str):
    """Train/test (images, labels) from the four MNIST-style IDX files in ``directory``, parsed by
    ``torchvision.datasets.<tv_class>`` (``MNIST`` or ``FashionMNIST``), never downloading.

    torchvision wants the plain files in ``<root>/<tv_class>/raw/``: the root is a fresh temporary
    folder, removed on return, where :func:`~snndeploy.data.idx.stage_idx` puts a symlink to each plain
    file (no copy) or the inflated bytes of a gzipped one, after checking its header, its length and,
    for gzip, the inflated size against the memory budget (torchvision checks none of these). A fresh
    root also means torchvision never finds a legacy ``processed/*.pt`` of the user's to load instead.
    """
    if not directory.is_dir():
        raise DatasetError(f"directory {directory} does not exist; {how_to_get}")
    files = {key: _find_idx(directory, stem, how_to_get) for key, stem in IDX_FILES.items()}
    limit = _inflate_limit()
    out = []
    with tempfile.TemporaryDirectory(prefix="snndeploy-idx-") as root:
        raw = Path(root) / tv_class / "raw"
        raw.mkdir(parents=True)
        for key, stem in IDX_FILES.items():
            ndim = 3 if key.endswith("images") else 1
            stage_idx(files[key], raw / stem, limit, ndim=ndim, dtype_code=0x08)
        for split in ("train", "test"):
            ipath, lpath = files[f"{split}_images"], files[f"{split}_labels"]
            images, labels = _torchvision_idx(tv_class, root, split == "train", directory)
            if len(images) != len(labels):
                raise DatasetError(f"{ipath} holds {len(images)} images but {lpath} holds {len(labels)} labels")
            _check_labels(labels, lpath)
            out += [(images / UINT8_MAX).astype(np.float32), labels.astype(np.int64)]
    return out


def _torchvision_idx(tv_class: str, root: str, train: bool, directory: Path) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 28, 28), labels int64 (n,)) of one split, read by torchvision from the staged ``root``."""
    import torchvision.datasets

    try:
        ds = getattr(torchvision.datasets, tv_class)(root, train=train, download=False)
    except (AssertionError, RuntimeError, TypeError, ValueError) as exc:  # checked before: a file changed since
        raise DatasetError(f"torchvision's {tv_class} reader refused the IDX files in {directory}: {exc}") from exc
    return ds.data.numpy(), ds.targets.numpy()


def _check_labels(labels: np.ndarray, where, n_classes: int = N_CLASSES_10) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DatasetError(f"{where}: labels span [{labels.min()}, {labels.max()}], expected [0, {n_classes - 1}]")


# ---------------------------------------------------------------------------
# CIFAR-10 python batches
#
# Read here, not by torchvision.datasets.CIFAR10: that class calls pickle.load on each batch file, and
# unpickling an untrusted file runs whatever callable it names (see test_cifar10_refuses_code_in_pickle).


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Admits only the globals that pickled numpy arrays need (no code execution)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),  # protocol 5
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        return super().find_class(module, name)


def read_cifar_batch(path) -> Tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> (images (n, 3, 32, 32) uint8, labels (n,) int64)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"missing {path}")
    try:
        with open(path, "rb") as f:
            d = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
    ) as exc:
        raise DatasetError(f"{path}: not a CIFAR-10 python batch (unpickling failed: {exc})") from exc
    if not isinstance(d, dict):
        raise DatasetError(f"{path}: not a CIFAR-10 python batch: holds a {type(d).__name__}, expected a dict")
    d = {k.decode("utf8", errors="replace") if isinstance(k, bytes) else k: v for k, v in d.items()}
    for key in ("data", "labels"):
        if key not in d:
            hint = " (this looks like CIFAR-100: 'fine_labels')" if "fine_labels" in d else ""
            raise DatasetError(
                f"{path}: CIFAR-10 batch lacks the key b'{key}'; keys: {', '.join(sorted(map(str, d)))}{hint}"
            )
    if not isinstance(d["data"], np.ndarray):  # a list can repeat one array by reference: tiny file, huge array
        raise DatasetError(f"{path}: b'data' is a {type(d['data']).__name__}, expected a numpy array")
    data = d["data"]
    n_pix = int(np.prod(CIFAR10_SHAPE))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != n_pix:
        raise DatasetError(
            f"{path}: b'data' is {data.dtype} of shape {data.shape}, expected uint8 of shape (n, {n_pix})"
        )
    labels = np.asarray(d["labels"])
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(
            f"{path}: b'labels' has shape {labels.shape} ({labels.dtype}), expected {len(data)} integers"
        )
    _check_labels(labels, path)
    return data.reshape((len(data),) + CIFAR10_SHAPE), labels.astype(np.int64)


def _cifar_dir(data_dir) -> Path:
    d = Path(data_dir)
    return d / CIFAR10_SUBDIR if (d / CIFAR10_SUBDIR).is_dir() else d


# ---------------------------------------------------------------------------
# loaders (registry entries)


def load_digits(data_dir: Optional[str] = None) -> Dataset:
    """scikit-learn's embedded 8x8 digits (1797 images, 16 grey levels), stratified 75/25 split."""
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    d = _load()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(
        x, y, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=y
    )
    return Dataset("digits", xtr, ytr, xte, yte, 10, "scikit-learn load_digits (embedded UCI 8x8 digits)")


def _idx_file_list() -> str:
    return ", ".join(f"{s}[.gz]" for s in IDX_FILES.values())


def load_fashion_mnist(data_dir: Optional[str] = None) -> Dataset:
    """Zalando's Fashion-MNIST: 60000/10000 28x28 grey images, 10 classes, the official split.

    Default location :data:`FASHION_MNIST_DIR` (Debian package ``dataset-fashion-mnist``,
    gzipped IDX files); ``data_dir`` overrides it.
    """
    if data_dir is None:
        directory = FASHION_MNIST_DIR
        how = (
            f"install the Debian package: `sudo apt-get install {FASHION_MNIST_PACKAGE}` (or `make data`), "
            f"or give --data-dir DIR holding {_idx_file_list()}"
        )
    else:
        directory = Path(data_dir)
        how = f"--data-dir must hold the Fashion-MNIST IDX files {_idx_file_list()}"
    xtr, ytr, xte, yte = _idx_split(directory, how, "FashionMNIST")
    return Dataset("fashion-mnist", xtr, ytr, xte, yte, N_CLASSES_10, f"Fashion-MNIST IDX files in {directory}")


def load_mnist(data_dir: Optional[str] = None) -> Dataset:
    """LeCun's MNIST: 60000/10000 28x28 grey digits from the IDX files in ``data_dir`` (gzipped or not)."""
    how = f"give --data-dir DIR holding the MNIST IDX files {_idx_file_list()} (not downloaded by snndeploy)"
    if data_dir is None:
        raise DatasetError(f"dataset 'mnist' is not bundled; {how}")
    directory = Path(data_dir)
    xtr, ytr, xte, yte = _idx_split(directory, how, "MNIST")
    return Dataset("mnist", xtr, ytr, xte, yte, N_CLASSES_10, f"MNIST IDX files in {directory}")


def load_cifar10(data_dir: Optional[str] = None) -> Dataset:
    """CIFAR-10 python version: 50000/10000 RGB 32x32 images as (n, 3, 32, 32), 10 classes.

    ``data_dir`` is ``cifar-10-batches-py`` itself or its parent (the extracted
    ``cifar-10-python.tar.gz``), holding ``data_batch_1..5`` and ``test_batch``.
    """
    how = (
        f"give --data-dir DIR holding {CIFAR10_SUBDIR}/ ({', '.join(CIFAR10_TRAIN_BATCHES)}, "
        f"{CIFAR10_TEST_BATCH}; the python version of CIFAR-10, not downloaded by snndeploy)"
    )
    if data_dir is None:
        raise DatasetError(f"dataset 'cifar10' is not bundled; {how}")
    directory = _cifar_dir(data_dir)
    for name in CIFAR10_TRAIN_BATCHES + (CIFAR10_TEST_BATCH,):
        if not (directory / name).is_file():
            raise DatasetError(f"missing {directory / name}; {how}")
    train = [read_cifar_batch(directory / name) for name in CIFAR10_TRAIN_BATCHES]
    xte, yte = read_cifar_batch(directory / CIFAR10_TEST_BATCH)
    xtr = np.concatenate([x for x, _ in train])
    ytr = np.concatenate([y for _, y in train])
    return Dataset(
        "cifar10",
        (xtr / UINT8_MAX).astype(np.float32),
        ytr,
        (xte / UINT8_MAX).astype(np.float32),
        yte,
        N_CLASSES_10,
        f"CIFAR-10 python batches in {directory}",
    )


#: dataset name -> loader(data_dir)
DATASETS: Dict[str, Callable[[Optional[str]], Dataset]] = {
    "digits": load_digits,
    "fashion-mnist": load_fashion_mnist,
    "mnist": load_mnist,
    "cifar10": load_cifar10,
}


# ---------------------------------------------------------------------------
# access


def _check_limit(key: str, value) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise DatasetError(f"{key} must be a positive integer (or absent for the whole split), got {value!r}")
    return int(value)


def limit_dataset(ds: Dataset, limit_train: Optional[int] = None, limit_test: Optional[int] = None) -> Dataset:
    """The first ``limit_train`` / ``limit_test`` samples of each split (``None``: all); for quick runs."""
    lt = _check_limit("limit_train", limit_train)
    le = _check_limit("limit_test", limit_test)
    if lt is None and le is None:
        return ds
    note = f"; first {lt or len(ds.y_train)} train / {le or len(ds.y_test)} test samples"
    return replace(
        ds,
        x_train=ds.x_train[:lt],
        y_train=ds.y_train[:lt],
        x_test=ds.x_test[:le],
        y_test=ds.y_test[:le],
        source=ds.source + note,
    )


def get_dataset(
    name: str, data_dir: Optional[str] = None, limit_train: Optional[int] = None, limit_test: Optional[int] = None
) -> Dataset:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset '{name}'; available: {', '.join(DATASETS)}")
    return limit_dataset(DATASETS[name](data_dir), limit_train, limit_test)


def dataset_for_config(cfg: dict, data_dir: Optional[str] = None) -> Dataset:
    """The dataset a model config names, cut to ``[train] limit_train`` / ``limit_test`` when given."""
    t = cfg.get("train", {})
    return get_dataset(cfg["dataset"], data_dir, limit_train=t.get("limit_train"), limit_test=t.get("limit_test"))
