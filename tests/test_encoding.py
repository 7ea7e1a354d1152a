"""Encoders: reproducibility, statistics, the documented latency rule, parameter errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snndeploy.data.encoding import ENCODERS, encode, latency_times
from snndeploy.errors import InputError

X = np.random.default_rng(7).random((6, 5, 4)).astype(np.float32)
X[0, 0, 0], X[0, 0, 1] = 0.0, 1.0


@pytest.mark.parametrize(
    "enc",
    [
        {"kind": "poisson", "steps": 10, "max_prob": 0.8, "seed": 3},
        {"kind": "latency", "steps": 10, "threshold": 0.1, "seed": 3},
        {"kind": "direct", "steps": 10, "scale": 2.0, "seed": 3},
    ],
)
def test_shape_dtype_and_reproducible(enc):
    a, b = encode(X, enc), encode(X.copy(), dict(enc))
    assert a.shape == (6, 10, 5, 4) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)


def test_registry():
    assert set(ENCODERS) >= {"poisson", "latency", "direct"}


def test_poisson_seed_matters_and_matches_documented_draws():
    enc = {"kind": "poisson", "steps": 8, "max_prob": 0.5, "seed": 11}
    a = encode(X, enc)
    assert not np.array_equal(a, encode(X, {**enc, "seed": 12}))
    u = np.random.default_rng(11).random((6, 8, 5, 4))
    np.testing.assert_array_equal(a, (u < np.clip(X.astype(np.float64) * 0.5, 0, 1)[:, None]).astype(np.float32))


@pytest.mark.parametrize("p", [0.0, 0.05, 0.3, 0.5, 0.9, 1.0])
def test_poisson_rate_within_bounds(p):
    n, steps = 4000, 50
    s = encode(np.full((n, 1), p, np.float32), {"kind": "poisson", "steps": steps, "seed": 5})
    assert set(np.unique(s)) <= {0.0, 1.0}
    trials = n * steps
    mean = s.mean()
    # binomial: 5 standard deviations (+ float32 p rounding) — fails by chance with probability < 1e-6
    tol = 5 * math.sqrt(p * (1 - p) / trials) + 1e-6
    assert abs(mean - p) <= tol, (mean, p, tol)


def test_poisson_max_prob_scales_rate():
    s = encode(np.full((2000, 1), 0.8, np.float32), {"kind": "poisson", "steps": 50, "max_prob": 0.5, "seed": 1})
    assert abs(s.mean() - 0.4) < 5 * math.sqrt(0.4 * 0.6 / s.size)


def _latency_reference(x: float, steps: int, threshold: float):
    """The documented rule, in plain Python: spike at round((1 - x) * (steps - 1)) if x > threshold."""
    x = float(x)
    return round((1.0 - x) * (steps - 1)) if x > threshold else None


@pytest.mark.parametrize("steps, threshold", [(1, 0.0), (2, 0.0), (10, 0.0), (25, 0.2), (50, 0.5)])
def test_latency_rule_independent(steps, threshold):
    s = encode(X, {"kind": "latency", "steps": steps, "threshold": threshold})
    for idx in np.ndindex(X.shape):
        train = s[(idx[0], slice(None)) + idx[1:]]
        t = _latency_reference(X[idx], steps, threshold)
        if t is None:
            assert train.sum() == 0, idx
        else:
            assert train.sum() == 1 and train[t] == 1, (idx, X[idx], t)


def test_latency_edges_and_ties():
    # x=1 -> step 0; x=0 -> never (0 is not > threshold 0); (1-x)*(T-1) = 0.5 and 1.5 round half to even
    x = np.array([[1.0, 0.0, 0.75, 0.25]], np.float32)  # T=3: (1-x)*2 = 0, 2, 0.5, 1.5
    np.testing.assert_array_equal(latency_times(x, 3), [[0, -1, 0, 2]])
    s = encode(x, {"kind": "latency", "steps": 3})
    np.testing.assert_array_equal(s[0].T, [[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 1]])
    tiny = np.array([[1e-6]], np.float32)
    np.testing.assert_array_equal(latency_times(tiny, 10), [[9]])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0, width=32), min_size=1, max_size=20), st.integers(1, 64), st.floats(0.0, 0.99))
def test_latency_property(values, steps, threshold):
    x = np.array([values], np.float32)
    s = encode(x, {"kind": "latency", "steps": steps, "threshold": threshold})
    for j, v in enumerate(values):
        t = _latency_reference(np.float32(v), steps, threshold)
        expect = np.zeros(steps, np.float32)
        if t is not None:
            expect[t] = 1
        np.testing.assert_array_equal(s[0, :, j], expect)


def test_direct_values():
    s = encode(X, {"kind": "direct", "steps": 7})
    for t in range(7):
        np.testing.assert_array_equal(s[:, t], X)
    s2 = encode(X, {"kind": "direct", "steps": 3, "scale": 2.5})
    np.testing.assert_allclose(s2[:, 2], X * np.float32(2.5), rtol=0)
    s2[0, 0, 0, 0] = 99.0  # output owns its memory (not a broadcast view)
    assert s2[0, 1, 0, 0] != 99.0


@pytest.mark.parametrize(
    "enc, match",
    [
        ({"kind": "gauss", "steps": 3}, "unknown encoding kind 'gauss'; available: poisson"),
        ({"steps": 3}, "unknown encoding kind 'None'"),
        ({"kind": "poisson"}, "lacks 'steps'"),
        ({"kind": "poisson", "steps": 0}, "steps must be positive"),
        ({"kind": "poisson", "steps": 3, "max_prob": 1.5}, "max_prob must be in"),
        ({"kind": "poisson", "steps": 3, "max_prob": 0}, "max_prob must be in"),
        ({"kind": "latency", "steps": 0}, "steps must be positive"),
        ({"kind": "latency", "steps": 2.5}, "positive integer"),
        ({"kind": "latency", "steps": True}, "positive integer"),
        ({"kind": "latency", "steps": 5, "threshold": 1.0}, r"threshold must be a number in \[0, 1\)"),
        ({"kind": "latency", "steps": 5, "threshold": -0.1}, "threshold"),
        (
            {"kind": "latency", "steps": 5, "max_prob": 0.5},
            "latency encoding does not take max_prob; parameters: steps",
        ),
        ({"kind": "direct", "steps": -1}, "steps must be positive"),
        ({"kind": "direct", "steps": 4, "scale": 0}, "scale must be a positive finite number"),
        ({"kind": "direct", "steps": 4, "scale": float("inf")}, "scale"),
        ({"kind": "direct", "steps": 4, "gain": 2}, "does not take gain"),
    ],
)
def test_bad_parameters(enc, match):
    with pytest.raises(InputError, match=match):
        encode(X, enc)


@pytest.mark.parametrize("kind", ["latency", "direct"])
def test_bad_inputs(kind):
    with pytest.raises(InputError, match="NaN or infinity"):
        encode(np.array([[np.nan]]), {"kind": kind, "steps": 3})
    with pytest.raises(InputError, match="scalar"):
        encode(np.float32(0.5), {"kind": kind, "steps": 3})


def test_latency_out_of_range():
    with pytest.raises(InputError, match=r"x in \[0, 1\]"):
        encode(np.array([[1.2]]), {"kind": "latency", "steps": 3})
