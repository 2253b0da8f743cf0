"""The one thread scaffolding every pipeline stage shares (face, voice, ASR and text workers).

It lives beside ``clock`` and ``types`` (not in ``realtime.pipeline``) because ``realtime.asr`` builds on it
and ``realtime.pipeline`` imports ``realtime.asr``.

A :class:`Stage` owns one daemon thread named ``kind:name``:

* ``start()`` clears the events, registers the stage's idle check with a clock-stopped replay timeline
  (once, before the thread runs, so a replay also waits for the model load), starts the thread and waits
  until ``_load()`` (run on the thread: MediaPipe, whisper and ONNX sessions belong to the thread that
  made them) has finished; a load error is raised here, in the caller's thread. What native libraries
  write to stderr while loading is routed into logging (``realtime.native_log``; shown with ``-v``).
* ``stop()`` sets the stop Event, unregisters the idle check, wakes the thread (``_wake()``) and joins it
  with a timeout; True when it ended in time. Idempotent.
* ``_main`` runs ``_loop()``; an exception there is a bug: logged with its traceback, the status reads
  ``failed``, the process goes on. ``_unload()`` runs on the thread after the loop.
* ``finish_input()``: called at the end of a replay, before the last window, so the stage hands out what
  it still holds (the voice worker's last step, the ASR's pending words, their embeddings).

Status strings: ``idle | starting | running | ended | stopped | failed`` (the ASR adds ``behind`` in its
stats). Subclasses provide ``_load``/``_loop``/``_unload``/``_wake``, ``is_idle()`` (nothing delivered to
it is still unprocessed) and ``stats()`` (a frozen dataclass for the snapshot).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from model.errors import MmclError
from realtime.clock import Clock
from realtime.native_log import native_stderr_to_log
from realtime.sources.replay import ReplayMode, ReplayTimeline

log = logging.getLogger(__name__)


class Stage:
    kind = "stage"
    label = ""  # how messages name it ("ASR"); defaults to ``kind``
    loading_message = "loading"  # the status message while ``_load()`` runs
    stop_timeout_s = 5.0  # default join timeout of ``stop()``
    min_stop_timeout_s = 0.0  # the pipeline never gives this stage less (the ASR commits at stop)

    def __init__(self, name: str, clock: Clock, timeline: ReplayTimeline | None) -> None:
        self.name = name
        self.clock = clock
        # only a clock-stopped replay waits for consumers; other modes need neither checks nor notifications
        self.timeline = timeline if timeline is not None and timeline.mode is ReplayMode.CLOCK_STOPPED else None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self._status, self._message = "idle", ""
        self._busy = False

    @property
    def idle_check_name(self) -> str:
        return f"{self.kind}:{self.name}"

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> None:
        """Start the thread and wait until ``_load()`` finished (its errors are raised here)."""
        what = self.label or self.kind
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"{what} worker {self.name} already running")
        self._stop.clear()
        self._ready.clear()
        self._start_error = None
        self._set_status("starting", self.loading_message)
        if self.timeline is not None:
            self.timeline.add_idle_check(self.idle_check_name, self.is_idle)
        self._thread = threading.Thread(target=self._main, name=f"{self.kind}:{self.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop(1.0)
            raise MmclError(f"the {what} worker did not load within {timeout:.0f} s")
        if self._start_error is not None:
            self._thread.join(2.0)
            if self.timeline is not None:
                self.timeline.remove_idle_check(self.idle_check_name)
            raise self._start_error

    def stop(self, timeout: float | None = None) -> bool:
        timeout = self.stop_timeout_s if timeout is None else timeout
        self._stop.set()
        if self.timeline is not None:
            self.timeline.remove_idle_check(self.idle_check_name)
        self._wake()
        t = self._thread
        if t is None:
            return True
        if t is not threading.current_thread():
            t.join(timeout)
        if t.is_alive():
            log.warning("%s worker %s did not stop within %.1f s", self.label or self.kind, self.name, timeout)
        return not t.is_alive()

    def finish_input(self, stop: threading.Event) -> None:
        """End of a replay: hand out what is still held (default: nothing to do)."""

    @property
    def is_running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive() and not self._stop.is_set()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    def _stopped_or_dead(self) -> bool:
        """A stopped or crashed stage counts as idle: it must never hold a replay's clock."""
        t = self._thread
        return self._stop.is_set() or (t is not None and not t.is_alive())

    # ---- thread --------------------------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            with native_stderr_to_log():  # MediaPipe/TFLite C++ log lines: into logging, off the screen
                self._load()
        except BaseException as exc:
            self._start_error = exc
            self._set_status("failed", str(exc))
            self._ready.set()
            return
        self._set_status("running")
        self._ready.set()
        try:
            self._loop()
        except Exception as exc:  # a bug: keep the traceback, show the status, never kill the process
            log.exception("%s worker %s crashed", self.label or self.kind, self.name)
            self._set_status("failed", f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._busy = False
                if self._status not in ("failed", "ended"):
                    self._status, self._message = "stopped", ""
            self._unload()

    def _set_status(self, status: str, message: str = "") -> None:
        with self._lock:
            self._status, self._message = status, message

    def _notify_timeline(self) -> None:
        if self.timeline is not None:
            self.timeline.notify()

    def _wait_while(self, busy: Any, stop: threading.Event, timeout_s: float) -> None:
        """Poll ``busy()`` until it is False, ``stop`` is set or ``timeout_s`` passed (wall time)."""
        deadline = time.monotonic() + timeout_s
        while busy() and time.monotonic() < deadline:
            if stop.wait(0.01):
                return

    # ---- subclass hooks ------------------------------------------------------------------------------------
    def _load(self) -> None: ...
    def _unload(self) -> None: ...
    def _loop(self) -> None: ...
    def _wake(self) -> None: ...

    def is_idle(self) -> bool:
        return True

    def stats(self) -> Any:
        raise NotImplementedError
