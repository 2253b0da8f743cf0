"""``mmcl profile`` on a small written event log: trace layout (lanes for overlapping spans, flows, counters),
the e2e samples from ``shown`` lines, and the command line's argument checks. The end-to-end version on a
real replay is in test_ops_replay.py."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mmcl.cli import app
from realtime.pipeline.eventlog import EventLog
from realtime.profiling.samples import stage_samples
from realtime.profiling.trace import build_trace


def window(n: int, word_t: float, asr_ms: float) -> dict:
    t_end = 0.5 * (n + 1)
    return {
        "type": "window", "window": n, "t_start": t_end - 5, "t_end": t_end, "tick_at": t_end + 0.001,
        "published_at": t_end + 0.02, "newest_input": t_end - 0.05,
        "newest_by_modality": {"vision": t_end - 0.05, "audio": t_end - 0.1, "text": word_t},
        "prediction": {"score": 0.1 * n, "trend": 0.0},
        "masks": {"steps": 50, "vision": 50, "audio": 30, "text": 10},
        "latency_ms": {"window": 1.0, "inference": 12.0, "attribution": 20.0, "e2e_published": 70.0, "face": 15.0,
                       "voice": 40.0, "asr_commit": asr_ms, "text": 5.0},
        "queues": {"face→windows": n, "voice→windows": 0}, "cpu_percent": 80.0 + n, "rss_mb": 900.0,
    }  # fmt: skip


def events() -> list[dict]:
    # words at 0.3 s and 0.6 s each waiting 900 ms for the ASR: their spans overlap → two lanes
    return [{"type": "session", "clock_start": 0.0}, window(0, 0.3, 900.0), window(1, 0.6, 900.0),
            window(2, 0.6, 900.0), {"type": "shown", "window": 0, "shown_at": 0.6},
            {"type": "shown", "window": 2, "shown_at": 1.56}]  # fmt: skip


def test_trace_layout() -> None:
    trace = build_trace(events())
    evs = trace["traceEvents"]
    spans = [e for e in evs if e["ph"] == "X"]
    asr = [e for e in spans if e["args"].get("stage") == "asr_commit"]
    assert len(asr) == 2  # window 2 reuses window 1's word: one span, not two
    assert {e["tid"] for e in asr} == {3, 103}  # overlapping → second lane
    names = {e["tid"]: e["args"]["name"] for e in evs if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names[103] == "speech → ASR commit #2"
    w0 = next(e for e in spans if e["name"] == "window 0")
    assert w0["ts"] == 501_000.0 and w0["dur"] == 33_000.0  # tick_at, build + inference + attribution
    shown = next(e for e in spans if e["name"] == "shown 0")
    assert shown["ts"] == w0["ts"] + 13_000.0 and shown["dur"] == 600_000.0 - shown["ts"]
    flows = [e for e in evs if e["ph"] in ("s", "f") and e["name"].startswith("window 0")]
    # face, voice, ASR, text → window 0; window 0 → shown 0
    assert sorted(e["ph"] for e in flows) == ["f"] * 5 + ["s"] * 5
    counters = [e for e in evs if e["ph"] == "C" and e["name"] == "queue depth"]
    assert [c["args"]["face→windows"] for c in counters] == [0, 1, 2]
    reading = [e["args"] for e in evs if e["ph"] == "C" and e["name"] == "reading"]
    assert reading == [{"valence": 0.0}, {"valence": 0.1}, {"valence": 0.2}]  # no arousal in these windows


def test_trace_carries_arousal_when_the_model_gives_it() -> None:
    evs = events()
    evs[1]["prediction"] = {"score": -0.5, "trend": 0.0, "arousal": 0.7}
    reading = [e["args"] for e in build_trace(evs)["traceEvents"] if e["ph"] == "C" and e["name"] == "reading"]
    assert reading[0] == {"valence": -0.5, "arousal": 0.7}


def test_e2e_samples_from_shown_lines() -> None:
    s = stage_samples(events())
    assert s.windows == 3
    assert [round(v, 3) for v in s.ms["e2e"]] == [150.0, 110.0]  # shown_at − newest input
    assert list(s.ms)[:4] == ["face", "voice", "asr_commit", "text"]


def test_cli_trace_and_argument_checks(tmp_path: Path) -> None:
    log = tmp_path / "e.jsonl"
    with EventLog(log) as elog:
        for ev in events():
            elog.write(ev)
    out = tmp_path / "t.json"
    res = CliRunner().invoke(app, ["profile", "--log", str(log), "--trace", str(out)])
    assert res.exit_code == 0, res.output
    assert "trace events; open in ui.perfetto.dev" in res.output
    assert json.loads(out.read_text())["otherData"]["windows"] == 3
    res = CliRunner().invoke(app, ["profile", "--compare", str(log), str(log), "--log", str(log)])
    assert res.exit_code != 0 and "--compare takes two logs by itself" in str(res.exception)
    res = CliRunner().invoke(app, ["profile"])
    assert res.exit_code != 0 and "give --log" in str(res.exception)
