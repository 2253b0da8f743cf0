"""What quantisation costs and buys: metrics of FP32 vs INT8 on a held-out split, and their speed ratio.

Accuracy: both runners score the same split (``test`` by default) and ``model.evaluate.compute_metrics``
turns their outputs into the dataset's metrics; the delta is INT8 − FP32 (Acc2 in points ×100 when
printed). Speed: both are timed **interleaved** (``model.backends.timing.measure_interleaved``) on the same
real-shaped inputs at each batch size, so a load burst from other processes hits both alike; the ratio is
p50(FP32) / p50(INT8) (> 1 = INT8 faster). Only that ratio, measured in one run, is meaningful on a shared
machine; ``os.getloadavg()`` before and after is reported with it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.backends.base import ModelInputs
from model.backends.inputs import LIVE_STEPS, live_like_inputs
from model.backends.timing import measure_interleaved
from model.data.types import Split
from model.evaluate import TaskInfo, compute_metrics

Runner = Callable[[ModelInputs], np.ndarray]


def split_inputs(split: Split, index: slice | np.ndarray) -> ModelInputs:
    return ModelInputs(
        split.vision[index],
        split.audio[index],
        split.text[index],
        split.vision_mask[index],
        split.audio_mask[index],
        split.text_mask[index],
    )


def run_split(runner: Runner, split: Split, batch: int = 64) -> np.ndarray:
    outs = [
        np.asarray(runner(split_inputs(split, slice(i, i + batch))), dtype=np.float32)
        for i in range(0, len(split), batch)
    ]
    return np.concatenate(outs, axis=0) if outs else np.zeros((0, 1), np.float32)


@dataclass
class AccuracyDelta:
    split: str
    samples: int
    fp32: dict[str, float]
    int8: dict[str, float]
    max_abs_output_diff: float

    @property
    def delta(self) -> dict[str, float]:
        return {k: self.int8[k] - self.fp32[k] for k in self.fp32 if k in self.int8}

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "samples": self.samples,
            "fp32": self.fp32,
            "int8": self.int8,
            "delta": self.delta,
            "max_abs_output_diff": self.max_abs_output_diff,
        }


def accuracy_delta(fp32: Runner, int8: Runner, split: Split, info: TaskInfo, name: str = "test") -> AccuracyDelta:
    a, b = run_split(fp32, split), run_split(int8, split)
    diff = float(np.abs(a - b).max()) if a.size else 0.0
    return AccuracyDelta(name, len(split), compute_metrics(a, split, info), compute_metrics(b, split, info), diff)


@dataclass
class SpeedRow:
    batch: int
    fp32_p50_ms: float
    int8_p50_ms: float
    fp32_p95_ms: float
    int8_p95_ms: float
    iterations: int

    @property
    def ratio(self) -> float:
        return self.fp32_p50_ms / self.int8_p50_ms if self.int8_p50_ms > 0 else float("nan")


@dataclass
class SpeedReport:
    rows: list[SpeedRow]
    steps: int
    threads: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "threads": self.threads,
            "loadavg_before": self.load_before,
            "loadavg_after": self.load_after,
            "rows": [
                {
                    "batch": r.batch,
                    "fp32_p50_ms": r.fp32_p50_ms,
                    "int8_p50_ms": r.int8_p50_ms,
                    "fp32_p95_ms": r.fp32_p95_ms,
                    "int8_p95_ms": r.int8_p95_ms,
                    "iterations": r.iterations,
                    "speedup": r.ratio,
                }
                for r in self.rows
            ],
        }


def _loadavg() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover - not on Linux
        return (float("nan"),) * 3  # type: ignore[return-value]


def speed_ratio(
    fp32: Runner,
    int8: Runner,
    model: Any,
    *,
    batches: Sequence[int] = (64, 1),
    steps: int = LIVE_STEPS,
    threads: int = 0,
    budget_s: float = 3.0,
    min_iters: int = 10,
    on_batch: Callable[[int], None] | None = None,
) -> SpeedReport:
    """Interleaved p50 latency of both runners per batch size on live-like inputs (module docstring)."""
    before = _loadavg()
    rows = []
    for b in batches:
        x = live_like_inputs(model, b, steps, seed=17 + b)
        stats = measure_interleaved(
            {"fp32": lambda x=x: fp32(x), "int8": lambda x=x: int8(x)},
            warmup=2,
            min_iters=min_iters,
            max_iters=400,
            budget_s=budget_s,
        )
        rows.append(
            SpeedRow(
                b,
                stats["fp32"].p50_ms,
                stats["int8"].p50_ms,
                stats["fp32"].p95_ms,
                stats["int8"].p95_ms,
                stats["fp32"].n,
            )
        )
        if on_batch:
            on_batch(b)
    return SpeedReport(rows, steps, threads, before, _loadavg())
