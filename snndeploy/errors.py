"""Error types of snndeploy.

Every error names what is wrong and where (file, node, field), and what was
expected. The CLI prints ``error: <message>`` and exits with
:data:`EXIT_BAD_INPUT`; nothing half-written is left behind.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_NOT_PASSED = 1  # compare ran, but a tolerance was not met
EXIT_BAD_INPUT = 2  # the input (file, graph, option, data) is unusable
EXIT_RUNTIME = 3  # a backend failed while running, or anything unexpected (one line; traceback with --debug)
EXIT_INTERRUPTED = 130  # interrupted (SIGINT / Ctrl-C), the shell's convention 128 + 2


class SnnDeployError(Exception):
    """Base class of every error this project raises on purpose."""


class InputError(SnnDeployError, ValueError):
    """A file, option or array that cannot be used as given."""


class GraphError(InputError):
    """A NIR graph that is malformed or inconsistent."""


class UnsupportedNodeError(GraphError):
    """A node type (or a feature of a node) that a backend cannot express."""

    def __init__(self, backend: str, node: str, node_type: str, supported, why: str = ""):
        self.backend, self.node, self.node_type = backend, node, node_type
        self.supported = tuple(sorted(supported))
        detail = f": {why}" if why else ""
        super().__init__(
            f"backend '{backend}' cannot run node '{node}' of type {node_type}{detail}. "
            f"Supported node types: {', '.join(self.supported)}"
        )


class DatasetError(InputError):
    """A dataset that is unknown or whose files are missing."""


class BackendError(SnnDeployError, RuntimeError):
    """A backend that failed while running (Lava crashed, timed out, ...)."""


class OutputError(BackendError):
    """An artifact could not be written (disk full, read-only file system, ...); nothing half-written is left."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: everything is cleaned up on the way out, and the CLI exits with
    128 + the signal number (130, 143). A BaseException, like KeyboardInterrupt, so that no
    ``except Exception`` swallows it."""

    def __init__(self, signum: int):
        import signal

        self.signum = int(signum)
        super().__init__(f"interrupted by {signal.Signals(self.signum).name}")
