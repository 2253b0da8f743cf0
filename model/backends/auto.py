"""``auto``: TensorRT when it can run here, else the fastest exact CPU backend measured on this machine.

Decision, logged as one INFO line that says why and what was chosen:

1. torch-tensorrt importable **and** a CUDA GPU visible → the ``tensorrt`` backend (FP16). If its build
   or parity check fails, that is said in the line and the CPU choice below is made instead.
2. Otherwise each CPU candidate (``eager`` and ``onnx``: the FP32 backends, exact to ~1e-7) is built and
   timed interleaved on what the live monitor does per window: a batch-1 call (the prediction) followed
   by a batch-3 call (the masked-modality contributions), L = 50, at the current torch thread count; the
   lowest median wins.
   ``compile`` is not a default candidate (its compilation takes minutes on a small CPU, too long for a
   start-up) and neither are BF16 variants (different numerics); pass ``candidates=`` to include them.
3. The choice is cached per checkpoint hash + machine (CPU model, core count, library versions, threads,
   shape), so later start-ups build only the chosen backend. ``remeasure=True`` ignores the cache.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from model.backends import BACKENDS, auto_candidates
from model.backends.base import InferenceBackend
from model.backends.cache import cache_dir, key_of, machine_info, model_digest
from model.backends.inputs import LIVE_STEPS, live_like_inputs
from model.backends.probe import tensorrt_status
from model.backends.timing import measure_interleaved
from model.checkpoint import LoadedCheckpoint
from model.errors import BackendUnavailable, ConfigError, ExportError

log = logging.getLogger(__name__)

AUTO_CANDIDATES: tuple[str, ...] = auto_candidates()  # the registry entries marked auto_cpu
# realtime.pipeline.inference scores a window (batch 1), then its three masked-modality variants (batch 3).
LIVE_BATCHES: tuple[int, ...] = (1, 3)


@dataclass
class AutoChoice:
    backend: str
    reason: str  # the one log line
    p50_ms: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # candidate → why it could not be built
    cached: bool = False
    measured_at: str = ""


def _buildable() -> set[str]:
    """Registry names ``auto`` may choose among (every one but itself)."""
    return set(BACKENDS) - {"auto"}


def _build(name: str, loaded: LoadedCheckpoint) -> InferenceBackend:
    from model.backends import create_backend

    return create_backend(name, loaded)


def _choice_path(loaded: LoadedCheckpoint, candidates: Sequence[str], batches: Sequence[int], steps: int) -> Any:
    info = machine_info()
    key = key_of(
        "auto",
        model_digest(loaded.model),
        info["cpu"],
        info["logical_cpus"],
        info["torch"],
        info["onnxruntime"],
        torch.get_num_threads(),
        ",".join(candidates),
        tuple(batches),
        steps,
    )
    return cache_dir("auto") / f"{key}.json"


def choose_cpu(
    loaded: LoadedCheckpoint,
    *,
    candidates: Sequence[str] = AUTO_CANDIDATES,
    batches: Sequence[int] = LIVE_BATCHES,
    steps: int = LIVE_STEPS,
    remeasure: bool = False,
    budget_s: float = 1.0,
) -> tuple[AutoChoice, InferenceBackend]:
    """Pick (and build) the fastest CPU candidate, from the cache when it holds a choice for this setup."""
    unknown = [c for c in candidates if c.split(":")[0] not in _buildable()]
    if unknown or not candidates:
        raise ConfigError(f"auto: unknown candidate backend(s) {unknown or '(none given)'}")
    path = _choice_path(loaded, candidates, batches, steps)
    if not remeasure and path.is_file():
        try:
            record = json.loads(path.read_text())
            choice = AutoChoice(**record)
            backend = _build(choice.backend, loaded)
            choice.cached = True
            return choice, backend
        except (OSError, ValueError, TypeError, BackendUnavailable) as exc:
            log.debug("auto: ignoring cached choice %s (%s)", path, exc)
    built: dict[str, InferenceBackend] = {}
    skipped: dict[str, str] = {}
    for name in candidates:
        try:
            built[name] = _build(name, loaded)
        except (BackendUnavailable, ExportError) as exc:
            skipped[name] = str(exc)
    if not built:
        raise BackendUnavailable(f"auto: no CPU backend could be built ({skipped})")
    calls = [live_like_inputs(loaded.model, b, steps, seed=b) for b in batches]

    def per_window(backend: InferenceBackend) -> None:
        for inputs in calls:
            backend.run(inputs)

    stats = measure_interleaved({n: (lambda b=b: per_window(b)) for n, b in built.items()}, budget_s=budget_s)
    p50 = {n: round(s.p50_ms, 3) for n, s in stats.items()}
    best = min(p50, key=p50.__getitem__)
    choice = AutoChoice(
        backend=best,
        reason="",
        p50_ms=p50,
        skipped=skipped,
        measured_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    try:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(choice), indent=1))
        tmp.replace(path)
    except OSError as exc:  # a read-only cache only costs a re-measurement next time
        log.debug("auto: could not cache the choice (%s)", exc)
    return choice, built[best]


def create_auto(
    loaded: LoadedCheckpoint,
    *,
    candidates: Sequence[str] = AUTO_CANDIDATES,
    batches: Sequence[int] = LIVE_BATCHES,
    steps: int = LIVE_STEPS,
    remeasure: bool = False,
    budget_s: float = 1.0,
    tensorrt_options: dict[str, Any] | None = None,
) -> InferenceBackend:
    """The ``auto`` entry of the registry: returns the chosen backend (``backend.auto_choice`` says why)."""
    trt = tensorrt_status()
    why_not_trt = f"TensorRT unavailable ({trt.reason})"
    if trt.ok:
        try:
            from model.backends.tensorrt_backend import TensorRTBackend

            backend: InferenceBackend = TensorRTBackend(loaded, **(tensorrt_options or {}))
            choice = AutoChoice(backend="tensorrt", reason=f"backend auto: {trt.reason}; chose {backend.describe()}")
            log.info("%s", choice.reason)
            backend.auto_choice = choice  # type: ignore[attr-defined]
            return backend
        except (BackendUnavailable, ExportError, ImportError) as exc:
            why_not_trt = f"TensorRT present but unusable ({type(exc).__name__}: {str(exc)[:200]})"
    choice, backend = choose_cpu(loaded, candidates=candidates, batches=batches, steps=steps, remeasure=remeasure)
    timings = ", ".join(f"{n} {ms:.1f} ms" for n, ms in sorted(choice.p50_ms.items(), key=lambda kv: kv[1]))
    skipped = "".join(f"; {n} skipped: {why[:120]}" for n, why in choice.skipped.items())
    source = f"cached choice measured {choice.measured_at}" if choice.cached else "measured now"
    choice.reason = (
        f"backend auto: {why_not_trt}; chose {choice.backend} on the CPU (p50 per window = batch "
        f"{'+'.join(map(str, batches))}, L={steps}, "
        f"{torch.get_num_threads()} thread(s): {timings}; {source}){skipped}"
    )
    log.info("%s", choice.reason)
    backend.auto_choice = choice  # type: ignore[attr-defined]
    return backend
