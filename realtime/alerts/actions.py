"""Where alerts go besides the logs and the screen: a command and a webhook, each on its own thread.

Both take alerts through ``submit(payload)``, which never blocks: the payload goes into a bounded queue
(when full, the oldest waiting alert is dropped and counted) and a daemon thread delivers it. Every
delivery ends in one result dict (``on_result``) that the runtime writes to the logs:

* ``CommandRunner`` — runs ``argv`` (no shell) in its own process group with the alert JSON on stdin;
  a command still running after ``timeout_s`` is killed (its whole group) and reported as
  ``timed_out``; the exit status is reported either way.
* ``WebhookSender`` — HTTP POST of the alert JSON; a connection error, a timeout or a non-2xx answer is
  retried up to ``retries`` times after ``backoff_s · 2^(k−1)`` s; what still fails is counted in
  ``failed``. Loopback URLs never go through a proxy.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from realtime.alerts.rules import CommandAction, WebhookAction

log = logging.getLogger(__name__)

ResultCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class DeliveryStats:
    name: str
    submitted: int
    delivered: int
    failed: int
    dropped: int  # alerts dropped from a full queue
    pending: int
    retries: int = 0
    last_error: str = ""


class _QueueWorker:
    """A bounded drop-oldest queue drained by one daemon thread (``_deliver`` per payload)."""

    name = "alert-action"

    def __init__(self, queue_size: int, on_result: ResultCallback | None) -> None:
        self._q: collections.deque[dict[str, Any]] = collections.deque()
        self._size = queue_size
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._on_result = on_result
        self._thread: threading.Thread | None = None
        self.submitted = self.delivered = self.failed = self.dropped = self.retries = 0
        self.last_error = ""
        self._busy = False

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._main, name=f"alerts:{self.name}", daemon=True)
        self._thread.start()

    def submit(self, payload: dict[str, Any]) -> bool:
        """Queue ``payload``; False when an older alert had to be dropped to make room."""
        with self._cond:
            self.submitted += 1
            full = len(self._q) >= self._size
            if full:
                self._q.popleft()
                self.dropped += 1
                log.warning("alert %s queue full: dropped the oldest alert (%d so far)", self.name, self.dropped)
            self._q.append(payload)
            self._cond.notify()
        return not full

    def idle(self) -> bool:
        with self._cond:
            return not self._q and not self._busy

    def stop(self, timeout: float = 5.0) -> bool:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def stats(self) -> DeliveryStats:
        with self._cond:
            return DeliveryStats(self.name, self.submitted, self.delivered, self.failed, self.dropped, len(self._q),
                                 self.retries, self.last_error)  # fmt: skip

    def _main(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self._q or self._stop.is_set(), 0.5)
                if self._stop.is_set() or not self._q:
                    continue
                payload = self._q.popleft()
                self._busy = True
            try:
                result = self._deliver(payload)
            except Exception as exc:  # a bug in delivery must not kill the thread
                log.exception("alert %s failed", self.name)
                result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            with self._cond:
                self._busy = False
                if result.get("ok"):
                    self.delivered += 1
                else:
                    self.failed += 1
                    self.last_error = str(result.get("error", ""))
            if self._on_result is not None:
                self._on_result({"action": self.name, "rule": payload.get("rule"), "kind": payload.get("kind"),
                                 "episode": payload.get("episode"), **result})  # fmt: skip

    def _deliver(self, payload: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


class CommandRunner(_QueueWorker):
    name = "command"

    def __init__(self, cfg: CommandAction, on_result: ResultCallback | None = None) -> None:
        super().__init__(cfg.queue_size, on_result)
        self.cfg = cfg
        self._proc: subprocess.Popen[bytes] | None = None

    def _deliver(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = (json.dumps(payload) + "\n").encode("utf-8")
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(
                self.cfg.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            return {"ok": False, "error": f"cannot run {self.cfg.argv[0]!r}: {exc.strerror or exc}"}
        self._proc = proc
        timed_out = False
        try:
            _, err = proc.communicate(data, timeout=self.cfg.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            _, err = proc.communicate()
        finally:
            self._proc = None
        rc = proc.returncode
        out: dict[str, Any] = {"ok": rc == 0 and not timed_out, "exit_status": rc, "timed_out": timed_out,
                               "seconds": round(time.monotonic() - t0, 3)}  # fmt: skip
        if timed_out:
            out["error"] = f"killed after the {self.cfg.timeout_s:g} s timeout"
            log.warning("alert command %s killed after %g s", self.cfg.argv[0], self.cfg.timeout_s)
        elif rc != 0:
            tail = (err or b"").decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            out["error"] = f"exit status {rc}" + (f": {tail[0][:200]}" if tail[0] else "")
        return out

    def stop(self, timeout: float = 5.0) -> bool:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            _kill_group(proc)
        return super().stop(timeout)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


class WebhookSender(_QueueWorker):
    name = "webhook"

    def __init__(self, cfg: WebhookAction, on_result: ResultCallback | None = None) -> None:
        super().__init__(cfg.queue_size, on_result)
        self.cfg = cfg
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(cfg.url) else []
        self._opener = urllib.request.build_opener(*handlers)

    def _post(self, data: bytes) -> str | None:
        """One attempt; None on success, else why it failed."""
        headers = {"Content-Type": "application/json", "User-Agent": "mmcl-live-alerts", **self.cfg.headers}
        req = urllib.request.Request(self.cfg.url, data=data, headers=headers, method="POST")
        try:
            with self._opener.open(req, timeout=self.cfg.timeout_s) as resp:
                resp.read()
                return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            return f"{type(reason).__name__}: {reason}"

    def _deliver(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(payload).encode("utf-8")
        t0 = time.monotonic()
        error: str | None = None
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                with self._cond:
                    self.retries += 1
                if self._stop.wait(self.cfg.backoff_s * 2 ** (attempt - 1)):
                    break
            error = self._post(data)
            if error is None:
                return {"ok": True, "attempts": attempt + 1, "seconds": round(time.monotonic() - t0, 3)}
        log.warning("alert webhook %s failed: %s", self.cfg.url, error)
        return {"ok": False, "attempts": attempt + 1, "error": error or "stopped",
                "seconds": round(time.monotonic() - t0, 3)}  # fmt: skip
