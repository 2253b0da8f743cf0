"""JSONL event log: flushed lines, 0600, reader tolerant of a killed writer, summaries, `mmcl profile`."""

from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from mmcl.cli import app
from model.errors import DataFormatError
from realtime.pipeline.eventlog import EventLog, latency_summary, read_events, window_table


def _window(i: int, e2e_ms: float, inference_ms: float) -> dict:
    return {
        "type": "window", "window": i, "t_start": i * 0.5 - 5.0, "t_end": i * 0.5,
        "prediction": {"score": 0.1 * i, "trend": 0.05 * i, "contributions": {"vision": 0.01, "text": None}},
        "masks": {"steps": 50, "vision": 40, "audio": 20, "text": 0},
        "latency_ms": {"inference": inference_ms, "e2e_published": e2e_ms, "window": 1.0},
    }  # fmt: skip


def test_lines_are_flushed_at_once_and_the_file_is_private(tmp_path) -> None:
    path = tmp_path / "logs" / "events.jsonl"
    log = EventLog(path)
    log.session(mode="replay")
    log.write(_window(0, 80.0, 5.0))
    # readable by another reader before close: nothing is buffered
    events = read_events(path)
    assert [e["type"] for e in events] == ["session", "window"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    log.close({"latency_ms": {}, "windows": 1})
    log.write(_window(1, 1.0, 1.0))  # after close: ignored, never raises
    assert [e["type"] for e in read_events(path)] == ["session", "window", "summary"]


def test_existing_file_becomes_private_and_numpy_values_are_plain_json(tmp_path) -> None:
    import numpy as np

    path = tmp_path / "e.jsonl"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    with EventLog(path) as log:
        log.write({"type": "window", "x": np.float32(1.5), "n": np.int64(3), "bad": float("nan"),
                   "arr": np.arange(3)})  # fmt: skip
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    (ev,) = read_events(path)
    assert ev == {"type": "window", "x": 1.5, "n": 3, "bad": None, "arr": [0, 1, 2]}


def test_reader_skips_a_truncated_last_line_but_not_a_broken_middle(tmp_path) -> None:
    good = json.dumps(_window(0, 50.0, 4.0))
    p = tmp_path / "killed.jsonl"
    p.write_text(good + "\n" + good[:30])
    assert len(read_events(p)) == 1
    p.write_text(good[:30] + "\n" + good + "\n")
    with pytest.raises(DataFormatError, match=":1 is not valid JSON"):
        read_events(p)
    with pytest.raises(DataFormatError, match="does not exist"):
        read_events(tmp_path / "missing.jsonl")


def test_latency_summary_and_csv_rows_from_window_lines() -> None:
    events = [{"type": "session"}] + [_window(i, 10.0 * (i + 1), 2.0) for i in range(10)]
    stats = latency_summary(events)
    assert list(stats) == ["window", "inference", "e2e_published"]  # STAGES order
    assert stats["e2e_published"].count == 10 and stats["e2e_published"].p50_ms == pytest.approx(55.0)
    assert stats["e2e_published"].max_ms == pytest.approx(100.0)
    rows = window_table(events)
    assert len(rows) == 10 and rows[3]["score"] == pytest.approx(0.3) and rows[3]["vision_steps"] == 40


def test_mmcl_profile_prints_json_and_exports_csv(tmp_path) -> None:
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.session(mode="replay")
        for i in range(6):
            log.write(_window(i, 20.0 * (i + 1), 3.0))
        log.write({"type": "summary", "latency_ms": {"e2e": {"count": 6, "p50_ms": 90.0, "p95_ms": 120.0,
                   "p99_ms": 130.0}}, "drops": {"windows skipped": 0}})  # fmt: skip
    csv_path = tmp_path / "w.csv"
    res = CliRunner().invoke(app, ["profile", "--log", str(path), "--json", "--csv", str(csv_path)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["windows"] == 6 and out["complete"] is True
    assert out["latency_ms"]["e2e_published"]["p50_ms"] == pytest.approx(70.0)
    assert out["latency_ms"]["e2e"]["p95_ms"] == 120.0  # from the session summary line
    assert csv_path.read_text().splitlines()[0].startswith("window,t_start,t_end,score")
    res = CliRunner().invoke(app, ["profile", "--log", str(path)])
    assert res.exit_code == 0 and "newest input → published" in res.stdout and "p95" in res.stdout
