"""Dashboard panels are pure functions of a snapshot: render to a capture Console and read the text."""

from __future__ import annotations

import threading

from rich.console import Console

from realtime.dashboard import Dashboard, HeadlessPrinter, headless_line, render
from realtime.dashboard.panels import gauge, sparkline
from realtime.pipeline.inference import Prediction
from realtime.pipeline.latency import stat_of
from realtime.pipeline.state import (
    DeviceView,
    ModalityView,
    MonitorSnapshot,
    QueueView,
    ResourceView,
)
from realtime.types import Word


def snapshot(**changes) -> MonitorSnapshot:
    pred = Prediction(window=41, t_end=21.0, score=1.25, trend=0.8, value=1.25,
                      contributions={"vision": 0.31, "audio": -0.12, "text": None})  # fmt: skip
    base = dict(
        now=21.0, elapsed_s=20.5, mode="demo", replay_mode="realtime",
        banner="DEMO session (no camera/microphone found)", backend="eager", model="mmcl_live_default.pt",
        running=True, finished=False, prediction=pred, score_range=(-3.0, 3.0),
        history=tuple((10 + 0.5 * k, -2.0 + 0.1 * k) for k in range(23)),
        trend_history=tuple((10 + 0.5 * k, -1.0 + 0.1 * k) for k in range(23)),
        windows=42, windows_skipped=1, empty_windows=3, phase="running",
        modalities=(
            ModalityView("vision", True, 0.96, 0.31, "camera", "running", rate_hz=15.2),
            ModalityView("audio", True, 0.58, -0.12, "microphone", "running", voiced=True, speaking=True,
                         level_dbfs=-23.4),
            ModalityView("text", False, 0.0, None, "asr", "running", words=0, window_s=5.0),
        ),
        transcript=tuple(Word(w, 1.0 + i, 1.4 + i) for i, w in enumerate(
            "I am really happy with how well this project turned out".split())),
        speaking=True,
        latency={"face": stat_of("face", [0.012, 0.015, 0.02]), "e2e": stat_of("e2e", [0.081, 0.092, 0.143])},
        queues=(QueueView("face→windows", 2, 512, 0), QueueView("voice→windows", 1, 512, 0)),
        devices=(
            DeviceView("camera", "camera", "reconnecting", "camera device 0 lost; attempt 2, next in 1.0 s"),
            DeviceView("microphone", "microphone", "running", "", 15.6, 900, 0, 3),
            DeviceView("asr", "worker", "running", "", commit_p50_s=0.8249),
        ),
        drops={"audio_overflow_events": 3, "camera_frames_skipped_fps_cap": 40, "windows_skipped": 1},
        resources=ResourceView(cpu_percent=47.0, rss_mb=812.0, peak_rss_mb=830.0),
    )  # fmt: skip
    base.update(changes)
    return MonitorSnapshot(**base)


def text_of(renderable, width: int = 160) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)
    console.print(renderable)
    return console.export_text()


def test_full_dashboard_shows_every_section() -> None:
    out = text_of(render(snapshot(), 160))
    lines = out.splitlines()
    assert lines[0].strip() == snapshot().banner  # the banner comes first, above everything
    assert "real-time multimodal sentiment · demo files ·   20.5 s" in lines[1]  # mode and elapsed, worded
    assert "+1.25 positive" in out and "trend +0.80" in out and "▲ rising" in out
    assert "face (vision)   ● yes     96%     +0.31  face found · 15 fps" in out
    assert "voice (audio)   ● yes     58%     -0.12  speech · -23 dBFS" in out
    assert "words (text)    ○ no       0%         –  0 word(s)" in out
    assert "I am really happy with how well this project turned out" in out and "● speaking" in out
    hyp = text_of(render(snapshot(partial="and I love it"), 160))
    assert "this project turned out and I love it  ● speaking" in hyp
    assert "newest input → shown           92    138    142      3" in out  # e2e p50/p95/p99 (ms), n
    assert "camera       reconnecting             0  camera device 0 lost" in out
    assert "asr          running                  0  commit p50 0.82 s" in out
    assert "CPU 47% of one core · RSS 812 MB (peak 830)" in out
    assert "audio overflow events 3" in out and "windows skipped 1" in out
    assert "fps cap" not in out.split("drops")[-1]  # a frame-rate cap is not a drop
    assert "model mmcl_live_default.pt · backend eager" in out
    # the same snapshot renders the same screen (pure function), with or without a fixed width
    assert out == text_of(render(snapshot(), 160))
    assert "+1.25 positive" in text_of(render(snapshot()), 120)
    narrow = text_of(render(snapshot(), 80), 80)  # an 80-column terminal: panels stacked, nothing cut
    assert "face (vision)   ● yes     96%     +0.31  face found · 15 fps" in narrow
    assert "newest input → shown           92    138    142      3" in narrow


def test_waiting_and_classification_states() -> None:
    out = text_of(render(snapshot(prediction=None, windows=0, banner=None), 150))
    assert "no prediction yet — waiting for the first window" in out and "DEMO" not in out
    probs = Prediction(window=1, t_end=1.0, score=-0.6, trend=-0.6, probs={"negative": 0.7, "neutral": 0.2,
                       "positive": 0.1}, label="negative", contributions={})  # fmt: skip
    out = text_of(render(snapshot(prediction=probs, score_range=(-1.0, 1.0)), 150))
    assert "-0.60 negative" in out and "negative 70%" in out and "positive 10%" in out


def test_gauge_and_sparkline() -> None:
    g = gauge(3.0, -3.0, 3.0, width=11).plain
    assert g == "-3 ━━━━━┼━━━━● +3"
    assert gauge(-9.0, -3.0, 3.0, width=11).plain.startswith("-3 ●")  # clipped
    assert sparkline([-3, 0, 3], -3.0, 3.0) == "▁▅█"
    assert sparkline(list(range(100)), 0, 99, width=10) == sparkline(list(range(90, 100)), 0, 99, width=10)


def test_headless_line() -> None:
    line = headless_line(snapshot())
    assert line.startswith("[DEMO session (no camera/microphone found)] t=  20.5s sentiment +1.25 (positive)")
    assert "face yes voice yes words no" in line and "e2e p95 " in line and "drops 4" in line
    # the status the panels word for the phase, then the last six words of the transcript
    assert line.endswith('| drops 4 | running | "how well this project turned out"'), line
    assert headless_line(snapshot(transcript=())).endswith('| running | ""')


class FakeSource:
    """The pipeline side of the pull model, replaced by a list of snapshots (lowest layer only)."""

    def __init__(self, snaps: list[MonitorSnapshot]) -> None:
        self.snaps = snaps
        self.i = 0
        self.shown: list[tuple[int | None, float | None]] = []
        self.version = 0

    def snapshot(self) -> MonitorSnapshot:
        s = self.snaps[min(self.i, len(self.snaps) - 1)]
        self.i += 1
        return s

    def wait_update(self, version: int, timeout: float) -> int:
        threading.Event().wait(min(timeout, 0.01))
        self.version += 1
        return self.version

    def latest_window(self) -> int | None:
        s = self.snaps[min(self.i, len(self.snaps) - 1)]
        return s.prediction.window if s.prediction else None

    def mark_shown(self, window: int | None, render_s: float | None = None) -> None:
        self.shown.append((window, render_s))


def test_live_dashboard_pulls_draws_and_reports_what_it_showed() -> None:
    snaps = [snapshot(prediction=None, windows=0)] + [
        snapshot(prediction=Prediction(window=k, t_end=k, score=0.1 * k, trend=0.0, value=0.1 * k))
        for k in range(8)
    ]
    src = FakeSource(snaps)
    console = Console(width=150, record=True, file=open("/dev/null", "w"), force_terminal=True)
    dash = Dashboard(src, console, refresh_hz=10.0)
    dash.run(threading.Event(), until=lambda: len(src.shown) >= 6)
    windows = [w for w, _ in src.shown]
    assert dash.frames >= 6 and all(dt is not None and dt >= 0 for _, dt in src.shown)
    assert [w for w in windows if w is not None] == sorted(w for w in windows if w is not None)
    drawn = console.export_text()
    last = [w for w in windows if w is not None][-1]
    assert f"{0.1 * last:+.2f}" in drawn and "waiting for the first window" in drawn

    stop = threading.Event()
    printer = HeadlessPrinter(FakeSource(snaps), Console(record=True, file=open("/dev/null", "w")), 0.02)
    printer.run(stop, until=lambda: printer.lines >= 3)
    printed = printer.console.export_text().splitlines()
    assert printer.lines == len(printed) == 3  # one line per interval, each the line of a pulled snapshot
    assert set(printed) <= {headless_line(s) for s in snaps}, printed


def test_arousal_shows_beside_the_valence_only_for_models_that_have_it() -> None:
    import dataclasses

    plain = text_of(render(snapshot(), 160))
    assert "arousal" not in plain and "arousal" not in headless_line(snapshot())
    pred = dataclasses.replace(snapshot().prediction, arousal=0.55, arousal_interval=0.31, interval_level=0.9)
    snap = snapshot(prediction=pred, arousal_history=tuple((10 + 0.5 * k, -0.9 + 0.08 * k) for k in range(23)))
    out = text_of(render(snap, 160))
    assert "arousal +0.55 ± 0.31 (90%) excited" in out
    lines = out.splitlines()
    i = next(k for k, line in enumerate(lines) if "arousal +0.55" in line)
    assert "-1 " in lines[i + 1] and " +1" in lines[i + 1] and "●" in lines[i + 1]  # its own −1..+1 gauge
    trail = lines[i + 2].split("history ", 1)[1].split()[0]
    assert trail[0] == "▁" and trail[-1] == "█"  # the trail rises from calm to excited
    assert "arousal +0.55 (excited)" in headless_line(snap)
    calm = dataclasses.replace(pred, arousal=-0.6)
    assert "arousal -0.60 (calm)" in headless_line(snapshot(prediction=calm))
