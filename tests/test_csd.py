"""CSD against hand-computed values (both variants) and its masking rules."""

import math

import torch

from model.csd import common_specific, csd_weights

R = 1 / math.sqrt(2)
# Z_m = [[1,0],[0,1]], Z_p = [[1,0],[1,1]], Z_q = [[0,1],[1,0]]
#   Sim_mp = [[1, R], [0, R]]  Sim_mq = [[0, 1], [1, 0]]  →  W = min = [[0, R], [0, 0]]
ZM = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
ZP = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
ZQ = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
ALL = torch.ones(1, 2, dtype=torch.bool)


def _sm(values):
    e = [math.exp(v) for v in values]
    return [x / sum(e) for x in e]


def test_weights_are_elementwise_min_of_cosines():
    w, valid = csd_weights(ZM, [ZP, ZQ], ALL, [ALL, ALL])
    assert torch.allclose(w[0], torch.tensor([[0.0, R], [0.0, 0.0]]), atol=1e-6)
    assert valid.all()


def test_paper_variant_matches_hand_computation():
    common, specific = common_specific(ZM, [ZP, ZQ], ALL, [ALL, ALL], "paper")
    # common = W·Z_m ; specific = (1 − W)·Z_m
    assert torch.allclose(common[0], torch.tensor([[0.0, R], [0.0, 0.0]]), atol=1e-6)
    assert torch.allclose(specific[0], torch.tensor([[1.0, 1 - R], [1.0, 1.0]]), atol=1e-6)


def test_reference_variant_matches_hand_computation():
    common, specific = common_specific(ZM, [ZP, ZQ], ALL, [ALL, ALL], "reference")
    w0 = _sm([0.0, R])  # row-softmax of W's first row
    s0 = _sm([1 - w0[0], 1 - w0[1]])  # row-softmax of (1 − W') first row
    assert torch.allclose(common[0], torch.tensor([w0, [0.5, 0.5]]), atol=1e-6)
    assert torch.allclose(specific[0], torch.tensor([s0, [0.5, 0.5]]), atol=1e-6)


def test_missing_other_modality_uses_the_remaining_one():
    none = torch.zeros(1, 2, dtype=torch.bool)
    w, _ = csd_weights(ZM, [ZP, ZQ], ALL, [ALL, none])  # q absent → W = Sim_mp
    assert torch.allclose(w[0], torch.tensor([[1.0, R], [0.0, R]]), atol=1e-6)


def test_a_modality_seen_alone_keeps_its_information_as_specific():
    none = torch.zeros(1, 2, dtype=torch.bool)
    w, valid = csd_weights(ZM, [ZP, ZQ], ALL, [none, none])
    assert torch.all(w == 0) and valid.all()
    common, specific = common_specific(ZM, [ZP, ZQ], ALL, [none, none], "paper")
    # W = 0: common = 0·Z = 0 ; specific = 1·Z → every row is the sum over time, [1, 1]
    assert torch.all(common == 0)
    assert torch.allclose(specific[0], torch.tensor([[1.0, 1.0], [1.0, 1.0]]))
    common, specific = common_specific(ZM, [ZP, ZQ], ALL, [none, none], "reference")
    # softmax of a zero row is uniform: both parts are the mean over time, [0.5, 0.5]
    assert torch.allclose(common[0], torch.full((2, 2), 0.5)) and torch.allclose(specific[0], torch.full((2, 2), 0.5))


def test_alone_identity_keeps_a_lone_modalitys_steps_and_decouples_partnered_windows():
    none = torch.zeros(1, 2, dtype=torch.bool)
    for variant in ("paper", "reference"):
        common, specific = common_specific(ZM, [ZP, ZQ], ALL, [none, none], variant, alone="identity")
        assert torch.equal(common, ZM) and torch.equal(specific, ZM)  # the steps stay apart
        paired = common_specific(ZM, [ZP, ZQ], ALL, [ALL, none], variant, alone="identity")
        as_written = common_specific(ZM, [ZP, ZQ], ALL, [ALL, none], variant)
        assert all(torch.equal(a, b) for a, b in zip(paired, as_written, strict=True))
        # a batch mixing both: each sample by its own partners
        zm2, zp2, zq2 = (torch.cat([t, t]) for t in (ZM, ZP, ZQ))
        mixed_masks = [torch.cat([ALL, none]), torch.cat([none, none])]
        c, s = common_specific(zm2, [zp2, zq2], torch.cat([ALL, ALL]), mixed_masks, variant, alone="identity")
        assert torch.equal(c[1], ZM[0]) and torch.equal(c[0], as_written[0][0])
        mask = torch.tensor([[True, False]])
        c, s = common_specific(ZM * mask[..., None], [ZP, ZQ], mask, [none, none], variant, alone="identity")
        assert torch.all(c[0, 1] == 0) and torch.all(s[0, 1] == 0)  # padding stays zero


def test_padded_steps_get_zero_and_all_missing_is_finite():
    mask = torch.tensor([[True, False]])
    zm = ZM.clone()
    zm[0, 1] = 0.0  # projections are zeroed at padding before CSD
    for variant in ("paper", "reference"):
        common, specific = common_specific(zm, [ZP, ZQ], mask, [ALL, ALL], variant)
        assert torch.all(common[0, 1] == 0) and torch.all(specific[0, 1] == 0)
        none = torch.zeros(1, 2, dtype=torch.bool)
        c, s = common_specific(torch.zeros_like(ZM), [ZP, ZQ], none, [ALL, ALL], variant)
        assert torch.isfinite(c).all() and torch.isfinite(s).all() and c.abs().sum() == 0


def test_step_variant_gates_each_step_by_its_mean_similarity_to_each_partner():
    common, specific = common_specific(ZM, [ZP, ZQ], ALL, [ALL, ALL], "step")
    # step 0: mean Sim_mp row = (1 + R)/2, mean Sim_mq row = 1/2 → g = 1/2; step 1: R/2 vs 1/2 → g = R/2
    assert torch.allclose(common[0], torch.tensor([[0.5, 0.0], [0.0, R / 2]]), atol=1e-6)
    assert torch.allclose(specific[0], torch.tensor([[0.5, 0.0], [0.0, 1 - R / 2]]), atol=1e-6)
    assert torch.allclose(common + specific, ZM)  # every step keeps its own features, nothing is mixed
    first = torch.tensor([[True, False]])
    common, _ = common_specific(ZM, [ZP, ZQ], ALL, [first, ALL], "step")  # p's step 1 not real
    assert torch.allclose(common[0], torch.tensor([[0.5, 0.0], [0.0, 0.0]]), atol=1e-6)  # min(1, ½), min(0, ½)
    none = torch.zeros(1, 2, dtype=torch.bool)
    common, specific = common_specific(ZM, [ZP, ZQ], ALL, [none, none], "step", alone="identity")
    assert torch.equal(common, ZM) and torch.equal(specific, ZM)  # alone: not decoupled
    common, specific = common_specific(ZM, [ZP, ZQ], ALL, [none, none], "step")
    assert torch.equal(common, torch.zeros_like(ZM)) and torch.equal(specific, ZM)  # as written: all specific
