"""Shared test helpers. The conformance data lives in ../shared beside the checkout (as in CI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO.parent / "shared" / "conformance" / "nir-paper"


@pytest.fixture(scope="session")
def paper() -> Path:
    """The NIR-paper conformance folder; its absence is a failure, never a skip."""
    assert CONFORMANCE.is_dir(), f"conformance data missing: {CONFORMANCE} (clone beside ../shared, as CI does)"
    return CONFORMANCE


@pytest.fixture(scope="session")
def lif_norse_csv(paper) -> np.ndarray:
    return np.loadtxt(paper / "lif_norse.csv", delimiter=",")
