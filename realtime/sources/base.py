"""The ``Source`` ABC: one daemon thread owns one device (camera, microphone, file, URL).

Modelled on LeRobot's cameras. ``start()`` launches the thread, which opens the device and reports back;
an open failure is raised from ``start()`` as a :class:`DeviceError`. After that the thread keeps
delivering until ``stop()`` (an Event plus a join with a timeout), the end of a file (status ``ended``),
or an unrecoverable error (status ``failed``). Devices that disappear are reopened with exponential
backoff while the status reads ``reconnecting``. Counters are exposed as an immutable
:class:`SourceStats` snapshot that a dashboard can render without touching the thread.

Thread ownership: every call into the device library (cv2.VideoCapture, PyAudio, the ffmpeg subprocess)
happens on the source's own thread (PyAudio's callback runs on PortAudio's thread and only writes to the
ring buffer). Consumers only ever read finished items under a lock.
"""

from __future__ import annotations

import collections
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from model.errors import ConfigError, DeviceError
from realtime.clock import Clock

log = logging.getLogger(__name__)


class SourceStatus(str, Enum):
    IDLE = "idle"  # constructed, never started
    STARTING = "starting"  # thread is opening the device
    RUNNING = "running"  # delivering items
    RECONNECTING = "reconnecting"  # device vanished; retrying with backoff (see message)
    ENDED = "ended"  # a file/stream reached its end (not looping)
    STOPPED = "stopped"  # stop() was called
    FAILED = "failed"  # unrecoverable error (see message)


@dataclass(frozen=True)
class SourceStats:
    """Snapshot of one source for the dashboard and the event log (never mutated after creation).

    ``delivered``: frames, or audio blocks written to the ring. ``dropped``: frames replaced before anyone
    read them (drop-oldest latest-frame slot), or audio samples lost by a reader whose ring overflowed.
    ``overflow``: overflow events (ring full, PortAudio input overflow). ``skipped``: frames discarded by
    the frame-rate cap. ``rate_hz``: measured delivery rate over the last few seconds.
    """

    name: str
    kind: str
    status: SourceStatus
    message: str
    delivered: int = 0
    dropped: int = 0
    overflow: int = 0
    reconnects: int = 0
    skipped: int = 0
    last_t: float | None = None
    rate_hz: float = 0.0
    extra: Mapping[str, float] = field(default_factory=dict)


def validate_backoff(initial: float, maximum: float, where: str) -> None:
    if initial <= 0 or maximum < initial:
        raise ConfigError(
            f"{where}: backoff must satisfy 0 < backoff_initial_s <= backoff_max_s (got {initial}, {maximum})"
        )


class Source(ABC):
    """A device owned by one daemon thread. Subclasses implement ``_run`` and call ``_mark_ready()`` once
    the device is open (or raise DeviceError before that)."""

    kind: str = "source"

    def __init__(self, name: str, clock: Clock, start_timeout_s: float = 15.0) -> None:
        self.name = name
        self.clock = clock
        self.start_timeout_s = start_timeout_s
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._ready = threading.Event()
        self._ended = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self._status = SourceStatus.IDLE
        self._message = ""
        self._delivered = 0
        self._dropped = 0
        self._overflow = 0
        self._reconnects = 0
        self._skipped = 0
        self._last_t: float | None = None
        self._recent: collections.deque[float] = collections.deque(maxlen=64)

    # ---- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread and wait until the device is open. Raises DeviceError if it cannot be opened."""
        if self._thread is not None and self._thread.is_alive():
            raise DeviceError(f"{self.kind} '{self.name}' is already running; stop() it before start()")
        self._stop_event.clear()
        self._ready.clear()
        self._ended.clear()
        self._start_error = None
        self._set_status(SourceStatus.STARTING, "opening")
        self._thread = threading.Thread(
            target=self._thread_main, name=f"{self.kind}:{self.name}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(self.start_timeout_s):
            self.stop(timeout=1.0)
            raise DeviceError(
                f"{self.kind} '{self.name}' did not open within {self.start_timeout_s:.0f} s; "
                "check that the device/URL answers, or raise start_timeout_s"
            )
        if self._start_error is not None:
            self._thread.join(timeout=2.0)
            err = self._start_error
            if isinstance(err, DeviceError):
                raise err
            raise DeviceError(f"{self.kind} '{self.name}' failed to start: {err}") from err

    def stop(self, timeout: float = 3.0) -> bool:
        """Signal the thread to stop and join it; True if it ended within ``timeout`` seconds."""
        self._stop_event.set()
        self._on_stop_requested()
        thread = self._thread
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(timeout)
        alive = thread.is_alive()
        if alive:
            log.warning(
                "%s '%s' did not stop within %.1f s (still blocked in the device)",
                self.kind,
                self.name,
                timeout,
            )
        return not alive

    def _on_stop_requested(self) -> None:  # noqa: B027 - optional hook
        """Hook: wake anything the thread may be blocked on (subclasses override)."""

    @property
    def is_running(self) -> bool:
        """The thread is alive and no stop was requested."""
        t = self._thread
        return t is not None and t.is_alive() and not self._stop_event.is_set()

    @property
    def ended(self) -> bool:
        """True once a file/stream delivered its last item (never for live devices)."""
        return self._ended.is_set()

    def wait_ended(self, timeout: float | None = None) -> bool:
        return self._ended.wait(timeout)

    def __enter__(self) -> Source:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _thread_main(self) -> None:
        try:
            self._run()
        except DeviceError as exc:
            if not self._ready.is_set():
                self._start_error = exc
            else:
                log.error("%s '%s' failed: %s", self.kind, self.name, exc)
            self._set_status(SourceStatus.FAILED, str(exc))
        except Exception as exc:  # a bug or an unexpected library error: keep the traceback in the log
            log.exception("%s '%s' crashed", self.kind, self.name)
            if not self._ready.is_set():
                self._start_error = exc
            self._set_status(SourceStatus.FAILED, f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                if self._status not in (SourceStatus.FAILED, SourceStatus.ENDED):
                    self._status, self._message = SourceStatus.STOPPED, "stopped"
            self._ready.set()
            self._wake_readers()

    @abstractmethod
    def _run(self) -> None:
        """Open the device, call ``_mark_ready()``, deliver until ``self._stop_event`` is set."""

    def _wake_readers(self) -> None:  # noqa: B027 - optional hook
        """Hook: wake consumers blocked in a wait (subclasses override)."""

    # ---- helpers for subclasses ---------------------------------------------------------------------------
    def _mark_ready(self) -> None:
        self._set_status(SourceStatus.RUNNING, "")
        self._ready.set()

    def _mark_ended(self, message: str = "end of stream") -> None:
        self._set_status(SourceStatus.ENDED, message)
        self._ended.set()
        self._wake_readers()

    def _set_status(self, status: SourceStatus, message: str = "") -> None:
        with self._lock:
            changed = status != self._status
            self._status, self._message = status, message
        if changed:
            level = (
                logging.WARNING
                if status in (SourceStatus.RECONNECTING, SourceStatus.FAILED)
                else logging.INFO
            )
            log.log(
                level, "%s '%s': %s%s", self.kind, self.name, status.value, f" ({message})" if message else ""
            )

    def _count_delivered(self, t: float) -> None:
        """Call with the lock NOT held."""
        with self._lock:
            self._delivered += 1
            self._last_t = t
            self._recent.append(self.clock.now())

    @property
    def status(self) -> SourceStatus:
        with self._lock:
            return self._status

    @property
    def status_message(self) -> str:
        with self._lock:
            return self._message

    def _extra_stats(self) -> dict[str, float]:
        return {}

    def stats(self) -> SourceStats:
        """A consistent snapshot of status and counters (cheap; safe from any thread)."""
        extra = self._extra_stats()
        with self._lock:
            rate = 0.0
            if len(self._recent) >= 2 and self._recent[-1] > self._recent[0]:
                rate = (len(self._recent) - 1) / (self._recent[-1] - self._recent[0])
            return SourceStats(
                name=self.name,
                kind=self.kind,
                status=self._status,
                message=self._message,
                delivered=self._delivered,
                dropped=self._dropped,
                overflow=self._overflow,
                reconnects=self._reconnects,
                skipped=self._skipped,
                last_t=self._last_t,
                rate_hz=rate,
                extra=extra,
            )
