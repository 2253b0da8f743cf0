"""Camera source on real OpenCV paths: an mp4 file written here, and an MJPEG-over-HTTP stream served on
127.0.0.1 by the test (the lowest layer standing in for a webcam / network camera)."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
from helpers_monitor import MjpegServer, wait_for

from model.errors import ConfigError, DeviceError
from realtime.clock import ManualClock, MonotonicClock
from realtime.sources import CameraConfig, CameraSource, ReplayConfig, ReplayTimeline, SourceStatus

cv2 = pytest.importorskip("cv2")


def source_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("camera:")]


def write_video(path, n: int, fps: float, size=(64, 48)):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert w.isOpened()
    for k in range(n):
        w.write(np.full((size[1], size[0], 3), (k * 12) % 240, dtype=np.uint8))
    w.release()
    return path


def test_file_clock_stopped_delivers_every_frame_on_media_time(tmp_path):
    video = write_video(tmp_path / "a.mp4", n=15, fps=10.0)
    timeline = ReplayTimeline("clock-stopped", ManualClock(50.0))
    cam = CameraSource(
        CameraConfig(source=str(video), max_fps=0),
        timeline.clock,
        timeline=timeline,
        replay=ReplayConfig(mode="clock-stopped"),
    )
    cam.start()
    frames = []
    while (f := cam.wait_next(timeout=5.0)) is not None:
        frames.append(f)
    assert cam.wait_ended(2.0) and cam.status is SourceStatus.ENDED
    assert [round(f.t - 50.0, 6) for f in frames] == [round(k / 10.0, 6) for k in range(15)]
    levels = [int(f.image.mean()) for f in frames]
    assert levels == sorted(levels) and levels[-1] - levels[0] > 100  # frames in file order (mp4v is lossy)
    stats = cam.stats()
    assert (stats.delivered, stats.dropped, stats.skipped) == (15, 0, 0)
    assert cam.stop()
    assert not source_threads()


def test_file_max_fps_cap_skips_frames(tmp_path):
    video = write_video(tmp_path / "b.mp4", n=30, fps=30.0)
    timeline = ReplayTimeline("clock-stopped")
    cam = CameraSource(CameraConfig(source=str(video), max_fps=15), timeline.clock, timeline=timeline)
    cam.start()
    frames = []
    while (f := cam.wait_next(timeout=5.0)) is not None:
        frames.append(f)
    cam.stop()
    stats = cam.stats()
    assert len(frames) == 15 and stats.skipped == 15
    gaps = np.diff([f.t for f in frames])
    assert np.allclose(gaps, 2 / 30.0)


def test_latest_slot_drops_oldest_and_honours_max_age(tmp_path):
    video = write_video(tmp_path / "c.mp4", n=20, fps=20.0)
    clock = MonotonicClock()
    cam = CameraSource(
        CameraConfig(source=str(video), max_fps=0), clock, timeline=ReplayTimeline("fast", clock)
    )
    cam.start()
    assert cam.wait_ended(10.0)
    newest = cam.read_latest()
    assert newest is not None and newest.index == 20
    stats = cam.stats()
    assert stats.delivered == 20 and stats.dropped == 19  # nobody read: every replaced frame counted
    time.sleep(0.2)
    # the frame's timestamp is media time (≤ 0.95 s after the start): max_age filters it out once stale
    assert cam.read_latest(max_age=10.0) is not None
    stale_after = newest.t + 0.05
    assert clock.now() > stale_after or wait_for(lambda: clock.now() > stale_after, 2.0)
    assert cam.read_latest(max_age=0.01) is None
    cam.stop()
    assert not source_threads()


def test_open_errors_are_actionable(tmp_path):
    clock = MonotonicClock()
    with pytest.raises(DeviceError, match="does not exist"):
        CameraSource(CameraConfig(source=str(tmp_path / "nope.mp4")), clock).start()
    with pytest.raises(DeviceError, match=r"camera device 9 cannot be opened.*--camera"):
        CameraSource(CameraConfig(source="9"), clock).start()
    with socket.socket() as s:  # a free port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/stream.mjpg"
    with pytest.raises(DeviceError, match=rf"stream {url} cannot be opened"):
        CameraSource(CameraConfig(source=url, open_timeout_s=2.0), clock).start()
    with pytest.raises(ConfigError):
        CameraConfig(source="0", backoff_initial_s=5.0, backoff_max_s=1.0)
    assert not source_threads()


# ---- MJPEG over HTTP ---------------------------------------------------------------------------------------
def camera_server(port: int = 0, level: int = 80) -> MjpegServer:
    """An MJPEG camera on 127.0.0.1:port whose 64×48 frames have brightness ``level`` and a digit."""

    def part(k: int) -> bytes:
        img = np.full((48, 64, 3), level, dtype=np.uint8)
        cv2.putText(img, str(k % 10), (20, 35), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255))
        return cv2.imencode(".jpg", img)[1].tobytes()

    return MjpegServer(port=port, fps=20.0, part=part)


def test_mjpeg_stream_survives_the_server_going_away(tmp_path):
    server = camera_server(level=60)
    url, port = server.url, server.port
    cam = CameraSource(
        CameraConfig(
            source=url,
            max_fps=0,
            open_timeout_s=3.0,
            read_timeout_s=1.0,
            backoff_initial_s=0.2,
            backoff_max_s=1.0,
        ),
        MonotonicClock(),
    )
    try:
        cam.start()
        first = cam.wait_next(timeout=5.0)
        assert first is not None and first.image.shape == (48, 64, 3)
        assert abs(float(first.image.mean()) - 60) < 30
        assert wait_for(lambda: cam.stats().delivered >= 5, 5.0)

        server.close()  # the network camera disappears
        assert wait_for(lambda: cam.status is SourceStatus.RECONNECTING, 10.0)
        assert "lost" in cam.status_message and url in cam.status_message
        time.sleep(1.0)
        assert cam.is_running  # no crash while it is gone

        server = camera_server(port=port, level=200)  # … and comes back on the same address
        assert wait_for(lambda: cam.status is SourceStatus.RUNNING, 15.0)
        last = cam.stats().delivered
        assert wait_for(lambda: cam.stats().delivered > last + 3, 5.0)
        frame = cam.read_latest(max_age=2.0)
        assert frame is not None and float(frame.image.mean()) > 150  # frames of the new server
        assert cam.stats().reconnects >= 1
    finally:
        assert cam.stop(timeout=5.0)
        server.close()
    assert not source_threads()
