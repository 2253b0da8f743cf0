"""The monitor snapshot: its view types and its composition — plain stats in, one :class:`MonitorSnapshot` out.

:func:`compose_snapshot` is a pure function of a :class:`SnapshotInputs` — what ``Pipeline.snapshot()``
read once from each source, worker and the published state (each read takes its own lock once, so a
snapshot mixes as few moments as the stats allow). It returns facts only: statuses, rates, levels,
counts, counters keyed by kind. The words on screen ("face found · 15 fps", the drop labels, the status
sentence) are the dashboard's (``realtime.dashboard.panels``). A new field on screen is a change here (the
view and ``compose_snapshot``) and in one panel; tests compose snapshots from hand-made stats
(``tests/test_snapshot.py``). The views are re-exported by ``realtime.pipeline.state``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from realtime.asr.worker import AsrStats
from realtime.pipeline.inference import Prediction
from realtime.pipeline.latency import LatencyStat
from realtime.pipeline.workers import WorkerStats
from realtime.sources.base import SourceStats
from realtime.types import Word


# ---- what readers get: views of facts ----------------------------------------------------------------------
@dataclass(frozen=True)
class ModalityView:
    """Presence and evidence of one modality, as facts (the dashboard words them).

    ``live`` = present right now (vision: a face found in a frame at most ``FACE_LIVE_S`` old; audio:
    speech or voice; text: a word in the last few seconds); ``coverage`` = share of observed steps in the
    last window; ``contribution`` = masked-modality delta of the last prediction (None when absent).
    ``source`` names the input behind it (``camera``, the audio source's kind, ``asr``; ``""`` = none
    configured) and ``source_status`` / ``source_message`` its state. Vision: ``rate_hz`` = camera frames
    per second. Audio: ``voiced`` (the newest step above the silence floor), ``speaking`` (the ASR is in an
    utterance), ``level_dbfs`` = level of the last voiced audio (None before any). Text: ``words`` = words
    that ended in the last ``window_s`` seconds."""

    name: str
    live: bool
    coverage: float
    contribution: float | None
    source: str = ""
    source_status: str = ""
    source_message: str = ""
    rate_hz: float | None = None
    voiced: bool = False
    speaking: bool = False
    level_dbfs: float | None = None
    words: int | None = None
    window_s: float = 0.0


@dataclass(frozen=True)
class DeviceView:
    name: str
    kind: str
    status: str
    message: str
    rate_hz: float = 0.0
    delivered: int = 0
    dropped: int = 0
    overflow: int = 0
    reconnects: int = 0
    commit_p50_s: float | None = None  # the ASR: commit latency p50 (word end → committed)


@dataclass(frozen=True)
class QueueView:
    name: str
    depth: int
    capacity: int
    dropped: int
    peak: int = 0


@dataclass(frozen=True)
class ResourceView:
    cpu_percent: float  # whole process, % of one core, since the previous sample
    rss_mb: float
    peak_rss_mb: float
    threads: dict[str, float] = field(default_factory=dict)  # % of one core per named thread group


@dataclass(frozen=True)
class AlertView:
    """One alert as readers see it (published by ``realtime.alerts.runtime``): an event (``kind`` fire /
    clear, ``seq`` increasing) or a banner entry (``kind`` active / cleared, ``seq`` 0)."""

    seq: int
    kind: str
    rule: str
    severity: str  # info | warning | critical
    message: str
    t: float  # seconds since the session started (banner: when it fired or cleared)
    fired_at: float  # seconds since the session started
    headless: bool = True  # print it in --headless output
    bell: bool = False  # ring the terminal bell (fire events)


PHASES = ("idle", "loading", "opening", "running", "ending", "finished", "stopped", "failed")
# drop counters of a snapshot, by kind (also the ``kind`` label of the mmcl_drops metric); plus queue:NAME
DROP_KINDS = (
    "camera_frames_replaced_slot", "camera_frames_skipped_fps_cap", "camera_corrupt_frames_skipped",
    "audio_overflow_events", "audio_dropped_s", "audio_non_finite_samples_zeroed", "asr_dropped_s_backlog",
    "windows_skipped", "event_log_lines_not_written",
)  # fmt: skip
NOT_DROPS = frozenset({"camera_frames_skipped_fps_cap"})


@dataclass(frozen=True)
class MonitorSnapshot:
    now: float  # session clock
    elapsed_s: float  # since the pipeline started (session clock)
    mode: str  # live | replay | demo
    replay_mode: str  # realtime | clock-stopped | fast
    banner: str | None  # e.g. "DEMO session (no camera/microphone found)"
    backend: str
    model: str
    running: bool
    finished: bool
    prediction: Prediction | None
    score_range: tuple[float, float]
    history: tuple[tuple[float, float], ...]  # (t, score)
    trend_history: tuple[tuple[float, float], ...]  # (t, trend)
    windows: int
    windows_skipped: int
    empty_windows: int  # windows without any modality present (not scored)
    phase: str  # idle | loading | opening | running | ending | finished | stopped | failed (see PHASES)
    modalities: tuple[ModalityView, ...]
    transcript: tuple[Word, ...]
    speaking: bool
    latency: dict[str, LatencyStat]
    queues: tuple[QueueView, ...]
    devices: tuple[DeviceView, ...]
    drops: dict[str, float]  # cumulative, by kind (DROP_KINDS; ``queue:NAME`` per queue); audio in seconds
    resources: ResourceView
    asr_lag_s: float = 0.0  # audio waiting for the ASR
    partial: str = ""  # the ASR's not-yet-committed hypothesis (may still change; display only)
    alerts: tuple[AlertView, ...] = ()  # banner: active alerts, then recently cleared ones
    alert_events: tuple[AlertView, ...] = ()  # the most recent fire/clear events (seq increasing)
    alert_delivery: str = ""  # command/webhook counters, one line ("" = none configured)
    arousal_history: tuple[tuple[float, float], ...] = ()  # (t, arousal): models with an arousal head
    fault_in: str = ""  # where the last failure happened (``inference``, ``window loop``); "" = none
    fault: str = ""  # that failure ("ValueError: …"); cleared by the next phase change
    last_window_empty: bool = False  # the newest window had no modality present (nothing to score)
    log_error: str = ""  # the event log stopped writing, and why
    words: int = 0  # words published with the windows since the start (``transcript`` holds the last ones)

    @property
    def drops_total(self) -> float:
        """Every drop counter added up, frame-rate-cap skips left out (a cap is a setting, not a loss)."""
        return sum(float(v) for k, v in self.drops.items() if k not in NOT_DROPS)


# ---- composition ---------------------------------------------------------------------------------------------
WORD_LIVE_S = 3.0  # a word ending this recently counts as "words: live"
FACE_LIVE_S = 1.0  # a frame older than this no longer counts as "face found"
VOICE_LIVE_S = 1.0  # a voice step older than this no longer counts as voiced


@dataclass(frozen=True)
class SessionFacts:
    """What the pipeline knows about itself (set at construction, or one attribute read each)."""

    mode: str = "live"  # live | replay | demo
    replay_mode: str = "realtime"
    banner: str | None = None
    backend: str = "none"
    model: str = ""
    score_range: tuple[float, float] = (-1.0, 1.0)
    window_s: float = 5.0
    started_at: float | None = None
    running: bool = False
    finished: bool = False
    phase: str = "idle"
    fault_in: str = ""
    fault: str = ""
    last_window_empty: bool = False
    log_error: str = ""
    log_lines_lost: int = 0


@dataclass(frozen=True)
class SnapshotInputs:
    """Plain stats for one snapshot; ``None`` = that source or worker does not exist in this session."""

    now: float
    session: SessionFacts
    published: Mapping[str, Any]  # MonitorState.read()
    camera: SourceStats | None = None
    audio: SourceStats | None = None
    face: WorkerStats | None = None
    voice: WorkerStats | None = None
    text: WorkerStats | None = None
    asr: AsrStats | None = None
    queues: tuple[QueueView, ...] = ()
    latency: dict[str, LatencyStat] = field(default_factory=dict)
    resources: ResourceView = field(default_factory=lambda: ResourceView(0.0, 0.0, 0.0))
    partial: str = ""


def compose_snapshot(inp: SnapshotInputs) -> MonitorSnapshot:
    s, st = inp.session, inp.published
    started = s.started_at if s.started_at is not None else inp.now
    return MonitorSnapshot(
        now=inp.now, elapsed_s=max(0.0, inp.now - started), mode=s.mode, replay_mode=s.replay_mode,
        banner=s.banner, backend=s.backend, model=s.model, running=s.running, finished=s.finished,
        prediction=st["prediction"], score_range=s.score_range, history=st["history"],
        trend_history=st["trend_history"], windows=st["windows"], windows_skipped=st["windows_skipped"],
        empty_windows=st["empty_windows"], phase=s.phase, modalities=modalities(inp),
        transcript=st["transcript"], speaking=bool(inp.asr and inp.asr.in_utterance), latency=inp.latency,
        queues=inp.queues, devices=devices(inp), drops=drops(inp), resources=inp.resources,
        asr_lag_s=inp.asr.pending_s if inp.asr is not None else 0.0, partial=inp.partial,
        alerts=st["alerts"], alert_events=st["alert_events"], alert_delivery=st["alert_delivery"],
        arousal_history=st["arousal_history"], fault_in=s.fault_in, fault=s.fault,
        last_window_empty=s.last_window_empty, log_error=s.log_error, words=st["words"],
    )  # fmt: skip


def devices(inp: SnapshotInputs) -> tuple[DeviceView, ...]:
    """Sources first, then the workers (face, voice, text, ASR)."""
    out = []
    for ss in (inp.camera, inp.audio):
        if ss is not None:
            out.append(DeviceView(ss.name, ss.kind, ss.status.value, ss.message, ss.rate_hz, ss.delivered,
                                  ss.dropped, ss.overflow, ss.reconnects))  # fmt: skip
    for ws in (inp.face, inp.voice, inp.text):
        if ws is not None:
            out.append(DeviceView(ws.name, "worker", ws.status, ws.message, 0.0, ws.items))
    a = inp.asr
    if a is not None:
        out.append(DeviceView("asr", "worker", a.status, a.message, 0.0, a.committed_words, 0, a.drop_events,
                              commit_p50_s=a.latency_p50_s))  # fmt: skip
    return tuple(out)


def modalities(inp: SnapshotInputs) -> tuple[ModalityView, ...]:
    """vision, audio, text — always all three, in that order."""
    st, now = inp.published, inp.now
    cov: Mapping[str, float] = st["coverage"]
    pred = st["prediction"]
    contrib = pred.contributions if pred is not None else {}
    cam, face = inp.camera, inp.face
    if cam is not None and face is not None:
        found = face.live and face.last_t is not None and now - face.last_t <= FACE_LIVE_S
        vision = ModalityView("vision", found, cov.get("vision", 0.0), contrib.get("vision"), "camera",
                              cam.status.value, cam.message, rate_hz=cam.rate_hz)  # fmt: skip
    else:
        vision = ModalityView("vision", False, 0.0, None)
    aud, voice = inp.audio, inp.voice
    if aud is not None and voice is not None:
        speaking = bool(inp.asr and inp.asr.in_utterance)
        voiced = voice.live and voice.last_t is not None and now - voice.last_t <= VOICE_LIVE_S
        audio = ModalityView("audio", speaking or voiced, cov.get("audio", 0.0), contrib.get("audio"), aud.kind,
                             aud.status.value, aud.message, voiced=voiced, speaking=speaking,
                             level_dbfs=voice.level_dbfs)  # fmt: skip
    else:
        audio = ModalityView("audio", False, 0.0, None)
    if inp.text is not None:
        words = st["transcript"]
        window_s = inp.session.window_s
        recent = bool(words) and now - words[-1].end <= WORD_LIVE_S
        n = sum(1 for w in words if w.end > now - window_s)
        text = ModalityView("text", recent, cov.get("text", 0.0), contrib.get("text"), "asr",
                            inp.asr.status if inp.asr is not None else "", words=n, window_s=window_s)  # fmt: skip
    else:
        text = ModalityView("text", False, 0.0, None)
    return vision, audio, text


def drops(inp: SnapshotInputs) -> dict[str, float]:
    """Every drop counter by kind (``state.DROP_KINDS``, ``queue:NAME``); audio in seconds."""
    out: dict[str, float] = {}
    cam, aud = inp.camera, inp.audio
    if cam is not None:
        out["camera_frames_replaced_slot"] = cam.dropped
        out["camera_frames_skipped_fps_cap"] = cam.skipped
        out["camera_corrupt_frames_skipped"] = int(cam.extra.get("corrupt_frames", 0))
    if aud is not None:
        out["audio_overflow_events"] = aud.overflow
        out["audio_dropped_s"] = round(float(aud.extra.get("dropped_s", 0.0)), 3)
        out["audio_non_finite_samples_zeroed"] = int(aud.extra.get("nonfinite_samples", 0))
    if inp.asr is not None:
        out["asr_dropped_s_backlog"] = round(inp.asr.dropped_s, 3)
    for q in inp.queues:
        out[f"queue:{q.name}"] = q.dropped
    out["windows_skipped"] = inp.published["windows_skipped"]
    if inp.session.log_error:
        out["event_log_lines_not_written"] = inp.session.log_lines_lost
    return out
