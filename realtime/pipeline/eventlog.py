"""The JSONL event log of a monitor session (``mmcl monitor --log FILE``).

One JSON object per line, written and flushed as it happens (nothing is lost on Ctrl-C); the file is
created with mode 0600 (it holds what was said). Line types (``"type"``):

* ``session`` — first line: start time (UTC), sources, backend, checkpoint, window/hop settings.
* ``window`` — one per scored window: ``t_start``/``t_end`` (session clock, s), ``published_at``,
  ``newest_input`` (capture time of the newest input in the window), ``prediction`` (``value`` or
  ``probs``/``label``, ``score``, ``trend``, ``contributions``; ``null`` when no modality was present),
  ``masks`` (observed steps per modality out of ``steps``), ``words`` (text of the window) and
  ``latency_ms`` (stage latencies of this window: ``window``, ``inference``, ``e2e_published``, and the
  newest ``face``/``voice``/``asr_commit``/``text`` latencies of inputs in it).
* ``status`` — a device/worker status change (e.g. camera ``reconnecting``).
* ``summary`` — last line at a clean exit: per-stage p50/p95/p99 (ms), drops, counts.

``read_events`` reads a log back (tolerating a truncated last line, as left by a killed process);
``latency_summary`` rebuilds the per-stage percentiles from the window lines alone (``mmcl profile``).
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from model.errors import DataFormatError
from realtime.pipeline.latency import STAGES, LatencyStat, stat_of

log = logging.getLogger(__name__)


def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class EventLog:
    """Append-only JSONL writer; thread-safe; every line is flushed to the OS at once."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            raise DataFormatError(
                f"cannot write the event log {self.path}: {exc.strerror}; pick another --log path"
            ) from None
        os.fchmod(fd, 0o600)  # also when the file existed with wider permissions
        self._f = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()
        self.lines = 0
        self.closed = False

    def write(self, event: dict[str, Any]) -> None:
        line = json.dumps(_clean(event), separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            if self.closed:
                return
            self._f.write(line + "\n")
            self._f.flush()
            self.lines += 1

    def session(self, **fields: Any) -> None:
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        self.write({"type": "session", "started_utc": now, **fields})

    def close(self, summary: dict[str, Any] | None = None) -> None:
        if summary is not None:
            self.write({"type": "summary", **summary})
        with self._lock:
            if not self.closed:
                self.closed = True
                self._f.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_events(path: str | os.PathLike[str], types: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """All events of a log (optionally only some ``type``s). A broken *last* line (a process killed while
    writing) is skipped with a warning; a broken line elsewhere is a DataFormatError."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"event log {p} does not exist (write one with `mmcl monitor --log {p}`)")
    wanted = set(types) if types is not None else None
    lines = p.read_text(encoding="utf-8").splitlines()
    out: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                log.warning("%s: last line is truncated (the monitor was killed while writing); skipped", p)
                continue
            raise DataFormatError(
                f"{p}:{i + 1} is not valid JSON; is this an mmcl monitor event log?"
            ) from None
        if not isinstance(ev, dict) or "type" not in ev:
            raise DataFormatError(f"{p}:{i + 1} is not an mmcl event (no 'type' field)")
        if wanted is None or ev["type"] in wanted:
            out.append(ev)
    return out


def latency_summary(events: Iterable[dict[str, Any]]) -> dict[str, LatencyStat]:
    """Per-stage percentiles (ms) from the ``latency_ms`` of every window event."""
    values: dict[str, list[float]] = {}
    for ev in events:
        if ev.get("type") != "window":
            continue
        for stage, ms in (ev.get("latency_ms") or {}).items():
            if ms is not None:
                values.setdefault(stage, []).append(float(ms) / 1000.0)
    order = [s for s in STAGES if s in values] + sorted(s for s in values if s not in STAGES)
    return {s: stat_of(s, values[s]) for s in order}


def window_table(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows (one per window) for CSV export: times, score, trend, coverage and stage latencies."""
    rows = []
    for ev in events:
        if ev.get("type") != "window":
            continue
        pred = ev.get("prediction") or {}
        row: dict[str, Any] = {
            "window": ev.get("window"),
            "t_start": ev.get("t_start"),
            "t_end": ev.get("t_end"),
            "score": pred.get("score"),
            "trend": pred.get("trend"),
            "label": pred.get("label"),
        }
        for m, n in (ev.get("masks") or {}).items():
            if m != "steps":
                row[f"{m}_steps"] = n
        for stage, ms in (ev.get("latency_ms") or {}).items():
            row[f"{stage}_ms"] = ms
        rows.append(row)
    return rows
