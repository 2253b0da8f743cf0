"""`mmcl monitor --demo` for 60 s with --alerts and --metrics-port through the command line, then
`mmcl profile --trace`: the trace of the whole session loads back with every window's span."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmcl.cli import app
from realtime.pipeline.eventlog import read_events

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def test_sixty_second_demo_with_alerts_and_metrics_then_its_trace(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the example rules write alerts.jsonl into the working directory
    log = tmp_path / "demo.jsonl"
    rules = REPO / "configs" / "alerts" / "driver_distress.yaml"
    res = CliRunner().invoke(app, ["monitor", "--demo", "--duration", "60", "--headless", "--log", str(log),
                                   "--alerts", str(rules), "--metrics-port", "0"])  # fmt: skip
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "alerts fired: driver_distress" in res.output
    assert (tmp_path / "alerts.jsonl").is_file()
    events = read_events(log)
    windows = [e["window"] for e in events if e["type"] == "window"]
    assert len(windows) >= 100  # 60 s at a 0.5 s hop, less start-up
    out = tmp_path / "trace.json"
    res = CliRunner().invoke(app, ["profile", "--log", str(log), "--trace", str(out), "--json"])
    assert res.exit_code == 0, res.output
    trace = json.loads(out.read_text())
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert sorted(e["args"]["window"] for e in spans if e["name"].startswith("window ")) == windows
    assert trace["otherData"]["windows"] == len(windows) and trace["otherData"]["mode"] == "demo"
    assert sum(e["name"].startswith("shown ") for e in spans) >= len(windows) // 3  # a headless line a second
