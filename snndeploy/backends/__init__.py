"""Backend registry: name -> factory. Adding a backend is one module and one line here.

Factories import their module lazily, so that training code never imports Lava. No backend
module imports another; what two backends share lives in the stage below them
(:mod:`snndeploy.lower`, :mod:`snndeploy.runtime`).
"""

from __future__ import annotations

from typing import Callable, Dict

from ..errors import InputError
from .base import Backend, RunResult  # noqa: F401


def _norse(**kw):
    from .norse import NorseBackend

    return NorseBackend(**kw)


def _lava_float(**kw):
    from .lava_float import LavaFloatBackend

    return LavaFloatBackend(**kw)


def _lava_fixed(**kw):
    from .lava_fixed import LavaFixedBackend

    return LavaFixedBackend(**kw)


def _loihi_emu(**kw):
    from .loihi_emu import LoihiEmuBackend

    return LoihiEmuBackend(**kw)


def _brian2(**kw):
    from .brian2 import Brian2Backend

    return Brian2Backend(**kw)


BACKENDS: Dict[str, Callable[..., Backend]] = {
    "norse": _norse,
    "lava-float": _lava_float,
    "lava-fixed": _lava_fixed,
    "loihi-emu": _loihi_emu,
    "brian2": _brian2,
}


def get_backend(name: str, **kw) -> Backend:
    if name not in BACKENDS:
        raise InputError(f"unknown backend '{name}'; available: {', '.join(BACKENDS)}")
    return BACKENDS[name](**kw)
