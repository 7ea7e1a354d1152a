"""Sharded comparisons: Dask workers give the in-process report, a hanging shard is retried once then
reported failed, an interrupted run resumes to the same report, and nothing is left behind (no
process, no shared-memory segment, nothing in TMPDIR) after a timeout, SIGTERM or SIGINT.

The CLI cases run the real CLI in a subprocess (own session, own short TMPDIR). A hanging shard is
injected with a Dask worker preload (``DASK_DISTRIBUTED__WORKER__PRELOAD``), which the nanny also
loads into the worker it restarts after killing one.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nir
import numpy as np
import pytest
from helpers import bernoulli, mlp_graph

from snndeploy.cli import main
from snndeploy.errors import InputError
from snndeploy.harness.compare import compare_runs
from snndeploy.harness.shards import ShardOptions, descendants, shm_segments

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and Linux signals")

REPO = Path(__file__).resolve().parents[1]
NAMES = ["norse", "lava-float", "loihi-emu"]
#: the longest a run may take to end after a fault or a signal, seconds
BOUND_S = 60

FAULTS = textwrap.dedent("""
    import os
    import time
    from pathlib import Path

    import snndeploy.harness.compare as C

    if not getattr(C, "_faults_patched", False):  # Dask may import a preload file twice
        C._faults_patched = True
        _orig = C.compare_shard

        def compare_shard(job):
            if job.start == {hang}:
                from snndeploy.harness.shards import announce

                announce(job.tag)  # its clock starts; then it never ends
                time.sleep(3600)
            marker = Path({marker!r})
            if job.start == {crash} and not marker.exists():  # its worker dies, the first time only
                marker.write_text("crashed")
                os._exit(1)
            return _orig(job)

        C.compare_shard = compare_shard
""")


def _graph(rng):
    return mlp_graph(rng, sizes=(6, 8, 3), dt_meta=1e-3)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small LIF graph and two inputs: 12 samples x 20 steps, 24 samples x 120 steps (longer Lava runs)."""
    d = tmp_path_factory.mktemp("dist")
    rng = np.random.default_rng(1)
    nir.write(str(d / "g.nir"), _graph(rng))
    np.savez(d / "small.npz", spikes=bernoulli(rng, (12, 20, 6)), labels=np.arange(12) % 3)
    np.savez(d / "long.npz", spikes=bernoulli(rng, (24, 120, 6)), labels=np.arange(24) % 3)
    return d


@pytest.fixture
def short_tmp():
    """A TMPDIR with a short path (multiprocessing's AF_UNIX sockets live there: 108 bytes at most)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="sdd-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _strip(rep: dict) -> dict:
    """A report without what depends on how and how fast it ran (execution, wall times); sharded runs
    list their failed shards, in-process runs have none to list."""
    rep = json.loads(json.dumps(rep))
    rep.pop("execution", None)
    assert rep.pop("failed_shards", []) == []
    for b in rep["backends"].values():
        for k in ("wall_s", "total_s"):
            b["info"].pop(k, None)
    return rep


def _shm() -> set:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


def _leaked(before: set) -> list:
    """Shared-memory segments created since ``before`` that still exist and no live process maps."""
    new = sorted(f"/dev/shm/{n}" for n in _shm() - before)
    if not new:
        return []
    used = set(shm_segments([int(p) for p in os.listdir("/proc") if p.isdigit()]))
    return [n for n in new if n not in used and os.path.exists(n)]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _cli(args, tmpdir, env_extra=None):
    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(REPO), **(env_extra or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "snndeploy", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _compare_args(files, inp, out, *more):
    return ["compare", str(files / "g.nir"), "--backends", ",".join(NAMES), "--input", str(files / inp)] + [
        "--out",
        str(out),
        *more,
    ]


def _finish(proc, pids, timeout=BOUND_S):
    """Wait for the CLI to end; every process it had (``pids``) must be gone soon after."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"still running {timeout} s on: {err[-3000:]}") from None
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    survivors = [p for p in pids if _alive(p)]
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert not survivors, f"processes survived: {survivors}; {err[-2000:]}"
    return proc.returncode, out, err


def _watch(proc, until, timeout=120):
    """Every process under the CLI, collected until ``until()`` holds; (pids, True) or (pids, False) on
    timeout or when the CLI ended first."""
    seen = set()
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        seen |= set(descendants(proc.pid))
        if until(seen):
            return seen, True
        time.sleep(0.1)
    return seen, False


def _lava_running(cli: int, workers: int = 1) -> bool:
    """Whether that many workers of the CLI's local cluster each run Lava (several processes under it)."""
    kids = [p for p in descendants(cli) if _parent(p) == cli]
    return sum(len([q for q in descendants(k) if _parent(q) == k]) >= 3 for k in kids) >= workers


def _parent(pid: int):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _assert_clean(tmpdir, shm_before):
    deadline = time.time() + 10
    while time.time() < deadline and os.listdir(tmpdir):
        time.sleep(0.2)
    assert sorted(os.listdir(tmpdir)) == [], f"left in TMPDIR: {os.listdir(tmpdir)}"
    assert _leaked(shm_before) == [], "shared-memory segments leaked"


@pytest.mark.slow
@pytest.mark.lava
def test_two_workers_give_the_in_process_report():
    rng = np.random.default_rng(1)
    g = _graph(rng)
    x = bernoulli(rng, (12, 20, 6))
    labels = np.arange(12) % 3
    ref, kept_ref = compare_runs(g, "g", NAMES, x, labels, 1e-3, "x", show_progress=False, chunk=3)
    rep, kept = compare_runs(g, "g", NAMES, x, labels, 1e-3, "x", chunk=3, shards=ShardOptions(workers=2))
    assert rep["execution"]["mode"] == "local cluster" and rep["execution"]["workers"] == 2
    assert rep["execution"]["shards"] == {"count": 4, "done": 4, "failed": 0, "resumed": 0}
    assert "execution" not in ref and rep["failed_shards"] == []  # in-process: the report as it always was
    assert _strip(rep) == _strip(ref)
    assert rep["plotted_samples"] == ref["plotted_samples"]
    for name in NAMES:
        for node, a in kept_ref[name].outputs.items():
            assert np.array_equal(a, kept[name].outputs[node]), (name, node)


@pytest.mark.slow
@pytest.mark.lava
def test_a_hanging_shard_is_retried_once_then_reported_failed_a_crashed_one_retried(files, tmp_path, short_tmp):
    shm_before = _shm()
    preload = tmp_path / "faults.py"
    preload.write_text(FAULTS.format(hang=3, crash=6, marker=str(tmp_path / "crashed")))
    out = tmp_path / "rep"
    args = _compare_args(files, "small.npz", out, "--workers", "2", "--chunk", "3", "--shard-timeout", "10")
    proc = _cli(args, short_tmp, {"DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps([str(preload)])})
    seen, _ = _watch(proc, lambda s: False, timeout=BOUND_S + 30)
    rc, stdout, err = _finish(proc, seen)
    assert rc == 1, err[-3000:]
    assert "FAILED shard 1 (samples 3-5, 2 attempts)" in stdout and "Traceback" not in err
    rep = json.loads((out / "report.json").read_text())
    assert not rep["passed"]
    [failed] = rep["failed_shards"]
    assert failed["shard"] == 1 and failed["samples"] == [3, 5] and failed["attempts"] == 2
    assert all("shard timeout of 10 s" in e for e in failed["errors"]) and len(failed["errors"]) == 2, failed
    assert rep["samples_compared"] == 9 and all(p["samples"] == 9 for p in rep["pairs"])
    assert rep["execution"]["shards"] == {"count": 4, "done": 3, "failed": 1, "resumed": 0}
    assert (tmp_path / "crashed").exists()  # shard 2's worker died once; its retry finished
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        "manifest.json",
        "shard-00000.npz",
        "shard-00002.npz",
        "shard-00003.npz",
    ]
    assert "Failed shards" in (out / "report.md").read_text()
    _assert_clean(short_tmp, shm_before)


@pytest.mark.slow
@pytest.mark.lava
def test_sigterm_mid_run_then_resume_gives_the_uninterrupted_report(files, tmp_path, short_tmp):
    ref = tmp_path / "ref"
    assert main(_compare_args(files, "long.npz", ref, "--chunk", "4")) in (0, 1)
    shm_before = _shm()
    out = tmp_path / "rep"
    proc = _cli(_compare_args(files, "long.npz", out, "--workers", "1", "--chunk", "4"), short_tmp)
    first = out / "shards" / "shard-00000.npz"
    seen, ok = _watch(proc, lambda s: first.exists())
    assert ok, f"no shard finished: {proc.communicate()[1][-3000:] if proc.poll() is not None else ''}"
    seen, ok = _watch(proc, lambda s: _lava_running(proc.pid), timeout=30)  # the next shard's Lava runs
    assert ok, "Lava did not run in the worker"
    proc.send_signal(signal.SIGTERM)
    rc, _, err = _finish(proc, seen | set(descendants(proc.pid)))
    assert rc == 143, err[-3000:]
    assert "SIGTERM" in err and "--resume" in err and "Traceback" not in err
    assert not (out / "report.json").exists()
    done = sorted(p.name for p in (out / "shards").glob("shard-*.npz"))
    assert 1 <= len(done) < 6, done
    _assert_clean(short_tmp, shm_before)

    proc = _cli(_compare_args(files, "long.npz", out, "--workers", "1", "--resume"), short_tmp)
    rc, _, err = _finish(proc, set(), timeout=240)
    assert rc in (0, 1), err[-3000:]
    rep = json.loads((out / "report.json").read_text())
    assert rep["execution"]["shards"]["resumed"] == len(done) and rep["execution"]["shards"]["done"] == 6
    assert _strip(rep) == _strip(json.loads((ref / "report.json").read_text()))
    _assert_clean(short_tmp, shm_before)


@pytest.mark.slow
@pytest.mark.lava
def test_sigint_to_the_process_group_ends_a_distributed_run_cleanly(files, tmp_path, short_tmp):
    shm_before = _shm()
    out = tmp_path / "rep"
    proc = _cli(_compare_args(files, "long.npz", out, "--workers", "2", "--chunk", "12"), short_tmp)
    # two workers, each running Lava (several processes each)
    seen, ok = _watch(proc, lambda s: _lava_running(proc.pid, workers=2))
    assert ok, "Lava did not start in both workers"
    time.sleep(1.0)
    seen |= set(descendants(proc.pid))
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: every process of the group
    rc, _, err = _finish(proc, seen)
    assert rc == 130, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err
    _assert_clean(short_tmp, shm_before)


def test_a_mismatched_resume_is_refused_and_a_matching_one_gives_the_same_report(files, tmp_path, capsys):
    """In-process shards (no workers): --resume writes each finished shard; a lost shard is run again."""
    out = tmp_path / "rep"

    def args(*more, backends="norse,loihi-emu", inp=files / "small.npz"):
        return ["compare", str(files / "g.nir"), "--backends", backends, "--input", str(inp), "--out", str(out)] + [
            *more
        ]

    assert main(args("--chunk", "3", "--resume")) in (0, 1)
    first = json.loads((out / "report.json").read_text())
    assert first["execution"]["mode"] == "in-process" and first["execution"]["shards"]["done"] == 4
    (out / "shards" / "shard-00002.npz").unlink()
    assert main(args("--resume")) in (0, 1)  # the shard size comes from the manifest
    again = json.loads((out / "report.json").read_text())
    assert again["execution"]["shards"]["resumed"] == 3
    assert _strip(again) == _strip(first)
    capsys.readouterr()
    other = tmp_path / "other.npz"
    np.savez(other, spikes=bernoulli(np.random.default_rng(5), (12, 20, 6)))
    for argv, what in (
        (args("--resume", "--min-spike-agreement", "0.5"), "tolerances"),
        (args("--resume", "--chunk", "4"), "shard_size"),
        (args("--resume", backends="norse,loihi-emu,lava-float"), "backends"),
        (args("--resume", inp=other), "input"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "belong to a different comparison" in err and what in err, err


def test_shard_options_are_checked_before_any_work(files, tmp_path, capsys):
    base = ["compare", str(files / "g.nir"), "--backends", "norse,loihi-emu", "--input", str(files / "small.npz")]
    assert main(base + ["--out", str(tmp_path / "a"), "--shard-timeout", "5"]) == 2
    assert "--shard-timeout goes with --workers" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "a"), "--workers", "0"]) == 2
    assert "--workers must be a positive" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


@pytest.mark.slow
@pytest.mark.lava
def test_run_with_workers_writes_what_an_in_process_run_writes(files, tmp_path):
    base = ["run", str(files / "g.nir"), "--backend", "lava-float", "--input", str(files / "small.npz")]
    assert main(base + ["--out", str(tmp_path / "a.npz")]) == 0
    assert main(base + ["--out", str(tmp_path / "b.npz"), "--workers", "2", "--chunk", "5"]) == 0
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.slow
def test_daemonic_workers_of_an_existing_cluster_are_refused_for_lava():
    import logging

    from distributed import LocalCluster

    rng = np.random.default_rng(1)
    g, x = _graph(rng), bernoulli(rng, (4, 5, 6))
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.CRITICAL
    ) as cluster:
        opts = ShardOptions(scheduler=cluster.scheduler_address, progress=False)
        with pytest.raises(InputError, match="daemonic"):
            compare_runs(g, "g", ["norse", "lava-float"], x, None, 1e-3, "x", shards=opts)


def test_only_the_plotted_shards_records_are_kept_whatever_order_shards_finish_in():
    """The plotted sample is the first diverging shard's, else the first shard's; other shards' records
    are freed as soon as they cannot be it, in any arrival order."""
    import itertools

    from snndeploy.harness.compare import _prune_kept

    for diverged in ([False, False, True, True], [False] * 4, [True, False, True, False]):
        winner = diverged.index(True) if any(diverged) else 0
        for order in itertools.permutations(range(4)):
            payloads = {}
            for i in order:
                payloads[i] = {"diverged": diverged[i], "kept": f"records {i}"}
                _prune_kept(payloads)
            assert payloads[winner]["kept"] == f"records {winner}", (diverged, order)
            assert [i for i, p in payloads.items() if p["kept"] is not None] == [winner], (diverged, order)


def test_run_resume_reruns_only_the_lost_shard_and_writes_the_same_records(files, tmp_path, capsys):
    """``run --resume`` keeps its finished shards in OUT.shards; a lost one is run again, the rest are
    read back, and the records equal those of a run in one piece; another input is refused."""
    base = ["run", str(files / "g.nir"), "--backend", "loihi-emu"]
    whole, sharded = tmp_path / "whole.npz", tmp_path / "sharded.npz"
    assert main(base + ["--input", str(files / "small.npz"), "--out", str(whole)]) == 0
    assert main(base + ["--input", str(files / "small.npz"), "--out", str(sharded), "--chunk", "3", "--resume"]) == 0
    folder = tmp_path / "sharded.npz.shards"
    assert sorted(p.name for p in folder.glob("shard-*.npz")) == [f"shard-0000{i}.npz" for i in range(4)]
    kept = {p.name: p.stat().st_mtime_ns for p in folder.glob("shard-*.npz")}
    (folder / "shard-00001.npz").unlink()
    sharded.unlink()
    capsys.readouterr()
    assert main(base + ["--input", str(files / "small.npz"), "--out", str(sharded), "--resume"]) == 0
    assert "shards: 4 (1 run now, 3 resumed)" in capsys.readouterr().out
    now = {p.name: p.stat().st_mtime_ns for p in folder.glob("shard-*.npz")}
    assert {k: v for k, v in now.items() if k != "shard-00001.npz"} == {
        k: v for k, v in kept.items() if k != "shard-00001.npz"
    }, "finished shards must be read back, not rewritten"
    a, b = np.load(whole), np.load(sharded)
    assert sorted(a.files) == sorted(b.files) and a["lif1"].sum() > 0  # not a silent network
    for k in a.files:
        assert np.array_equal(a[k], b[k]), k
    other = tmp_path / "other.npz"
    np.savez(other, spikes=bernoulli(np.random.default_rng(5), (12, 20, 6)))
    assert main(base + ["--input", str(other), "--out", str(sharded), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "belong to a different run" in err and "input" in err, err


@pytest.mark.slow
def test_shipping_a_shards_samples_raises_no_large_graph_warning():
    """Every shard's samples travel to its worker once, by design; Dask's "Sending large graph"
    advice does not apply and is not shown (threshold lowered here so that these shards pass it)."""
    import warnings

    import dask

    rng = np.random.default_rng(3)
    g, x = _graph(rng), bernoulli(rng, (8, 20, 6))
    threshold = {"distributed.admin.large-graph-warning-threshold": "1kB"}
    with dask.config.set(threshold), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep, _ = compare_runs(
            g,
            "g",
            ["norse", "loihi-emu"],
            x,
            None,
            1e-3,
            "test",
            chunk=4,
            shards=ShardOptions(workers=1, progress=False),
        )
    assert rep["execution"]["shards"]["done"] == 2
    assert not [w for w in caught if "large graph" in str(w.message)], [str(w.message) for w in caught]


def test_run_refuses_a_shard_folder_that_is_a_file_before_any_work(files, tmp_path, capsys):
    out = tmp_path / "o.npz"
    (tmp_path / "o.npz.shards").write_text("not a folder")
    argv = ["run", str(files / "g.nir"), "--backend", "loihi-emu", "--input", str(files / "small.npz")]
    assert main(argv + ["--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "o.npz.shards" in err and "not a folder" in err, err
    assert not out.exists()
