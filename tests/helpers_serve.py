"""Shared pieces of the serving tests: a small live-v1 checkpoint, windows, and a stand-in HTTP front.

``StandInServer`` answers the routes of ``mmcl serve`` with the same ``BatchScorer`` and wire format the
Ray Serve replica uses, without Ray (the lowest layer, HTTP + batching, substituted) so that the client's
failure policy (down, slow, refused, back again) is tested in seconds. ``tests/test_serve_ray.py`` runs the
real Serve instance.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from model.featureset import LIVE_V1, MODALITIES


def make_v1_checkpoint(path: Path, seed: int = 0) -> Path:
    """A small real MMCL regression checkpoint on mmcl-live@live-v1 (random weights, fixed seed)."""
    import torch

    from model.checkpoint import save_checkpoint
    from model.config import ModelConfig
    from model.evaluate import TaskInfo
    from model.mmcl import MMCL

    torch.manual_seed(seed)
    d = LIVE_V1.dims
    cfg = ModelConfig(dim_vision=d["vision"], dim_audio=d["audio"], dim_text=d["text"], d_model=32, n_heads=4,
                      head_hidden=32)  # fmt: skip
    save_checkpoint(path, MMCL(cfg).eval(), task=TaskInfo(task="regression", label_kind="msa"), feature_set=LIVE_V1)
    return path


def make_windows(loaded, n: int, seed: int = 0) -> list:
    """``n`` live-like windows (gaps, a missing modality in some) as the pipeline's ``Window`` objects."""
    from model.backends.inputs import live_like_inputs
    from realtime.pipeline.windows import Window

    x = live_like_inputs(loaded.model, n, 50, seed)
    out = []
    for i in range(n):
        feats = {m: np.nan_to_num(getattr(x, m)[i], nan=0.0, posinf=0.0) for m in MODALITIES}
        masks = {m: getattr(x, f"{m}_mask")[i].copy() for m in MODALITIES}
        out.append(Window(index=i, t_start=0.5 * i, t_end=0.5 * i + 5.0, features=feats, masks=masks,
                          newest_input=dict.fromkeys(MODALITIES), samples=dict.fromkeys(MODALITIES, 0)))  # fmt: skip
    return out


class StandInServer:
    """``/v1/info``, ``/v1/windows``, ``/healthz`` on 127.0.0.1 over a BatchScorer; ``delay_s`` makes it slow."""

    def __init__(self, scorer, port: int = 0) -> None:
        self.scorer = scorer
        self.delay_s = 0.0
        self.requests = 0
        self.closed = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _gone(self) -> bool:
                """After close(): drop kept-alive connections like a stopped server does."""
                if server.closed:
                    self.close_connection = True
                return server.closed

            def do_GET(self) -> None:
                if self._gone():
                    return
                if self.path == "/v1/info":
                    self._send(200, json.dumps(server.scorer.info()).encode(), "application/json")
                else:
                    self._send(200, b'{"status":"ok"}', "application/json")

            def do_POST(self) -> None:
                from realtime.pipeline.wire import (
                    CONTENT_TYPE,
                    FeatureSetMismatch,
                    OutputsResponse,
                    decode_request,
                    encode_response,
                )

                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self._gone():
                    return
                server.requests += 1
                time.sleep(server.delay_s)
                try:
                    req = decode_request(body)
                    server.scorer.check(req)
                except FeatureSetMismatch as exc:
                    msg = {"error": "feature_set_mismatch", "message": str(exc)}
                    self._send(409, json.dumps(msg).encode(), "application/json")
                    return
                outs, stats = server.scorer.score([req])
                resp = OutputsResponse(outs[0], {"batch_windows": stats.windows, "batch_rows": stats.rows})
                self._send(200, encode_response(resp), CONTENT_TYPE)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *_: None  # a client that gave up on a slow answer: expected here
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="standin-serve", daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
