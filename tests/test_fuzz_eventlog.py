"""Fuzzing the JSONL event-log reader (and what ``mmcl profile`` computes from it) with hypothesis.

Properties:

* any bytes: ``read_events`` returns events or raises DataFormatError with a message; whatever it returns,
  ``latency_summary`` and ``window_table`` (the ``mmcl profile`` path) work on it without an exception;
* a real log cut at any byte (a process killed mid-write, a disk that filled up) reads back exactly the
  events whose lines are complete — no recorded event is lost, none is invented;
* lines of arbitrary JSON values (objects with and without ``type``, window events with fuzzed
  ``latency_ms``/``prediction``/``masks``) never crash the reader or the summaries.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mmcl.cli import app
from model.errors import DataFormatError, MmclError
from realtime.pipeline.eventlog import EventLog, latency_summary, read_events, window_table

COUNTS: dict[str, int] = {}
FUZZ = settings(max_examples=200, deadline=5000, suppress_health_check=[HealthCheck.too_slow])


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1



def _read(path: Path) -> list[dict] | None:
    try:
        events = read_events(path)
    except DataFormatError as exc:
        assert str(exc).strip()
        return None
    latency_summary(events)  # what `mmcl profile` computes must work on whatever the reader accepted
    window_table(events)
    return events


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=6))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6), inner, max_size=3), max_leaves=10)  # fmt: skip
stage_latencies = st.dictionaries(
    st.sampled_from(["e2e", "inference", "x"]), st.one_of(st.none(), st.floats(), st.integers())
)
window_events = st.fixed_dictionaries(
    {"type": st.just("window")},
    optional={
        "latency_ms": st.one_of(json_values, stage_latencies),
        "prediction": st.one_of(st.none(), json_values),
        "masks": json_values,
        "window": json_values,
    },
)
summary_events = st.fixed_dictionaries({"type": st.just("summary")}, optional={"latency_ms": json_values})
lines = st.one_of(json_values, window_events, summary_events,
                  st.dictionaries(st.just("type"), json_values))  # fmt: skip


@FUZZ
@given(raw=st.binary(max_size=400))
@example(raw=b"[" * 5000 + b"\n{}")  # nesting deeper than the JSON parser's recursion
@example(raw=b'{"type":"window","latency_ms":{"e2e":1' + b"0" * 400 + b"}}\n")
@example(raw=b"\xff\xfe{}\n{}")
def test_random_bytes(raw: bytes) -> None:
    _count("random bytes")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "e.jsonl"
        p.write_bytes(raw)
        _read(p)


@FUZZ
@given(events=st.lists(lines, max_size=6))
def test_lines_of_fuzzed_json(events: list[object]) -> None:
    _count("fuzzed json lines")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "e.jsonl"
        p.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
        got = _read(p)
        if got is not None:
            assert got == [e for e in events if isinstance(e, dict) and "type" in e]


def _real_log(path: Path, n: int) -> list[dict]:
    with EventLog(path) as log:
        log.session(mode="replay", sources={"camera": "x.mp4", "audio": None})
        for i in range(n):
            log.write({"type": "window", "window": i, "t_end": 0.5 * i, "words": "héllo wörld" * (i % 3),
                       "prediction": {"score": 0.1 * i}, "masks": {"steps": 50, "vision": i},
                       "latency_ms": {"e2e_published": 80.0 + i, "inference": None}})  # fmt: skip
        log.close({"latency_ms": {"e2e": {"count": n, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0,
                                          "max_ms": 4.0, "mean_ms": 1.5}}, "windows": n})  # fmt: skip
    return read_events(path)


@FUZZ
@given(n=st.integers(0, 8), cut=st.floats(0.0, 1.0))
def test_a_log_cut_anywhere_keeps_every_complete_event(n: int, cut: float) -> None:
    _count("truncated logs")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "e.jsonl"
        full = _real_log(p, n)
        raw = p.read_bytes()
        k = int(cut * len(raw))
        p.write_bytes(raw[:k])
        complete = raw[:k].count(b"\n")
        got = _read(p)
        assert got is not None
        # every complete line survives; a cut exactly before a newline leaves a whole last object
        assert got[:complete] == full[:complete] and len(got) - complete in (0, 1)
        if len(got) > complete:
            assert got[-1] == full[complete]


@settings(max_examples=40, deadline=10000, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(lines, max_size=4), garbage=st.binary(max_size=30))
def test_mmcl_profile_never_crashes(events: list[object], garbage: bytes) -> None:
    _count("mmcl profile")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "e.jsonl"
        p.write_bytes("".join(json.dumps(e) + "\n" for e in events).encode() + garbage)
        res = CliRunner().invoke(app, ["profile", "--log", str(p), "--json", "--csv", str(Path(d) / "w.csv")])
        assert res.exit_code == 0 or isinstance(res.exception, MmclError), repr(res.exception)
