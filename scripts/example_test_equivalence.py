"""An example test for a user's own CI: their exported model must run the same on Lava.

.venv/bin/python -m pytest scripts/example_test_equivalence.py   (after example_user_model.py)
"""

from pathlib import Path

import numpy as np
import pytest

from snndeploy.testing import assert_equivalent

MODEL = Path("out/user_model/model.nir")


@pytest.mark.skipif(not MODEL.is_file(), reason="run scripts/example_user_model.py first")
def test_lava_float_runs_my_model_exactly():
    spikes = (np.random.default_rng(0).random((16, 20, 64)) < 0.3).astype(np.float64)
    assert_equivalent(MODEL, spikes, ["norse", "lava-float"])  # names node, sample, step, neuron if not
