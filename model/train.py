"""The trainer: Adam, early stopping on the validation split only, deterministic seeding.

Progress is reported through callbacks (the CLI draws a rich progress bar); nothing here prints.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.checkpoint import save_checkpoint
from model.config import DataConfig, ModelConfig, TrainConfig
from model.configlib import to_dict
from model.data.types import MultimodalData
from model.errors import ConfigError
from model.evaluate import TaskInfo, compute_metrics, predict, split_tensors
from model.losses import total_loss
from model.metrics import higher_is_better
from model.mmcl import MMCL, count_parameters

log = logging.getLogger(__name__)

EpochCallback = Callable[[int, int, dict[str, Any]], None]
BatchCallback = Callable[[int, int], None]


@dataclass
class TrainResult:
    best_epoch: int
    epochs_run: int
    select_metric: str
    valid: dict[str, float]
    test: dict[str, float]
    seconds_per_epoch: float
    parameters: int
    history: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None
    model: MMCL | None = None


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def model_config_for(mcfg: ModelConfig, data: MultimodalData) -> ModelConfig:
    """Fill input sizes and output shape from the data (never hard-coded)."""
    dims = data.dims
    if data.seq_len > mcfg.max_steps:
        raise ConfigError(f"the data has {data.seq_len} steps but model.max_steps is {mcfg.max_steps}")
    return dataclasses.replace(
        mcfg,
        dim_vision=dims["vision"],
        dim_audio=dims["audio"],
        dim_text=dims["text"],
        task=data.task,
        num_labels=data.num_labels,
        num_classes=data.num_classes,
    )


def build_model(mcfg: ModelConfig, data: MultimodalData) -> MMCL:
    model = MMCL(model_config_for(mcfg, data))
    stats = data.input_stats()
    model.set_input_stats({m: (torch.from_numpy(mu), torch.from_numpy(sd)) for m, (mu, sd) in stats.items()})
    return model


def _is_better(value: float, best: float | None, higher: bool) -> bool:
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value > best if higher else value < best


class _Keeper:
    """The weights to keep: the best epoch by the validation metric (or the last one), or the mean of the
    ``k`` best (or last) epochs' weights (``train.average_best``)."""

    def __init__(self, k: int, keep_last: bool, higher: bool) -> None:
        self.k, self.keep_last, self.higher = max(1, k), keep_last, higher
        self.kept: list[tuple[float, int, dict[str, torch.Tensor]]] = []  # (value, epoch, state)

    def offer(self, value: float, epoch: int, model: torch.nn.Module) -> None:
        if not self.keep_last and (math.isnan(value) or (len(self.kept) == self.k and not self._beats(value))):
            return  # not among the k best: no copy of the weights
        self.kept.append((value, epoch, copy.deepcopy(model.state_dict())))
        if self.keep_last:
            self.kept = self.kept[-self.k :]
        else:
            self.kept.sort(key=lambda r: (-r[0] if self.higher else r[0], r[1]))
            self.kept = self.kept[: self.k]

    def _beats(self, value: float) -> bool:
        worst = self.kept[-1][0]
        return value > worst if self.higher else value < worst

    def state(self) -> dict[str, torch.Tensor] | None:
        if not self.kept:
            return None
        states = [st for _, _, st in self.kept]
        if len(states) == 1:
            return states[0]
        return {name: (torch.stack([st[name].float() for st in states]).mean(0).to(t.dtype)
                       if t.is_floating_point() else t) for name, t in states[0].items()}  # fmt: skip

    def epochs(self) -> list[int]:
        return sorted(e for _, e, _ in self.kept)


def fit(
    mcfg: ModelConfig,
    tcfg: TrainConfig,
    data: MultimodalData,
    out_dir: str | Path | None = None,
    dcfg: DataConfig | None = None,
    on_epoch: EpochCallback | None = None,
    on_batch: BatchCallback | None = None,
    extra_config: dict[str, Any] | None = None,
) -> TrainResult:
    """Train on ``data['train']``, select on ``data['valid']``, report valid and test of the selected model.

    Writes ``best.pt`` and ``metrics.json`` to ``out_dir`` when given.
    """
    if tcfg.batch_size == 0:
        tcfg = dataclasses.replace(tcfg, batch_size=64 if data.label_kind in ("msa", "generic") else 128)
    seed_everything(tcfg.seed, tcfg.deterministic)
    if tcfg.num_threads > 0:
        torch.set_num_threads(tcfg.num_threads)
    model = build_model(mcfg, data).to(tcfg.device)
    info = dataclasses.replace(TaskInfo.from_data(data), arousal=model.cfg.arousal_head)
    if model.cfg.arousal_head and not data.splits["train"].has_arousal:
        raise ConfigError(f"model.arousal_head is set but the training split of {data.name} has no arousal rating")
    # "last": keep the final epoch (no selection on the validation split, e.g. when it is a CV fold)
    keep_last = tcfg.select_metric == "last"
    metric = info.default_select_metric() if tcfg.select_metric in ("auto", "last") else tcfg.select_metric
    higher = higher_is_better(metric)
    optim = torch.optim.Adam(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    train = data.splits["train"]
    if len(train) == 0:
        raise ConfigError(f"dataset {data.name} has an empty training split")
    rng = np.random.default_rng(tcfg.seed)
    n_batches = math.ceil(len(train) / tcfg.batch_size)
    best: float | None = None
    keeper = _Keeper(tcfg.average_best, keep_last, higher)
    best_epoch, since_best = 0, 0
    history: list[dict[str, Any]] = []
    t_train = 0.0
    epoch = 0
    for epoch in range(1, tcfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = rng.permutation(len(train))
        sums = {"loss": 0.0, "task": 0.0, "contrastive": 0.0}
        for b in range(n_batches):
            idx = np.sort(order[b * tcfg.batch_size : (b + 1) * tcfg.batch_size])
            inputs = split_tensors(train, idx, tcfg.device)
            target = torch.from_numpy(train.labels[idx]).to(tcfg.device)
            arousal = torch.from_numpy(train.arousal[idx]).to(tcfg.device) if train.arousal is not None else None
            out = model.encode(*inputs)
            loss, parts = total_loss(out, target, model.cfg, tcfg, arousal)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            if tcfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
            optim.step()
            for k in sums:
                sums[k] += parts[k] / n_batches
            if on_batch:
                on_batch(b + 1, n_batches)
        t_train += time.perf_counter() - t0
        valid = compute_metrics(predict(model, data.splits["valid"], device=tcfg.device), data.splits["valid"], info)
        if metric not in valid:
            raise ConfigError(f"train.select_metric '{metric}' is not computed here; choose one of {sorted(valid)}")
        value = valid[metric]
        improved = keep_last or _is_better(value, best, higher)
        keeper.offer(value, epoch, model)
        if improved:
            best, best_epoch, since_best = value, epoch, 0
        else:
            since_best += 1
        record = {"epoch": epoch, **{f"train_{k}": v for k, v in sums.items()},
                  **{f"valid_{k}": v for k, v in valid.items()}, "improved": improved}
        history.append(record)
        if on_epoch:
            on_epoch(epoch, tcfg.epochs, record)
        if since_best >= tcfg.patience and not keep_last:
            log.info("early stop at epoch %d (best %s=%.4f at epoch %d)", epoch, metric, best, best_epoch)
            break
    if (kept := keeper.state()) is not None:
        model.load_state_dict(kept)
        if len(keeper.kept) > 1:
            log.info("averaged the weights of epochs %s", keeper.epochs())
    model.eval()
    valid = compute_metrics(predict(model, data.splits["valid"], device=tcfg.device), data.splits["valid"], info)
    test = compute_metrics(predict(model, data.splits["test"], device=tcfg.device), data.splits["test"], info)
    result = TrainResult(
        best_epoch=best_epoch,
        epochs_run=epoch,
        select_metric=metric,
        valid=valid,
        test=test,
        seconds_per_epoch=t_train / max(epoch, 1),
        parameters=count_parameters(model),
        history=history,
        model=model,
    )
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        config = {"model": to_dict(model.cfg), "train": to_dict(tcfg), **(extra_config or {})}
        if dcfg is not None:
            config["data"] = to_dict(dcfg)
        metrics = summary(result, data)
        result.checkpoint = save_checkpoint(
            out / "best.pt", model.cpu(), task=info, feature_set=data.feature_set, config=config, metrics=metrics
        )
        (out / "metrics.json").write_text(json.dumps({**metrics, "history": history}, indent=2) + "\n")
    return result


def summary(result: TrainResult, data: MultimodalData) -> dict[str, Any]:
    return {
        "dataset": data.name,
        "format": data.format,
        "task": data.task,
        "label_kind": data.label_kind,
        "select_metric": result.select_metric,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "seconds_per_epoch": round(result.seconds_per_epoch, 4),
        "parameters": result.parameters,
        "valid": result.valid,
        "test": result.test,
    }
