"""A user's own train-then-export script: a Norse model that is not in models/, trained on the
8x8 digits, exported to NIR and deployed with snndeploy's Python API.

    .venv/bin/python scripts/example_user_model.py [--epochs N] [--out DIR]

It also serves ``snndeploy export --model scripts/example_user_model.py:build ...`` (``build``
returns the untrained module).
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from norse.torch import LIFBoxCell, LIFBoxParameters, LIFCell, LIFParameters, SequentialState
from sklearn.datasets import load_digits

import snndeploy

DT = 1e-3
STEPS = 20


def build() -> torch.nn.Module:
    """64 -> 64 LIF (box) -> 10 LIF (current-based): a model the user writes, not a snndeploy config."""
    return SequentialState(
        torch.nn.Linear(64, 64),
        LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(1 / 0.02), v_th=torch.tensor(0.5)), dt=DT),
        torch.nn.Linear(64, 10),
        LIFCell(
            LIFParameters(
                tau_syn_inv=torch.tensor(1 / 0.005), tau_mem_inv=torch.tensor(1 / 0.01), v_th=torch.tensor(0.3)
            ),
            dt=DT,
        ),
    )


def encode(x: np.ndarray, rng) -> np.ndarray:
    """Poisson spikes (batch, time, 64) from grey levels 0..16."""
    return (rng.random((len(x), STEPS, x.shape[1])) < x[:, None, :] / 16.0).astype(np.float32)


def spike_counts(model, spikes: torch.Tensor) -> torch.Tensor:
    state, total = None, 0
    for t in range(spikes.shape[1]):
        out, state = model(spikes[:, t], state)
        total = total + out
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--out", default="out/user_model")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    digits = load_digits()
    x, y = digits.data.astype(np.float32), digits.target
    train, test = np.arange(len(x)) % 4 != 0, np.arange(len(x)) % 4 == 0
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(args.epochs):
        for idx in np.array_split(rng.permutation(np.flatnonzero(train)), 20):
            loss = torch.nn.functional.cross_entropy(
                spike_counts(model, torch.as_tensor(encode(x[idx], rng))), torch.as_tensor(y[idx])
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    out = Path(args.out)
    graph = snndeploy.export(model.eval(), (64,), DT, out / "model.nir")
    spikes = encode(x[test], rng).astype(np.float64)
    report = snndeploy.compare(graph, spikes, ["norse", "lava-float"], labels=y[test])
    report.write(out)
    print(report.summary())
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
