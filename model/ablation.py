"""Table I: the full model and its three ablations over several seeds, as a markdown table (mean ± std),
with the two baselines of ``model/baselines.py`` (linear probe, late fusion) on the same splits beside them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from model.baselines import BASELINES, baseline_metrics
from model.config import ABLATIONS, ModelConfig, TrainConfig
from model.data.types import MultimodalData
from model.train import fit

LABELS = {"none": "Full", "no_csd": "w/o CSD", "no_self_attn": "w/o Self-Attn", "no_cross_attn": "w/o Cross-Attn",
          "linear_probe": "Linear probe (pooled)", "late_fusion": "Late fusion (linear)"}

# (metric key, column title, scale): accuracies and F1 in percent as in the paper.
COLUMNS: dict[str, list[tuple[str, str, float]]] = {
    "msa": [
        ("acc7", "Acc7", 100), ("acc2_non0", "Acc2 (non-0)", 100), ("f1_non0", "F1 (non-0)", 100),
        ("acc2_has0", "Acc2 (has-0)", 100), ("f1_has0", "F1 (has-0)", 100), ("mae", "MAE", 1), ("corr", "Corr", 1),
    ],
    "mer": [("acc", "Acc", 100), ("f1", "F1", 100)],
    "mda": [("mae", "MAE", 1), ("rmse", "RMSE", 1), ("pearson", "Pearson", 1), ("f1", "F1", 100)],
    "classification": [("acc", "Acc", 100), ("f1", "F1", 100)],
}


def columns_for(data: MultimodalData) -> list[tuple[str, str, float]]:
    if data.label_kind == "mda" and data.task == "classification":
        return [("precision", "Precision", 100), ("recall", "Recall", 100), ("f1", "F1", 100)]
    if data.task == "classification" and data.label_kind != "mer":
        return COLUMNS["classification"]
    return COLUMNS.get(data.label_kind, [("mae", "MAE", 1), ("corr", "Corr", 1)])


def run_ablations(
    mcfg: ModelConfig,
    tcfg: TrainConfig,
    data: MultimodalData,
    seeds: list[int],
    ablations: tuple[str, ...] = ABLATIONS,
    on_run: Callable[[str, int, dict[str, float]], None] | None = None,
    on_epoch: Callable[[int, int, dict[str, Any]], None] | None = None,
    baselines: tuple[str, ...] = BASELINES,
) -> dict[str, list[dict[str, float]]]:
    """Test metrics of the valid-selected model for every (ablation, seed), then of each baseline (one run:
    they are deterministic)."""
    results: dict[str, list[dict[str, float]]] = {}
    for ablation in ablations:
        for seed in seeds:
            res = fit(dataclasses.replace(mcfg, ablation=ablation), dataclasses.replace(tcfg, seed=seed), data,
                      on_epoch=on_epoch)
            results.setdefault(ablation, []).append(res.test)
            if on_run:
                on_run(ablation, seed, res.test)
    for name, test in baseline_metrics(data, baselines).items():
        results[name] = [test]
        if on_run:
            on_run(name, 0, test)
    return results


def ablation_table(results: dict[str, list[dict[str, float]]], columns: list[tuple[str, str, float]]) -> str:
    header = "| Setting | " + " | ".join(title for _, title, _ in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    for ablation, runs in results.items():
        cells = []
        for key, _, scale in columns:
            values = np.array([r[key] for r in runs if key in r], dtype=np.float64) * scale
            digits = 1 if scale == 100 else 3
            if len(values) == 0:
                cells.append("–")
            elif len(values) == 1:
                cells.append(f"{values[0]:.{digits}f}")
            else:
                cells.append(f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}")
        lines.append(f"| {LABELS.get(ablation, ablation)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
