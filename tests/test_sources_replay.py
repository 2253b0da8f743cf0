"""Audio ring (multi-reader, overflow, drift-free timestamps), audio-file replay and the replay modes."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from model.errors import ConfigError, DeviceError
from realtime.clock import ManualClock
from realtime.sources import (
    AudioFileSource,
    AudioRing,
    CameraConfig,
    CameraSource,
    ReplayConfig,
    ReplayTimeline,
    SourceStatus,
)

SR = 16000


def no_source_threads() -> list[str]:
    prefixes = ("camera:", "microphone:", "audio-file:", "asr:")
    return [t.name for t in threading.enumerate() if t.name.startswith(prefixes)]


@pytest.fixture()
def tone_wav(tmp_path):
    t = np.arange(int(2.0 * SR)) / SR
    x = (0.4 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    path = tmp_path / "tone.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    return path, x


def test_ring_readers_are_independent_and_overflow_is_counted():
    ring = AudioRing(capacity_s=1.0, sample_rate=SR)
    fast, slow = ring.open_reader("fast"), ring.open_reader("slow")
    signal = np.arange(3 * SR, dtype=np.float32) / (3 * SR)
    got = []
    for i in range(0, len(signal), 800):
        ring.write(signal[i : i + 800], t_first=i / SR)
        got.append(fast.read())
    fast_all = np.concatenate([c.samples for c in got])
    np.testing.assert_array_equal(fast_all, signal)  # the fast reader lost nothing
    assert fast.dropped_samples == 0 and fast.overflow_events == 0
    late = slow.read()
    assert slow.dropped_samples == 2 * SR  # 3 s written into a 1 s ring: the oldest 2 s are gone
    assert slow.overflow_events > 0
    assert late is not None and len(late.samples) == SR
    np.testing.assert_array_equal(late.samples, signal[-SR:])
    assert late.t == pytest.approx(2.0)


def test_ring_timestamps_ignore_jitter_and_resync_on_jumps():
    ring = AudioRing(capacity_s=10.0, sample_rate=SR, resync_tolerance_s=0.1)
    reader = ring.open_reader("r")
    jitter = np.random.default_rng(0).uniform(0, 0.03, size=20)
    block = 1024
    for k in range(20):  # callback times jitter by up to 30 ms: timestamps must follow the sample count
        ring.write(np.zeros(block, np.float32), t_first=5.0 + k * block / SR + jitter[k])
    chunk = reader.read()
    assert chunk is not None and len(chunk.samples) == 20 * block  # one contiguous stretch, no resync
    assert chunk.t == pytest.approx(5.0 + jitter[0])  # anchored once, then sample count only
    assert ring.resyncs == 0
    t_first = chunk.t
    # a device stall: the next block really starts 0.5 s later than the count predicts
    ring.write(np.zeros(block, np.float32), t_first=t_first + 20 * block / SR + 0.5)
    ring.write(np.zeros(block, np.float32), t_first=t_first + 21 * block / SR + 0.5)
    after = reader.read()
    assert ring.resyncs == 1
    assert after is not None and after.t == pytest.approx(t_first + 20 * block / SR + 0.5)
    assert len(after.samples) == 2 * block


def test_ring_reader_reads_do_not_span_two_anchors():
    ring = AudioRing(capacity_s=5.0, sample_rate=SR, resync_tolerance_s=0.05)
    r = ring.open_reader("r")
    ring.write(np.ones(SR // 2, np.float32), 0.0)
    ring.write(np.ones(SR // 2, np.float32), 2.0)  # jump of 1.5 s
    a, b = r.read(), r.read()
    assert (a.t, len(a.samples)) == (0.0, SR // 2)
    assert (b.t, len(b.samples)) == (2.0, SR // 2)


def read_all(source, timeline: ReplayTimeline, timeout: float = 20.0):
    chunks, clock_at_read = [], []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = source.wait_read(0.5)
        if c is not None:
            chunks.append(c)
            clock_at_read.append(timeline.clock.now())
        elif source.ended and source.read() is None:
            break
    return chunks, clock_at_read


def test_clock_stopped_audio_replay_is_deterministic(tone_wav):
    path, x = tone_wav
    runs = []
    for _ in range(2):
        timeline = ReplayTimeline("clock-stopped", ManualClock(100.0))
        src = AudioFileSource(path, timeline, ReplayConfig(mode="clock-stopped", audio_block_s=0.1))
        src.start()
        chunks, clock_at_read = read_all(src, timeline)
        assert src.wait_ended(5.0)
        assert src.stop()
        runs.append([(round(c.t, 9), len(c.samples)) for c in chunks])
        samples = np.concatenate([c.samples for c in chunks])
        np.testing.assert_allclose(samples, x, atol=1e-6)  # every sample, in order
        # timestamps as if in real time: media time + the clock at the start, contiguous
        assert chunks[0].t == pytest.approx(100.0)
        for a, b in itertools.pairwise(chunks):
            assert b.t == pytest.approx(a.t_end, abs=1e-9)
        # each block is handed out once the clock reached its last sample, never before
        for c, now in zip(chunks, clock_at_read, strict=True):
            assert now >= c.t_end - 1e-9
        assert timeline.clock.now() == pytest.approx(102.0)
        assert src.status is SourceStatus.ENDED
    assert runs[0] == runs[1]
    assert len(runs[0]) == 20  # 2 s in 0.1 s blocks, one per clock step
    assert not no_source_threads()


def test_realtime_replay_paces_by_wall_clock(tone_wav):
    path, _ = tone_wav
    timeline = ReplayTimeline("realtime")
    src = AudioFileSource(path, timeline, ReplayConfig(audio_block_s=0.05))
    t0 = time.monotonic()
    src.start()
    chunks, _ = read_all(src, timeline)
    elapsed = time.monotonic() - t0
    src.stop()
    assert sum(len(c.samples) for c in chunks) == 2 * SR
    assert elapsed >= 1.9  # a 2 s file cannot finish earlier in real time (no upper bound: shared CPUs)
    assert chunks[-1].t_end == pytest.approx(timeline.to_clock(2.0), abs=1e-6)


def test_fast_replay_keeps_media_timestamps(tone_wav):
    path, _ = tone_wav
    timeline = ReplayTimeline("fast")
    src = AudioFileSource(path, timeline, ReplayConfig(mode="fast", audio_block_s=0.1))
    reader = src.open_reader("all")
    src.start()
    assert src.wait_ended(10.0)
    src.stop()
    chunks = []
    while (c := reader.read(max_seconds=0.5)) is not None:
        chunks.append(c)
    assert sum(len(c.samples) for c in chunks) == 2 * SR
    assert chunks[0].t == pytest.approx(timeline.to_clock(0.0))
    assert chunks[-1].t_end == pytest.approx(timeline.to_clock(2.0))


def test_audio_file_errors(tmp_path):
    timeline = ReplayTimeline("fast")
    with pytest.raises(DeviceError, match="does not exist"):
        AudioFileSource(tmp_path / "missing.wav", timeline).start()
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(DeviceError, match=r"no audio|cannot decode|ffmpeg"):
        AudioFileSource(bad, timeline).start()
    with pytest.raises(ConfigError):
        ReplayConfig(mode="slow-motion")  # type: ignore[arg-type]
    assert not no_source_threads()


def write_video(path, n: int, fps: float, size=(64, 48)):
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert w.isOpened()
    for k in range(n):
        img = np.full((size[1], size[0], 3), (k * 10) % 250, dtype=np.uint8)
        w.write(img)
    w.release()
    return path


def test_camera_and_audio_files_share_one_clock_stopped_timeline(tmp_path, tone_wav):
    """One consumer thread per source (as in the pipeline); the clock waits for both."""
    wav, _ = tone_wav
    video = write_video(tmp_path / "clip.mp4", n=20, fps=10.0)
    timeline = ReplayTimeline("clock-stopped", ManualClock(0.0))
    cfg = ReplayConfig(mode="clock-stopped", audio_block_s=0.05)
    cam = CameraSource(
        CameraConfig(source=str(video), max_fps=0), timeline.clock, timeline=timeline, replay=cfg
    )
    mic = AudioFileSource(wav, timeline, cfg)
    frames: list[tuple[float, float]] = []
    chunks: list[tuple[float, float, float]] = []

    def take_frames() -> None:
        while (f := cam.wait_next(timeout=5.0)) is not None:
            frames.append((f.t, timeline.clock.now()))

    def take_audio() -> None:
        reader = mic.open_reader("consumer")
        while not reader.exhausted:
            c = reader.read_wait(0.5)
            if c is not None:
                chunks.append((c.t, c.t_end, timeline.clock.now()))

    consumers = [threading.Thread(target=take_frames), threading.Thread(target=take_audio)]
    mic.start()
    for th in consumers:
        th.start()
    time.sleep(0.2)  # the camera starts late: the clock must not have moved without it
    assert timeline.clock.now() == 0.0
    cam.start()
    for th in consumers:
        th.join(20.0)
    cam.stop()
    mic.stop()
    assert [round(t, 6) for t, _ in frames] == [round(k / 10.0, 6) for k in range(20)]
    for t, now in frames:
        assert now == pytest.approx(t)  # handed out exactly when the shared clock reached it
    assert chunks[0][0] == 0.0 and chunks[-1][1] == pytest.approx(2.0)
    for (_, end, _), (nxt, _, _) in itertools.pairwise(chunks):
        assert nxt == pytest.approx(end)  # contiguous audio
    for _, end, now in chunks:
        assert now == pytest.approx(end)  # audio is in step with the same clock as the video
    assert timeline.stalls == 0
    assert not no_source_threads()
