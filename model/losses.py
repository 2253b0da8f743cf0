"""Training objective: L = L_task + λ·L_CL (paper §III-E).

L_task is cross-entropy (classification; summed over label groups) or L1/MSE (regression). A regression
model with an arousal head (output 1) adds ``train.arousal_weight`` × L1 on the samples that have an
arousal rating (NaN = none; a batch without one adds nothing).
L_CL is a symmetric InfoNCE between the pooled, enhanced common embeddings of the same sample in two
modalities (positives), with the other samples of the batch as negatives, averaged over the modality
pairs (v,a), (v,t), (a,t); only samples where both modalities are present take part.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from model.config import ModelConfig, TrainConfig
from model.featureset import MODALITIES
from model.mmcl import MMCLOutput


def task_loss(
    pred: torch.Tensor, target: torch.Tensor, mcfg: ModelConfig, tcfg: TrainConfig,
    arousal: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    if mcfg.task == "regression":
        p, y = pred[:, 0], target.reshape(-1).float()
        loss = F.l1_loss(p, y) if tcfg.regression_loss == "l1" else F.mse_loss(p, y)
        if mcfg.arousal_head and arousal is not None and tcfg.arousal_weight > 0:
            rated = torch.isfinite(arousal)
            if bool(rated.any()):
                loss = loss + tcfg.arousal_weight * F.l1_loss(pred[rated, 1], arousal[rated].float())
        return loss
    logits = pred.reshape(pred.shape[0], mcfg.num_labels, mcfg.num_classes)  # (B, G, C)
    y = target.reshape(pred.shape[0], mcfg.num_labels).long()  # (B, G)
    return F.cross_entropy(logits.reshape(-1, mcfg.num_classes), y.reshape(-1))


def contrastive_loss(out: MMCLOutput, temperature: float) -> torch.Tensor:
    losses = []
    for a, b in itertools.combinations(MODALITIES, 2):
        both = out.present[a] & out.present[b]  # (B,)
        if int(both.sum()) < 2:
            continue
        za = F.normalize(out.common[a][both], dim=-1)  # (n, d)
        zb = F.normalize(out.common[b][both], dim=-1)  # (n, d)
        logits = za @ zb.T / temperature  # (n, n)
        target = torch.arange(len(za), device=za.device)
        losses.append(0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)))
    if not losses:
        return out.prediction.new_zeros(())
    return torch.stack(losses).mean()


def total_loss(
    out: MMCLOutput, target: torch.Tensor, mcfg: ModelConfig, tcfg: TrainConfig,
    arousal: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    lt = task_loss(out.prediction, target, mcfg, tcfg, arousal)
    if tcfg.contrastive_weight > 0:
        lc = contrastive_loss(out, tcfg.temperature)
    else:
        lc = lt.new_zeros(())
    loss = lt + tcfg.contrastive_weight * lc
    return loss, {"loss": float(loss.detach()), "task": float(lt.detach()), "contrastive": float(lc.detach())}
