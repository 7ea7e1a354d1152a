"""How much memory a job may plan to use: checked from sizes known before anything is loaded."""

from __future__ import annotations

from typing import Optional

from ..errors import InputError

#: a run may plan to use at most this fraction of the memory the OS reports available
MEMORY_HEADROOM = 0.8


def available_memory_bytes() -> Optional[int]:
    """``MemAvailable`` from /proc/meminfo, or None where that cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_fits(nbytes: int, what: str) -> None:
    """Refuse, before allocating, ``nbytes`` that would not fit in the memory budget; ``what`` says
    what would be allocated and from where (file, array, shape)."""
    avail = available_memory_bytes()
    if avail is not None and nbytes > MEMORY_HEADROOM * avail:
        raise InputError(
            f"{what} would take {nbytes / 2**30:.1f} GiB; this machine has {avail / 2**30:.1f} GiB "
            f"available (at most {MEMORY_HEADROOM:.0%} of it may be planned)"
        )
