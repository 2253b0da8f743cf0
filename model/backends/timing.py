"""Latency measurement that stays fair on a shared, noisy machine.

Candidates are timed **interleaved**: every round calls each of them once, in an order that rotates from
round to round, so a burst of load from another process hits all of them alike. Only ratios measured in
one call are meaningful; absolute numbers move with the machine's load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    n: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> LatencyStats:
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        return cls(len(ms), float(p50), float(p95), float(p99), float(ms.mean()), float(ms.min()))

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "min_ms": self.min_ms,
        }


def measure_interleaved(
    candidates: dict[str, Callable[[], object]],
    *,
    warmup: int = 3,
    min_iters: int = 5,
    max_iters: int = 200,
    budget_s: float = 2.0,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, LatencyStats]:
    """Time each candidate ``min_iters``…``max_iters`` times, stopping once ``budget_s`` per candidate
    (on average) is spent. Each callable must finish its work before returning (synchronise a GPU)."""
    names = list(candidates)
    if not names:
        return {}
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    samples: dict[str, list[float]] = {n: [] for n in names}
    spent = 0.0
    rounds = 0
    while rounds < max_iters and (rounds < min_iters or spent < budget_s * len(names)):
        k = rounds % len(names)
        for name in names[k:] + names[:k]:
            start = clock()
            candidates[name]()
            dt = clock() - start
            samples[name].append(dt)
            spent += dt
        rounds += 1
    return {n: LatencyStats.of(s) for n, s in samples.items()}
