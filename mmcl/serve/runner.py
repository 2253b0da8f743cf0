"""Start Ray and Serve on this machine for ``mmcl serve`` (and the tests and the benchmark); stop them cleanly.

``start_server(cfg)`` starts a local Ray node sized for the replicas (``num_cpus``; no dashboard; a small
object store — windows travel over HTTP, not through Ray's object store; the node addresses itself as
127.0.0.1), starts Serve's HTTP proxy on ``cfg.host:cfg.port`` and deploys ``ModelServer``; it returns once
every replica has loaded its model and ``/readyz`` answers. ``RunningServer.stop()`` shuts Serve and Ray
down (idempotent). To join an existing Ray cluster instead (``ray start --head`` on the head node, KubeRay on
Kubernetes), set ``RAY_ADDRESS``: Ray's own documented way to point a driver at a cluster.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from mmcl.serve.config import ServeConfig
from model.errors import MmclError

log = logging.getLogger("mmcl.serve")

OBJECT_STORE_BYTES = 128 * 1024**2


class ServeError(MmclError):
    """Ray or Serve could not start, or the model replicas did not become ready."""


@dataclass
class RunningServer:
    cfg: ServeConfig
    url: str
    info: dict[str, Any]
    started_s: float
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        import ray
        from ray import serve

        try:
            serve.shutdown()
        finally:
            ray.shutdown()
        log.info("serve stopped")


def get_json(url: str, timeout: float = 2.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_ready(url: str, timeout_s: float) -> dict[str, Any]:
    """Poll ``/readyz`` until it answers 200, then return ``/v1/info``."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            get_json(f"{url}/readyz")
            return get_json(f"{url}/v1/info")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = str(exc)
            time.sleep(0.25)
    raise ServeError(f"{url} did not become ready within {timeout_s:.0f} s ({last}); see Ray's logs in /tmp/ray")


def _quiet_ray_loggers() -> None:
    for name in ("ray", "ray.serve", "ray._private"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _check_before_ray(cfg: ServeConfig) -> None:
    """Errors a user can fix, raised here in one line instead of from inside a failing replica."""
    from model.backends import parse_backend
    from model.checkpoint import read_checkpoint
    from model.pretrained import default_checkpoint_path

    parse_backend(cfg.backend)
    read_checkpoint(cfg.checkpoint or default_checkpoint_path())


def start_server(cfg: ServeConfig, ready_timeout_s: float = 300.0) -> RunningServer:
    """Ray node + Serve proxy + ``cfg.replicas`` model replicas, ready to answer (see module docstring)."""
    t0 = time.perf_counter()
    try:
        import ray
        from ray import serve
    except ModuleNotFoundError as exc:
        raise ServeError(
            f"mmcl serve needs Ray Serve ({exc}); install the project's dependencies (make setup)"
        ) from None

    from mmcl.serve.deployment import build_app

    _check_before_ray(cfg)
    _quiet_ray_loggers()
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(
                num_cpus=cfg.ray_cpus, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES,
                _node_ip_address="127.0.0.1", log_to_driver=False, logging_level=logging.WARNING,
            )  # fmt: skip
    try:
        serve.start(http_options={"host": cfg.host, "port": cfg.port}, logging_config={"log_level": "WARNING"})
        try:
            serve.run(build_app(cfg), name=cfg.app_name, route_prefix="/", blocking=False)
        except RuntimeError as exc:  # Serve's "deploying application failed": a replica could not start
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ServeError(f"the model replicas did not start ({first}); see Ray's logs in /tmp/ray") from None
        info = wait_ready(cfg.url, ready_timeout_s)
    except BaseException:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
        raise
    started = time.perf_counter() - t0
    log.info("serving %s on %s (%d replica(s)) after %.1f s", info.get("model"), cfg.url, cfg.replicas, started)
    return RunningServer(cfg, cfg.url, info, started)
