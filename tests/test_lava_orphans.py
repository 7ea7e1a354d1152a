"""A Lava run whose parent is SIGKILLed (e.g. by the OOM killer) leaves no process behind.

Lava forks one OS process per process model; without our guard they survive the parent
(re-parented to init), keep its memory and run on.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import CONFORMANCE

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {repo!r})
    from snndeploy.ir import graph as G
    from snndeploy.backends import get_backend

    g = G.load_graph({graph!r})
    x = (np.random.default_rng(0).random((600, 40, 12)) < 0.3).astype(np.float64)
    def progress(name, frac):
        print("progress", frac, flush=True)
    get_backend("lava-float").run(g, x, 1e-4, progress=progress)
    print("finished", flush=True)
""")


def _ppid(pid: int):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
    return None if state == "Z" else int(ppid)


def _descendants(root: int):
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    parent = {p: _ppid(p) for p in pids}
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in found}
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux-only")
def test_lava_children_die_with_a_sigkilled_parent():
    graph = str(CONFORMANCE / "braille_noDelay_bias_zero.nir")
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(repo=str(REPO), graph=graph)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    children = set()
    try:
        line = proc.stdout.readline()  # Lava is running once it reports progress
        assert line.startswith("progress"), f"the Lava run did not start: {line!r}"
        children = _descendants(proc.pid)
        assert len(children) >= 3, "Lava should run several OS processes"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.time() + 15
        while time.time() < deadline and any(_alive(c) for c in children):
            time.sleep(0.2)
        survivors = [c for c in children if _alive(c)]
        assert not survivors, f"Lava processes survived their SIGKILLed parent: {survivors}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for c in children:  # orphans are re-parented: kill what we listed
            try:
                os.kill(c, signal.SIGKILL)
            except OSError:
                pass
