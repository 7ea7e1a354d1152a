"""Training-side pieces: the direct-input shortcut and the learning-rate schedules."""

import math

import pytest
import torch

from snndeploy.errors import InputError
from snndeploy.train.loop import lr_for_epoch
from snndeploy.train.networks import SpikingConvNet, SpikingMLP


@pytest.mark.parametrize(
    "build",
    [
        lambda: SpikingConvNet((1, 12, 12), 4, channels=(4, 6), hidden=16, init_gain=[20.0, 40.0, 60.0, 60.0]),
        lambda: SpikingMLP(20, [16], 4, init_gain=[8.0, 16.0]),
    ],
)
def test_constant_input_shortcut_equals_repeated_input(build):
    """forward(x, steps) runs the first layers once; it must equal the input repeated over time."""
    torch.manual_seed(0)
    model = build().double()
    x = (4 * torch.rand((5,) + model.input_shape, dtype=torch.float64)).requires_grad_()
    T = 12
    fast = model(x, T)
    slow = model(x.unsqueeze(0).expand((T,) + tuple(x.shape)))
    assert fast.shape == slow.shape == (T, 5, 4)
    assert fast.sum() > 0  # something spiked, so the comparison says something
    assert torch.equal(fast, slow)
    # gradients agree too (surrogate backward through the expanded first layer)
    g_fast = torch.autograd.grad(fast.sum(), x)[0]
    g_slow = torch.autograd.grad(slow.sum(), x)[0]
    assert torch.allclose(g_fast, g_slow, rtol=1e-10, atol=1e-12)


def test_lr_schedules():
    t = {"lr": 0.01, "epochs": 4}
    assert [lr_for_epoch(t, e) for e in range(4)] == [0.01] * 4
    cos = [lr_for_epoch({**t, "lr_schedule": "cosine"}, e) for e in range(4)]
    assert cos[0] == 0.01
    assert all(a > b > 0 for a, b in zip(cos, cos[1:]))
    assert math.isclose(cos[2], 0.005)  # half way: half the rate


def test_unknown_lr_schedule_is_named():
    with pytest.raises(InputError, match="lr_schedule 'warm'.*constant, cosine"):
        lr_for_epoch({"lr": 0.1, "epochs": 2, "lr_schedule": "warm"}, 0)


@pytest.mark.parametrize("alpha", [1.0, 25.0])
def test_fast_sigmoid_surrogate_slope(alpha):
    from snndeploy.train.neurons import spike_fn

    x = torch.tensor([-0.5, -0.04, 0.0, 0.02, 0.3], dtype=torch.float64, requires_grad=True)
    z = spike_fn(x, "fast_sigmoid", alpha)
    assert z.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]  # strict: x = 0 does not spike
    (g,) = torch.autograd.grad(z.sum(), x)
    # d/dx of the fast sigmoid x / (1 + alpha|x|), scaled to slope alpha: 1 / (1 + alpha|x|)^2
    h = 1e-7
    fs = lambda v: v / (1 + alpha * abs(v))  # noqa: E731
    numeric = [(fs(v + h) - fs(v - h)) / (2 * h) for v in x.tolist()]
    assert g.tolist() == pytest.approx(numeric, rel=1e-5)


def test_norse_superspike_still_ignores_alpha():
    """Why we carry our own fast sigmoid: Norse 1.1.0's "super" has slope 1 whatever alpha says.

    If this fails, Norse fixed it; "super" configs would then train differently than measured."""
    from norse.torch.functional.threshold import threshold

    x = torch.tensor([0.1, -0.2], requires_grad=True)
    grads = [torch.autograd.grad(threshold(x, "super", torch.as_tensor(a)).sum(), x)[0] for a in (1.0, 100.0)]
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize(
    "field,value,named",
    [
        ("layout", "pool-pool", "model.layout 'pool-pool' unknown; available: lif-pool, pool-lif"),
        ("surrogate", "smooth", "model.surrogate 'smooth' unknown"),
        ("init_gain", [1.0, 2.0], "model.init_gain lists 2 gains for 4 weighted layers"),
    ],
)
def test_bad_model_config_names_the_field(field, value, named, tmp_path):
    from snndeploy.train.config import load_model_config
    from snndeploy.train.loop import train

    cfg = load_model_config("digits_conv")
    cfg["model"][field] = value
    with pytest.raises(InputError, match=named.replace("(", r"\(")):
        train(cfg, tmp_path, device="cpu", epochs=1, quiet=True)
    assert not (tmp_path / "model.nir").exists() and not (tmp_path / "checkpoint.pt").exists()


def test_bad_model_config_exits_2_from_the_cli(tmp_path, capsys):
    from snndeploy.cli import main
    from snndeploy.train.config import MODELS_DIR

    cfg = tmp_path / "bad.toml"
    cfg.write_text(
        (MODELS_DIR / "digits_conv.toml").read_text().replace("[model]\n", '[model]\nlayout = "pool-pool"\n', 1)
    )
    rc = main(["train", "--model", str(cfg), "--dataset", "digits", "--epochs", "1", "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "model.layout 'pool-pool' unknown" in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.nir").exists()


def test_sigmoid_surrogate_slope():
    from snndeploy.train.neurons import spike_fn

    alpha = 2.0
    x = torch.tensor([-1.0, -0.1, 0.05, 0.7], dtype=torch.float64, requires_grad=True)
    z = spike_fn(x, "sigmoid", alpha)
    assert z.tolist() == [0.0, 0.0, 1.0, 1.0]
    (g,) = torch.autograd.grad(z.sum(), x)
    h = 1e-7
    sig = lambda v: 1 / (1 + math.exp(-alpha * v))  # noqa: E731
    assert g.tolist() == pytest.approx([(sig(v + h) - sig(v - h)) / (2 * h) for v in x.tolist()], rel=1e-5)


def test_hflip_mirrors_a_seeded_half_and_nothing_else():
    from snndeploy.train.loop import hflip

    x = torch.arange(64 * 2 * 3 * 4, dtype=torch.float32).reshape(64, 2, 3, 4)
    out = hflip(x, torch.Generator().manual_seed(0))
    flipped = [bool(torch.equal(out[i], x[i].flip(-1))) for i in range(64)]
    kept = [bool(torch.equal(out[i], x[i])) for i in range(64)]
    assert all(f != k for f, k in zip(flipped, kept))  # each image is either mirrored or untouched
    assert 16 <= sum(flipped) <= 48
    again = hflip(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # seeded


def _translated(img, dy, dx):
    """img moved down by dy and right by dx pixels (negative: up/left), zeros where nothing moved in."""
    out = torch.zeros_like(img)
    h, w = img.shape[-2:]
    for r in range(h):
        for c in range(w):
            if 0 <= r - dy < h and 0 <= c - dx < w:
                out[..., r, c] = img[..., r - dy, c - dx]
    return out


def test_shift_translates_each_image_by_its_own_offset_within_range():
    from snndeploy.train.loop import SHIFT_MAX_PIXELS, shift

    m = SHIFT_MAX_PIXELS
    x = torch.rand(40, 2, 7, 6) + 0.5  # no zeros inside, so the offset is identifiable
    out = shift(x, torch.Generator().manual_seed(3))
    offsets = []
    for i in range(len(x)):
        hits = [
            (dy, dx)
            for dy in range(-m, m + 1)
            for dx in range(-m, m + 1)
            if torch.equal(out[i], _translated(x[i], dy, dx))
        ]
        assert len(hits) == 1, f"sample {i} is not a translation of its input by at most {m} pixels"
        offsets.append(hits[0])
    assert len(set(offsets)) >= 10  # offsets are drawn per image, not per batch
    assert torch.equal(out, shift(x, torch.Generator().manual_seed(3)))  # seeded


@pytest.mark.parametrize(
    "augment,cfg_name,named",
    [
        (["rotate"], "digits_conv", "train.augment 'rotate' unknown; available: hflip, shift"),
        (["hflip"], "digits_mlp", "needs image input (C, H, W)"),
    ],
)
def test_bad_augmentation_is_named(augment, cfg_name, named, tmp_path):
    from snndeploy.train.config import load_model_config
    from snndeploy.train.loop import train

    cfg = load_model_config(cfg_name)
    cfg["train"]["augment"] = augment
    with pytest.raises(InputError, match=named.replace("(", r"\(").replace(")", r"\)")):
        train(cfg, tmp_path, device="cpu", epochs=1, quiet=True)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_weight_decay_shrinks_the_weights_and_bad_values_are_named(tmp_path):
    from snndeploy.train.config import load_model_config
    from snndeploy.train.loop import make_optimizer, train

    p = torch.nn.Parameter(torch.ones(3))
    opt = make_optimizer([p], {"lr": 0.1, "weight_decay": 0.5})
    p.grad = torch.zeros(3)  # no gradient: only the decoupled decay moves the weight
    opt.step()
    assert torch.allclose(p.detach(), torch.full((3,), 1 - 0.1 * 0.5))
    q = torch.nn.Parameter(torch.ones(3))
    opt = make_optimizer([q], {"lr": 0.1})
    q.grad = torch.zeros(3)
    opt.step()
    assert torch.equal(q.detach(), torch.ones(3))  # default: plain Adam, no decay
    cfg = load_model_config("digits_mlp")
    cfg["train"]["weight_decay"] = -0.1
    with pytest.raises(InputError, match=r"train.weight_decay must be a finite number >= 0, got -0.1"):
        train(cfg, tmp_path, device="cpu", epochs=1, quiet=True)
    assert not (tmp_path / "checkpoint.pt").exists()
