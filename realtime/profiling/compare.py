"""Before/after latency of two event logs (``mmcl profile --compare a.jsonl b.jsonl [--json]``).

For every stage in either log: p50/p95/p99 (ms) of each and the ratio b/a (None where a is 0 or absent).
Samples as in ``realtime.profiling.samples`` (one per window for the input stages).
"""

from __future__ import annotations

import os
from typing import Any

from realtime.pipeline.eventlog import read_events
from realtime.pipeline.latency import LatencyStat
from realtime.profiling.samples import stage_samples

FIELDS = ("p50_ms", "p95_ms", "p99_ms")


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a <= 0:
        return None
    return b / a


def compare_stats(a: dict[str, LatencyStat], b: dict[str, LatencyStat]) -> dict[str, dict[str, Any]]:
    stages = list(a) + [s for s in b if s not in a]
    out: dict[str, dict[str, Any]] = {}
    for s in stages:
        sa, sb = a.get(s), b.get(s)
        row: dict[str, Any] = {"a": sa.to_dict() if sa else None, "b": sb.to_dict() if sb else None, "ratio": {}}
        for f in FIELDS:
            row["ratio"][f.removesuffix("_ms")] = _ratio(getattr(sa, f, None), getattr(sb, f, None))
        out[s] = row
    return out


def compare_logs(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> dict[str, Any]:
    """{"a", "b", "windows": {"a", "b"}, "stages": {stage: {"a", "b", "ratio": {p50, p95, p99}}}}."""
    sa, sb = stage_samples(read_events(a)), stage_samples(read_events(b))
    return {
        "a": str(a),
        "b": str(b),
        "windows": {"a": sa.windows, "b": sb.windows},
        "stages": compare_stats(sa.stats(), sb.stats()),
    }
