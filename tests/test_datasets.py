"""Dataset loaders: IDX and CIFAR-10 files written here in their exact formats, then loaded back."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from snndeploy.data import datasets as D
from snndeploy.data import idx as I
from snndeploy.errors import DatasetError

N_TRAIN, N_TEST = 12, 5


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """IDX encoding written independently of the parser: magic 00 00 code ndim, >u4 dims, big-endian data."""
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + np.ascontiguousarray(arr, dtype=dt).tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool, code: int = 0x08) -> Path:
    data = idx_bytes(arr, code)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def make_mnist_dir(d: Path, gz: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, N_TRAIN, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, N_TEST, dtype=np.uint8),
    }
    d.mkdir(parents=True, exist_ok=True)
    paths = {k: write_idx(d / D.IDX_FILES[k], a, gz) for k, a in arrays.items()}
    return arrays, paths


def check_mnist_like(ds, arrays):
    assert ds.x_train.shape == (N_TRAIN, 28, 28) and ds.x_test.shape == (N_TEST, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    np.testing.assert_array_equal(ds.x_train, (arrays["train_images"] / 255.0).astype(np.float32))
    np.testing.assert_array_equal(ds.x_test, (arrays["test_images"] / 255.0).astype(np.float32))
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])
    assert ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    assert ds.n_classes == 10 and ds.shape == (28, 28)


# ---------------------------------------------------------------- IDX files: our checks, torchvision's parser


def stage_and_read(src: Path, tmp: Path, **expect):
    """Stage ``src`` as the loaders do and parse the staged file with torchvision's IDX reader."""
    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor

    dest = tmp / "staged"
    shape, dt = I.stage_idx(src, dest, **expect)
    got = read_sn3_pascalvincent_tensor(str(dest), strict=True).numpy()
    assert got.shape == shape and got.dtype == dt.newbyteorder("=")
    return got


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_idx_round_trip_all_type_codes(tmp_path, gz, code):
    dt = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32, 0x0E: np.float64}[code]
    arr = (np.arange(2 * 3 * 4) - (0 if code == 0x08 else 7)).astype(dt).reshape(2, 3, 4)
    src = write_idx(tmp_path / "a-idx3", arr, gz, code)
    got = stage_and_read(src, tmp_path, ndim=3, dtype_code=code)
    assert got.dtype == np.dtype(dt) and got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)
    staged = tmp_path / "staged"
    if gz:  # inflated: torchvision 0.29 opens the file with a bare open(), no gunzip
        assert not staged.is_symlink() and staged.read_bytes() == idx_bytes(arr, code)
    else:  # plain: a symlink, never a copy
        assert staged.is_symlink() and staged.resolve() == src.resolve()


def test_idx_gzip_detected_by_content_not_suffix(tmp_path):
    arr = np.arange(6, dtype=np.uint8)
    p = tmp_path / "labels-idx1-ubyte"
    p.write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(stage_and_read(p, tmp_path), arr)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda b: b"\x01" + b[1:], "expected 0000"),
        (lambda b: b[:2] + b"\x07" + b[3:], "unknown IDX type code 0x07"),
        (lambda b: b[:2] + b"\x0c" + b[3:], "expected 0x08"),
        (lambda b: b[:3] + b"\x02" + b[4:], "expected 3"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\x00", "trailing bytes"),
        (lambda b: b[:6], "truncated IDX header"),
        (lambda b: b[:2], "not an IDX file"),
        (lambda b: b"", "not an IDX file"),
        (lambda b: b[:4] + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1) + b[16:], "truncated"),
    ],
)
def test_idx_corrupt_names_file_and_expectation(tmp_path, mutate, expect, gz):
    p = tmp_path / "images-idx3-ubyte"
    data = mutate(idx_bytes(np.zeros((2, 3, 3), np.uint8)))
    p.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DatasetError, match=expect) as ei:
        I.stage_idx(p, tmp_path / "staged", ndim=3, dtype_code=0x08)
    assert str(p) in str(ei.value)


def test_idx_corrupt_gzip(tmp_path):
    p = tmp_path / "x-idx1-ubyte.gz"
    p.write_bytes(gzip.compress(idx_bytes(np.zeros(100, np.uint8)))[:30])
    with pytest.raises(DatasetError, match="corrupt gzip") as ei:
        I.stage_idx(p, tmp_path / "staged")
    assert str(p) in str(ei.value)


def test_idx_unreadable_file_named(tmp_path):
    with pytest.raises(DatasetError, match="cannot read .*absent-idx1-ubyte"):
        I.stage_idx(tmp_path / "absent-idx1-ubyte", tmp_path / "staged")


def gzip_bomb(path: Path, n_images: int, declared: int = 0) -> Path:
    """Gzipped IDX images declaring ``declared`` images (default: ``n_images``), holding ``n_images``."""
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">III", declared or n_images, 28, 28))
        for _ in range(n_images):
            f.write(bytes(784))
    return path


@pytest.mark.parametrize("declared", [0, 1], ids=["header-says-all", "header-says-1"])
def test_idx_gzip_bomb_refused_within_budget(tmp_path, declared):
    """Inflating stops once past the budget, whatever the header declares; the staged file never holds
    more than the header declares and the budget allows."""
    p = gzip_bomb(tmp_path / "train-images-idx3-ubyte.gz", 4000, declared)  # about 3 MB inflated
    budget = 2**20
    with pytest.raises(DatasetError, match=r"inflates to more than 0\.0 GiB.*refused before allocating") as ei:
        I.stage_idx(p, tmp_path / "staged", limit=budget, ndim=3, dtype_code=0x08)
    assert str(p) in str(ei.value)
    assert (tmp_path / "staged").stat().st_size <= (16 + 784 * declared if declared else 0)


def test_idx_gzip_within_budget_and_without_one(tmp_path):
    p = gzip_bomb(tmp_path / "train-images-idx3-ubyte.gz", 40)
    for limit in (0, 16 + 40 * 784):  # 0: no budget known
        shape, _ = I.stage_idx(p, tmp_path / f"staged{limit}", limit=limit, ndim=3, dtype_code=0x08)
        assert shape == (40, 28, 28) and (tmp_path / f"staged{limit}").stat().st_size == 16 + 40 * 784
    with pytest.raises(DatasetError, match="inflates to more than"):
        I.stage_idx(p, tmp_path / "staged-1", limit=16 + 40 * 784 - 1)
    short = gzip_bomb(tmp_path / "short-idx3-ubyte.gz", 3, declared=2)
    with pytest.raises(DatasetError, match=r"IDX data of 2352 bytes, expected 1568 .*\(trailing bytes\)"):
        I.stage_idx(short, tmp_path / "staged-short")
    assert (tmp_path / "staged-short").stat().st_size == 16 + 2 * 784  # nothing past what the header declares


# ---------------------------------------------------------------- MNIST / Fashion-MNIST


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_data_dir(tmp_path, gz):
    arrays, _ = make_mnist_dir(tmp_path, gz)
    ds = D.get_dataset("mnist", str(tmp_path))
    check_mnist_like(ds, arrays)
    assert ds.name == "mnist"


def test_mnist_mixed_gzip_and_plain(tmp_path):
    arrays, paths = make_mnist_dir(tmp_path, gz=True)
    raw = gzip.decompress(paths["test_labels"].read_bytes())
    paths["test_labels"].unlink()
    (tmp_path / D.IDX_FILES["test_labels"]).write_bytes(raw)
    check_mnist_like(D.get_dataset("mnist", tmp_path), arrays)


def test_mnist_needs_data_dir():
    with pytest.raises(DatasetError, match="--data-dir"):
        D.get_dataset("mnist")


@pytest.mark.parametrize("which", list(D.IDX_FILES))
def test_mnist_missing_file_named(tmp_path, which):
    _, paths = make_mnist_dir(tmp_path, gz=True)
    paths[which].unlink()
    with pytest.raises(DatasetError, match="--data-dir") as ei:
        D.get_dataset("mnist", tmp_path)
    assert D.IDX_FILES[which] in str(ei.value)


def test_mnist_count_mismatch_and_bad_labels(tmp_path):
    _, paths = make_mnist_dir(tmp_path, gz=False)
    write_idx(paths["train_labels"], np.zeros(N_TRAIN - 1, np.uint8), gz=False)
    with pytest.raises(DatasetError, match=f"{N_TRAIN} images but .* {N_TRAIN - 1} labels"):
        D.get_dataset("mnist", tmp_path)
    write_idx(paths["train_labels"], np.full(N_TRAIN, 10, np.uint8), gz=False)
    with pytest.raises(DatasetError, match=r"labels span \[10, 10\], expected \[0, 9\]") as ei:
        D.get_dataset("mnist", tmp_path)
    assert D.IDX_FILES["train_labels"] in str(ei.value)


def test_mnist_images_wrong_rank(tmp_path):
    _, paths = make_mnist_dir(tmp_path, gz=False)
    write_idx(paths["train_images"], np.zeros((N_TRAIN, 784), np.uint8), gz=False)
    with pytest.raises(DatasetError, match="2 dimensions, expected 3") as ei:
        D.get_dataset("mnist", tmp_path)
    assert str(paths["train_images"]) in str(ei.value)


def test_fashion_mnist_from_data_dir(tmp_path):
    arrays, _ = make_mnist_dir(tmp_path / "fm", gz=True, seed=3)
    ds = D.get_dataset("fashion-mnist", str(tmp_path / "fm"))
    check_mnist_like(ds, arrays)
    assert ds.name == "fashion-mnist" and str(tmp_path / "fm") in ds.source


def test_fashion_mnist_missing_default_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist") as ei:
        D.get_dataset("fashion-mnist")
    assert "--data-dir" in str(ei.value)


def test_fashion_mnist_missing_data_dir_file(tmp_path):
    make_mnist_dir(tmp_path, gz=True)
    (tmp_path / (D.IDX_FILES["test_images"] + ".gz")).unlink()
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte"):
        D.get_dataset("fashion-mnist", tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(
    not D.FASHION_MNIST_DIR.is_dir(),
    reason=f"Debian package dataset-fashion-mnist is not installed ({D.FASHION_MNIST_DIR} absent)",
)
def test_fashion_mnist_real_debian_package():
    ds = D.get_dataset("fashion-mnist")
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(ds.y_train), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(ds.y_test), np.full(10, 1000))


@pytest.mark.parametrize("name, tv_class", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
@pytest.mark.parametrize("gz", [False, True])
def test_torchvision_is_the_reader(tmp_path, monkeypatch, name, tv_class, gz):
    """The arrays come out of torchvision's dataset class (not a parser of ours), which reads the
    staged files: symlinks to the plain files, inflated copies of the gzipped ones."""
    import torchvision.datasets
    from torchvision.datasets import mnist as tvm

    arrays, paths = make_mnist_dir(tmp_path / "d", gz)
    made, read = [], []
    orig_load = tvm.MNIST._load_data

    def load_data(self):
        data, targets = orig_load(self)
        made.append((type(self), self.train, data.clone(), targets.clone()))
        return data, targets

    def recording(fn):
        def wrapped(path):
            read.append((Path(path), Path(path).is_symlink(), Path(path).resolve()))
            return fn(path)

        return wrapped

    monkeypatch.setattr(tvm.MNIST, "_load_data", load_data)
    monkeypatch.setattr(tvm, "read_image_file", recording(tvm.read_image_file))
    monkeypatch.setattr(tvm, "read_label_file", recording(tvm.read_label_file))
    ds = D.get_dataset(name, tmp_path / "d")
    check_mnist_like(ds, arrays)
    cls = getattr(torchvision.datasets, tv_class)
    assert [(c, train) for c, train, _, _ in made] == [(cls, True), (cls, False)]
    np.testing.assert_array_equal(made[0][2].numpy(), arrays["train_images"])
    np.testing.assert_array_equal(made[1][3].numpy(), arrays["test_labels"])
    assert [r[0].name for r in read] == [
        D.IDX_FILES[k] for k in ("train_images", "train_labels", "test_images", "test_labels")
    ]
    assert all(r[0].parent.parts[-2:] == (tv_class, "raw") for r in read)
    for (_, is_link, target), key in zip(read, ("train_images", "train_labels", "test_images", "test_labels")):
        assert is_link == (not gz)
        if not gz:
            assert target == paths[key].resolve()


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_nothing_is_downloaded(tmp_path, monkeypatch, name):
    """Loading, and failing to load, never calls torchvision's download nor opens a URL."""
    import urllib.request

    from torchvision.datasets import mnist as tvm
    from torchvision.datasets import utils as tvu

    def no_network(*a, **k):
        raise AssertionError(f"tried to download: {a}")

    monkeypatch.setattr(tvm.MNIST, "download", no_network)
    monkeypatch.setattr(tvm, "download_and_extract_archive", no_network)
    monkeypatch.setattr(tvu, "download_url", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    arrays, paths = make_mnist_dir(tmp_path, gz=True)
    check_mnist_like(D.get_dataset(name, tmp_path), arrays)
    paths["test_labels"].unlink()
    with pytest.raises(DatasetError, match="missing .*t10k-labels-idx1-ubyte"):
        D.get_dataset(name, tmp_path)


def test_staging_folder_is_removed(tmp_path, monkeypatch):
    """The temporary torchvision root is gone after a load and after a refusal (nothing left behind)."""
    import tempfile

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    arrays, paths = make_mnist_dir(tmp_path / "d", gz=True)
    check_mnist_like(D.get_dataset("mnist", tmp_path / "d"), arrays)
    assert list(tmp.iterdir()) == []
    paths["test_images"].write_bytes(gzip.compress(b"\x00\x00\x08\x03"))
    with pytest.raises(DatasetError, match="truncated IDX header"):
        D.get_dataset("mnist", tmp_path / "d")
    assert list(tmp.iterdir()) == []


def test_torchvision_refusal_is_a_dataset_error(tmp_path, monkeypatch):
    """Should torchvision still refuse what our checks passed (a file changed in between), the error
    names the folder and the reader, not a bare assert."""
    from torchvision.datasets import mnist as tvm

    def refuse(path):
        raise AssertionError()

    make_mnist_dir(tmp_path, gz=False)
    monkeypatch.setattr(tvm, "read_image_file", refuse)
    with pytest.raises(DatasetError, match=f"torchvision's MNIST reader refused the IDX files in {tmp_path}"):
        D.get_dataset("mnist", tmp_path)


def test_mnist_gzip_bomb_refused_by_the_loader(tmp_path, monkeypatch):
    """The memory budget reaches the loader's gunzip (tests/test_bad_inputs.py runs this through the CLI)."""
    make_mnist_dir(tmp_path, gz=True)
    gzip_bomb(tmp_path / "train-images-idx3-ubyte.gz", 4000)
    monkeypatch.setattr(D, "available_memory_bytes", lambda: int(2**20 / D.MEMORY_HEADROOM))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz: inflates to more than"):
        D.get_dataset("mnist", tmp_path)


def test_fashion_mnist_default_dir_is_the_debian_one(tmp_path, monkeypatch):
    """Without --data-dir the loader reads FASHION_MNIST_DIR (the Debian package's gzipped files)."""
    arrays, _ = make_mnist_dir(tmp_path / "debian", gz=True, seed=5)
    monkeypatch.setattr(D, "FASHION_MNIST_DIR", tmp_path / "debian")
    ds = D.get_dataset("fashion-mnist")
    check_mnist_like(ds, arrays)
    assert str(tmp_path / "debian") in ds.source


# ---------------------------------------------------------------- CIFAR-10


def write_cifar_dir(root: Path, n_per_batch: int = 4, seed: int = 0, protocol: int = 2):
    """cifar-10-batches-py/ with data_batch_1..5 and test_batch, as pickled dicts with bytes keys."""
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n_per_batch)]
        batches[name] = (data, labels)
        with open(d / name, "wb") as f:
            pickle.dump(
                {
                    b"batch_label": name.encode(),
                    b"labels": labels,
                    b"data": data,
                    b"filenames": [b"img%d.png" % i for i in range(n_per_batch)],
                },
                f,
                protocol=protocol,
            )
    return d, batches


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("give_parent", [True, False])
def test_cifar10_from_data_dir(tmp_path, protocol, give_parent):
    d, batches = write_cifar_dir(tmp_path, protocol=protocol)
    ds = D.get_dataset("cifar10", str(tmp_path if give_parent else d))
    n = 4
    assert ds.x_train.shape == (5 * n, 3, 32, 32) and ds.x_test.shape == (n, 3, 32, 32)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.shape == (3, 32, 32) and ds.n_classes == 10
    # the 3072 bytes of a row are 1024 red, 1024 green, 1024 blue, each row-major 32x32
    data0, labels0 = batches["data_batch_1"]
    red00 = data0[0, 0]
    green_r1c2 = data0[0, 1024 + 32 * 1 + 2]
    assert ds.x_train[0, 0, 0, 0] == np.float32(red00 / 255.0)
    assert ds.x_train[0, 1, 1, 2] == np.float32(green_r1c2 / 255.0)
    expect_train = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(ds.x_train.reshape(5 * n, 3072), (expect_train / 255.0).astype(np.float32))
    np.testing.assert_array_equal(ds.y_train, sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), []))
    np.testing.assert_array_equal(ds.y_test, batches["test_batch"][1])


def test_cifar10_needs_data_dir():
    with pytest.raises(DatasetError, match="--data-dir .*cifar-10-batches-py"):
        D.get_dataset("cifar10")


def test_cifar10_missing_batch_named(tmp_path):
    d, _ = write_cifar_dir(tmp_path)
    (d / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="data_batch_3") as ei:
        D.get_dataset("cifar10", tmp_path)
    assert "--data-dir" in str(ei.value)


def test_cifar10_corrupt_batch_named(tmp_path):
    d, _ = write_cifar_dir(tmp_path)
    (d / "test_batch").write_bytes(b"\x80\x02}q\x00garbage")
    with pytest.raises(DatasetError, match="not a CIFAR-10 python batch") as ei:
        D.get_dataset("cifar10", tmp_path)
    assert str(d / "test_batch") in str(ei.value)


def test_cifar10_wrong_shape_and_cifar100_hint(tmp_path):
    d, _ = write_cifar_dir(tmp_path)
    with open(d / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(DatasetError, match=r"data_batch_2.*shape \(2, 1024\), expected uint8 of shape \(n, 3072\)"):
        D.get_dataset("cifar10", tmp_path)
    with open(d / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1]}, f)
    with pytest.raises(DatasetError, match="lacks the key b'labels'.*CIFAR-100"):
        D.get_dataset("cifar10", tmp_path)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar10_refuses_code_in_pickle(tmp_path):
    d, _ = write_cifar_dir(tmp_path)
    with open(d / "data_batch_1", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": []}, f)
    with pytest.raises(DatasetError, match="builtins.print is not allowed"):
        D.get_dataset("cifar10", tmp_path)


# ---------------------------------------------------------------- registry, limits


def test_registry_and_unknown_name():
    assert {"digits", "fashion-mnist", "mnist", "cifar10"} <= set(D.DATASETS)
    with pytest.raises(DatasetError, match="unknown dataset 'nope'; available: digits"):
        D.get_dataset("nope")


def test_limits_and_config(tmp_path):
    arrays, _ = make_mnist_dir(tmp_path, gz=True)
    ds = D.get_dataset("mnist", tmp_path, limit_train=3, limit_test=2)
    assert len(ds.x_train) == len(ds.y_train) == 3 and len(ds.x_test) == len(ds.y_test) == 2
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"][:3])
    cfg = {"dataset": "mnist", "train": {"limit_train": 4}}
    ds = D.dataset_for_config(cfg, tmp_path)
    assert len(ds.x_train) == 4 and len(ds.x_test) == N_TEST
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(DatasetError, match="limit_train must be a positive integer"):
            D.get_dataset("mnist", tmp_path, limit_train=bad)


def test_digits_unchanged():
    ds = D.get_dataset("digits")
    assert ds.x_train.shape == (1347, 64) and ds.x_test.shape == (450, 64)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
