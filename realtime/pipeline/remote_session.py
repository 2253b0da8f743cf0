"""``mmcl monitor --server URL``: decide what this monitor computes and how it falls back, before it starts.

``connect_remote_engine(app, remote, checkpoint, fallback)``:

1. asks the server for ``/v1/info`` (feature set, task, decoding settings); the server may be down;
2. loads the local model (``--checkpoint``, else the configured/shipped one) unless ``fallback`` is off; it
   is kept as the fallback only when it is on the server's feature set and task (else one warning says
   why there is no fallback);
3. sets ``app.features.feature_set`` and the engine's ``feature_set`` to the server's version (or the local
   model's when the server is down at start: the server is then checked when it answers), so the
   pipeline computes what the model consumes;
4. returns a ``RemoteEngine`` decoding with the local checkpoint's settings when there is one, else the
   server's.

Neither a server nor a local model → ``ServerUnavailable`` with what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from model.backends import create_backend
from model.backends.base import InferenceBackend
from model.checkpoint import LoadedCheckpoint, load_checkpoint
from model.errors import CheckpointError, MmclError
from model.evaluate import TaskInfo
from model.featureset import FeatureSet, live_feature_set, live_version_of
from realtime.pipeline.inference import checkpoint_interval_options, checkpoint_temperature
from realtime.pipeline.remote import RemoteBackend, RemoteConfig, RemoteEngine, ServerClient, ServerUnavailable
from realtime.pipeline.session import limit_blas_threads, resolve_checkpoint

log = logging.getLogger(__name__)


@dataclass
class RemoteSetup:
    engine: RemoteEngine
    model_name: str
    info: dict[str, Any] | None  # the server's /v1/info at start (None: it was down)
    notes: list[str]  # one line each: what was decided and why (printed by the CLI)


def _server_feature_set(info: dict[str, Any]) -> FeatureSet:
    fs = live_feature_set(str(info.get("feature_set", "")))
    if info.get("feature_dims") != fs.dims:
        raise CheckpointError(
            f"the server reports {info.get('feature_set')} with dims {info.get('feature_dims')}, but this mmcl "
            f"knows {fs.ident} as {fs.dims}; update mmcl on one side"
        )
    return fs


def _load_local(app: Any, checkpoint: str | None) -> tuple[LoadedCheckpoint, FeatureSet]:
    import torch

    if app.monitor.torch_threads > 0:
        torch.set_num_threads(app.monitor.torch_threads)
    path = resolve_checkpoint(checkpoint or app.monitor.checkpoint or None)
    loaded = load_checkpoint(path)
    fs = live_version_of(loaded.feature_set)
    if fs is None:
        raise CheckpointError(f"{path} was trained on {loaded.feature_set.ident}, not a live feature set")
    return loaded, fs


def connect_remote_engine(
    app: Any,
    remote: RemoteConfig,
    checkpoint: str | None = None,
    fallback: bool = True,
    engine_options: Callable[[Any], dict[str, Any]] | None = None,
) -> RemoteSetup:
    notes: list[str] = []
    limit_blas_threads(app.monitor.blas_threads)  # the features run here either way
    client = ServerClient(remote.url, remote.timeout_s, client_id="monitor")
    info: dict[str, Any] | None
    try:
        info = client.info()
        server_fs: FeatureSet | None = _server_feature_set(info)
        notes.append(f"server {remote.url}: {info.get('model')} on {info.get('feature_set')} ({info.get('backend')})")
    except ServerUnavailable as exc:
        info, server_fs = None, None
        notes.append(f"server {remote.url} not answering at start ({exc}); it is checked when it answers")
    loaded: LoadedCheckpoint | None = None
    local_fs: FeatureSet | None = None
    if fallback:
        try:
            loaded, local_fs = _load_local(app, checkpoint)
        except MmclError as exc:
            notes.append(f"no local fallback: {exc}")
    if loaded is not None and info is not None:
        why = None
        if local_fs != server_fs:
            why = f"the local model is on {local_fs.ident if local_fs else '?'}, the server's on {info['feature_set']}"
        elif loaded.task.to_dict() != info.get("task"):
            why = f"the local model predicts {loaded.task.to_dict()}, the server's {info.get('task')}"
        if why:
            notes.append(f"no local fallback: {why}")
            loaded = None
    fs = server_fs or local_fs
    if fs is None or (info is None and loaded is None):
        raise ServerUnavailable(
            f"the server {remote.url} does not answer and there is no local model to fall back on; start "
            "`mmcl serve` first (or check the URL), or pass --checkpoint for local inference"
        )
    steps = app.features.window_steps
    max_steps = int(info["max_steps"]) if info is not None else loaded.model_cfg.max_steps  # type: ignore[union-attr]
    if max_steps < steps:
        raise CheckpointError(f"the model covers windows of at most {max_steps} steps, the monitor builds {steps}")
    app.features.feature_set = fs.version
    local: InferenceBackend | None = None
    if loaded is not None:
        local = create_backend(app.monitor.backend, loaded)
        task, temperature = loaded.task, checkpoint_temperature(loaded.extra)
        intervals = checkpoint_interval_options(loaded.extra)
        notes.append(f"local fallback: {loaded.path.name if loaded.path else 'model'} on {local.describe()}")
    else:
        assert info is not None
        task = TaskInfo.from_dict(info["task"])
        temperature = float(info.get("temperature") or 1.0)
        intervals = {
            "interval": tuple(info["interval"]) if info.get("interval") else None,
            "arousal_interval": float(info["arousal_interval"][0]) if info.get("arousal_interval") else None,
            "interval_by_presence": dict(info.get("interval_by_presence") or {}),  # older servers: pooled only
            "arousal_interval_by_presence": dict(info.get("arousal_interval_by_presence") or {}),
        }
    backend = RemoteBackend(remote, fs, task.to_dict(), local, verified=info is not None, client=client)
    engine = RemoteEngine(
        backend, task, contributions=app.monitor.contributions, ema_tau_s=app.monitor.ema_tau_s,
        temperature=temperature, **intervals, feature_set=fs.version,
        **(engine_options(loaded) if engine_options is not None and loaded is not None else {}),
    )  # fmt: skip
    name = str(info.get("model", "")) if info is not None else (loaded.path.name if loaded and loaded.path else "")
    for line in notes:
        log.info("%s", line)
    return RemoteSetup(engine, f"{name} @ server", info, notes)
