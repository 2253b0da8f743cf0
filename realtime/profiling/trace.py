"""An event log → a Chrome/Perfetto trace (``mmcl profile --log events.jsonl --trace out.json``).

The file is the documented Chrome trace-event JSON format (``{"traceEvents": [...]}``, timestamps in µs),
which ui.perfetto.dev and chrome://tracing open directly. It is written here with ``json`` (the
``perfetto`` package's writer needs downloads at run time). Layout, all in one process ``mmcl monitor``:

==================  =========================================================================================
track (thread)      spans (``ph: X``)
==================  =========================================================================================
capture → face      capture of the window's newest frame → its face features ready
capture → voice     end of the newest audio step → its voice features ready
speech → ASR        end of the newest word → committed by the ASR; then (next track) commit → text features
window loop         ``window N`` = build + inference + attribution, with the three as children laid back to
                    back from the tick (they are ``perf_counter`` compute times; in clock-stopped replay
                    the session clock does not move while computing)
display             prediction published → first drawn on the dashboard / headless line (``shown`` lines)
==================  =========================================================================================

Flow events (``ph: s``/``f``, ``cat: window``) link each window's input spans to its ``window N`` span and
that span to its ``shown`` span. Counters (``ph: C``) at every tick: queue depths, process CPU (% of one
core) and RSS (MB). Spans that would overlap on one track (e.g. two words waiting for the ASR at once)
go to a second lane of that track (``speech → ASR #2``). Times are on the session clock, 0 = session start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PID = 1
TRACKS: dict[str, tuple[int, str]] = {
    "face": (1, "capture → face features"),
    "voice": (2, "capture → voice features"),
    "asr_commit": (3, "speech → ASR commit"),
    "text": (4, "commit → text features"),
    "window": (5, "window loop"),
    "display": (6, "display (published → shown)"),
}
INPUT_OF = {"face": "vision", "voice": "audio", "asr_commit": "text"}
COMPUTE = ("window", "inference", "attribution")
COMPUTE_NAMES = {"window": "build", "inference": "inference", "attribution": "attribution"}


def _us(seconds: float, t0: float) -> float:
    return round((seconds - t0) * 1e6, 3)


class _Lanes:
    """Per-track lanes so that spans on one thread never overlap partially."""

    def __init__(self) -> None:
        self.ends: dict[str, list[float]] = {}
        self.seen: dict[tuple[str, float], int] = {}

    def place(self, track: str, ts: float, dur: float) -> tuple[int, bool]:
        """(tid, new): the tid of a lane free at ``ts``; ``new`` False when the same span was placed before."""
        key = (track, ts)
        if key in self.seen:
            return self.seen[key], False
        ends = self.ends.setdefault(track, [])
        base = TRACKS[track][0]
        for k, end in enumerate(ends):
            if end <= ts:
                ends[k] = ts + dur
                tid = base + 100 * k
                break
        else:
            ends.append(ts + dur)
            tid = base + 100 * (len(ends) - 1)
        self.seen[key] = tid
        return tid, True


def _span(name: str, tid: int, ts: float, dur: float, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "pid": PID, "tid": tid, "name": name, "cat": "stage", "ts": ts, "dur": max(0.0, dur),
            "args": args}  # fmt: skip


def _flow(ph: str, fid: int, tid: int, ts: float, name: str) -> dict[str, Any]:
    ev = {"ph": ph, "pid": PID, "tid": tid, "id": fid, "name": name, "cat": "window", "ts": ts}
    if ph == "f":
        ev["bp"] = "e"  # bind to the enclosing slice
    return ev


def _input_spans(w: dict[str, Any], ms: dict[str, Any], lanes: _Lanes, t0: float) -> list[tuple[int, float, dict]]:
    """(tid, ts, span) of the window's input stages (face, voice, ASR → text)."""
    out = []
    newest = w.get("newest_by_modality") or {}
    for stage, modality in INPUT_OF.items():
        t_in, lat = newest.get(modality), ms.get(stage)
        if t_in is None or lat is None:
            continue
        ts, dur = _us(float(t_in), t0), float(lat) * 1000.0
        tid, new = lanes.place(stage, ts, dur)
        span = _span(TRACKS[stage][1].split(" → ")[-1], tid, ts, dur, window=w["window"], stage=stage)
        out.append((tid, ts, span if new else {}))
        if stage == "asr_commit" and ms.get("text") is not None:
            ts2, dur2 = ts + dur, float(ms["text"]) * 1000.0
            tid2, new2 = lanes.place("text", ts2, dur2)
            out.append((tid2, ts2, _span("text features", tid2, ts2, dur2, window=w["window"], stage="text")
                        if new2 else {}))  # fmt: skip
    return out


def _window_events(w: dict[str, Any], shown_at: float | None, lanes: _Lanes, t0: float) -> list[dict[str, Any]]:
    ms = w.get("latency_ms") or {}
    n = int(w["window"])
    tick = w.get("tick_at", w.get("published_at", w["t_end"]))
    ts = _us(float(tick), t0)
    tid = TRACKS["window"][0]
    parts = [(COMPUTE_NAMES[s], float(ms[s]) * 1000.0) for s in COMPUTE if ms.get(s) is not None]
    total = sum(d for _, d in parts)
    pred = w.get("prediction") or {}
    events = [_span(f"window {n}", tid, ts, total, window=n, t_start=w.get("t_start"), t_end=w.get("t_end"),
                    score=pred.get("score"), masks=w.get("masks"))]  # fmt: skip
    at = ts
    for name, dur in parts:
        events.append(_span(name, tid, at, dur, window=n))
        at += dur
    for k, (in_tid, in_ts, span) in enumerate(_input_spans(w, ms, lanes, t0)):
        if span:
            events.append(span)
        events += [_flow("s", n * 10 + k, in_tid, in_ts, f"window {n}"), _flow("f", n * 10 + k, tid, ts, f"window {n}")]
    if shown_at is not None:
        published = ts + sum(d for name, d in parts if name != "attribution")
        shown = _us(shown_at, t0)
        d_tid, _ = lanes.place("display", published, max(0.0, shown - published))
        events.append(_span(f"shown {n}", d_tid, published, shown - published, window=n))
        events += [_flow("s", n * 10 + 9, tid, ts, f"window {n} shown"),
                   _flow("f", n * 10 + 9, d_tid, published, f"window {n} shown")]  # fmt: skip
    return events


def _counters(w: dict[str, Any], t0: float) -> list[dict[str, Any]]:
    tick = w.get("tick_at", w.get("published_at", w["t_end"]))
    ts = _us(float(tick), t0)
    out = []
    if w.get("queues"):
        out.append({"ph": "C", "pid": PID, "name": "queue depth", "ts": ts, "args": dict(w["queues"])})
    if w.get("cpu_percent") is not None:
        out.append({"ph": "C", "pid": PID, "name": "CPU %", "ts": ts, "args": {"process": w["cpu_percent"]}})
    if w.get("rss_mb") is not None:
        out.append({"ph": "C", "pid": PID, "name": "RSS MB", "ts": ts, "args": {"rss": w["rss_mb"]}})
    pred = w.get("prediction") or {}
    reading = {k: pred[v] for k, v in (("valence", "score"), ("arousal", "arousal")) if pred.get(v) is not None}
    if reading:  # the model's reading beside the latencies (arousal only from models with an arousal head)
        out.append({"ph": "C", "pid": PID, "name": "reading", "ts": ts, "args": reading})
    return out


def build_trace(events: Iterable[dict[str, Any]], source: str = "") -> dict[str, Any]:
    """The trace-event JSON object of an event log's lines."""
    evs = list(events)
    windows = [e for e in evs if e.get("type") == "window"]
    shown = {e["window"]: float(e["shown_at"]) for e in evs if e.get("type") == "shown" and "shown_at" in e}
    session = next((e for e in evs if e.get("type") == "session"), {})
    t0 = session.get("clock_start")
    if t0 is None:
        t0 = min((float(w["t_start"]) for w in windows), default=0.0)
    t0 = float(t0)
    meta: list[dict[str, Any]] = [{"ph": "M", "pid": PID, "name": "process_name", "args": {"name": "mmcl monitor"}}]
    lanes = _Lanes()
    body: list[dict[str, Any]] = []
    for w in windows:
        body += _window_events(w, shown.get(w["window"]), lanes, t0)
        body += _counters(w, t0)
    for track, ends in lanes.ends.items():
        base, label = TRACKS[track]
        for k in range(max(1, len(ends))):
            meta.append({"ph": "M", "pid": PID, "tid": base + 100 * k, "name": "thread_name",
                         "args": {"name": label + (f" #{k + 1}" if k else "")}})  # fmt: skip
            meta.append({"ph": "M", "pid": PID, "tid": base + 100 * k, "name": "thread_sort_index",
                         "args": {"sort_index": base + 100 * k}})  # fmt: skip
    if "window" not in lanes.ends:
        meta.append({"ph": "M", "pid": PID, "tid": TRACKS["window"][0], "name": "thread_name",
                     "args": {"name": TRACKS["window"][1]}})  # fmt: skip
    return {
        "traceEvents": meta + body,
        "displayTimeUnit": "ms",
        "otherData": {"producer": "mmcl profile", "log": source, "windows": len(windows),
                      "mode": session.get("mode"), "replay": session.get("replay"),
                      "clock": "session clock, 0 = session start"},
    }  # fmt: skip


def write_trace(events: Iterable[dict[str, Any]], out: str | os.PathLike[str], source: str = "") -> dict[str, Any]:
    trace = build_trace(events, source)
    Path(out).write_text(json.dumps(trace, separators=(",", ":")), encoding="utf-8")
    return trace
