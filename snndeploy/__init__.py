"""snndeploy: train spiking networks in Norse, export to NIR, run on Lava, compare.

The package reads as the pipeline; one folder per stage (docs/architecture.md):

- ``frontends``: models in (our Norse exporter) -> ``nir.NIRGraph``.
- ``ir``: loading and validating NIR graphs, and the analysed graph every stage shares.
- ``reference``: what each node type means (record + reference step/forward): the living definition.
- ``lower``: Lava plans, float and Loihi fixed point; ``runtime``: running a plan on Lava, watched.
- ``backends``: one module per backend behind one small interface.
- ``energy``: NeuroBench operation counts, energy per target, Loihi 2 core estimate.
- ``harness``: inputs, memory, running, agreement, comparison in chunks.
- ``report``: Markdown and HTML; ``train``: Norse training and QAT; ``data``: datasets, encoders.

The Python API (:mod:`snndeploy.api`): ``snndeploy.load``, ``snndeploy.export``, ``snndeploy.run``,
``snndeploy.compare``; for a user's tests, :func:`snndeploy.testing.assert_equivalent`.

Torch and Lava are imported lazily, only by the parts that need them.
"""

from .util.version import __version__  # noqa: F401

#: the public API, imported on first use (``import snndeploy`` stays light)
API = ("load", "export", "run", "compare", "Report")


def __getattr__(name):
    if name in API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'snndeploy' has no attribute '{name}'")
