"""Streaming ASR with the real faster-whisper tiny.en (CPU int8) and the real Silero VAD.

Uses ../shared/data/media/jfk.flac (11 s) and its reference transcript; skipped when the shared data or
the model package is absent. WER threshold: 0.10 (the streaming transcript measured 0.0–0.05 here;
offline whisper tiny.en gets 0.0 on this clip).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from realtime.asr import AsrConfig, AsrWorker, FasterWhisperRecognizer, StreamingAsrPolicy
from realtime.clock import ManualClock
from realtime.features.transcribe import word_error_rate
from realtime.sources import AudioFileSource, ReplayConfig, ReplayTimeline, decode_audio
from realtime.types import AudioChunk

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media"
WER_MAX = 0.10
SR = 16000




@pytest.fixture(scope="module")
def recognizer():
    try:
        return FasterWhisperRecognizer(AsrConfig(cpu_threads=1))
    except Exception as exc:  # ModelAssetError or a missing package
        pytest.skip(f"faster-whisper model unavailable: {exc}")


@pytest.fixture(scope="module")
def jfk():
    if not (DATA / "jfk.flac").is_file():
        pytest.skip(f"shared data absent: {DATA / 'jfk.flac'} (tests read ../shared/data)")
    return decode_audio(DATA / "jfk.flac"), (DATA / "jfk.txt").read_text().strip()


def test_jfk_in_half_second_chunks(recognizer, jfk):
    audio, reference = jfk
    signal = np.concatenate([np.zeros(SR // 2, np.float32), audio, np.zeros(SR, np.float32)])
    policy = StreamingAsrPolicy(recognizer, AsrConfig())
    words = []
    for i in range(0, len(signal), SR // 2):  # clock-stopped: commit time = end of the audio so far
        policy.insert_audio(AudioChunk(signal[i : i + SR // 2], 100.0 + i / SR))
        if policy.ready():
            words += policy.process()
    words += policy.finish()
    text = " ".join(w.text for w in words)
    assert word_error_rate(reference, text) <= WER_MAX, text
    assert "your country" in text.lower()
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    for w in words:  # on the common clock: inside the speech, committed after it was spoken
        assert 100.0 <= w.start <= w.end <= 100.0 + len(signal) / SR
        assert w.end <= w.committed_at <= w.end + 3.0
    lat = np.array([w.committed_at - w.end for w in words])
    assert np.median(lat) < 1.5  # algorithmic latency, computation not counted (clock-stopped)


def test_silence_and_noise_produce_no_words(recognizer):
    rng = np.random.default_rng(0)
    signal = np.concatenate(
        [
            np.zeros(4 * SR, np.float32),
            (10 ** (-50 / 20) * rng.standard_normal(4 * SR)).astype(np.float32),  # -50 dBFS hiss
            (10 ** (-30 / 20) * rng.standard_normal(2 * SR)).astype(np.float32),  # -30 dBFS noise
        ]
    )
    calls = []

    class Spy:
        def transcribe(self, audio, prompt, prefix=""):
            calls.append(len(audio))
            return recognizer.transcribe(audio, prompt, prefix)

    policy = StreamingAsrPolicy(Spy(), AsrConfig())
    words = []
    for i in range(0, len(signal), SR // 10):
        policy.insert_audio(AudioChunk(signal[i : i + SR // 10], i / SR))
        if policy.ready():
            words += policy.process()
    words += policy.finish()
    assert words == []
    assert calls == []  # the VAD gate never even asked whisper


def test_worker_on_a_file_replayed_clock_stopped(recognizer, jfk):
    _, reference = jfk
    timeline = ReplayTimeline("clock-stopped", ManualClock(10.0))
    source = AudioFileSource(
        DATA / "jfk.flac", timeline, ReplayConfig(mode="clock-stopped", audio_block_s=0.1)
    )
    worker = AsrWorker(
        AsrConfig(),
        timeline.clock,
        reader=source.open_reader("asr"),
        recognizer=recognizer,
        timeline=timeline,
    )
    worker.start()
    source.start()
    assert source.wait_ended(120.0)
    assert worker.wait_idle(30.0)
    worker.stop()
    source.stop()
    words = worker.transcript()
    assert word_error_rate(reference, worker.text()) <= WER_MAX, worker.text()
    assert all(10.0 <= w.start and w.committed_at <= 21.0 + 1e-6 for w in words)
    stats = worker.stats()
    assert stats.dropped_s == 0 and stats.committed_words == len(words) and stats.latency_p50_s is not None
    assert not [t.name for t in threading.enumerate() if t.name.startswith(("asr:", "audio-file:"))]
