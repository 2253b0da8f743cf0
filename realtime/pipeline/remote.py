"""The monitor as a client of ``mmcl serve``: windows scored on the server, local inference as the fallback.

``RemoteBackend`` is an ``InferenceBackend`` whose ``run`` posts the model inputs to the server
(``realtime.pipeline.wire``: float32 arrays in a binary frame) and returns the raw output rows, so the
``InferenceEngine`` around it decodes, smooths and attributes exactly as it does for a local backend. A
batch-1 call (the prediction) asks the server for the window's three masked variants too, scored in the
same server-side backend call; the engine's following batch-3 attribution call is then answered from
those rows without a second round trip (only when its inputs are exactly those variants).

Failure policy (``RemoteConfig``):

* **unreachable / slow / server error** — the request is abandoned after ``timeout_s``; the window is
  scored by the local backend when there is one (``scored_by: "local"`` in the event log), and for
  ``retry_s`` the server is not asked again, so a dead server costs one timeout, not one per window.
* **refused** (HTTP 409: the server's model is on another feature set) — same, with the server's message.
* **no local model** — the window is not scored (the engine raises; the pipeline logs the window without a
  prediction and shows the error): no window is dropped from the log either way.
* **a server that (re)appears** is asked for ``/v1/info`` first, and used only if its feature set and task
  are the ones this monitor computes and decodes.

``backend.describe()`` (shown on the dashboard and in the log's session record) says which of these holds.
One ``RemoteBackend`` serves one thread (the window loop); it is not thread-safe.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from model.backends.base import InferenceBackend, ModelInputs
from model.errors import ConfigError, MmclError
from model.featureset import FeatureSet
from realtime.pipeline.inference import InferenceEngine, Prediction, masked_variants
from realtime.pipeline.windows import Window
from realtime.pipeline.wire import (
    CONTENT_TYPE,
    FeatureSetMismatch,
    OutputsResponse,
    WindowRequest,
    WireFormatError,
    decode_response,
    encode_request,
)

log = logging.getLogger(__name__)


class ServerUnavailable(MmclError):
    """The server did not answer in time, could not be reached, or failed (5xx)."""


class ServerRefused(MmclError):
    """The server answered but refused the request (4xx), or serves a model this monitor cannot use."""


@dataclass
class RemoteConfig:
    url: str
    timeout_s: float = 0.5  # one request; a slower answer counts as "server slow" and is abandoned
    retry_s: float = 2.0  # after a failure, windows go local this long before the server is asked again
    info_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigError(f"--server must be an http://HOST:PORT URL, got {self.url!r}")
        if not 0.01 <= self.timeout_s <= 60 or not 0 <= self.retry_s <= 3600:
            raise ConfigError("server timeout must be 10 ms … 60 s and the retry interval 0 … 3600 s")
        self.url = self.url.rstrip("/")


class ServerClient:
    """HTTP/1.1 keep-alive client of one ``mmcl serve`` (stdlib ``http.client``; one thread)."""

    def __init__(self, url: str, timeout_s: float = 0.5, client_id: str = "") -> None:
        parts = urllib.parse.urlsplit(url)
        self.url = url.rstrip("/")
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self.client_id = client_id
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _request(self, method: str, path: str, body: bytes | None, timeout: float) -> tuple[int, bytes]:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        self._conn.timeout = timeout
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        headers = {"Content-Type": CONTENT_TYPE} if body is not None else {}
        try:
            self._conn.request(method, self.prefix + path, body=body, headers=headers)
            resp = self._conn.getresponse()
            data = resp.read()
        except TimeoutError as exc:
            self.close()
            raise ServerUnavailable(f"server slow: no answer within {timeout * 1000:.0f} ms") from exc
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ServerUnavailable(f"server unreachable ({reason})") from exc
        if resp.will_close:
            self.close()
        return resp.status, data

    @staticmethod
    def _message(data: bytes) -> tuple[str, str]:
        try:
            obj = json.loads(data)
            return str(obj.get("error", "")), str(obj.get("message", ""))
        except (ValueError, AttributeError):
            return "", data[:200].decode("utf-8", "replace")

    def info(self) -> dict[str, Any]:
        status, data = self._request("GET", "/v1/info", None, max(self.timeout_s, 2.0))
        if status != 200:
            raise ServerUnavailable(f"server /v1/info answered HTTP {status}: {self._message(data)[1]}")
        try:
            info = json.loads(data)
        except ValueError:
            raise ServerRefused(f"{self.url} is not an mmcl server (/v1/info is not JSON)") from None
        if not isinstance(info, dict) or "feature_set" not in info:
            raise ServerRefused(f"{self.url} is not an mmcl server (/v1/info has no feature_set)")
        return info

    def score(self, inputs: ModelInputs, feature_set: str, variants: bool) -> OutputsResponse:
        body = encode_request(WindowRequest(feature_set, inputs, variants, self.client_id))
        status, data = self._request("POST", "/v1/windows", body, self.timeout_s)
        if status == 200:
            try:
                return decode_response(data)
            except WireFormatError as exc:
                raise ServerRefused(f"unreadable answer from {self.url}: {exc}") from None
        code, message = self._message(data)
        if status == 409 and code == "feature_set_mismatch":
            raise FeatureSetMismatch(message)
        if 400 <= status < 500:
            raise ServerRefused(f"server refused the window (HTTP {status} {code}): {message}")
        raise ServerUnavailable(f"server error (HTTP {status}): {message[:200]}")


@dataclass
class RemoteStats:
    served: int = 0  # windows scored by the server
    local: int = 0  # windows scored locally because the server was down, slow or refused
    unscored: int = 0  # windows neither could score
    failures: int = 0  # failed server requests
    last_error: str = ""
    rtt_ms: collections.deque = dataclasses.field(default_factory=lambda: collections.deque(maxlen=512))
    last_batch: int = 0  # windows that shared the server's last backend call

    def to_dict(self) -> dict[str, Any]:
        rtt = np.asarray(self.rtt_ms, dtype=float)
        p = (lambda q: round(float(np.percentile(rtt, q)), 2)) if rtt.size else (lambda q: None)
        return {"served": self.served, "local": self.local, "unscored": self.unscored, "failures": self.failures,
                "rtt_p50_ms": p(50), "rtt_p95_ms": p(95), "last_error": self.last_error}  # fmt: skip


def _same(a: ModelInputs, b: ModelInputs) -> bool:
    return all(
        x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
        for x, y in zip(a.as_tuple(), b.as_tuple(), strict=True)
    )


class RemoteBackend(InferenceBackend):
    """Runs the model on ``mmcl serve``; ``local`` (optional) scores what the server cannot."""

    name = "server"

    def __init__(
        self,
        cfg: RemoteConfig,
        feature_set: FeatureSet,
        task: dict[str, Any],
        local: InferenceBackend | None = None,
        *,
        verified: bool = False,
        client: ServerClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(local.loaded if local is not None else None)  # type: ignore[arg-type]
        self.cfg = cfg
        self.feature_set = feature_set
        self.task = task
        self.local = local
        self.client = client or ServerClient(cfg.url, cfg.timeout_s)
        self.clock = clock
        self.verified = verified  # /v1/info checked since the server last failed
        self.stats = RemoteStats()
        self.last_origin: str | None = None
        self._down_until = 0.0
        self._stash: tuple[ModelInputs, np.ndarray] | None = None

    # ---- the InferenceBackend contract -------------------------------------------------------------------
    def run(self, inputs: ModelInputs) -> np.ndarray:
        stash, self._stash = self._stash, None
        if stash is not None and inputs.batch == stash[1].shape[0] and _same(inputs, stash[0]):
            return stash[1]  # the attribution rows came with the prediction
        if self.clock() >= self._down_until:
            try:
                out = self._from_server(inputs)
                self.last_origin = "server"
                return out
            except (ServerUnavailable, ServerRefused, FeatureSetMismatch) as exc:
                self._failed(exc)
        if self.local is None:
            self.last_origin = None
            self.stats.unscored += inputs.batch == 1
            raise ServerUnavailable(f"{self.stats.last_error}; no local model to fall back on")
        self.last_origin = "local"
        self.stats.local += inputs.batch == 1
        return self.local.run(inputs)

    def describe(self) -> str:
        where = f"server {self.cfg.url}"
        fallback = f"local {self.local.describe()}" if self.local is not None else "no local model"
        if self.clock() < self._down_until or self.last_origin == "local":
            wait = max(0.0, self._down_until - self.clock())
            return f"{where} DOWN: {self.stats.last_error} → {fallback} (retry in {wait:.0f} s)"
        rtt = f"{self.stats.rtt_ms[-1]:.0f} ms" if self.stats.rtt_ms else "–"
        return f"{where} ok ({rtt}, batch {self.stats.last_batch}; fallback {fallback})"

    # ---- internals ---------------------------------------------------------------------------------------
    def _verify(self) -> None:
        """A server seen for the first time (or again after a failure) must serve what this monitor computes."""
        info = self.client.info()
        found = (info.get("feature_set"), info.get("feature_dims"))
        if found != (self.feature_set.ident, self.feature_set.dims):
            raise FeatureSetMismatch(
                f"the server now serves a model on {found[0]} {found[1]}; this monitor computes "
                f"{self.feature_set.ident} {self.feature_set.dims} (restart the monitor to follow the server)"
            )
        if info.get("task") != self.task:
            raise ServerRefused(f"the server's model predicts {info.get('task')}, this monitor decodes {self.task}")
        self.verified = True
        log.info("server %s verified (%s, %s)", self.cfg.url, info.get("model"), info.get("backend"))

    def _from_server(self, inputs: ModelInputs) -> np.ndarray:
        if not self.verified:
            self._verify()
        variants = inputs.batch == 1
        t0 = time.perf_counter()
        resp = self.client.score(inputs, self.feature_set.ident, variants)
        rows = resp.outputs
        want = inputs.batch * (4 if variants else 1)
        if rows.shape[0] != want:
            raise ServerRefused(f"server answered {rows.shape[0]} rows for {want}")
        if self.stats.failures and self.last_origin != "server":
            log.warning("server %s answers again; windows are scored there", self.cfg.url)
        self.stats.rtt_ms.append((time.perf_counter() - t0) * 1000.0)
        self.stats.last_batch = int(resp.stats.get("batch_windows", 0) or 0)
        self.stats.served += inputs.batch == 1
        if variants:
            self._stash = (masked_variants(inputs), rows[1:])
        return rows[: inputs.batch]

    def _failed(self, exc: Exception) -> None:
        news = self.stats.last_error != str(exc) or self.last_origin == "server"  # a change of state: say it once
        self.stats.failures += 1
        self.stats.last_error = str(exc)
        self.verified = False
        self._down_until = self.clock() + self.cfg.retry_s
        level = logging.WARNING if news else logging.DEBUG
        log.log(level, "server %s: %s; retrying every %.1f s", self.cfg.url, exc, self.cfg.retry_s)


class RemoteEngine(InferenceEngine):
    """An ``InferenceEngine`` on a ``RemoteBackend``: predictions say who scored them (``scored_by``)."""

    backend: RemoteBackend

    def predict(self, window: Window) -> Prediction:
        pred = super().predict(window)
        return dataclasses.replace(pred, scored_by=self.backend.last_origin)
