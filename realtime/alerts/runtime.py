"""Alerts inside a running monitor: observe each window, run the rule engine, dispatch the events.

``AlertRuntime.attach(pipeline)`` registers a window listener: after every window the pipeline calls
``on_window(event, prediction)`` on its window thread. The runtime turns the window and a snapshot of the
monitor into an :class:`~realtime.alerts.engine.Observation`, steps the engine on the session clock, and
for every fire/clear event:

* writes an ``alert`` line to the event log (``--log``) and to the alerts JSONL file (``actions.log.path``);
* publishes the banner entries and the recent events in ``MonitorState`` (dashboard banner, bell,
  ``--headless`` lines, delivery counters);
* queues it for the command and the webhook (never blocking: see ``realtime.alerts.actions``); their
  results come back as ``alert_action`` lines in both logs.

Everything here is cheap on the window thread (one snapshot, a few comparisons); slow work happens on the
action threads. ``stop()`` gives pending deliveries ``flush_s`` to finish, then stops the threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from realtime.alerts.actions import CommandRunner, DeliveryStats, WebhookSender
from realtime.alerts.engine import AlertEvent, DeviceState, Observation, RuleEngine
from realtime.alerts.rules import AlertsConfig
from realtime.pipeline.eventlog import EventLog
from realtime.pipeline.signals import prediction_signals
from realtime.pipeline.state import AlertView

log = logging.getLogger(__name__)

# Times: engine events and log lines carry the session clock (as the log's window lines do; ``session_s``
# adds the time since the session started); what readers show (AlertView) counts from the session start.

RECENT_EVENTS = 20


def observation_of(t: float, prediction: Any, snap: Any) -> Observation:
    """What the rules see: this window's prediction (None when nothing was scored) + the monitor's state."""
    return Observation(
        t=t,
        **prediction_signals(prediction),
        present=frozenset(m.name for m in snap.modalities if m.live),
        devices=tuple(DeviceState(d.name, d.kind, d.status) for d in snap.devices),
        asr_behind_s=float(snap.asr_lag_s),
        drops_total=snap.drops_total,
    )


class AlertRuntime:
    def __init__(self, cfg: AlertsConfig, event_log: EventLog | None = None) -> None:
        self.cfg = cfg
        self.engine = RuleEngine(cfg.rules)
        self.event_log = event_log
        self.rules = {r.name: r for r in cfg.rules}
        acts = cfg.actions
        self.alert_log = EventLog(acts.log.path) if acts.log.path else None
        self.command = CommandRunner(acts.command, self._on_result) if acts.command is not None else None
        self.webhook = WebhookSender(acts.webhook, self._on_result) if acts.webhook is not None else None
        self.listeners: list[Callable[[AlertEvent], None]] = []  # e.g. the metrics exporter
        self.fired: dict[str, int] = {r.name: 0 for r in cfg.rules}
        self.busy_s = 0.0  # CPU time spent on the window thread (thread_time; for the overhead benchmark)
        self._lock = threading.Lock()
        self._seq = 0
        self._recent: list[AlertView] = []
        self._cleared_at: dict[str, tuple[float, AlertEvent]] = {}
        self._state: Any = None
        self._t0 = 0.0
        self._stopped = False

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def attach(self, pipeline: Any) -> None:
        """Listen to ``pipeline``'s windows and publish into its state; call before ``pipeline.start()``."""
        self._pipeline = pipeline
        self._state = pipeline.state
        if self.event_log is None:
            self.event_log = pipeline.event_log
        pipeline.add_window_listener(self.on_window)
        for worker in (self.command, self.webhook):
            if worker is not None:
                worker.start()
        if self.alert_log is not None:
            self.alert_log.session(rules=[r.name for r in self.cfg.rules])
        self._publish(now=0.0)

    def stop(self, flush_s: float = 2.0) -> bool:
        """No more alerts; wait up to ``flush_s`` for queued deliveries, stop the threads, close the file."""
        self._stopped = True
        workers = [w for w in (self.command, self.webhook) if w is not None]
        deadline = time.monotonic() + flush_s
        while any(not w.idle() for w in workers) and time.monotonic() < deadline:
            time.sleep(0.02)
        ok = all([w.stop(2.0) for w in workers])
        if self.alert_log is not None:
            self.alert_log.close()
        return ok

    # ---- window thread -------------------------------------------------------------------------------------
    def on_window(self, event: dict[str, Any], prediction: Any) -> None:
        if self._stopped:
            return
        t0 = time.thread_time()
        t = float(event["t_end"])
        snap = self._pipeline.snapshot(latency=False)
        self._t0 = snap.now - snap.elapsed_s  # session start on the session clock (shown times count from it)
        self.engine.observe(observation_of(t, prediction, snap))
        for ev in self.engine.step(t):
            self._dispatch(ev)
        self._publish(t)
        self.busy_s += time.thread_time() - t0

    def _dispatch(self, ev: AlertEvent) -> None:
        rule = self.rules[ev.rule]
        wanted = set(rule.actions) if rule.actions is not None else None
        payload = {"type": "alert", **ev.to_dict(), "session_s": round(ev.t - self._t0, 3)}
        if wanted is None or "log" in wanted:
            for sink in (self.event_log, self.alert_log):
                if sink is not None:
                    sink.write(payload)
        bell = ev.kind == "fire" and self.cfg.actions.banner.bell and (wanted is None or "banner" in wanted)
        with self._lock:
            self._seq += 1
            if ev.kind == "fire":
                self.fired[ev.rule] += 1
                self._cleared_at.pop(ev.rule, None)
            else:
                self._cleared_at[ev.rule] = (ev.t, ev)
            view = AlertView(self._seq, ev.kind, ev.rule, ev.severity, ev.message, ev.t - self._t0,
                             ev.fired_at - self._t0,
                             headless=self.cfg.actions.headless and (wanted is None or "headless" in wanted),
                             bell=bell)  # fmt: skip
            self._recent = [*self._recent, view][-RECENT_EVENTS:]
        log.warning("alert %s %s at %.1f s: %s", ev.rule, "fired" if ev.kind == "fire" else "cleared", ev.t,
                    ev.message)  # fmt: skip
        for name, worker in (("command", self.command), ("webhook", self.webhook)):
            if worker is not None and (wanted is None or name in wanted):
                worker.submit(payload)
        for fn in self.listeners:
            try:
                fn(ev)
            except Exception:
                log.exception("alert listener failed")

    def _publish(self, now: float) -> None:
        if self._state is None:
            return
        banner_cfg = self.cfg.actions.banner
        with self._lock:
            recent = tuple(self._recent)
            held = {r: ev for r, (t, ev) in self._cleared_at.items() if now - t <= banner_cfg.hold_s}
        banner: list[AlertView] = []
        if banner_cfg.enabled:
            for name in self.engine.active():
                st = self.engine.states[name]
                rule = self.rules[name]
                if rule.actions is None or "banner" in rule.actions:
                    fired = (st.fired_at if st.fired_at is not None else now) - self._t0
                    banner.append(AlertView(0, "active", name, rule.severity, rule.message or name, fired, fired))
            for name, ev in held.items():
                banner.append(AlertView(0, "cleared", name, ev.severity, ev.message, ev.t - self._t0,
                                        ev.fired_at - self._t0))  # fmt: skip
        self._state.set_alerts(tuple(banner), recent, self.delivery_line())

    # ---- results and counters ------------------------------------------------------------------------------
    def _on_result(self, result: dict[str, Any]) -> None:
        line = {"type": "alert_action", **result}
        for sink in (self.event_log, self.alert_log):
            if sink is not None:
                sink.write(line)

    def delivery_stats(self) -> list[DeliveryStats]:
        return [w.stats() for w in (self.command, self.webhook) if w is not None]

    def delivery_line(self) -> str:
        """e.g. 'webhook 2 sent, 0 failed · command 1 ok, 1 failed (killed after 5 s)'."""
        parts = []
        for s in self.delivery_stats():
            verb = "sent" if s.name == "webhook" else "ok"
            text = f"{s.name} {s.delivered} {verb}, {s.failed} failed"
            if s.dropped:
                text += f", {s.dropped} dropped"
            if s.pending:
                text += f", {s.pending} waiting"
            if s.failed and s.last_error:
                text += f" (last: {s.last_error[:60]})"
            parts.append(text)
        return " · ".join(parts)
