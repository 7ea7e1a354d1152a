"""snndeploy: train spiking networks in Norse, export to NIR, run on Lava, compare.

The package is organised as a pipeline (see README.md):

- ``graph``: loading, validating and ordering NIR graphs (NIR is the IR).
- ``dynamics``: the reference discrete-time equations, as pure step functions.
- ``backends``: one module per backend behind one small interface.
- ``harness``: spike/prediction agreement, first divergence, accuracy.
- ``synops``: synaptic-operation counts and energy from ``targets/``.
- ``train`` / ``export``: Norse training and our own Norse -> NIR exporter.

Torch and Lava are imported lazily, only by the parts that need them.
"""

__version__ = "0.1.0"
