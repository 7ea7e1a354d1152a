"""A user's model factory named on the command line: ``MODULE:FACTORY`` or ``path/to/file.py:FACTORY``."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError


def load_factory(spec: str):
    """The callable named by ``MODULE:FACTORY`` or ``path/to/file.py:FACTORY``."""
    import importlib
    import importlib.util

    if ":" not in spec:
        raise InputError(f"--model '{spec}': expected MODULE:FACTORY or path/to/file.py:FACTORY")
    where, name = spec.rsplit(":", 1)
    try:
        if where.endswith(".py"):
            if not Path(where).is_file():
                raise InputError(f"--model: file '{where}' does not exist")
            loader = importlib.util.spec_from_file_location(Path(where).stem, where)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ImportError as exc:
        raise InputError(f"--model: cannot import '{where}': {exc}") from exc
    factory = getattr(module, name, None)
    if not callable(factory):
        raise InputError(f"--model: '{where}' has no callable '{name}'")
    return factory
