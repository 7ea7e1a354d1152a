"""Keeping a Lava run from hanging or leaving anything behind.

Lava forks one OS process per process model and waits on them with no liveness check, so a
child that dies (the OOM killer may pick a child, a recorder may hit a full disk) or one
Ctrl-C (a terminal sends SIGINT to the whole process group) left the main process waiting
forever. Around every Lava run:

- processes forked during the run are SIGKILLed by Linux when we die, even by SIGKILL
  (``prctl(PR_SET_PDEATHSIG)`` in an at-fork hook), and ignore SIGINT: the parent alone decides;
- a monitor thread polls, every ``POLL_S``, the processes forked since the run began and the
  wall clock; when one dies or the limit passes it interrupts the main thread (SIGUSR1), wherever
  Lava blocks it;
- SIGINT and SIGTERM interrupt the main thread the same way;
- on any of these the run is abandoned instead of stopped (``stop()`` would wait on the dead):
  Lava's process models are SIGKILLed, its shared-memory manager shut down (it unlinks the
  segments), then anything left that we forked is SIGKILLed and reaped, and the runtime is marked
  stopped so that its destructor does not wait either.

Signals can be handled only in the main thread; elsewhere (a worker thread) the monitor still
kills the children, which ends the run with an error instead of a hang.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Optional, Set

from ..errors import Interrupted

#: seconds between two liveness checks
POLL_S = 0.2
#: seconds to wait for a killed process to be gone
REAP_S = 5.0
#: seconds the shared-memory manager gets to shut down after an abort
SHUTDOWN_GRACE_S = 5.0
#: Linux prctl option: the signal a child gets when the thread that forked it dies
PR_SET_PDEATHSIG = 1
#: environment variable that overrides the wall-clock limit of a Lava run, in seconds
TIMEOUT_ENV = "SNNDEPLOY_LAVA_TIMEOUT_S"

_fork_guard = {"parent": None, "registered": False}


class WatchdogAbort(BaseException):
    """Raised in the main thread by the monitor's signal: a child died or time ran out."""


def _in_child() -> None:
    """In a process Lava forks during our run: die with the parent, leave Ctrl-C to the parent."""
    parent = _fork_guard["parent"]
    if parent is None or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died between fork and prctl
        os._exit(1)


@contextlib.contextmanager
def children_die_with_us():
    """While active, every process forked from this process is SIGKILLed when this process dies."""
    if not _fork_guard["registered"]:
        os.register_at_fork(after_in_child=_in_child)
        _fork_guard["registered"] = True
    _fork_guard["parent"] = os.getpid()
    try:
        yield
    finally:
        _fork_guard["parent"] = None


def live_children(pid: Optional[int] = None) -> Dict[int, str]:
    """Direct children of ``pid`` (default: this process) that are not zombies: pid -> command name."""
    pid = os.getpid() if pid is None else pid
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if int(rest[1]) == pid and rest[0] != "Z":
            found[int(entry)] = name
    return found


def timeout_for(steps: int, processes: int) -> float:
    """The wall-clock limit of a run: ``TIMEOUT_ENV`` if set, else generous for the job's size:
    120 s, plus 1 s per process (forking and building them; ~600 processes took over 80 s on a busy
    2-core machine here), plus 10 ms per Lava step per process (measured: about 0.3 ms)."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw:
        value = float(raw)
        if not value > 0:
            raise ValueError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {raw!r}")
        return value
    processes = max(1, processes)
    return 120.0 + 1.0 * processes + 1e-2 * steps * processes


class Watchdog:
    """A context in which a Lava run cannot hang (see the module docstring)."""

    def __init__(self, name: str, limit_s: float):
        self.name, self.limit_s = name, limit_s
        self.reason: Optional[str] = None
        self._before: Set[int] = set()
        self._seen: Dict[int, str] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._main = threading.current_thread() is threading.main_thread()
        self._old: Dict[int, object] = {}
        self._exits_expected = False

    def __enter__(self) -> Watchdog:
        self._before = set(live_children())
        self._start = time.monotonic()
        if self._main:
            for sig, handler in (
                (signal.SIGUSR1, self._on_abort),
                (signal.SIGINT, self._on_signal),
                (signal.SIGTERM, self._on_signal),
            ):
                self._old[sig] = signal.signal(sig, handler)
        self._thread = threading.Thread(target=self._monitor, name=f"snndeploy watchdog ({self.name})", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _on_abort(self, signum, frame):
        raise WatchdogAbort(self.reason)

    def _on_signal(self, signum, frame):
        raise Interrupted(signum)

    def _monitor(self) -> None:
        while not self._stop.wait(POLL_S):
            now = live_children()
            for pid, name in now.items():
                if pid not in self._before:
                    self._seen.setdefault(pid, name)
            dead = [pid for pid in self._seen if pid not in now]
            if dead and not self._exits_expected:
                pid = dead[0]
                self._fire(
                    f"Lava process {pid} ({self._seen[pid]}) died during the run (killed by a signal, e.g. "
                    "the OOM killer, or crashed, e.g. on a full disk)"
                )
                return
            if time.monotonic() - self._start > self.limit_s:
                self._fire(
                    f"the run exceeded its wall-clock limit of {self.limit_s:.0f} s (set {TIMEOUT_ENV} to change it)"
                )
                return

    def expect_exits(self) -> None:
        """Lava's processes are about to end (a normal stop): only the wall clock is watched now."""
        self._exits_expected = True

    def _fire(self, reason: str) -> None:
        self.reason = reason
        if self._main:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
        else:  # no signal handler off the main thread: killing the children ends the blocked run
            self.kill_children()

    def kill_children(self) -> None:
        """SIGKILL every live process forked since the run began, and wait until each is gone and reaped
        (a process still running when the interpreter exits makes multiprocessing print a traceback)."""
        import multiprocessing

        pids = set(live_children()) - self._before
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for p in multiprocessing.active_children():  # joins (reaps) the ones multiprocessing started
            if p.pid in pids or p.pid in self._seen:
                multiprocessing.Process.join(p, REAP_S)  # the base join: Lava's SystemProcess.join takes no timeout
        deadline = time.monotonic() + REAP_S
        for pid in pids | set(self._seen):
            while time.monotonic() < deadline:
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    break  # already reaped (by multiprocessing) or not our child
                if done:
                    break
                time.sleep(0.01)

    def abandon(self, source) -> None:
        """End a run that cannot be stopped: kill Lava's process models, shut its shared-memory manager
        down (so that it unlinks its segments), kill what is left, and disarm the runtime's destructor."""
        import multiprocessing

        self._stop.set()
        rt = getattr(source, "runtime", None)
        infra = getattr(rt, "_messaging_infrastructure", None)
        for actor in list(getattr(infra, "actors", None) or []):
            with contextlib.suppress(Exception):
                if actor.is_alive():
                    os.kill(actor.pid, signal.SIGKILL)
                multiprocessing.Process.join(actor, REAP_S)
        if rt is not None:
            rt._is_started = rt._is_running = False  # Runtime.__del__ would call stop() and wait forever

        def shutdown():
            with contextlib.suppress(Exception):
                infra._smm.shutdown()
            with contextlib.suppress(Exception):
                rt._watchdog_manager.stop()

        if infra is not None:
            t = threading.Thread(target=shutdown, daemon=True)
            t.start()
            t.join(SHUTDOWN_GRACE_S)
        self.kill_children()
