"""Bad inputs, one table: each must end with its exit code, a one-line message naming what and where,
no traceback, nothing written, and in bounded time (no job runs before the input is refused).

The README quotes the number of cases here (``len(CASES)``).
"""

import gzip
import json
import os
import struct
import time
import zipfile

import h5py
import nir
import numpy as np
import pytest

from snndeploy.cli import main

DT = 1e-3
#: every refusal here comes before any backend has run: well under this many seconds
BOUND_S = 30


def lif_graph(**changes):
    """in(4) -> fc (Affine 3x4) -> lif1 (LIF 3) -> out, dt in metadata; ``changes``: node field overrides."""
    rng = np.random.default_rng(0)
    nodes = {
        "in": nir.Input(input_type={"input": np.array([4])}),
        "fc": nir.Affine(weight=rng.uniform(0.5, 2.0, (3, 4)), bias=np.zeros(3)),
        "lif1": nir.LIF(
            tau=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.full(3, 0.1), v_reset=np.zeros(3)
        ),
        "out": nir.Output(output_type={"output": np.array([3])}),
    }
    meta = {"dt": DT}
    for key, value in changes.items():
        if key == "metadata":
            meta = value
        else:
            node, field = key.split("__")
            setattr(nodes[node], field, value)
    return nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "lif1"), ("lif1", "out")], metadata=meta)


def write_graph(tmp, graph, name="g.nir"):
    path = tmp / name
    nir.write(str(path), graph)
    return path


def spikes(tmp, name="in.npz", shape=(2, 10, 4), **extra):
    x = (np.random.default_rng(1).random(shape) < 0.5).astype(np.float64)
    np.savez(tmp / name, spikes=x, **extra)
    return tmp / name


def compare(tmp, graph=None, inp=None, backends="norse,lava-float", out=None, extra=()):
    g = graph if graph is not None else write_graph(tmp, lif_graph())
    i = inp if inp is not None else spikes(tmp)
    out = tmp / "rep" if out is None else out
    return ["compare", str(g), "--backends", backends, "--input", str(i), "--out", str(out), *extra]


def run(tmp, graph=None, inp=None, backend="norse", out=None, extra=()):
    g = graph if graph is not None else write_graph(tmp, lif_graph())
    i = inp if inp is not None else spikes(tmp)
    out = tmp / "o.npz" if out is None else out
    return ["run", str(g), "--backend", backend, "--input", str(i), "--out", str(out), *extra]


def _huge_nir(tmp):
    """A few KB on disk, 10^10 float64 parameters once read (80 GB): a compressed dataset never written."""
    path = write_graph(tmp, lif_graph())
    with h5py.File(path, "r+") as f:
        grp = f["node/nodes/fc"]
        del grp["weight"]
        grp.create_dataset("weight", shape=(100_000, 100_000), dtype="f8", compression="gzip", chunks=(1000, 1000))
    return path


def _huge_npz_header(tmp):
    """A tiny .npz whose 'spikes' header claims 10^6 x 10^3 x 4 float64 values."""
    header = {"descr": "<f8", "fortran_order": False, "shape": (1_000_000, 1000, 4)}
    text = repr(header).encode()
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + b"\x00" * 64
    with zipfile.ZipFile(tmp / "huge.npz", "w") as z:
        z.writestr("spikes.npy", npy)
    return tmp / "huge.npz"


def _pickled_npz(tmp):
    np.savez(tmp / "p.npz", spikes=np.array([{"a": 1}, None], dtype=object))
    return tmp / "p.npz"


def _graph_with_config(tmp, config):
    return write_graph(tmp, lif_graph(metadata={"dt": DT, "snndeploy_config": json.dumps(config)}))


def _target(tmp, **const):
    text = 'name = "t"\nkind = "%s"\ndescription = "x"\n[energy]\nop = { value = %s, per = "synops", source = "s" }\n'
    path = tmp / "t.toml"
    path.write_text(text % (const.get("kind", "snn"), const.get("value", "1.0")))
    return path


def _conv1d_graph(tmp):
    g = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([1, 5])}),
            "c": nir.Conv1d(
                input_shape=5, weight=np.ones((1, 1, 2)), stride=1, padding=0, dilation=1, groups=1, bias=np.zeros(1)
            ),
            "out": nir.Output(output_type={"output": np.array([1, 4])}),
        },
        edges=[("in", "c"), ("c", "out")],
        metadata={"dt": DT},
        type_check=False,
    )
    g.nodes["c"].input_type = {"input": np.array([1, 5])}
    g.nodes["c"].output_type = {"output": np.array([1, 4])}
    return write_graph(tmp, g)


def _dangling(tmp):
    os.symlink(tmp / "nowhere", tmp / "dangling")
    return tmp / "dangling"


# (id, argv builder, exit code, text the message must hold)
def _type_foo(tmp):
    """A file whose LIF node names a type nir does not define (written by hand with h5py)."""
    path = write_graph(tmp, lif_graph())
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif1/type"]
        f["node/nodes/lif1/type"] = np.bytes_("Foo")
    return path


def _mismatched_types(tmp):
    """Input of 5 into an Affine that takes 4: nir's type check fails."""
    g = lif_graph()
    g.nodes["in"] = nir.Input(input_type={"input": np.array([5])})
    path = tmp / "mismatch.nir"
    nir.write(str(path), g)
    return path


CASES = [
    (
        "node-type-not-in-nir",
        lambda t: compare(t, graph=_type_foo(t)),
        2,
        "node 'lif1' has type 'Foo', which NIR (nir 1.0.8) does not define",
    ),
    (
        "edge-shapes-disagree",
        lambda t: compare(t, graph=_mismatched_types(t)),
        2,
        "NIR's type check failed",
    ),
    (
        "exporter-unknown",
        lambda t: compare(t, extra=["--exporter", "pytorch"]),
        2,
        "unknown exporter 'pytorch'; known: nir, snndeploy, norse",
    ),
    (
        "exporter-contradicts-metadata",
        lambda t: compare(
            t,
            graph=write_graph(t, lif_graph(metadata={"dt": DT, "snndeploy_exporter": "snndeploy"})),
            extra=["--exporter", "sinabs"],
        ),
        2,
        "--exporter sinabs contradicts the exporter 'snndeploy'",
    ),
    ("graph-missing", lambda t: compare(t, graph=t / "none.nir"), 2, "does not exist"),
    (
        "graph-not-hdf5",
        lambda t: compare(t, graph=(t / "x.nir", (t / "x.nir").write_text("hi"))[0]),
        2,
        "not a NIR file",
    ),
    ("graph-huge-compressed-parameters", lambda t: compare(t, graph=_huge_nir(t)), 2, "dataset 'node/nodes/fc/weight'"),
    (
        "metadata-dt-string",
        lambda t: compare(t, graph=write_graph(t, lif_graph(metadata={"dt": "abc"}))),
        2,
        "metadata 'dt'",
    ),
    (
        "metadata-dt-list",
        lambda t: compare(t, graph=write_graph(t, lif_graph(metadata={"dt": [1e-3, 2e-3]}))),
        2,
        "expected one number of seconds",
    ),
    (
        "lif-tau-strings",
        lambda t: compare(t, graph=_strings_in_tau(t)),
        2,
        "field 'tau' holds values of type",
    ),
    (
        "lif-tau-complex",
        lambda t: compare(t, graph=write_graph(t, lif_graph(lif1__tau=np.full(3, 1e-2 + 1j)))),
        2,
        "expected real numbers",
    ),
    (
        "weights-bool",
        lambda t: compare(t, graph=write_graph(t, lif_graph(fc__weight=np.ones((3, 4), bool)))),
        2,
        "field 'weight' holds values of type bool",
    ),
    (
        "lif-tau-negative",
        lambda t: compare(t, graph=write_graph(t, lif_graph(lif1__tau=np.full(3, -1.0)))),
        2,
        "must be > 0 seconds",
    ),
    (
        "weight-nan",
        lambda t: compare(t, graph=write_graph(t, lif_graph(fc__weight=np.full((3, 4), np.nan)))),
        2,
        "parameters must be finite",
    ),
    (
        "config-json-list",
        lambda t: [
            "compare",
            str(_graph_with_config(t, [1, 2])),
            "--backends",
            "norse,lava-float",
            "--dataset",
            "digits",
            "--out",
            str(t / "rep"),
        ],
        2,
        "expected an object",
    ),
    (
        "encoding-steps-1e9",
        lambda t: [
            "compare",
            str(_graph_with_config(t, {"encoding": {"kind": "poisson", "steps": 10**9}})),
            "--backends",
            "norse,lava-float",
            "--dataset",
            "digits",
            "--out",
            str(t / "rep"),
        ],
        2,
        "encoded over 1000000000 steps",
    ),
    (
        "unknown-node-type",
        lambda t: compare(t, graph=_conv1d_graph(t), inp=spikes(t, shape=(1, 3, 1, 5))),
        2,
        "cannot run node 'c' of type Conv1d",
    ),
    ("out-is-a-file", lambda t: compare(t, out=(t / "f", (t / "f").write_text("x"))[0]), 2, "is not a folder"),
    ("out-empty", lambda t: compare(t, out=""), 2, "--out is empty"),
    (
        "out-under-a-file",
        lambda t: compare(t, out=(t / "f", (t / "f").write_text("x"))[0] / "rep"),
        2,
        "no folder can be made under it",
    ),
    ("out-dangling-symlink", lambda t: compare(t, out=_dangling(t)), 2, "symbolic link to nothing"),
    ("run-out-is-a-folder", lambda t: run(t, out=t), 2, "is a folder"),
    ("input-missing", lambda t: compare(t, inp=t / "none.npz"), 2, "does not exist"),
    (
        "input-not-npz",
        lambda t: compare(t, inp=(t / "x.npz", (t / "x.npz").write_text("hi"))[0]),
        2,
        "not a readable .npz",
    ),
    (
        "input-no-spikes",
        lambda t: compare(t, inp=(np.savez(t / "n.npz", x=np.ones(3)), t / "n.npz")[1]),
        2,
        "has no array 'spikes'",
    ),
    ("input-pickled-objects", lambda t: compare(t, inp=_pickled_npz(t)), 2, "not a readable .npz"),
    ("input-huge-header", lambda t: compare(t, inp=_huge_npz_header(t)), 2, "array 'spikes' (1000000, 1000, 4)"),
    ("input-wrong-shape", lambda t: compare(t, inp=spikes(t, shape=(2, 10, 5))), 2, "expects per step (4,)"),
    (
        "input-nan",
        lambda t: compare(t, inp=(np.savez(t / "n.npz", spikes=np.full((1, 3, 4), np.nan)), t / "n.npz")[1]),
        2,
        "NaN or inf",
    ),
    ("labels-float", lambda t: compare(t, inp=spikes(t, labels=np.array([0.5, 1.0]))), 2, "expected whole numbers"),
    ("labels-nan", lambda t: compare(t, inp=spikes(t, labels=np.array([np.nan, 1.0]))), 2, "expected whole numbers"),
    ("labels-strings", lambda t: compare(t, inp=spikes(t, labels=np.array(["a", "b"]))), 2, "expected whole numbers"),
    ("labels-out-of-range", lambda t: compare(t, inp=spikes(t, labels=np.array([0, 7]))), 2, "has 3 classes"),
    ("labels-negative", lambda t: compare(t, inp=spikes(t, labels=np.array([0, -1]))), 2, "class indices are >= 0"),
    ("labels-wrong-length", lambda t: compare(t, inp=spikes(t, labels=np.array([0, 1, 2]))), 2, "expected (2,)"),
    ("backend-unknown", lambda t: compare(t, backends="norse,loihi9"), 2, "unknown backend 'loihi9'"),
    ("backend-twice", lambda t: compare(t, backends="norse,norse"), 2, "lists a backend twice"),
    ("backend-only-one", lambda t: compare(t, backends="norse"), 2, "at least two names"),
    (
        "fixed-point-graded-input",
        lambda t: run(
            t, inp=(np.savez(t / "g.npz", spikes=np.full((1, 3, 4), 0.5)), t / "g.npz")[1], backend="loihi-emu"
        ),
        2,
        "input must be binary spikes",
    ),
    ("dt-negative", lambda t: compare(t, extra=("--dt", "-1")), 2, "--dt must be a positive number"),
    ("dt-contradicts", lambda t: compare(t, extra=("--dt", "1e-4")), 2, "contradicts the dt"),
    ("tolerance-above-1", lambda t: compare(t, extra=("--min-spike-agreement", "2")), 2, "within [0, 1]"),
    ("chunk-zero", lambda t: compare(t, extra=("--chunk", "0")), 2, "--chunk must be a positive number"),
    ("samples-with-input", lambda t: compare(t, extra=("--samples", "3")), 2, "--samples goes with --dataset"),
    (
        "target-nan",
        lambda t: [
            "energy",
            str(write_graph(t, lif_graph())),
            "--input",
            str(spikes(t)),
            "--target",
            str(_target(t, value="nan")),
        ],
        2,
        "must be a finite number >= 0",
    ),
    (
        "target-inf",
        lambda t: [
            "energy",
            str(write_graph(t, lif_graph())),
            "--input",
            str(spikes(t)),
            "--target",
            str(_target(t, value="inf")),
        ],
        2,
        "must be a finite number >= 0",
    ),
    (
        "target-kind-unknown",
        lambda t: [
            "energy",
            str(write_graph(t, lif_graph())),
            "--input",
            str(spikes(t)),
            "--target",
            str(_target(t, kind="gpu")),
        ],
        2,
        "kind is 'gpu'",
    ),
    ("target-missing", lambda t: compare(t, extra=("--target", "loihi9")), 2, "target 'loihi9' not found"),
    (
        "train-epochs-0",
        lambda t: ["train", "--model", "digits_mlp", "--dataset", "digits", "--epochs", "0", "--out", str(t / "tr")],
        2,
        "must be a whole number >= 1, got 0",
    ),
    (
        "train-epochs-negative",
        lambda t: ["train", "--model", "digits_mlp", "--dataset", "digits", "--epochs", "-1", "--out", str(t / "tr")],
        2,
        "got -1",
    ),
    (
        "train-model-unknown",
        lambda t: ["train", "--model", "nope", "--dataset", "digits", "--out", str(t / "tr")],
        2,
        "model config 'nope' not found",
    ),
    (
        "train-dataset-unknown",
        lambda t: ["train", "--model", "digits_mlp", "--dataset", "nope", "--out", str(t / "tr")],
        2,
        "nope",
    ),
    ("qat-no-checkpoint", lambda t: ["qat", "--from", str(t), "--out", str(t / "q")], 2, "no checkpoint"),
    (
        "mnist-gzip-bomb",
        lambda t: [
            "train",
            "--model",
            "digits_mlp",
            "--dataset",
            "mnist",
            "--data-dir",
            str(_gzip_bomb(t)),
            "--out",
            str(t / "tr"),
        ],
        2,
        "inflates to more than",
    ),
    (
        "qat-lr-nan",
        lambda t: ["qat", "--from", str(_empty_checkpoint(t)), "--lr", "nan", "--out", str(t / "q")],
        2,
        "--lr must be a finite number > 0, got nan",
    ),
    ("out-in-proc", lambda t: compare(t, out="/proc/snndeploy-x"), 2, "cannot write into '/proc'"),
    (
        "cifar-keys-not-utf8",
        lambda t: [
            "train",
            "--model",
            "cifar10_mlp",
            "--dataset",
            "cifar10",
            "--data-dir",
            str(_cifar_bad_keys(t)),
            "--out",
            str(t / "tr"),
        ],
        2,
        "lacks the key b'data'",
    ),
    (
        "cifar-data-by-reference",
        lambda t: [
            "train",
            "--model",
            "cifar10_mlp",
            "--dataset",
            "cifar10",
            "--data-dir",
            str(_cifar_by_reference(t)),
            "--out",
            str(t / "tr"),
        ],
        2,
        "expected a numpy array",
    ),
    (
        "convert-dt-zero",
        lambda t: ["convert", str(_tiny_onnx(t)), "--dataset", "digits", "--dt", "0", "--out", str(t / "c")],
        2,
        "--dt must be a finite number of seconds > 0, got 0.0",
    ),
    (
        "convert-samples-zero",
        lambda t: ["convert", str(_tiny_onnx(t)), "--dataset", "digits", "--samples", "0", "--out", str(t / "c")],
        2,
        "--samples must be >= 1 (or left out for the whole test split), got 0",
    ),
    (
        "convert-samples-negative",
        lambda t: ["convert", str(_tiny_onnx(t)), "--dataset", "digits", "--samples", "-5", "--out", str(t / "c")],
        2,
        "--samples must be >= 1 (or left out for the whole test split), got -5",
    ),
    (
        "network-no-backend",
        lambda t: ["network", "seed_poisson_lif", "--backends", ",", "--out", str(t / "n")],
        2,
        "--backends: name at least one backend",
    ),
    (
        "sweep-samples-zero",
        lambda t: ["sweep", "--model", "digits_mlp", "--samples", "0", "--out", str(t / "s")],
        2,
        "--samples must be a whole number >= 1, got 0",
    ),
]


def _tiny_onnx(tmp):
    """A Linear(64 -> 10) ReLU-free network as ONNX: convertible, so only the option is at fault."""
    import torch

    path = tmp / "tiny.onnx"
    torch.onnx.export(
        torch.nn.Linear(64, 10).eval(),
        torch.zeros(1, 64),
        str(path),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        dynamo=False,
    )
    return path


def _empty_checkpoint(tmp):
    (tmp / "ck").mkdir()
    (tmp / "ck" / "checkpoint.pt").write_bytes(b"")
    return tmp / "ck"


def _cifar_bad_keys(tmp):
    """A CIFAR-10 folder whose first batch is a dict with keys that are not UTF-8."""
    import pickle

    d = tmp / "cifar"
    d.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (d / name).write_bytes(pickle.dumps({b"\xff\xfe": 1, b"\x80": 2}))
    return d


def _cifar_by_reference(tmp):
    """A CIFAR batch whose 'data' lists one array 10^4 times by reference: about 30 KB on disk, 30 MB
    once stacked (the ratio grows with the count: a pickle file bounds nothing here)."""
    import pickle

    d = tmp / "cifar-ref"
    d.mkdir()
    row = np.zeros((1, 3072), np.uint8)
    batch = pickle.dumps({b"data": [row] * 10_000, b"labels": [0] * 10_000})
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (d / name).write_bytes(batch)
    return d


def _strings_in_tau(tmp):
    """A LIF whose tau dataset holds byte strings (nir.write cannot write them; h5py can)."""
    path = write_graph(tmp, lif_graph())
    with h5py.File(path, "r+") as f:
        grp = f["node/nodes/lif1"]
        del grp["tau"]
        grp.create_dataset("tau", data=np.array([b"a", b"b", b"c"]))
    return path


#: the memory budget the gzip-bomb case pretends to have, bytes
BOMB_BUDGET = 2**24


def _idx(path, magic: bytes, dims, payload: bytes = b"") -> None:
    with gzip.open(path, "wb") as f:
        f.write(magic + struct.pack(">" + "I" * len(dims), *dims) + payload)


def _gzip_bomb(tmp):
    """An MNIST folder whose training images inflate to 64 MiB from about 64 KiB, against a
    pretended memory budget of 16 MiB (patched in the test): the shape of a real bomb, small."""
    d = tmp / "mnist"
    d.mkdir()
    n = (2**26) // 784
    with gzip.open(d / "train-images-idx3-ubyte.gz", "wb", compresslevel=9) as f:
        f.write(b"\x00\x00\x08\x03" + struct.pack(">III", n, 28, 28))
        for _ in range(64):
            f.write(b"\x00" * 2**20)
    _idx(d / "train-labels-idx1-ubyte.gz", b"\x00\x00\x08\x01", [1], b"\x00")
    _idx(d / "t10k-images-idx3-ubyte.gz", b"\x00\x00\x08\x03", [1, 28, 28], b"\x00" * 784)
    _idx(d / "t10k-labels-idx1-ubyte.gz", b"\x00\x00\x08\x01", [1], b"\x00")
    return d


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_cleanly(tmp_path, capsys, monkeypatch, case):
    name, build, code, text = case
    if name == "mnist-gzip-bomb":
        from snndeploy.data import datasets

        monkeypatch.setattr(datasets, "available_memory_bytes", lambda: int(BOMB_BUDGET / datasets.MEMORY_HEADROOM))
    argv = build(tmp_path)
    before = set(os.listdir(tmp_path))
    start = time.time()
    rc = main(argv)
    took = time.time() - start
    err = capsys.readouterr().err
    assert rc == code, err
    assert text in err, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert took < BOUND_S
    written = set(os.listdir(tmp_path)) - before
    assert not written, f"left behind: {written}"


def test_the_readme_counts_these_cases():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"{len(CASES)} bad inputs" in readme
