"""Per-stage latency samples (milliseconds) from the lines of an event log.

Sources: every ``window`` line's ``latency_ms`` (``window``, ``inference``, ``attribution``,
``e2e_published`` per window; ``face``/``voice``/``asr_commit``/``text`` as the newest such latency at that
window, i.e. one sample per window, not every frame) and every ``shown`` line (``e2e`` = shown_at − the
window's newest input). Stages follow ``latency.STAGES`` order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from realtime.pipeline.latency import STAGES, LatencyStat, stat_of


@dataclass(frozen=True)
class StageSamples:
    ms: dict[str, list[float]]  # stage → samples in ms
    windows: int

    def stats(self) -> dict[str, LatencyStat]:
        return {s: stat_of(s, [v / 1000.0 for v in vals]) for s, vals in self.ms.items()}


def stage_samples(events: Iterable[dict[str, Any]]) -> StageSamples:
    values: dict[str, list[float]] = {}
    newest: dict[int, float] = {}
    shown: list[tuple[int, float]] = []
    windows = 0
    for ev in events:
        kind = ev.get("type")
        if kind == "window":
            windows += 1
            for stage, ms in (ev.get("latency_ms") or {}).items():
                if ms is not None:
                    values.setdefault(stage, []).append(float(ms))
            if ev.get("newest_input") is not None and isinstance(ev.get("window"), int):
                newest[ev["window"]] = float(ev["newest_input"])
        elif kind == "shown" and isinstance(ev.get("window"), int) and ev.get("shown_at") is not None:
            shown.append((ev["window"], float(ev["shown_at"])))
    for w, t in shown:
        if w in newest:
            values.setdefault("e2e", []).append((t - newest[w]) * 1000.0)
    order = [s for s in STAGES if s in values] + sorted(s for s in values if s not in STAGES)
    return StageSamples({s: values[s] for s in order}, windows)
