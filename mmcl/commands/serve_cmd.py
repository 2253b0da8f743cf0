"""``mmcl serve``: the model on Ray Serve with dynamic batching, for many ``mmcl monitor --server`` clients."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from mmcl.commands.common import stderr, stdout
from model.backends import backend_choices  # the registry's names: the help never goes stale


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        checkpoint: Annotated[
            Path | None, typer.Option("--checkpoint", help="Model checkpoint (default: the shipped one).")
        ] = None,
        backend: Annotated[
            str, typer.Option("--backend", help=f"{backend_choices()}, loaded once per replica.")
        ] = "auto",
        replicas: Annotated[int, typer.Option("--replicas", help="Model replicas (one model copy each).")] = 1,
        max_batch: Annotated[int, typer.Option("--max-batch", help="Windows per backend call.")] = 32,
        batch_wait_ms: Annotated[
            float, typer.Option("--batch-wait-ms", help="Wait this long for more windows once one is queued.")
        ] = 5.0,
        host: Annotated[
            str, typer.Option("--host", help="Address to listen on (default: loopback only).")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="HTTP port.")] = 8000,
        threads: Annotated[int, typer.Option("--threads", help="Model threads per replica (0: cores / replicas).")] = 0,
    ) -> None:
        """Serve a checkpoint on Ray Serve: windows in (binary), raw outputs + attribution rows out, batched.

        Routes: POST /v1/windows, GET /v1/info, /healthz, /readyz. Ctrl-C (or SIGTERM) stops Serve and Ray.
        """
        from mmcl.serve.config import ServeConfig
        from mmcl.serve.runner import start_server

        cfg = ServeConfig(
            checkpoint=str(checkpoint) if checkpoint else "", backend=backend, replicas=replicas,
            max_batch=max_batch, batch_wait_ms=batch_wait_ms, host=host, port=port, threads=threads,
        )  # fmt: skip
        if host not in ("127.0.0.1", "localhost", "::1"):
            stderr.print(f"[yellow]warning:[/] listening on {host}: the API has no authentication", highlight=False)
        stderr.print(f"starting Ray Serve ({replicas} replica(s), backend {backend}) …", highlight=False)
        server = start_server(cfg)  # Ctrl-C while starting: KeyboardInterrupt, Ray is shut down there
        stop = threading.Event()
        # installed after ray.init, which sets its own SIGTERM handler in this process
        old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            info = server.info
            stdout.print(
                f"mmcl serve ready at {server.url} in {server.started_s:.1f} s · model {info.get('model')} "
                f"({info.get('feature_set')}) · backend {info.get('backend')} · {replicas} replica(s) · "
                f"max batch {max_batch} · wait {batch_wait_ms:g} ms",
                highlight=False,
                soft_wrap=True,
            )
            stdout.print(f"clients: mmcl monitor --server {server.url}", highlight=False, soft_wrap=True)
            while not stop.wait(0.5):
                pass
        finally:
            stderr.print("stopping Ray Serve …")
            server.stop()
            for s, h in old.items():
                signal.signal(s, h)
        stdout.print("mmcl serve stopped", highlight=False)
