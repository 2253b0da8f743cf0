"""The parameter-free Common-Specific Decoupling (CSD) of Improved MMCL (paper §III-B), on its own.

For each modality m with latent steps Z_m (B, L, d) and the two other modalities p, q:

    Sim_mp[i, j] = cos(Z_m[i], Z_p[j])          every step of m against every step of p
    W_m          = min(Sim_mp, Sim_mq)          element-wise: what m shares with *both* partners
    common_m     = W_m · Z_m                    the shared part of m, step by step
    specific_m   = (1 − W_m) · Z_m              what only m carries

No parameter is learned here. Masks are boolean (B, L), True = a real step; a partner without a real step j
shares nothing there; a modality with no partner at all is either all-specific (as written) or left
undecoupled (``csd_alone: identity``, see ``common_specific``). Three
variants: ``paper`` (as written), ``reference`` (the original code's row softmax) and ``step`` (the same
similarities as a per-step gate that keeps each step's own features, ``_stepwise``); ``model.csd`` picks one,
and ``model.ablation: no_csd`` skips the decoupling (common = specific = Z).
"""

from __future__ import annotations

import torch

_NO_PAIR = 2.0  # larger than any cosine similarity: marks "no valid pair" inside the masked min


def masked_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between every step of ``a`` and every step of ``b``: (B, La, d), (B, Lb, d) → (B, La, Lb).

    Zero vectors (padding) give similarity 0 rather than NaN.
    """
    an = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    bn = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    return an @ bn.transpose(1, 2)


def csd_weights(
    z: torch.Tensor,
    others: list[torch.Tensor],
    mask: torch.Tensor,
    other_masks: list[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The common-feature matrix W_m = min over the other modalities of Sim(Z_m, Z_p), masked.

    Returns (W, pair_valid), both (B, L, L). A pair (i, j) is valid when i and j are real steps of m.
    W[i, j] is the minimum over the other modalities that have a real step j; where none has one,
    nothing is shared there, so W[i, j] = 0 and step j counts as entirely specific. A modality seen
    alone thus keeps all of its information in the specific part (it is never zeroed out).
    """
    w = torch.full_like(z[:, :, :1].expand(-1, -1, z.shape[1]), _NO_PAIR)  # (B, L, L)
    for other, other_mask in zip(others, other_masks, strict=True):
        sim = masked_cosine(z, other)  # (B, L, L)
        present = other_mask[:, None, :].expand_as(sim)  # (B, L, L): partner has a real step j
        w = torch.minimum(w, torch.where(present, sim, torch.full_like(sim, _NO_PAIR)))
    pair_valid = mask[:, :, None] & mask[:, None, :]  # (B, L, L)
    w = torch.where(pair_valid & (w < _NO_PAIR), w, torch.zeros_like(w))
    return w, pair_valid


def _masked_row_softmax(scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis restricted to ``valid``; rows without a valid entry are all zero."""
    scores = scores.masked_fill(~valid, float("-inf"))
    any_valid = valid.any(dim=-1, keepdim=True)
    probs = torch.softmax(torch.where(any_valid, scores, torch.zeros_like(scores)), dim=-1)
    return torch.where(valid, probs, torch.zeros_like(probs))


def common_specific(
    z: torch.Tensor,
    others: list[torch.Tensor],
    mask: torch.Tensor,
    other_masks: list[torch.Tensor],
    variant: str,
    alone: str = "specific",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Parameter-free Common-Specific Decoupling of one modality (paper §III-B).

    ``paper``:     common = W·Z, specific = (1 − W)·Z, with W = min(Sim_mp, Sim_mq) as written
                   (a matrix product over time; 1 − W only over valid pairs).
    ``reference``: the original MMCL code: W' = row-softmax(W); common = W'·Z; specific = row-softmax(1 − W')·Z.
    Both return (B, L, d) tensors that are zero at padded steps of m.

    ``alone`` is what a window where no other modality has a real step gets (nothing can be shared, W = 0):
    ``specific`` (as written): every step's common part is 0 and its specific part the same time-sum
    (``paper``) or mean (``reference``) of Z, so the steps become indistinguishable and the order and the
    latest step are lost; ``identity``: no decoupling there, common = specific = Z (what ``no_csd`` does),
    so a face, a voice or words seen alone keep their steps. Windows with a partner are decoupled either way.
    """
    if variant == "step":
        common, specific = _stepwise(z, others, mask, other_masks)
        return _alone(z, common, specific, mask, other_masks, alone)
    w, pair_valid = csd_weights(z, others, mask, other_masks)  # (B, L, L)
    if variant == "paper":
        w_common = w
        w_specific = torch.where(pair_valid, 1.0 - w, torch.zeros_like(w))
    elif variant == "reference":
        w_common = _masked_row_softmax(w, pair_valid)
        w_specific = _masked_row_softmax(1.0 - w_common, pair_valid)
    else:  # pragma: no cover - validated by ModelConfig
        raise ValueError(f"unknown CSD variant {variant!r}")
    row = mask[:, :, None].to(z.dtype)  # (B, L, 1)
    common = (w_common @ z) * row  # (B, L, d)
    specific = (w_specific @ z) * row  # (B, L, d)
    return _alone(z, common, specific, mask, other_masks, alone)


def _stepwise(
    z: torch.Tensor, others: list[torch.Tensor], mask: torch.Tensor, other_masks: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``step``: the decoupling as a per-step gate, so every step keeps its own features.

    g_i = min over the partners present in the window of the mean cosine similarity of step i to that
    partner's real steps, clipped to [0, 1]; common_i = g_i · Z_i, specific_i = (1 − g_i) · Z_i. The paper's
    W·Z mixes every step of m into every other (``reference``'s row softmax of cosines is nearly uniform, so
    each step becomes about the time-mean): with words and voice together the latest phrase is lost, which
    is where CSD lost to CSD off in the recipe's v5 CV (words through ASR: reference 68.7%, off 71.5%)."""
    gate = step_gate(z, others, other_masks)[..., None]
    row = mask[:, :, None].to(z.dtype)
    return gate * z * row, (1.0 - gate) * z * row


def step_gate(z: torch.Tensor, others: list[torch.Tensor], other_masks: list[torch.Tensor]) -> torch.Tensor:
    """(B, L) ``step``'s common share of each step of ``z``: the minimum over the partners present of the mean
    cosine similarity to their real steps, clipped to [0, 1]; 0 where no partner is present."""
    gate = torch.full_like(z[:, :, 0], 2.0)  # (B, L); 2 = no partner seen yet
    for other, other_mask in zip(others, other_masks, strict=True):
        sim = masked_cosine(z, other)  # (B, L, Lp)
        om = other_mask[:, None, :].to(z.dtype)
        n = om.sum(dim=-1)  # (B, 1)
        mean = (sim * om).sum(dim=-1) / n.clamp_min(1.0)  # (B, L)
        gate = torch.minimum(gate, torch.where(n > 0, mean, torch.full_like(mean, 2.0)))
    return torch.where(gate > 1.5, torch.zeros_like(gate), gate).clamp(0.0, 1.0)  # no partner: 0


def _alone(
    z: torch.Tensor, common: torch.Tensor, specific: torch.Tensor, mask: torch.Tensor,
    other_masks: list[torch.Tensor], alone: str,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    if alone == "identity":
        partnered = torch.stack([om.any(dim=1) for om in other_masks]).any(dim=0)[:, None, None]  # (B, 1, 1)
        kept = z * mask[:, :, None].to(z.dtype)
        common = torch.where(partnered, common, kept)
        specific = torch.where(partnered, specific, kept)
    elif alone != "specific":  # pragma: no cover - validated by ModelConfig
        raise ValueError(f"unknown CSD alone mode {alone!r}")
    return common, specific
