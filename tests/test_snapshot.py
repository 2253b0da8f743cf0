"""Snapshots composed from hand-made stats (no threads, no devices), and the words the panels write for them."""

from __future__ import annotations

import dataclasses

import pytest

from realtime.asr.worker import AsrStats
from realtime.dashboard.panels import device_message, drop_label, modality_detail, shown_drops, status_line
from realtime.pipeline.inference import Prediction
from realtime.pipeline.snapshot import SessionFacts, SnapshotInputs, compose_snapshot
from realtime.pipeline.state import DROP_KINDS, MonitorState, QueueView
from realtime.pipeline.workers import WorkerStats
from realtime.sources.base import SourceStats, SourceStatus
from realtime.types import Word

NOW = 20.0


def camera(status: SourceStatus = SourceStatus.RUNNING, **kw) -> SourceStats:
    base = dict(name="camera", kind="camera", status=status, message="", delivered=300, dropped=4, skipped=40,
                last_t=NOW - 0.05, rate_hz=15.2, extra={"corrupt_frames": 2})  # fmt: skip
    return SourceStats(**{**base, **kw})


def microphone(status: SourceStatus = SourceStatus.RUNNING, **kw) -> SourceStats:
    base = dict(name="mic", kind="microphone", status=status, message="", delivered=900, overflow=3,
                last_t=NOW - 0.02, rate_hz=31.2, extra={"dropped_s": 0.25, "nonfinite_samples": 7})  # fmt: skip
    return SourceStats(**{**base, **kw})


def worker(name: str, live: bool = True, last_t: float | None = NOW - 0.1, level: float | None = None) -> WorkerStats:
    return WorkerStats(name, "running", "", 120, 120, 0, 1.5, live, last_t, level)


def asr(in_utterance: bool = False, p50: float | None = 0.8249, status: str = "running") -> AsrStats:
    return AsrStats(status=status, message="", in_utterance=in_utterance, pending_s=1.7, dropped_s=0.5,
                    drop_events=1, runs=10, committed_words=12, last_run_s=0.2, compute_fraction=0.3,
                    latency_p50_s=p50, latency_p95_s=p50, buffer_s=3.0)  # fmt: skip


def published(words: tuple[Word, ...] = (), prediction: Prediction | None = None, windows: int = 5) -> dict:
    st = MonitorState().read()
    return {**st, "transcript": words, "prediction": prediction, "windows": windows, "windows_skipped": 2,
            "coverage": {"vision": 0.9, "audio": 0.5, "text": 0.2}}  # fmt: skip


def inputs(**kw) -> SnapshotInputs:
    base = dict(
        now=NOW, session=SessionFacts(phase="running", started_at=2.0, running=True, window_s=5.0),
        published=published(), camera=camera(), audio=microphone(), face=worker("face"),
        voice=worker("voice", level=-23.4), text=worker("text"), asr=asr(),
        queues=(QueueView("face→windows", 1, 512, 6), QueueView("voice→windows", 0, 512, 0)),
    )  # fmt: skip
    return SnapshotInputs(**{**base, **kw})


def by_name(snap) -> dict:
    return {m.name: m for m in snap.modalities}


def test_facts_and_the_words_the_panels_write_for_them() -> None:
    words = (Word("hello", NOW - 6.0, NOW - 5.5), Word("there", NOW - 2.0, NOW - 1.6))
    snap = compose_snapshot(inputs(published=published(words), asr=asr(in_utterance=True)))
    assert snap.elapsed_s == pytest.approx(18.0) and snap.phase == "running" and status_line(snap) == "running"
    vision, audio, text = (by_name(snap)[k] for k in ("vision", "audio", "text"))
    assert vision.live and vision.rate_hz == 15.2 and vision.coverage == 0.9
    assert modality_detail(vision) == "face found · 15 fps"
    assert audio.live and audio.speaking and audio.level_dbfs == -23.4
    assert modality_detail(audio) == "speech · -23 dBFS"
    assert text.live and text.words == 1  # "hello" ended 5.5 s ago: outside the 5 s window
    assert modality_detail(text) == "1 word(s) in the last 5 s"
    assert snap.speaking and snap.asr_lag_s == 1.7
    asr_view = next(d for d in snap.devices if d.name == "asr")
    assert asr_view.delivered == 12 and device_message(asr_view) == "commit p50 0.82 s"
    assert [d.name for d in snap.devices] == ["camera", "mic", "face", "voice", "text", "asr"]


def test_stale_or_absent_inputs_are_not_live() -> None:
    stale = compose_snapshot(inputs(face=worker("face", last_t=NOW - 1.5), voice=worker("voice", last_t=NOW - 3.0,
                                                                                        level=-30.0)))  # fmt: skip
    vision, audio, _ = stale.modalities
    assert not vision.live and modality_detail(vision) == "no face · 15 fps"  # the newest frame is 1.5 s old
    assert not audio.live and modality_detail(audio) == "silence"
    voice_only = compose_snapshot(inputs(asr=asr(in_utterance=False)))
    assert modality_detail(voice_only.modalities[1]) == "voice · -23 dBFS"
    never = compose_snapshot(inputs(voice=worker("voice", level=None)))
    assert modality_detail(never.modalities[1]) == "voice · level –"
    none = compose_snapshot(inputs(camera=None, face=None, audio=None, voice=None, text=None, asr=None, queues=()))
    assert [modality_detail(m) for m in none.modalities] == ["no camera", "no microphone", "no transcription"]
    assert not any(m.live for m in none.modalities) and none.devices == () and not none.speaking
    assert none.drops == {"windows_skipped": 2}


def test_a_device_that_is_not_delivering_is_named_with_its_status() -> None:
    snap = compose_snapshot(inputs(
        camera=camera(SourceStatus.RECONNECTING, message="camera device 0 lost; attempt 2"),
        audio=microphone(SourceStatus.ENDED),
    ))  # fmt: skip
    vision, audio, _ = snap.modalities
    assert vision.source_status == "reconnecting"
    assert modality_detail(vision) == "camera reconnecting: camera device 0 lost; attempt 2"
    assert modality_detail(audio) == "voice · -23 dBFS"  # an ended file is not a fault: no status shown
    failed = compose_snapshot(inputs(audio=microphone(SourceStatus.FAILED)))
    assert modality_detail(failed.modalities[1]) == "microphone failed"


def test_drops_are_counted_by_kind_and_labelled_by_the_panel() -> None:
    snap = compose_snapshot(inputs())
    assert snap.drops == {
        "camera_frames_replaced_slot": 4, "camera_frames_skipped_fps_cap": 40, "camera_corrupt_frames_skipped": 2,
        "audio_overflow_events": 3, "audio_dropped_s": 0.25, "audio_non_finite_samples_zeroed": 7,
        "asr_dropped_s_backlog": 0.5, "queue:face→windows": 6, "queue:voice→windows": 0, "windows_skipped": 2,
    }  # fmt: skip
    assert set(snap.drops) - {"queue:face→windows", "queue:voice→windows"} <= set(DROP_KINDS)
    assert snap.drops_total == pytest.approx(4 + 2 + 3 + 0.25 + 7 + 0.5 + 6 + 2)  # the fps cap is not a drop
    labels = shown_drops(snap)
    assert labels["camera frames replaced (slot)"] == 4 and labels["queue face→windows"] == 6
    assert labels["ASR dropped s (backlog)"] == 0.5 and "camera frames skipped (fps cap)" not in labels
    assert "queue voice→windows" not in labels  # zero: not shown
    assert drop_label("something_new") == "something new"


@pytest.mark.parametrize(
    ("facts", "windows", "line"),
    [
        (dict(phase="loading"), 0, "loading models"),
        (dict(phase="running"), 0, "waiting for the first window"),
        (dict(phase="running", last_window_empty=True), 3, "no face, no speech: nothing to score"),
        (dict(phase="running", fault_in="inference", fault="ValueError: boom"), 3,
         "inference failed: ValueError: boom"),
        (dict(phase="ending"), 9, "replay ended: committing the last words"),
        (dict(phase="finished", finished=True), 9, "replay finished"),
        (dict(phase="running", log_error="disk full", log_lines_lost=5), 3,
         "running · EVENT LOG STOPPED: disk full"),
    ],
)  # fmt: skip
def test_status_line(facts: dict, windows: int, line: str) -> None:
    session = dataclasses.replace(SessionFacts(started_at=0.0), **facts)
    snap = compose_snapshot(inputs(session=session, published=published(windows=windows)))
    assert status_line(snap) == line
    assert snap.finished == facts.get("finished", False)
    if facts.get("log_error"):
        assert snap.drops["event_log_lines_not_written"] == 5
    else:
        assert "event_log_lines_not_written" not in snap.drops


def test_contributions_and_prediction_come_from_the_published_state() -> None:
    pred = Prediction(window=4, t_end=NOW, score=0.5, trend=0.4, contributions={"vision": 0.3, "audio": -0.1})
    snap = compose_snapshot(inputs(published=published(prediction=pred)))
    vision, audio, text = snap.modalities
    assert snap.prediction is pred and vision.contribution == 0.3 and audio.contribution == -0.1
    assert text.contribution is None and snap.windows == 5 and snap.windows_skipped == 2
