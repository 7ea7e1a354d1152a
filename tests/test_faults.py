"""Faults during a Lava run end promptly, with the right exit code and message, leaving nothing behind.

Each case runs the real CLI in a subprocess on a Lava job that takes far longer than the test
waits (600 Braille samples), with its own TMPDIR, and checks: the exit code, the message, a
bounded time, no surviving process, an empty TMPDIR.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFORMANCE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.lava,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and Linux signals"),
]

REPO = Path(__file__).resolve().parents[1]
GRAPH = CONFORMANCE / "braille_noDelay_bias_zero.nir"
#: the longest a faulted run may take to end, seconds
BOUND_S = 45


def _children(pid):
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        if int(rest[1]) == pid and rest[0] != "Z":
            kids[int(p)] = stat[stat.index("(") + 1 : stat.rindex(")")]
    return kids


def _descendants(pid):
    found, frontier = set(), {pid}
    while frontier:
        nxt = set()
        for q in frontier:
            nxt |= set(_children(q))
        nxt -= found
        found |= nxt
        frontier = nxt
    return found


def _alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.fixture
def short_tmp():
    """A TMPDIR with a short path (multiprocessing's AF_UNIX sockets live there: 108 bytes at most)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="sdf-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _start(tmp_path, env_extra=None, samples=600, tmpdir=None):
    tmpdir = tmpdir if tmpdir is not None else tmp_path / "tmp"
    tmpdir.mkdir(exist_ok=True)
    x = (np.random.default_rng(0).random((samples, 40, 12)) < 0.3).astype(np.float64)
    np.savez(tmp_path / "in.npz", spikes=x)
    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(REPO), **(env_extra or {}))
    cmd = [
        sys.executable,
        "-m",
        "snndeploy",
        "compare",
        str(GRAPH),
        "--backends",
        "norse,lava-float",
        "--input",
        str(tmp_path / "in.npz"),
        "--dt",
        "1e-4",
        "--out",
        str(tmp_path / "rep"),
    ]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    return proc, tmpdir


def _wait_for_lava(proc, at_least=4, timeout=120):
    """Wait until Lava's processes run (the parent has forked several), return their pids."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        kids = _children(proc.pid)
        if len(kids) >= at_least:
            time.sleep(2.0)  # let the run get going
            return _children(proc.pid)
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before Lava started: {proc.communicate()}")
        time.sleep(0.2)
    raise AssertionError("Lava did not start")


def _finish(proc, all_pids):
    start = time.time()
    try:
        out, err = proc.communicate(timeout=BOUND_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"still running {BOUND_S} s after the fault: {err[-2000:]}") from None
    took = time.time() - start
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in all_pids):
        time.sleep(0.2)
    survivors = [p for p in all_pids if _alive(p)]
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert not survivors, f"processes survived: {survivors}"
    return proc.returncode, err, took


def _assert_clean(tmpdir, tmp_path):
    assert sorted(os.listdir(tmpdir)) == [], f"left in TMPDIR: {os.listdir(tmpdir)}"
    assert not (tmp_path / "rep").exists(), "a report folder was written"


def test_a_lava_child_killed_mid_run_ends_the_run_with_exit_3(tmp_path, short_tmp):
    proc, tmpdir = _start(tmp_path, tmpdir=short_tmp)
    kids = _wait_for_lava(proc)
    victim = max(kids)  # the last one Lava forked: a process model
    everything = _descendants(proc.pid)
    os.kill(victim, signal.SIGKILL)
    rc, err, took = _finish(proc, everything)
    assert rc == 3, err[-2000:]
    assert "lava-float" in err and "died during the run" in err and "Traceback" not in err
    assert took < BOUND_S
    _assert_clean(tmpdir, tmp_path)


def test_sigint_to_the_process_group_exits_130_promptly(tmp_path, short_tmp):
    proc, tmpdir = _start(tmp_path, tmpdir=short_tmp)
    _wait_for_lava(proc)
    everything = _descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: every process of the group
    rc, err, took = _finish(proc, everything)
    assert rc == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    _assert_clean(tmpdir, tmp_path)


def test_sigterm_exits_143_and_cleans_up(tmp_path, short_tmp):
    proc, tmpdir = _start(tmp_path, tmpdir=short_tmp)
    _wait_for_lava(proc)
    everything = _descendants(proc.pid)
    os.kill(proc.pid, signal.SIGTERM)
    rc, err, took = _finish(proc, everything)
    assert rc == 143, err[-2000:]
    assert "SIGTERM" in err and "Traceback" not in err
    _assert_clean(tmpdir, tmp_path)


def test_the_wall_clock_limit_stops_a_run(tmp_path):
    proc, tmpdir = _start(tmp_path, {"SNNDEPLOY_LAVA_TIMEOUT_S": "3"})
    everything = set()
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        everything |= _descendants(proc.pid)
        time.sleep(0.2)
    rc, err, took = _finish(proc, everything)
    assert rc == 3, err[-2000:]
    assert "exceeded its wall-clock limit of 3 s" in err and "SNNDEPLOY_LAVA_TIMEOUT_S" in err
    _assert_clean(tmpdir, tmp_path)


def test_a_full_tmpdir_fails_before_the_run_with_exit_3(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(tmpdir)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a 64 KiB tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        proc, _ = _start(tmp_path)
        rc, err, took = _finish(proc, set())
        assert rc == 3, err[-2000:]
        assert "cannot create Lava's record file" in err and "No space left on device" in err
        _assert_clean(tmpdir, tmp_path)
    finally:
        subprocess.run(["umount", str(tmpdir)], check=False)


def test_what_a_sigkilled_run_leaves_in_tmpdir_is_swept_by_the_next_run(tmp_path, short_tmp):
    """SIGKILL cannot be handled: the record folder (and multiprocessing's folder) stay, named with the
    dead process id; the next Lava run removes them, and itself leaves nothing."""
    proc, tmpdir = _start(tmp_path, tmpdir=short_tmp)
    _wait_for_lava(proc)
    everything = _descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    _finish(proc, everything)  # Lava's processes die with their parent (PR_SET_PDEATHSIG)
    left = os.listdir(tmpdir)
    assert left and all(n.startswith(f"snndeploy-lava-{proc.pid}-") for n in left), left
    x = (np.random.default_rng(0).random((2, 5, 12)) < 0.3).astype(np.float64)
    np.savez(tmp_path / "small.npz", spikes=x)
    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(REPO))
    cmd = [
        sys.executable,
        "-m",
        "snndeploy",
        "run",
        str(GRAPH),
        "--backend",
        "lava-float",
        "--input",
        str(tmp_path / "small.npz"),
        "--dt",
        "1e-4",
        "--out",
        str(tmp_path / "o.npz"),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert os.listdir(tmpdir) == []
