"""OpenCV camera source: a device index, a video file, or a network stream (MJPEG over HTTP, RTSP, ...).

One daemon thread owns the ``cv2.VideoCapture``. The newest :class:`Frame` sits in a latest-frame slot
(drop-oldest: a frame replaced before anyone read it counts as ``dropped``). Consumers either poll
``read_latest(max_age)`` or block in ``wait_next(timeout)`` for every new frame.

* Devices and URLs: frames are stamped with the clock time at which ``read()`` returned them (the
  driver's own buffering latency is not known and not subtracted). When the device or stream goes away
  the status becomes ``reconnecting`` and the thread reopens it with exponential backoff.
* Files: frames are paced by the file's frame rate through a :class:`ReplayTimeline` (realtime,
  clock-stopped or fast) and stamped ``t0 + frame_index / fps``; at the end the status becomes ``ended``
  (or the file restarts when ``loop`` is set).
* ``max_fps`` caps the delivered rate; frames over the cap are read and discarded (``skipped``).
* Devices and URLs: a frame that fails to decode (a garbled JPEG in an MJPEG stream) is skipped and
  counted (``corrupt_frames``); only ``LOST_AFTER_BAD_READS`` failed reads in a row, or no frame for
  ``read_timeout_s``, count as the device being gone.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.errors import ConfigError, DeviceError
from realtime.clock import Clock
from realtime.sources.base import Source, SourceStatus, validate_backoff
from realtime.sources.replay import ReplayConfig, ReplayMode, ReplayTimeline, is_url
from realtime.types import Frame

log = logging.getLogger(__name__)

LOST_AFTER_BAD_READS = 5  # consecutive failed reads (or read_timeout_s without a frame) = device/stream lost


@dataclass
class CameraConfig:
    source: str = "0"  # device index ("0"), a video file path, or a stream URL (http://…, rtsp://…)
    max_fps: float = 15.0  # cap on delivered frames per second (0 = no cap)
    width: int = 0  # devices: requested capture size (0 = driver default)
    height: int = 0
    reconnect: bool = True  # devices/URLs: reopen after the device vanishes
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    open_timeout_s: float = 5.0  # URLs: give up opening after this long
    read_timeout_s: float = 3.0  # URLs: a read blocked this long means the stream is gone

    def __post_init__(self) -> None:
        self.source = str(self.source).strip()
        if not self.source:
            raise ConfigError("camera.source is empty: give a device index (0), a video file or a URL")
        if self.max_fps < 0:
            raise ConfigError(f"camera.max_fps must be >= 0 (0 = no cap), got {self.max_fps}")
        if self.width < 0 or self.height < 0:
            raise ConfigError("camera.width/height must be >= 0 (0 = driver default)")
        validate_backoff(self.backoff_initial_s, self.backoff_max_s, "camera")
        if self.open_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ConfigError("camera.open_timeout_s and camera.read_timeout_s must be > 0")

    @property
    def source_kind(self) -> str:
        """'device', 'url' or 'file'."""
        if self.source.isdigit():
            return "device"
        if is_url(self.source):
            return "url"
        return "file"


class CameraSource(Source):
    kind = "camera"

    def __init__(
        self,
        config: CameraConfig,
        clock: Clock,
        timeline: ReplayTimeline | None = None,
        replay: ReplayConfig | None = None,
        name: str = "camera",
    ) -> None:
        if config.source_kind == "file" and timeline is None:
            timeline = ReplayTimeline("realtime", clock)
        if timeline is not None:
            clock = timeline.clock
        super().__init__(name, clock, start_timeout_s=config.open_timeout_s + 10.0)
        self.config = config
        self.timeline = timeline
        self.replay = replay or ReplayConfig(mode=timeline.mode.value if timeline else "realtime")
        self._frame_cond = threading.Condition()
        self._latest: Frame | None = None
        self._latest_taken = True
        self._last_returned = -1
        self._has_reader = False
        self._seq = 0
        self._corrupt = 0  # devices/URLs: frames that failed to decode and were skipped
        self.fps = 0.0
        self.frame_size: tuple[int, int] | None = None
        # files: registered now, so a clock-stopped replay does not move before this source runs
        self._participant = timeline.participant(name) if config.source_kind == "file" and timeline else None

    def start(self) -> None:
        if self._participant is not None and self._participant.finished and self.timeline is not None:
            self._participant = self.timeline.participant(self.name)
        super().start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the thread; the default timeout covers a read blocked on a silent stream."""
        return super().stop(self.config.read_timeout_s + 2.0 if timeout is None else timeout)

    # ---- consumer side -------------------------------------------------------------------------------------
    def read_latest(self, max_age: float | None = None) -> Frame | None:
        """The newest frame, or None if there is none or it is older than ``max_age`` seconds. Polling
        readers do not hold a clock-stopped replay (only ``wait_next`` readers do)."""
        with self._frame_cond:
            f = self._latest
            if f is None or (max_age is not None and self.clock.now() - f.t > max_age):
                return None
            self._latest_taken = True
            self._last_returned = f.index
            return f

    def wait_next(self, timeout: float | None = None, after: int | None = None) -> Frame | None:
        """Block until a frame newer than ``after`` (default: the last one returned) arrives; None on
        timeout, stop or end of stream. Frames that were replaced in between are counted as dropped. Once
        a consumer waits here, a clock-stopped replay (``wait_for_readers``) waits for it to take every
        frame."""
        with self._frame_cond:
            self._has_reader = True
            last = self._last_returned if after is None else after

            def ready() -> bool:
                return (self._latest is not None and self._latest.index > last) or self._finished()

            self._frame_cond.wait_for(ready, timeout)
            f = self._latest
            if f is None or f.index <= last:
                return None
            self._latest_taken = True
            self._last_returned = f.index
            return f

    def _finished(self) -> bool:
        """Stopped, ended or crashed (False before the first start: consumers may wait for it)."""
        t = self._thread
        return self._stop_event.is_set() or self._ended.is_set() or (t is not None and not t.is_alive())

    def _wake_readers(self) -> None:
        with self._frame_cond:
            self._frame_cond.notify_all()

    def _slot_taken(self) -> bool:
        """clock-stopped: the newest frame was taken by a ``wait_next`` reader; until the first such
        reader arrives the replay waits for it (frames are not raced past a consumer still starting)."""
        with self._frame_cond:
            return self._has_reader and self._latest_taken

    def _extra_stats(self) -> dict[str, float]:
        return {"source_fps": self.fps, "corrupt_frames": float(self._corrupt)}

    # ---- device thread -------------------------------------------------------------------------------------
    def _deliver(self, image: Any, t: float) -> None:
        with self._frame_cond:
            if self._latest is not None and not self._latest_taken:
                with self._lock:
                    self._dropped += 1
            self._seq += 1
            self._latest = Frame(image=image, t=t, index=self._seq)
            self._latest_taken = False
            self._frame_cond.notify_all()
        self._count_delivered(t)

    def _describe(self) -> str:
        kind = self.config.source_kind
        return {"device": f"camera device {self.config.source}", "url": f"stream {self.config.source}"}.get(
            kind, f"video file {self.config.source}"
        )

    def _try_open(self) -> Any | None:
        import cv2

        cfg = self.config
        kind = cfg.source_kind
        if kind == "device":
            cap = cv2.VideoCapture(int(cfg.source))
            if cap.isOpened():
                if cfg.width and cfg.height:
                    cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
                    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
                if cfg.max_fps:
                    cap.set(cv2.CAP_PROP_FPS, cfg.max_fps)
        elif kind == "url":
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(cfg.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(cfg.read_timeout_s * 1000),
            ]
            cap = cv2.VideoCapture(cfg.source, cv2.CAP_FFMPEG, params)
        else:
            cap = cv2.VideoCapture(cfg.source)
        if not cap.isOpened():
            cap.release()
            return None
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else 0.0
        return cap

    def _open_error(self) -> DeviceError:
        cfg = self.config
        kind = cfg.source_kind
        if kind == "device":
            return DeviceError(
                f"camera device {cfg.source} cannot be opened: check that a camera is connected "
                f"(ls /dev/video*), that no other program holds it and that you may use it (group 'video'); "
                "or pass --camera PATH (a video file) or --camera URL (MJPEG/RTSP stream)"
            )
        if kind == "url":
            return DeviceError(
                f"stream {cfg.source} cannot be opened within {cfg.open_timeout_s:.0f} s: check the URL, "
                "that the camera/server is reachable from here, and that it serves MJPEG over HTTP or RTSP"
            )
        if not Path(cfg.source).is_file():
            return DeviceError(f"video file {cfg.source} does not exist (or give a device index / URL)")
        return DeviceError(f"video file {cfg.source} cannot be decoded by OpenCV/FFmpeg; try another format")

    def _run(self) -> None:
        try:
            cap = self._try_open()
            if cap is None:
                raise self._open_error()
            if self.config.source_kind == "file":
                self._run_file(cap)
            else:
                self._run_live(cap)
        finally:
            if self._participant is not None:
                self._participant.finish()

    def _run_live(self, cap: Any) -> None:
        cfg = self.config
        min_interval = 1.0 / cfg.max_fps if cfg.max_fps else 0.0
        last_t: float | None = None
        self._mark_ready()
        last_good = self.clock.now()
        bad = 0  # failed reads since the last good frame
        try:
            while not self._stop_event.is_set():
                ok, image = cap.read()
                t = self.clock.now()
                if self._stop_event.is_set():
                    break
                if not ok or image is None:
                    bad += 1
                    # a corrupt frame (a garbled JPEG part) fails one read and the next one works; a gone
                    # device fails every read, a silent stream fails after the read timeout
                    if bad < LOST_AFTER_BAD_READS and t - last_good < cfg.read_timeout_s:
                        continue
                    cap.release()
                    cap = self._reconnect()
                    if cap is None:
                        break
                    bad, last_good = 0, self.clock.now()
                    continue
                if bad:
                    with self._lock:
                        self._corrupt += bad
                    if self._corrupt == bad or self._corrupt % 100 < bad:
                        log.warning("%s: skipped %d corrupt frame(s) (%d so far)", self._describe(), bad,
                                    self._corrupt)  # fmt: skip
                bad, last_good = 0, t
                if min_interval and last_t is not None and t - last_t < min_interval * 0.95:
                    with self._lock:
                        self._skipped += 1
                    continue
                last_t = t
                self.frame_size = (image.shape[1], image.shape[0])
                self._deliver(image, t)
        finally:
            if cap is not None:
                cap.release()

    def _reconnect(self) -> Any | None:
        """Reopen with exponential backoff until it works or stop() is called (None then)."""
        cfg = self.config
        what = self._describe()
        if not cfg.reconnect:
            raise DeviceError(f"{what} stopped delivering frames (reconnect is off)")
        backoff = cfg.backoff_initial_s
        attempt = 0
        while not self._stop_event.is_set():
            attempt += 1
            self._set_status(
                SourceStatus.RECONNECTING, f"{what} lost; attempt {attempt}, next in {backoff:.1f} s"
            )
            if self._stop_event.wait(backoff):
                return None
            cap = self._try_open()
            if cap is not None:
                ok, image = cap.read()
                if ok and image is not None:
                    with self._lock:
                        self._reconnects += 1
                    self._mark_ready()
                    self._deliver(image, self.clock.now())
                    log.info("%s reconnected after %d attempt(s)", what, attempt)
                    return cap
                cap.release()
            backoff = min(backoff * 2.0, cfg.backoff_max_s)
        return None

    def _run_file(self, cap: Any) -> None:
        assert self.timeline is not None
        timeline = self.timeline
        fps = self.fps or 30.0
        if not self.fps:
            log.warning("%s reports no frame rate; assuming 30 fps", self._describe())
        cap_interval = 1.0 / self.config.max_fps if self.config.max_fps else 0.0
        check_name = f"{self.name}:readers"
        if timeline.mode is ReplayMode.CLOCK_STOPPED and self.replay.wait_for_readers:
            timeline.add_idle_check(check_name, self._slot_taken)
        self._mark_ready()
        participant = self._participant
        assert participant is not None
        offset = 0.0
        k = 0
        next_allowed = 0.0
        try:
            while not self._stop_event.is_set():
                ok, image = cap.read()
                if not ok or image is None:
                    if not self.replay.loop or k == 0:
                        self._mark_ended(f"end of {Path(self.config.source).name} after {k} frames")
                        break
                    cap.release()
                    cap = self._try_open()
                    if cap is None:
                        raise self._open_error()
                    offset += k / fps
                    k = 0
                    continue
                media_t = offset + k / fps
                k += 1
                if cap_interval and media_t + 0.5 / fps < next_allowed:
                    with self._lock:
                        self._skipped += 1
                    continue
                next_allowed = max(next_allowed + cap_interval, media_t + 0.5 / fps) if cap_interval else 0.0
                t = timeline.to_clock(media_t)
                if not participant.wait_until(t, self._stop_event):
                    break
                self.frame_size = (image.shape[1], image.shape[0])
                self._deliver(image, t)
        finally:
            timeline.remove_idle_check(check_name)
            if cap is not None:  # None when a looping file could not be reopened
                cap.release()
