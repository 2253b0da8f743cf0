"""The Ray Serve deployment behind ``mmcl serve``: one model replica, dynamic batching, health and readiness.

Routes (all on Ray Serve's HTTP proxy, ``route_prefix="/"``):

===================  ======  ==========================================================================
``/v1/windows``      POST    a binary window frame (``realtime.pipeline.wire``) → raw output rows. 400 for
                             a malformed frame, 409 when the client computed another feature set.
``/v1/info``         GET     JSON: feature set, task, temperature/interval, model digest, backend, batching.
``/healthz``         GET     200 while this replica answers (liveness).
``/readyz``          GET     200 once the checkpoint is loaded and warmed up on the backend (readiness).
===================  ======  ==========================================================================

Ray Serve's own ``/-/healthz`` and ``/-/routes`` (proxy health) answer as well.

Batching: ``@serve.batch`` gathers up to ``max_batch`` concurrent window requests (waiting at most
``batch_wait_ms`` after the first), and ``BatchScorer`` scores all of them *and* their masked-modality
variants in one backend call, on a worker thread so that the replica's event loop keeps accepting requests
(the next batch fills while this one runs). Every response says how many windows shared its call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from mmcl.serve.config import ServeConfig
from mmcl.serve.scorer import BatchScorer
from realtime.pipeline.wire import (
    CONTENT_TYPE,
    FeatureSetMismatch,
    OutputsResponse,
    WindowRequest,
    WireFormatError,
    decode_request,
    encode_response,
)

log = logging.getLogger("mmcl.serve")

MAX_BODY = 8 * 1024 * 1024  # a v2 window is 174 kB; a request of MAX_BATCH windows fits


def _json(status: int, payload: dict[str, Any]) -> Response:
    return Response(json.dumps(payload), status_code=status, media_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return _json(status, {"error": code, "message": message})


@serve.deployment(name="mmcl-model")
class ModelServer:
    """One replica: the checkpoint on its backend, loaded once in the constructor."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = ServeConfig(**cfg)
        t0 = time.perf_counter()
        self.scorer = BatchScorer.load(self.cfg.checkpoint, self.cfg.backend, self.cfg.threads)
        self.scorer.warm_up(self.cfg.max_batch)
        self.load_s = time.perf_counter() - t0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmcl-model")
        self._score.set_max_batch_size(self.cfg.max_batch)
        self._score.set_batch_wait_timeout_s(self.cfg.batch_wait_ms / 1000.0)
        try:
            self.replica = serve.get_replica_context().replica_id.unique_id
        except Exception:  # outside a replica (direct construction in a test)
            self.replica = "local"
        self.ready = True
        log.info("replica %s ready: %s on %s in %.1f s", self.replica, self.scorer.info()["model"],
                 self.scorer.backend.describe(), self.load_s)  # fmt: skip

    def check_health(self) -> None:
        """Ray Serve's replica health check: a replica whose model did not load is restarted."""
        if not self.ready:
            raise RuntimeError("model not loaded")

    def info(self) -> dict[str, Any]:
        return {
            **self.scorer.info(), "replica": self.replica, "max_batch": self.cfg.max_batch,
            "batch_wait_ms": self.cfg.batch_wait_ms, "load_s": round(self.load_s, 3), "wire": "MMW1",
        }  # fmt: skip

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def _score(self, items: list[tuple[WindowRequest, float]]) -> list[OutputsResponse]:
        started = time.perf_counter()
        requests = [r for r, _ in items]
        loop = asyncio.get_running_loop()
        outputs, stats = await loop.run_in_executor(self._pool, self.scorer.score, requests)
        common = {"batch_windows": stats.windows, "batch_rows": stats.rows,
                  "model_us": round(stats.model_s * 1e6), "replica": self.replica}  # fmt: skip
        return [
            OutputsResponse(out, {**common, "queue_us": round((started - arrived) * 1e6)})
            for out, (_, arrived) in zip(outputs, items, strict=True)
        ]

    async def __call__(self, request: Request) -> Response:
        path = request.url.path.rstrip("/") or "/"
        if request.method == "GET":
            if path == "/healthz":
                return _json(200, {"status": "ok", "replica": self.replica})
            if path == "/readyz":
                if not self.ready:
                    return _error(503, "not_ready", "the model is still loading")
                fs = self.scorer.feature_set.ident
                return _json(200, {"ready": True, "replica": self.replica, "feature_set": fs})
            if path == "/v1/info":
                return _json(200, self.info())
        if path == "/v1/windows":
            if request.method != "POST":
                return _error(405, "method_not_allowed", "POST a window frame to /v1/windows")
            return await self._windows(request)
        return _error(404, "not_found", f"no route {request.method} {path}; see /v1/info, /healthz, /readyz")

    async def _windows(self, request: Request) -> Response:
        arrived = time.perf_counter()
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, "too_large", f"body of {len(body)} bytes exceeds {MAX_BODY}")
        try:
            req = decode_request(body)
            self.scorer.check(req)
        except WireFormatError as exc:
            return _error(400, "bad_frame", str(exc))
        except FeatureSetMismatch as exc:
            return _json(409, {"error": "feature_set_mismatch", "message": str(exc),
                               "server_feature_set": self.scorer.feature_set.ident})  # fmt: skip
        result = await self._score((req, arrived))
        return Response(encode_response(result), media_type=CONTENT_TYPE)


def build_app(cfg: ServeConfig) -> Any:
    """The bound Serve application for ``cfg`` (replicas, CPUs per replica, concurrency for batching)."""
    return ModelServer.options(
        num_replicas=cfg.replicas,
        ray_actor_options={"num_cpus": cfg.replica_cpus},
        max_ongoing_requests=max(8, 4 * cfg.max_batch),  # room for the next batch while one runs
        health_check_period_s=10.0,
    ).bind(cfg.to_dict())
