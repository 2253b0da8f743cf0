"""The alert banner, the bell and the --headless alert lines (pure renderings of snapshots), and the CLI's
checks of --alerts / --metrics-port before any model is loaded."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.console import Console
from test_dashboard import FakeSource, snapshot, text_of
from typer.testing import CliRunner

from mmcl.cli import app
from realtime.dashboard import Dashboard, HeadlessPrinter, render
from realtime.dashboard.panels import alert_banner, alert_line
from realtime.pipeline.state import AlertView

FIRE = AlertView(1, "fire", "looked_away", "critical", "driver looking away (no face for 2 s)", 18.5, 18.5, bell=True)
ACTIVE = AlertView(0, "active", "looked_away", "critical", "driver looking away (no face for 2 s)", 18.5, 18.5)
CLEARED = AlertView(0, "cleared", "driver_distress", "warning", "sustained negative sentiment", 20.0, 12.0)


def test_banner_shows_active_and_recently_cleared_alerts_and_delivery() -> None:
    snap = snapshot(alerts=(ACTIVE, CLEARED), alert_events=(FIRE,), alert_delivery="webhook 1 sent, 0 failed")
    text = text_of(render(snap, 160))
    assert "ALERT CRITICAL" in text and "looked_away: driver looking away (no face for 2 s)" in text
    assert "since t=18.5 s (2.0 s ago)" in text  # t counts from the session start (elapsed 20.5 s)
    assert "cleared  driver_distress: sustained negative sentiment · lasted 8.0 s" in text
    assert "delivery: webhook 1 sent, 0 failed" in text
    assert text.index("status: running") < text.index("ALERT CRITICAL") < text.index("─ sentiment ─")  # on top


def test_no_banner_without_alerts() -> None:
    assert alert_banner(snapshot()) is None
    assert "ALERT" not in text_of(render(snapshot(), 160))


def test_headless_alert_lines() -> None:
    assert alert_line(FIRE) == "ALERT CRITICAL looked_away fired at t=18.5s: driver looking away (no face for 2 s)"
    clear = AlertView(2, "clear", "looked_away", "critical", "driver looking away", 21.0, 18.5)
    assert alert_line(clear) == "ALERT CLEARED looked_away at t=21.0s after 2.5s: driver looking away"


class AlertSource(FakeSource):
    def __init__(self, snaps, events) -> None:
        super().__init__(snaps)
        self.events = events

    def alert_events(self):
        return self.events


def test_headless_printer_prints_each_alert_once_and_at_once() -> None:
    src = AlertSource([snapshot()], (FIRE,))
    printer = HeadlessPrinter(src, Console(record=True, file=open("/dev/null", "w"), width=200), 5.0)
    t0 = time.monotonic()
    printer.run(threading.Event(), until=lambda: printer.alert_lines >= 1 or time.monotonic() - t0 > 4)
    assert time.monotonic() - t0 < 1.0
    src.events = (FIRE, AlertView(2, "clear", "looked_away", "critical", "m", 21.0, 18.5, headless=False))
    calls = iter(range(5))
    printer.run(threading.Event(), until=lambda: next(calls, None) is None)
    out = printer.console.export_text()
    assert out.count("ALERT CRITICAL looked_away fired") == 1 and "CLEARED" not in out  # headless: false
    assert printer.lines == 0  # the alert did not wait for the 5 s summary line


def test_dashboard_rings_the_bell_once_per_new_fire() -> None:
    snaps = [snapshot(), snapshot(alert_events=(FIRE,), alerts=(ACTIVE,))] + [snapshot(alert_events=(FIRE,))] * 5
    src = FakeSource(snaps)
    console = Console(width=150, record=True, file=open("/dev/null", "w"), force_terminal=True)
    rings: list[int] = []
    console.bell = lambda: rings.append(1)  # type: ignore[method-assign]
    Dashboard(src, console, refresh_hz=20.0).run(threading.Event(), until=lambda: src.i >= len(snaps) + 2)
    assert rings == [1]


def test_monitor_checks_the_rule_file_before_loading_models(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - name: x\n    when: {absent: face}\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["monitor", "--demo", "--alerts", str(bad)])
    assert res.exit_code != 0 and "rules[0].when.absent: 'face' is not one of" in str(res.exception or res.output)
    res = CliRunner().invoke(app, ["monitor", "--demo", "--metrics-port", "70000"])
    assert res.exit_code != 0 and "--metrics-port must be between 0 and 65535" in str(res.exception or res.output)
