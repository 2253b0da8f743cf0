"""Step pooling before the head (model.pool): mean, mean + last real step, learned attention."""

import pytest
import torch

from model.config import ModelConfig
from model.errors import ConfigError
from model.layers import AttentionPool, masked_last
from model.mmcl import MMCL

DIMS = {"dim_vision": 7, "dim_audio": 5, "dim_text": 11}
POOLS = ("mean", "mean_last", "attention")


def _model(pool: str) -> MMCL:
    torch.manual_seed(0)
    return MMCL(ModelConfig(**DIMS, d_model=32, n_heads=4, head_hidden=16, pool=pool)).eval()


def _inputs(b: int, seq: int):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(b, seq, d, generator=g) for d in DIMS.values()], [torch.ones(b, seq, dtype=torch.bool)
                                                                         for _ in range(3)]  # fmt: skip


def test_masked_last_takes_each_rows_last_real_step():
    x = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)
    mask = torch.tensor([[True, False, True, True, False], [False] * 5])
    out = masked_last(x, mask)
    assert torch.equal(out[0], x[0, 3]) and torch.equal(out[1], torch.zeros(3))


def test_attention_pool_is_a_convex_mix_of_the_real_steps_only():
    pool = AttentionPool(4)
    x = torch.randn(1, 6, 4)
    mask = torch.tensor([[True, True, True, False, False, False]])
    garbage = x.clone()
    garbage[:, 3:] = 1e3
    out = pool(x, mask)
    assert torch.allclose(out, pool(garbage, mask))
    lo, hi = x[0, :3].min(dim=0).values, x[0, :3].max(dim=0).values
    assert bool(((out[0] >= lo - 1e-6) & (out[0] <= hi + 1e-6)).all())
    assert torch.equal(pool(x, torch.zeros(1, 6, dtype=torch.bool)), torch.zeros(1, 4))


@pytest.mark.parametrize("pool", POOLS)
def test_padded_steps_change_nothing_and_empty_windows_are_finite(pool):
    model = _model(pool)
    xs, masks = _inputs(3, 12)
    for m in masks:
        m[:, 8:] = False
    garbage = [x.clone() for x in xs]
    for x in garbage:
        x[:, 8:] = torch.randn_like(x[:, 8:]) * 100
    with torch.no_grad():
        ref = model(*xs, *masks)
        assert torch.allclose(model(*garbage, *masks), ref, atol=1e-5)
        assert torch.allclose(model(*[x[:, :8] for x in xs], *[m[:, :8] for m in masks]), ref, atol=1e-5)
        for m in masks:
            m[2] = False  # sample 2: nothing at all
        assert torch.isfinite(model(*xs, *masks)).all()


def test_mean_last_reads_the_latest_step_beyond_the_mean():
    """Two windows with the same steps in another order: equal under mean pooling, not under mean + last."""
    xs, masks = _inputs(1, 6)
    flipped = [x.flip(1) for x in xs]
    with torch.no_grad():
        for pool, same in (("mean", True), ("mean_last", False)):
            model = _model(pool)
            # no time code and order-free attention: only the last step tells the two apart
            assert torch.allclose(model(*xs, *masks), model(*flipped, *masks), atol=1e-5) is same, pool


@pytest.mark.parametrize("pool", POOLS)
def test_every_pool_trains(pool):
    model = _model(pool).train()
    xs, masks = _inputs(4, 9)
    model(*xs, *masks).pow(2).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_unknown_pool_is_a_config_error():
    with pytest.raises(ConfigError, match=r"model\.pool"):
        ModelConfig(**DIMS, pool="max")


def test_a_lone_modality_keeps_its_latest_step_only_with_csd_alone_identity():
    """Words alone (no face, no voice): as written, CSD turns every step into one time-average, so the
    window and its reversed steps read the same; with ``csd_alone: identity`` the last phrase counts."""
    xs, masks = _inputs(1, 6)
    masks[0][:] = False
    masks[1][:] = False
    flipped = [x.flip(1) for x in xs]
    with torch.no_grad():
        for alone, same in (("specific", True), ("identity", False)):
            torch.manual_seed(0)
            cfg = ModelConfig(**DIMS, d_model=32, n_heads=4, head_hidden=16, pool="mean_last", csd="reference",
                              csd_alone=alone)  # fmt: skip
            model = MMCL(cfg).eval()
            assert torch.allclose(model(*xs, *masks), model(*flipped, *masks), atol=1e-5) is same, alone


def test_specific_residual_keeps_the_latest_step_where_csd_step_routes_everything_to_the_specific_part():
    """``csd: step`` with nothing shared (words alone, ``csd_alone: specific``: gate 0, common = 0) leaves the
    cross-attention a constant query, so every step reads the same and the order is lost; with
    ``specific_residual`` each step keeps its own features and the latest phrase counts."""
    xs, masks = _inputs(1, 6)
    masks[0][:] = False
    masks[1][:] = False
    flipped = [x.flip(1) for x in xs]
    with torch.no_grad():
        for residual, same in ((False, True), (True, False)):
            torch.manual_seed(0)
            cfg = ModelConfig(**DIMS, d_model=32, n_heads=4, head_hidden=16, pool="mean_last", csd="step",
                              csd_alone="specific", specific_residual=residual)  # fmt: skip
            model = MMCL(cfg).eval()
            assert torch.allclose(model(*xs, *masks), model(*flipped, *masks), atol=1e-5) is same, residual
