"""Drawing snapshots: a rich ``Live`` dashboard (pull model) and the ``--headless`` line printer.

Both run on the caller's thread (the CLI's main thread) and only *pull*: ``source.snapshot()`` whenever a
redraw is due — every ``1/refresh_hz`` s, and at once when a new window's prediction was published
(``source.wait_update`` wakes on it; words alone do not force a redraw; new predictions come once per
hop, so the rate stays within refresh_hz + 1/hop). After drawing they call
``source.mark_shown(window, seconds)`` so the pipeline can account render time and the end-to-end
latency newest input → sentiment shown. The pipeline never waits for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from rich.console import Console
from rich.live import Live

from realtime.dashboard.panels import alert_line, headless_line, render
from realtime.pipeline.state import AlertView, MonitorSnapshot

MAX_HZ = 20.0  # periodic redraws never closer than this


class SnapshotSource(Protocol):
    def snapshot(self) -> MonitorSnapshot: ...

    def wait_update(self, version: int, timeout: float) -> int: ...

    def latest_window(self) -> int | None: ...

    def mark_shown(self, window: int | None, render_s: float | None = None) -> None: ...


def _window_of(snap: MonitorSnapshot) -> int | None:
    return snap.prediction.window if snap.prediction is not None else None


def _new_alerts(snap: MonitorSnapshot, last_seq: int) -> tuple[list[AlertView], int]:
    """Alert events published after ``last_seq`` and the new last seq."""
    new = [a for a in snap.alert_events if a.seq > last_seq]
    return new, max([last_seq, *(a.seq for a in new)])


class Dashboard:
    """``run(stop, until)`` draws until ``stop`` is set or ``until()`` is true."""

    def __init__(
        self, source: SnapshotSource, console: Console | None = None, refresh_hz: float = 8.0
    ) -> None:
        self.source = source
        self.console = console or Console()
        self.period = 1.0 / refresh_hz
        self.frames = 0

    def run(self, stop: threading.Event, until: Callable[[], bool] | None = None) -> MonitorSnapshot:
        src = self.source
        snap = src.snapshot()
        shown_window = _window_of(snap)
        with Live(
            render(snap, self.console.width), console=self.console, auto_refresh=False, transient=False,
            redirect_stdout=False, redirect_stderr=False, vertical_overflow="crop",
        ) as live:  # fmt: skip
            version = -1
            alert_seq = _new_alerts(snap, 0)[1]
            next_due = 0.0
            last_draw = 0.0
            while not stop.is_set() and not (until is not None and until()):
                now = time.monotonic()
                version = src.wait_update(version, max(0.0, min(next_due - now, self.period)))
                now = time.monotonic()
                fresh = src.latest_window() not in (None, shown_window)
                if not fresh and (now < next_due or now - last_draw < 1.0 / MAX_HZ):
                    continue  # a new prediction is drawn at once; everything else at refresh_hz
                t0 = time.perf_counter()
                snap = src.snapshot()
                live.update(render(snap, self.console.width), refresh=True)
                new, alert_seq = _new_alerts(snap, alert_seq)
                if any(a.bell for a in new):
                    self.console.bell()
                dt = time.perf_counter() - t0
                shown_window = _window_of(snap)
                src.mark_shown(shown_window, dt)
                self.frames += 1
                last_draw = time.monotonic()
                next_due = last_draw + self.period
            snap = src.snapshot()
            live.update(render(snap, self.console.width), refresh=True)
        return snap


class HeadlessPrinter:
    """One summary line every ``interval_s`` seconds (``mmcl monitor --headless``)."""

    def __init__(
        self, source: SnapshotSource, console: Console | None = None, interval_s: float = 1.0
    ) -> None:
        self.source = source
        self.console = console or Console(highlight=False)
        self.interval_s = interval_s
        self.lines = 0
        self.alert_lines = 0
        self._alert_seq = 0  # the newest alert event printed

    def run(self, stop: threading.Event, until: Callable[[], bool] | None = None) -> MonitorSnapshot:
        src = self.source
        next_due = time.monotonic() + self.interval_s
        snap = src.snapshot()
        alert_seq = self._alert_seq
        while not stop.is_set() and not (until is not None and until()):
            stop.wait(max(0.0, min(next_due - time.monotonic(), 0.1)))
            alert_seq = self._print_alerts(src, alert_seq)
            if time.monotonic() < next_due:
                continue
            t0 = time.perf_counter()
            snap = src.snapshot()
            self.console.print(headless_line(snap), markup=False, highlight=False, soft_wrap=True)
            src.mark_shown(_window_of(snap), time.perf_counter() - t0)
            self.lines += 1
            next_due += self.interval_s
        self._alert_seq = self._print_alerts(src, alert_seq)
        return src.snapshot()

    def _print_alerts(self, src: SnapshotSource, last_seq: int) -> int:
        """Print alert events newer than ``last_seq`` at once (not at the next interval)."""
        getter = getattr(src, "alert_events", None)  # cheap (no snapshot); sources without alerts lack it
        events = getter() if callable(getter) else ()
        if not events or events[-1].seq <= last_seq:
            return last_seq
        new = [a for a in events if a.seq > last_seq]
        last_seq = new[-1].seq
        for a in new:
            if a.headless:
                self.console.print(alert_line(a), markup=False, highlight=False, soft_wrap=True)
                self.alert_lines += 1
        return last_seq
