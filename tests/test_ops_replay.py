"""Alerts, metrics and profiling end to end, on one clock-stopped replay of a real clip.

The clip: three CREMA-D clips ("Don't forget a jacket") back to back with the camera blocked (black picture)
from 2.0 s to 4.6 s — the face is lost while the speech goes on. The shipped ``looked_away`` rules
(absent vision for 2 s; clear after the face is back for 1 s) run with their actions pointed at a webhook
server on 127.0.0.1 (first answer 503: retried) and a command that hangs (killed by its 1 s timeout).
While the replay runs: ``--headless`` lines on a capture console, a Prometheus scrape, the banner text."""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers_monitor import crema_concat, file_pipeline, make_checkpoint, pipeline_threads
from helpers_ops import blocked_camera_clip
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from test_alert_actions import WebhookServer
from typer.testing import CliRunner

from mmcl.cli import app
from realtime.alerts.rules import CommandAction, WebhookAction, load_alerts
from realtime.alerts.runtime import AlertRuntime
from realtime.dashboard import HeadlessPrinter
from realtime.dashboard.panels import alert_banner
from realtime.pipeline.eventlog import read_events
from realtime.pipeline.metrics import MetricsExporter

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
HANG = "import sys, time; sys.stdin.read(); time.sleep(60)"


def _text(renderable) -> str:
    console = Console(width=120, record=True, file=open("/dev/null", "w"), color_system=None)
    console.print(renderable)
    return console.export_text()


def _watch(pipeline, port: int, seen: dict, stop: threading.Event) -> None:
    """While the replay runs: scrape /metrics once a few windows are out; keep the banner of an alert."""
    while not stop.is_set():
        snap = pipeline.snapshot()
        if "metrics" not in seen and snap.windows >= 4:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                seen["metrics"] = resp.read().decode()
                seen["metrics_windows"] = snap.windows
        if "banner" not in seen and any(a.kind == "active" for a in snap.alerts):
            seen["banner"] = _text(alert_banner(snap))
        stop.wait(0.05)


@pytest.fixture(scope="module")
def session(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ops")
    crema = crema_concat(shared_data / "media" / "crema_d", tmp / "crema3.mp4", "480:360")
    clip = blocked_camera_clip(crema, tmp / "blocked.mp4")
    log_path, alerts_path = tmp / "events.jsonl", tmp / "alerts.jsonl"
    server = WebhookServer(fail_first=1)
    cfg = load_alerts(REPO / "configs" / "alerts" / "looked_away.yaml")
    acts = dataclasses.replace(
        cfg.actions, log=dataclasses.replace(cfg.actions.log, path=str(alerts_path)),
        command=CommandAction(argv=[sys.executable, "-c", HANG], timeout_s=1.0),
        webhook=WebhookAction(url=server.url, retries=2, backoff_s=0.05),
    )  # fmt: skip
    cfg = dataclasses.replace(cfg, actions=acts)
    checkpoint = make_checkpoint(tmp / "ck.pt", version="live-v1")  # the cheaper feature set (see helpers_ops)
    pipeline = file_pipeline(checkpoint, str(clip), str(clip), log=log_path)
    runtime = AlertRuntime(cfg)
    runtime.attach(pipeline)
    exporter = MetricsExporter([(r.name, r.severity) for r in cfg.rules])
    exporter.attach(pipeline)
    runtime.listeners.append(exporter.on_alert)
    exporter.delivery_source = runtime.delivery_stats
    port = exporter.serve(0)
    out = Console(width=200, record=True, file=open("/dev/null", "w"), color_system=None)
    seen: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(pipeline, port, seen, stop), daemon=True)
    try:
        pipeline.start()
        watcher.start()
        HeadlessPrinter(pipeline, out, 0.5).run(threading.Event(), lambda: pipeline.finished.wait(0) or False)
        assert pipeline.finished.is_set(), pipeline.snapshot().phase
        final_metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        snap = pipeline.snapshot()
    finally:
        stop.set()
        watcher.join(5)
        assert runtime.stop(flush_s=5.0)
        assert pipeline.stop()
        exporter.close()
        server.close()
    assert pipeline_threads() == []
    return SimpleNamespace(log=log_path, alerts=alerts_path, events=read_events(log_path), server=server, seen=seen,
                           headless=out.export_text(), snap=snap, runtime=runtime, final_metrics=final_metrics,
                           tmp=tmp)  # fmt: skip


def test_looked_away_fires_and_clears_once_and_reaches_the_webhook(session) -> None:
    alerts = [e for e in session.events if e["type"] == "alert"]
    assert [(a["rule"], a["kind"]) for a in alerts] == [("looked_away", "fire"), ("looked_away", "clear")]
    fire, clear = alerts
    # the face is gone from 2.0 s; the rule needs 2 s without it; it is back at 4.6 s and needs 1 s
    assert 4.0 <= fire["t"] <= 4.6, fire
    assert 5.5 <= clear["t"] <= 6.6 and clear["duration_s"] == pytest.approx(clear["t"] - fire["t"], abs=1e-3)
    assert "vision" not in fire["values"]["present"] and "vision" in clear["values"]["present"]
    # the webhook got both (the first POST was answered 503 and retried)
    got = [(b["rule"], b["kind"]) for b in session.server.bodies]
    assert got == [("looked_away", "fire"), ("looked_away", "clear")]
    hooks = [e for e in session.events if e["type"] == "alert_action" and e["action"] == "webhook"]
    assert [h["ok"] for h in hooks] == [True, True] and hooks[0]["attempts"] == 2
    # the separate alerts file holds the same alerts
    own = read_events(session.alerts)
    assert own[0]["type"] == "session" and own[0]["rules"] == ["looked_away", "camera_degraded"]
    assert [e for e in own if e["type"] == "alert"] == alerts
    assert session.runtime.fired == {"looked_away": 1, "camera_degraded": 0}


def test_hung_command_is_killed_while_the_monitor_keeps_publishing(session) -> None:
    evs = session.events
    fire_at = next(i for i, e in enumerate(evs) if e["type"] == "alert" and e["kind"] == "fire")
    done_at = next(i for i, e in enumerate(evs) if e["type"] == "alert_action" and e["action"] == "command")
    cmd = evs[done_at]
    assert cmd["timed_out"] and cmd["exit_status"] == -9 and cmd["seconds"] >= 1.0
    assert "killed after the 1 s timeout" in cmd["error"]
    published = [e for e in evs[fire_at:done_at] if e["type"] == "window"]
    assert len(published) >= 1, "no window was published while the command hung"
    assert session.snap.phase == "finished" and session.snap.drops["windows_skipped"] == 0
    cmds = [e for e in evs if e["type"] == "alert_action" and e["action"] == "command"]
    assert len(cmds) == 2 and all(c["timed_out"] for c in cmds)
    assert "command 0 ok, 2 failed" in session.snap.alert_delivery or session.runtime.delivery_line().startswith(
        "command 0 ok, 2 failed")  # fmt: skip


def test_headless_lines_and_the_dashboard_banner(session) -> None:
    text = session.headless
    assert "ALERT CRITICAL looked_away fired at t=" in text and "driver looking away" in text
    assert "ALERT CLEARED looked_away at t=" in text
    assert text.index("ALERT CRITICAL looked_away") < text.index("ALERT CLEARED looked_away")
    banner = session.seen.get("banner", "")
    assert "ALERT CRITICAL" in banner and "looked_away: driver looking away (no face for 2 s)" in banner, banner
    assert "since t=" in banner


def test_metrics_scrape_during_the_replay(session) -> None:
    assert session.seen["metrics_windows"] >= 4
    fams = {f.name: f for f in text_string_to_metric_families(session.seen["metrics"])}
    assert {"mmcl_valence", "mmcl_stage_latency_seconds", "mmcl_windows", "mmcl_drops", "mmcl_queue_depth",
            "mmcl_device_up", "mmcl_alerts_fired", "mmcl_modality_present"} <= set(fams)  # fmt: skip
    assert "mmcl_arousal" not in fams  # this model has no arousal output
    windows = next(s.value for s in fams["mmcl_windows"].samples if s.name == "mmcl_windows_total")
    assert windows >= 4
    counts = {s.labels["stage"]: s.value for s in fams["mmcl_stage_latency_seconds"].samples
              if s.name.endswith("_count")}  # fmt: skip
    assert counts["inference"] >= 3 and counts["face"] >= 10
    devices = {s.labels["device"]: s.value for s in fams["mmcl_device_up"].samples}
    assert devices["asr"] == 1.0
    final = {f.name: f for f in text_string_to_metric_families(session.final_metrics)}
    fired = {s.labels["rule"]: s.value for s in final["mmcl_alerts_fired"].samples if s.name.endswith("_total")}
    assert fired == {"looked_away": 1.0, "camera_degraded": 0.0}
    deliveries = {(s.labels["action"], s.labels["result"]): s.value for s in final["mmcl_alert_deliveries"].samples
                  if s.name.endswith("_total")}  # fmt: skip
    assert deliveries[("webhook", "delivered")] >= 1.0 and deliveries[("webhook", "dropped")] == 0.0


def test_trace_loads_back_with_every_window_and_spans_that_nest_and_add_up(session) -> None:
    out, png = session.tmp / "trace.json", session.tmp / "latency.png"
    res = CliRunner().invoke(app, ["profile", "--log", str(session.log), "--trace", str(out), "--plot", str(png),
                                   "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["trace"]["path"] == str(out) and info["plot"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    trace = json.loads(out.read_text())
    evs = trace["traceEvents"]
    windows = [e["window"] for e in session.events if e["type"] == "window"]
    spans = [e for e in evs if e["ph"] == "X"]
    parents = {e["args"]["window"]: e for e in spans if e["name"].startswith("window ")}
    assert sorted(parents) == windows  # every window has its span
    names = {e["args"]["name"] for e in evs if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"capture → face features", "capture → voice features", "window loop"} <= names
    n = windows[len(windows) // 2]
    parent = parents[n]
    kids = sorted((e for e in spans if e["tid"] == parent["tid"] and e["args"].get("window") == n and e is not parent),
                  key=lambda e: e["ts"])  # fmt: skip
    assert [k["name"] for k in kids] == ["build", "inference", "attribution"]
    end = parent["ts"] + parent["dur"]
    assert all(parent["ts"] <= k["ts"] and k["ts"] + k["dur"] <= end + 1e-3 for k in kids)
    assert sum(k["dur"] for k in kids) == pytest.approx(parent["dur"], abs=1e-2)
    w = next(e for e in session.events if e["type"] == "window" and e["window"] == n)
    assert parent["dur"] == pytest.approx(sum(w["latency_ms"][s] for s in ("window", "inference", "attribution"))
                                          * 1000.0, abs=1e-2)  # fmt: skip
    # flows: each input span of the window → its window span (and window → shown)
    flows = [e for e in evs if e["ph"] in ("s", "f") and e["name"] == f"window {n}"]
    assert {e["ph"] for e in flows} == {"s", "f"} and len(flows) >= 4
    assert all(f["tid"] == parent["tid"] and f["ts"] == parent["ts"] for f in flows if f["ph"] == "f")
    counters = {e["name"] for e in evs if e["ph"] == "C"}
    assert counters == {"queue depth", "CPU %", "RSS MB", "reading"}
    readings = [e["args"]["valence"] for e in evs if e["ph"] == "C" and e["name"] == "reading"]
    scores = [e["prediction"]["score"] for e in session.events if e["type"] == "window" and e.get("prediction")]
    assert readings == pytest.approx(scores)  # the model's valence per window, in log order
    shown = [e for e in spans if e["name"].startswith("shown ")]
    assert shown, "the headless printer's shown windows are in the trace"


def test_compare_two_logs_side_by_side(session) -> None:
    res = CliRunner().invoke(app, ["profile", "--compare", str(session.log), str(session.log), "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)
    assert result["windows"]["a"] == result["windows"]["b"] > 10
    inf = result["stages"]["inference"]
    assert inf["ratio"]["p50"] == pytest.approx(1.0) and inf["a"]["p95_ms"] == inf["b"]["p95_ms"]
    table = CliRunner().invoke(app, ["profile", "--compare", str(session.log), str(session.log)])
    assert table.exit_code == 0 and "1.00×" in table.output and "inference" in table.output
