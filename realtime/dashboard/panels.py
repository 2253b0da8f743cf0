"""Dashboard panels: pure functions of a :class:`~realtime.pipeline.state.MonitorSnapshot` → rich renderables.

Nothing here touches the pipeline: the same snapshot always renders the same screen (tests render to a
capture Console and read the text). Snapshots hold facts; every word shown is written here: the status
sentence (:func:`status_line`), a modality's detail (:func:`modality_detail`), the drop labels
(:func:`drop_label`) and a device's message (:func:`device_message`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from realtime.pipeline.latency import STAGE_LABELS, LatencyStat
from realtime.pipeline.snapshot import NOT_DROPS, AlertView, DeviceView, ModalityView, MonitorSnapshot

SPARK = "▁▂▃▄▅▆▇█"
GAUGE_WIDTH = 41
SPARK_WIDTH = 60
WIDE = 120  # columns needed for the two-column layout
MODALITY_LABELS = {"vision": "face", "audio": "voice", "text": "words"}
AROUSAL_RANGE = (-1.0, 1.0)  # the arousal head's scale: −1 calm … +1 excited (mmcl/recipes labels)


PHASE_WORDS = {
    "idle": "idle", "loading": "loading models", "opening": "opening devices", "running": "running",
    "ending": "replay ended: committing the last words", "finished": "replay finished", "stopped": "stopped",
    "failed": "failed to start",
}  # fmt: skip
DROP_LABELS = {
    "camera_frames_replaced_slot": "camera frames replaced (slot)",
    "camera_frames_skipped_fps_cap": "camera frames skipped (fps cap)",
    "camera_corrupt_frames_skipped": "camera corrupt frames skipped",
    "audio_overflow_events": "audio overflow events",
    "audio_dropped_s": "audio dropped s",
    "audio_non_finite_samples_zeroed": "audio non-finite samples zeroed",
    "asr_dropped_s_backlog": "ASR dropped s (backlog)",
    "windows_skipped": "windows skipped",
    "event_log_lines_not_written": "event log lines not written",
}
NO_SOURCE = {"vision": "no camera", "audio": "no microphone", "text": "no transcription"}
UP_STATUSES = ("running", "ended")  # a device that delivers, or whose file ended


def status_line(snap: MonitorSnapshot) -> str:
    """One line: what the monitor is doing or waiting for (and whether its event log stopped)."""
    if snap.fault:
        line = f"{snap.fault_in or 'pipeline'} failed: {snap.fault}"
    elif snap.phase == "running" and snap.windows == 0:
        line = "waiting for the first window"
    elif snap.phase == "running" and snap.last_window_empty:
        line = "no face, no speech: nothing to score"
    else:
        line = PHASE_WORDS.get(snap.phase, snap.phase)
    if snap.log_error:  # the monitor goes on without its log: say so on screen
        line += f" · EVENT LOG STOPPED: {snap.log_error}"
    return line


def drop_label(kind: str) -> str:
    if kind.startswith("queue:"):
        return "queue " + kind[len("queue:") :]
    return DROP_LABELS.get(kind, kind.replace("_", " "))


def shown_drops(snap: MonitorSnapshot) -> dict[str, float]:
    """The non-zero drops by label, frame-rate-cap skips left out (a cap is not a loss)."""
    return {drop_label(k): v for k, v in snap.drops.items() if v and k not in NOT_DROPS}


def modality_detail(m: ModalityView) -> str:
    """The detail column: "face found · 15 fps", "speech · -23 dBFS", "3 word(s) in the last 5 s", …"""
    if not m.source:
        return NO_SOURCE.get(m.name, "absent")
    if m.name in ("vision", "audio") and m.source_status not in UP_STATUSES:
        return f"{m.source} {m.source_status}" + (f": {m.source_message}" if m.source_message else "")
    if m.name == "vision":
        return ("face found" if m.live else "no face") + f" · {m.rate_hz or 0.0:.0f} fps"
    if m.name == "audio":
        if not (m.speaking or m.voiced):
            return "silence"
        level = f"{m.level_dbfs:.0f} dBFS" if m.level_dbfs is not None else "level –"  # the last voiced audio's
        return ("speech" if m.speaking else "voice") + f" · {level}"
    return f"{m.words or 0} word(s) in the last {m.window_s:g} s"


def device_message(d: DeviceView) -> str:
    if d.message or d.commit_p50_s is None:
        return d.message
    return f"commit p50 {d.commit_p50_s:.2f} s"


def _fmt_ms(v: float | None) -> str:
    return "–" if v is None else (f"{v:.0f}" if v >= 10 else f"{v:.1f}")


def _signed(v: float | None, digits: int = 2) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:+.{digits}f}"


def _colour(score: float, lo: float, hi: float) -> str:
    mid = 0.0 if lo < 0 < hi else (lo + hi) / 2
    span = (hi - lo) or 1.0
    if score > mid + 0.1 * span:
        return "green"
    if score < mid - 0.1 * span:
        return "red"
    return "yellow"


def sentiment_word(snap: MonitorSnapshot) -> str:
    """'positive' / 'negative' / 'neutral' for a sentiment score, or the class label."""
    p = snap.prediction
    if p is None:
        return "–"
    if p.label is not None:
        return p.label
    lo, hi = snap.score_range
    c = _colour(p.score, lo, hi)
    return {"green": "positive", "red": "negative", "yellow": "neutral"}[c]


def arousal_word(arousal: float) -> str:
    """'calm' / 'moderate' / 'excited' for an arousal reading (thresholds ±0.2 of the −1..+1 scale)."""
    return "excited" if arousal > 0.2 else "calm" if arousal < -0.2 else "moderate"


def _arousal_style(arousal: float) -> str:
    return {"excited": "magenta", "calm": "blue", "moderate": "white"}[arousal_word(arousal)]


def gauge(value: float, lo: float, hi: float, width: int = GAUGE_WIDTH, style: str | None = None) -> Text:
    """A horizontal bar from ``lo`` to ``hi`` with a marker at ``value`` (clipped); ┼ marks zero."""
    frac = 0.0 if hi <= lo else (min(max(value, lo), hi) - lo) / (hi - lo)
    pos = round(frac * (width - 1))
    bar = ["━"] * width
    if lo < 0 < hi:
        bar[round((0.0 - lo) / (hi - lo) * (width - 1))] = "┼"
    text = Text(f"{lo:+g} ")
    text.append("".join(bar[:pos]), style="dim")
    text.append("●", style=f"bold {style or _colour(value, lo, hi)}")
    text.append("".join(bar[pos + 1 :]), style="dim")
    text.append(f" {hi:+g}")
    return text


def sparkline(values: list[float], lo: float, hi: float, width: int = SPARK_WIDTH) -> str:
    """The last ``width`` values as block characters scaled to [lo, hi]."""
    vals = values[-width:]
    if not vals:
        return ""
    span = (hi - lo) or 1.0
    out = []
    for v in vals:
        f = (min(max(v, lo), hi) - lo) / span
        out.append(SPARK[min(len(SPARK) - 1, int(f * len(SPARK)))])
    return "".join(out)


def trend_arrow(history: tuple[tuple[float, float], ...], window_s: float = 5.0) -> str:
    """rising / falling / steady from the smoothed trend over the last ``window_s`` seconds."""
    if len(history) < 2:
        return "steady"
    t_last, v_last = history[-1]
    older = [v for t, v in history if t <= t_last - window_s] or [history[0][1]]
    delta = v_last - older[-1]
    if delta > 0.05:
        return "▲ rising"
    if delta < -0.05:
        return "▼ falling"
    return "▶ steady"


def header(snap: MonitorSnapshot) -> RenderableType:
    t = Text()
    t.append("mmcl-live", style="bold")
    t.append(" · real-time multimodal sentiment · ")
    src = {"live": "live devices", "replay": f"replay ({snap.replay_mode})", "demo": "demo files"}
    t.append(src.get(snap.mode, snap.mode))
    t.append(f" · {snap.elapsed_s:6.1f} s · model {snap.model or '–'} · backend {snap.backend}")
    parts: list[RenderableType] = []
    if snap.banner:
        parts.append(Text(f" {snap.banner} ", style="bold black on yellow"))
    parts.append(t)
    status = status_line(snap)
    parts.append(Text(f"status: {status}", style="green" if status == "running" else "yellow"))
    return Group(*parts)


def sentiment_panel(snap: MonitorSnapshot) -> RenderableType:
    p = snap.prediction
    lo, hi = snap.score_range
    if p is None:
        body: RenderableType = Text("no prediction yet — " + status_line(snap), style="dim")
        return Panel(body, title="sentiment", border_style="dim")
    line = Text()
    line.append(f"{p.score:+.2f} ", style=f"bold {_colour(p.score, lo, hi)}")
    if p.interval is not None:  # calibrated regression interval (calibration/confidence_run.py)
        line.append(f"± {p.interval:.2f} ({p.interval_level or 0:.0%}) ", style="dim")
    line.append(f"{sentiment_word(snap)}  ")
    line.append(f"trend {p.trend:+.2f} {trend_arrow(snap.trend_history)}")
    hist = [v for _, v in snap.history]
    lines = [
        line,
        gauge(p.score, lo, hi),
        Text("history ") + Text(sparkline(hist, lo, hi), style="cyan"),
        *arousal_lines(snap),
        *([Text("  ".join(f"{k} {v:.0%}" for k, v in p.probs.items()) + ("  (calibrated)" if p.calibrated else ""),
                style="dim")] if p.probs else []),
        Text(
            f"windows {snap.windows} · empty {snap.empty_windows} · skipped {snap.windows_skipped}",
            style="dim",
        ),
    ]
    return Panel(Group(*lines), title="sentiment", border_style=_colour(p.score, lo, hi))


def arousal_lines(snap: MonitorSnapshot) -> list[Text]:
    """Arousal beside the valence (models with an arousal head): value ± interval, word, gauge, trail."""
    p = snap.prediction
    if p is None or p.arousal is None:
        return []
    lo, hi = AROUSAL_RANGE
    line = Text("arousal ")
    line.append(f"{p.arousal:+.2f} ", style=f"bold {_arousal_style(p.arousal)}")
    if p.arousal_interval is not None:
        line.append(f"± {p.arousal_interval:.2f} ({p.interval_level or 0:.0%}) ", style="dim")
    line.append(arousal_word(p.arousal))
    trail = [v for _, v in snap.arousal_history]
    return [line, gauge(p.arousal, lo, hi, style=_arousal_style(p.arousal)),
            Text("history ") + Text(sparkline(trail, lo, hi), style="magenta")]  # fmt: skip


def modality_panel(snap: MonitorSnapshot) -> RenderableType:
    # plain Text rows (not a rich Table): measuring tables costs ~10× more per redraw
    lines = [Text(f"{'modality':<15} {'now':<6}{'window':>7}{'evidence':>10}  detail", style="bold")]
    for m in snap.modalities:
        line = Text(
            f"{MODALITY_LABELS.get(m.name, m.name) + ' (' + m.name + ')':<15} ",
            no_wrap=True,
            overflow="ellipsis",
        )
        line.append("● yes " if m.live else "○ no  ", style="green" if m.live else "dim")
        line.append(f"{m.coverage:>7.0%}")
        c = m.contribution or 0.0
        line.append(
            f"{_signed(m.contribution):>10}", style="green" if c > 0.01 else "red" if c < -0.01 else ""
        )
        line.append(f"  {modality_detail(m)}")
        lines.append(line)
    lines.append(Text("evidence = prediction − prediction with that modality masked", style="dim"))
    return Panel(Group(*lines), title="modalities: presence and evidence")


def transcript_panel(snap: MonitorSnapshot, max_chars: int = 300) -> RenderableType:
    """Committed words, then (dimmed) the ASR's current uncommitted hypothesis."""
    text = " ".join(w.text for w in snap.transcript)
    if len(text) > max_chars:
        text = "…" + text[-max_chars:]
    body = Text(text or ("" if snap.partial else "(no words yet)"), style="" if text else "dim")
    if snap.partial:
        body.append((" " if text else "") + snap.partial, style="dim italic")
    if snap.speaking:
        body.append("  ● speaking", style="bold green")
    title = "transcript" + (f" · ASR backlog {snap.asr_lag_s:.1f} s" if snap.asr_lag_s > 1.0 else "")
    return Panel(body, title=title)


def latency_table(stats: Mapping[str, LatencyStat], title: str = "latency (ms)") -> Table:
    """A rich table of per-stage percentiles (exit summary, ``mmcl profile``)."""
    table = Table(title=title, expand=False)
    table.add_column("stage")
    for c in ("p50", "p95", "p99", "n"):
        table.add_column(c, justify="right")
    for name, st in stats.items():
        table.add_row(
            STAGE_LABELS.get(name, name),
            _fmt_ms(st.p50_ms),
            _fmt_ms(st.p95_ms),
            _fmt_ms(st.p99_ms),
            str(st.count),
        )
    return table


def latency_panel(snap: MonitorSnapshot) -> RenderableType:
    lines = [Text(f"{'stage':<26}{'p50':>7}{'p95':>7}{'p99':>7}{'n':>7}", style="bold")]
    for name, st in snap.latency.items():
        style = "bold" if name == "e2e" else ""
        lines.append(
            Text(
                f"{STAGE_LABELS.get(name, name):<26}{_fmt_ms(st.p50_ms):>7}{_fmt_ms(st.p95_ms):>7}"
                f"{_fmt_ms(st.p99_ms):>7}{st.count:>7}",
                style=style,
            )
        )
    if len(lines) == 1:
        lines.append(Text("no samples yet", style="dim"))
    return Panel(Group(*lines), title="latency (ms)")


def system_panel(snap: MonitorSnapshot) -> RenderableType:
    r = snap.resources
    lines = [Text(f"{'device / worker':<12} {'status':<13}{'rate':>6}{'drops':>7}  message", style="bold")]
    for d in snap.devices:
        style = {"running": "green", "reconnecting": "yellow", "behind": "yellow", "failed": "red"}.get(
            d.status, ""
        )
        line = Text(f"{d.name[:12]:<12} ", no_wrap=True, overflow="ellipsis")
        line.append(f"{d.status[:13]:<13}", style=style)
        rate = f"{d.rate_hz:.0f}/s" if d.rate_hz else ""
        line.append(f"{rate:>6}{d.dropped + d.overflow:>7}")
        message = device_message(d)
        if message:
            line.append(f"  {message[:60]}", style="dim")
        lines.append(line)
    lines.append(
        Text(f"CPU {r.cpu_percent:.0f}% of one core · RSS {r.rss_mb:.0f} MB (peak {r.peak_rss_mb:.0f})")
    )
    lines.append(
        Text("queues " + "  ".join(f"{q.name} {q.depth}/{q.capacity}" for q in snap.queues), style="dim")
    )
    total_drops = shown_drops(snap)
    lines.append(
        Text(
            "drops " + ("  ".join(f"{k} {v:g}" for k, v in total_drops.items()) if total_drops else "none"),
            style="yellow" if total_drops else "dim",
        )
    )
    return Panel(Group(*lines), title="devices · queues · resources")


SEVERITY_STYLE = {"critical": "bold white on red", "warning": "bold black on dark_orange", "info": "bold black on cyan"}


def alert_banner(snap: MonitorSnapshot) -> RenderableType | None:
    """Active alerts (one line each, severity colours) and recently cleared ones (dim); None without any."""
    if not snap.alerts and not snap.alert_delivery:
        return None
    lines: list[Text] = []
    for a in snap.alerts:
        if a.kind == "active":
            line = Text(f" ALERT {a.severity.upper()} ", style=SEVERITY_STYLE.get(a.severity, "bold"))
            ago = snap.elapsed_s - a.fired_at
            line.append(f" {a.rule}: {a.message} · since t={a.fired_at:.1f} s ({ago:.1f} s ago)", style="bold")
        else:
            line = Text(f" cleared  {a.rule}: {a.message} · lasted {a.t - a.fired_at:.1f} s, cleared at "
                        f"t={a.t:.1f} s", style="dim")  # fmt: skip
        lines.append(line)
    if not lines:
        lines.append(Text("no active alert", style="dim"))
    if snap.alert_delivery:
        lines.append(Text("delivery: " + snap.alert_delivery, style="dim"))
    active = any(a.kind == "active" for a in snap.alerts)
    return Panel(Group(*lines), title="alerts", border_style="red" if active else "dim")


def alert_line(a: AlertView) -> str:
    """One ``--headless`` line per alert event."""
    if a.kind == "fire":
        return f"ALERT {a.severity.upper()} {a.rule} fired at t={a.t:.1f}s: {a.message}"
    return f"ALERT CLEARED {a.rule} at t={a.t:.1f}s after {a.t - a.fired_at:.1f}s: {a.message}"


def _two_columns(left: RenderableType, right: RenderableType, width: int | None) -> Table:
    grid = Table.grid(expand=True)
    half = None if width is None else max(20, width // 2)
    grid.add_column(ratio=None if half else 1, width=half)
    grid.add_column(ratio=None if half else 1, width=None if half is None else max(20, width - half))
    grid.add_row(left, right)
    return grid


def render(snap: MonitorSnapshot, width: int | None = None) -> RenderableType:
    """The whole dashboard for one snapshot. With the screen ``width`` the two-column rows get fixed
    column widths, which spares rich measuring every cell (several times faster per redraw). Screens
    narrower than ``WIDE`` columns get the panels stacked (most important first)."""
    banner = alert_banner(snap)
    top = [header(snap), *([banner] if banner is not None else [])]
    if width is not None and width < WIDE:
        return Group(
            *top, sentiment_panel(snap), modality_panel(snap), transcript_panel(snap),
            latency_panel(snap), system_panel(snap),
        )  # fmt: skip
    return Group(
        *top,
        _two_columns(sentiment_panel(snap), modality_panel(snap), width),
        transcript_panel(snap),
        _two_columns(latency_panel(snap), system_panel(snap), width),
    )


def headless_line(snap: MonitorSnapshot) -> str:
    """One line summarising a snapshot (``mmcl monitor --headless``)."""
    p = snap.prediction
    sent = f"sentiment {p.score:+.2f} ({sentiment_word(snap)}) trend {p.trend:+.2f}" if p else "sentiment –"
    if p is not None and p.interval is not None:
        sent = sent.replace(f"{p.score:+.2f} ", f"{p.score:+.2f} ± {p.interval:.2f} ({p.interval_level or 0:.0%}) ", 1)
    if p is not None and p.arousal is not None:
        sent += f" arousal {p.arousal:+.2f} ({arousal_word(p.arousal)})"
    mods = " ".join(
        f"{MODALITY_LABELS.get(m.name, m.name)} {'yes' if m.live else 'no'}" for m in snap.modalities
    )
    e2e = snap.latency.get("e2e") or snap.latency.get("e2e_published")
    lat = f"e2e p95 {_fmt_ms(e2e.p95_ms)} ms" if e2e is not None else "e2e –"
    drops = snap.drops_total
    words = " ".join(w.text for w in snap.transcript[-6:])
    banner = f"[{snap.banner}] " if snap.banner else ""
    remote = f" | {snap.backend}" if snap.backend.startswith("server ") else ""  # mmcl monitor --server: its state
    return (
        f"{banner}t={snap.elapsed_s:6.1f}s {sent} | {mods} | {lat} | cpu {snap.resources.cpu_percent:.0f}% | "
        f'windows {snap.windows} | drops {drops:g} | {status_line(snap)}{remote} | "{words}"'
    )
