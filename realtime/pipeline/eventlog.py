"""The JSONL event log of a monitor session (``mmcl monitor --log FILE``).

One JSON object per line, written and flushed as it happens (nothing is lost on Ctrl-C); the file is
created with mode 0600 (it holds what was said). Line types (``"type"``):

* ``session`` — first line: start time (UTC), sources, backend, checkpoint, window/hop settings.
* ``window`` — one per scored window: ``t_start``/``t_end`` (session clock, s), ``published_at``,
  ``newest_input`` (capture time of the newest input in the window), ``prediction`` (``value`` or
  ``probs``/``label``, ``score``, ``trend``, ``contributions``; ``null`` when no modality was present),
  ``masks`` (observed steps per modality out of ``steps``), ``words`` (text of the window) and
  ``latency_ms`` (stage latencies of this window: ``window``, ``inference``, ``e2e_published``, and the
  newest ``face``/``voice``/``asr_commit``/``text`` latencies of inputs in it), ``tick_at`` (session clock
  when the window loop started on it), ``queues`` (hand-off queue depths), ``cpu_percent`` / ``rss_mb``.
* ``shown`` — a window's prediction first drawn by the dashboard / headless printer (``shown_at``).
* ``alert`` / ``alert_action`` — with ``--alerts``: an alert fired or cleared (``realtime.alerts``), and
  what its command / webhook delivery did.
* ``status`` — a device/worker status change (e.g. camera ``reconnecting``).
* ``summary`` — last line at a clean exit: per-stage p50/p95/p99 (ms), drops (by kind, as
  ``MonitorSnapshot.drops``: ``windows_skipped``, ``audio_dropped_s``, ``queue:face→windows``, …), counts.

``read_events`` reads a log back (tolerating a truncated last line, as left by a killed process);
``latency_summary`` rebuilds the per-stage percentiles from the window lines alone (``mmcl profile``);
``window_event`` composes a ``window`` line (``realtime.pipeline.window_loop``).

Write failures (disk full, file-size limit, a removed USB stick) never stop the monitor: the first failure
cuts the file back to its last complete line (every event already recorded stays readable), logs one
error saying what to do, and the log stops; ``error`` holds the message and ``lines_lost`` counts the
events not written after it (the pipeline shows both, ``mmcl monitor`` repeats them at exit).

Privacy: the log holds what was said (``words`` of each window) unless ``monitor.log_transcript`` is off
(``mmcl monitor --no-transcript-log``); it is private to the user (0600) and never sent anywhere.
"""

from __future__ import annotations

import contextlib
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
    """Append-only JSONL writer; thread-safe; every line goes to the OS at once (unbuffered ``os.write``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            raise DataFormatError(
                f"cannot write the event log {self.path}: {exc.strerror}; pick another --log path"
            ) from None
        os.fchmod(fd, 0o600)  # also when the file existed with wider permissions
        self._fd: int | None = fd
        self._lock = threading.Lock()
        self._size = 0  # bytes of complete lines on disk
        self.lines = 0
        self.lines_lost = 0  # events not written after a write failure
        self.error: str | None = None  # why writing stopped (None while it works)
        self.closed = False

    def write(self, event: dict[str, Any]) -> bool:
        """Append one event; False when it was not written (log closed, or writing failed)."""
        data = (json.dumps(_clean(event), separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                if self.error is not None:
                    self.lines_lost += 1
                return False
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError as exc:
                self._fail_locked(exc)
                return False
            self._size += len(data)
            self.lines += 1
            return True

    def _fail_locked(self, exc: OSError) -> None:
        """Cut a partly written line off, close, remember why (called once, with the lock held)."""
        fd, self._fd = self._fd, None
        self.lines_lost += 1
        reason = exc.strerror or type(exc).__name__
        self.error = (
            f"writing the event log {self.path} failed after {self.lines} events ({reason}); "
            "the events before are intact; free disk space or pick another --log path"
        )
        log.error("%s; the monitor goes on without the log", self.error)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._size)
            with contextlib.suppress(OSError):
                os.close(fd)

    def session(self, **fields: Any) -> bool:
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        return self.write({"type": "session", "started_utc": now, **fields})

    def close(self, summary: dict[str, Any] | None = None) -> None:
        if summary is not None:
            self.write({"type": "summary", **summary})
        with self._lock:
            self.closed = True
            fd, self._fd = self._fd, None
            if fd is not None:
                try:
                    os.fsync(fd)  # the session is over: make it durable (a failure here loses nothing)
                except OSError:
                    pass
                os.close(fd)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


INPUT_STAGES = ("face", "voice", "asr_commit", "text")  # a window line carries the newest latency of each


def window_event(
    w: Any,
    prediction: Any,
    timings_s: dict[str, float | None],
    latency: Any,
    published: float,
    words: bool = True,
) -> dict[str, Any]:
    """The ``window`` line of window ``w`` (a ``Window``): ``timings_s`` are this window's own stage times
    (``window``, ``inference``, ``attribution``, ``e2e_published``; None = did not happen), ``latency``
    the session's ``LatencyTracker`` (the newest input latencies); ``words=False`` leaves what was said out."""
    ms = {k: v * 1000.0 for k, v in timings_s.items() if v is not None}
    for stage in INPUT_STAGES:
        last = latency.last(stage)
        if last is not None:
            ms[stage] = last * 1000.0
    return {
        "type": "window",
        "window": w.index,
        "t_start": w.t_start,
        "t_end": w.t_end,
        "published_at": published,
        "newest_input": w.newest,
        "newest_by_modality": w.newest_input,
        "prediction": prediction.to_dict() if prediction is not None else None,
        "masks": {"steps": w.steps, **{m: int(w.masks[m].sum()) for m in w.masks}},
        "samples": w.samples,
        **({"words": w.text} if words else {}),  # what was said: personal data
        "latency_ms": ms,
    }


def read_events(path: str | os.PathLike[str], types: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """All events of a log (optionally only some ``type``s). A broken *last* line (a process killed while
    writing) is skipped with a warning; a broken line elsewhere, or a file that is not an event log, is a
    DataFormatError."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"event log {p} does not exist (write one with `mmcl monitor --log {p}`)")
    wanted = set(types) if types is not None else None
    try:
        lines = p.read_bytes().splitlines()
    except OSError as exc:
        raise DataFormatError(f"cannot read the event log {p}: {exc.strerror}") from None
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            ev = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if i == len(lines) - 1:
                log.warning("%s: last line is truncated (the monitor was killed while writing); skipped", p)
                continue
            raise DataFormatError(
                f"{p}:{i + 1} is not valid JSON; is this an mmcl monitor event log?"
            ) from None
        if not isinstance(ev, dict) or not isinstance(ev.get("type"), str):
            raise DataFormatError(f"{p}:{i + 1} is not an mmcl event (no 'type' field)")
        problem = _schema_problem(ev)
        if problem:
            raise DataFormatError(f"{p}:{i + 1}: {ev['type']} event with {problem}; is this an mmcl event log?")
        if wanted is None or ev["type"] in wanted:
            out.append(ev)
    return out


def _is_number(x: Any) -> bool:
    return isinstance(x, float) or (isinstance(x, int) and not isinstance(x, bool) and abs(x) < 2**63)


def _schema_problem(ev: dict[str, Any]) -> str | None:
    """What is wrong with the fields that ``mmcl profile`` reads (None when they are usable)."""
    if ev["type"] == "window":
        lat = ev.get("latency_ms")
        if lat is not None and (
            not isinstance(lat, dict) or not all(v is None or _is_number(v) for v in lat.values())
        ):
            return "a malformed latency_ms (a mapping of stage → milliseconds expected)"
        for key in ("prediction", "masks"):
            if ev.get(key) is not None and not isinstance(ev[key], dict):
                return f"a malformed {key} (a mapping expected)"
        masks = ev.get("masks") or {}
        if not all(_is_number(v) for v in masks.values()):
            return "a malformed masks (step counts expected)"
    elif ev["type"] == "summary":
        lat = ev.get("latency_ms")
        fields = ("count", "p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")
        if lat is not None and (
            not isinstance(lat, dict)
            or not all(
                isinstance(d, dict) and _is_number(d.get("count")) and all(
                    d.get(f) is None or _is_number(d.get(f)) for f in fields
                )
                for d in lat.values()
            )
        ):
            return "a malformed latency_ms (per-stage percentiles expected)"
    return None


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
