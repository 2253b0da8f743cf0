"""Forward/backward for every ablation and CSD variant; masking; missing modalities; batch 1."""

import itertools

import pytest
import torch

from model.config import ABLATIONS, ModelConfig
from model.mmcl import MMCL

DIMS = {"dim_vision": 7, "dim_audio": 5, "dim_text": 11}


def _inputs(b: int, seq: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(b, seq, d, generator=g) for d in DIMS.values()]
    masks = [torch.ones(b, seq, dtype=torch.bool) for _ in range(3)]
    return xs, masks


def _model(**kw) -> MMCL:
    torch.manual_seed(0)
    return MMCL(ModelConfig(**DIMS, d_model=32, n_heads=4, head_hidden=16, **kw)).eval()


@pytest.mark.parametrize("ablation, csd", list(itertools.product(ABLATIONS, ("paper", "reference"))))
@pytest.mark.parametrize("batch", [1, 5])
def test_forward_backward_every_variant(ablation, csd, batch):
    model = _model(ablation=ablation, csd=csd).train()
    xs, masks = _inputs(batch, 9)
    masks[1][:, 6:] = False  # padded audio
    out = model.encode(*xs, *masks)
    assert out.prediction.shape == (batch, 1)
    loss = out.prediction.pow(2).mean() + sum(c.pow(2).mean() for c in out.common.values())
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_ablations_change_the_network():
    full, no_self = _model(), _model(ablation="no_self_attn")
    assert sum(p.numel() for p in no_self.parameters()) < sum(p.numel() for p in full.parameters())
    xs, masks = _inputs(2, 6)
    with torch.no_grad():
        assert not torch.allclose(_model(ablation="no_csd")(*xs, *masks), full(*xs, *masks))


@pytest.mark.parametrize("csd", ["paper", "reference"])
def test_padded_steps_change_nothing(csd):
    model = _model(csd=csd)
    xs, masks = _inputs(2, 12)
    for m in masks:
        m[:, 8:] = False
    garbage = [x.clone() for x in xs]
    for x in garbage:
        x[:, 8:] = torch.randn_like(x[:, 8:]) * 100
    shorter = [x[:, :8] for x in xs]
    with torch.no_grad():
        ref = model(*xs, *masks)
        assert torch.allclose(model(*garbage, *masks), ref, atol=1e-5)
        assert torch.allclose(model(*shorter, *[m[:, :8] for m in masks]), ref, atol=1e-5)


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_fully_missing_modality_and_nan_inputs_are_finite(ablation):
    model = _model(ablation=ablation)
    xs, masks = _inputs(3, 10)
    masks[0][0] = False  # sample 0: no face at all
    masks[2][1] = False  # sample 1: no words at all
    for m in masks:
        m[2] = False  # sample 2: nothing at all
    xs[1][0, 3, 2] = float("nan")
    xs[0][1, 4, 1] = float("inf")
    with torch.no_grad():
        y = model(*xs, *masks)
    assert torch.isfinite(y).all()


def test_missing_modality_content_is_ignored():
    model = _model()
    xs, masks = _inputs(1, 10)
    masks[0][:] = False
    other = [x.clone() for x in xs]
    other[0] = torch.randn_like(other[0])
    with torch.no_grad():
        assert torch.allclose(model(*xs, *masks), model(*other, *masks), atol=1e-6)


@pytest.mark.parametrize("ablation, csd", list(itertools.product(ABLATIONS, ("paper", "reference"))))
def test_a_modality_alone_still_drives_the_prediction(ablation, csd):
    """A face-only (or voice-only) window must not collapse to a constant output."""
    model = _model(ablation=ablation, csd=csd)
    xs, masks = _inputs(2, 10)
    for alone in range(3):
        ms = [m.clone() for m in masks]
        for other in range(3):
            if other != alone:
                ms[other][:] = False
        with torch.no_grad():
            y = model(*xs, *ms)
        assert not torch.allclose(y[0], y[1], atol=1e-6), (alone, y)


def test_classification_head_shape():
    model = MMCL(ModelConfig(**DIMS, d_model=16, n_heads=2, task="classification", num_labels=4, num_classes=2))
    xs, masks = _inputs(3, 5)
    assert model(*xs, *masks).shape == (3, 8)


def test_unknown_input_sizes_are_a_clear_error():
    from model.errors import ConfigError

    with pytest.raises(ConfigError, match="read from the data"):
        MMCL(ModelConfig())
