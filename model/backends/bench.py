"""``mmcl bench``: latency, throughput and achieved FLOP/s of every backend, MMCL beside a MulT-style peer.

One run measures, on this machine and in this order:

1. the FP32 matrix-multiply peak (``torch.matmul`` of two N×N matrices, best of several, at the bench's
   thread count; measured before and after the backends, the higher one is kept), and the BF16 peak
   when the CPU has native BF16;
2. for each batch size: every backend of MMCL and of the MulT-style peer (``model.peers.mult``), timed
   **interleaved** (``timing.py``) after a warm-up, on live-like inputs (L = 50, masked steps, missing
   modalities). Per row: p50/p95/p99 latency, throughput (samples/s at the median), model FLOPs (counted
   with ``torch.utils.flop_counter`` on the eager model: matrix products and attention), achieved FLOP/s
   as a share of the FP32 matmul peak, and the parity error against eager FP32 on the same inputs.

Only ratios inside one run mean anything on a shared machine: the summary gives, per batch, the best
backend over eager and MMCL over the peer, both measured side by side.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from model.backends import bench_specs, create_backend, parse_backend
from model.backends.base import InferenceBackend
from model.backends.cache import machine_info
from model.backends.inputs import LIVE_STEPS, live_like_inputs
from model.backends.parity import eager_reference
from model.backends.precision import TOLERANCES, cpu_supports_bf16
from model.backends.probe import tensorrt_status
from model.backends.timing import measure_interleaved
from model.checkpoint import LoadedCheckpoint
from model.config import ModelConfig
from model.errors import BackendUnavailable, ConfigError, ExportError
from model.evaluate import TaskInfo
from model.featureset import LIVE_FEATURE_SET
from model.mmcl import MMCL, count_parameters
from model.peers.mult import MulTConfig, MulTPeer

log = logging.getLogger(__name__)

CPU_BACKENDS: tuple[str, ...] = bench_specs()  # from the registry (``BackendEntry.bench``)


@dataclass
class BenchSpec:
    backends: list[str] = field(default_factory=lambda: ["all"])
    batches: list[int] = field(default_factory=lambda: [1, 8, 64])
    steps: int = LIVE_STEPS
    threads: int | None = None  # None: torch's current setting
    peer: bool = True
    peer_backends: list[str] = field(default_factory=lambda: ["eager", "onnx"])
    budget_s: float = 2.0  # timing budget per candidate and batch (at least min_iters runs each)
    min_iters: int = 5
    warmup: int = 3
    matmul_size: int = 2048
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.batches or min(self.batches) < 1:
            raise ConfigError("bench: --batch needs positive batch sizes, e.g. 1,8,64")
        if self.steps < 1:
            raise ConfigError("bench: --seq must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("bench: --threads must be >= 1")
        if self.budget_s <= 0 or self.min_iters < 1 or self.warmup < 0 or self.matmul_size < 16:
            raise ConfigError("bench: budget > 0, min iterations >= 1, warm-up >= 0, matmul size >= 16")


def expand_backends(names: list[str]) -> list[str]:
    """``all`` → every backend that can run here (BF16 variants only with native BF16; TensorRT only
    when usable). Unknown names are a ConfigError."""
    out: list[str] = []
    for name in names:
        if name == "all":
            cands = [b for b in CPU_BACKENDS if not b.endswith(":bf16") or cpu_supports_bf16()]
            if tensorrt_status().ok:
                cands += [b for b in bench_specs(gpu=True) if b not in CPU_BACKENDS]
        else:
            parse_backend(name)
            cands = [name]
        out += [c for c in cands if c not in out]
    return out


def shipped_model_config() -> ModelConfig:
    """The configuration ``mmcl bench`` uses without a checkpoint: ModelConfig defaults (d=256, 4 heads,
    one enhancement and one integration block, the default CSD variant) on the live feature set, regression."""
    dims = LIVE_FEATURE_SET.dims
    return ModelConfig(dim_vision=dims["vision"], dim_audio=dims["audio"], dim_text=dims["text"])


def random_checkpoint(seed: int = 0) -> LoadedCheckpoint:
    torch.manual_seed(seed)
    cfg = shipped_model_config()
    return LoadedCheckpoint(
        model=MMCL(cfg).eval(),
        model_cfg=cfg,
        task=TaskInfo(task="regression", label_kind="msa"),
        feature_set=LIVE_FEATURE_SET,
    )


def peer_checkpoint(loaded: LoadedCheckpoint, seed: int = 0) -> LoadedCheckpoint:
    """The MulT-style peer matched to the checkpoint's model, wrapped so every backend can run it."""
    torch.manual_seed(seed)
    peer = MulTPeer(MulTConfig.like(loaded.model_cfg)).eval()
    return dataclasses.replace(loaded, model=peer, path=None)  # type: ignore[arg-type]


def matmul_peak_gflops(n: int, dtype: torch.dtype = torch.float32, reps: int = 5) -> float:
    """Best-of-``reps`` throughput of one N×N×N ``torch.matmul`` (2·N³ FLOP) at the current thread count."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


def count_flops(model: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(*args)
    return int(counter.get_total_flops())


def model_summary(model: torch.nn.Module, steps: int) -> dict[str, Any]:
    args = live_like_inputs(model, 1, steps).tensors()
    cfg = model.cfg  # type: ignore[attr-defined]
    return {
        "class": type(model).__name__,
        "parameters": count_parameters(model),
        "gflop_per_sample": count_flops(model, args) / 1e9,
        "d_model": cfg.d_model,
        "n_heads": cfg.n_heads,
    }


def _build(spec: str, loaded: LoadedCheckpoint) -> tuple[InferenceBackend | None, float, str]:
    start = time.perf_counter()
    try:
        backend = create_backend(spec, loaded)
    except (BackendUnavailable, ExportError, ConfigError) as exc:
        return None, time.perf_counter() - start, str(exc)
    return backend, time.perf_counter() - start, ""


def run_bench(
    spec: BenchSpec, loaded: LoadedCheckpoint | None = None, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the benchmark; returns a JSON-able dict (see the module docstring)."""

    def say(msg: str) -> None:
        log.info("bench: %s", msg)
        if progress is not None:
            progress(msg)

    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    backends = expand_backends(spec.backends)
    described = "checkpoint " + str(loaded.path) if loaded is not None and loaded.path else "given model"
    if loaded is None:
        loaded = random_checkpoint(spec.seed)
        c = loaded.model_cfg
        described = (
            f"random initialisation of the ModelConfig defaults (d={c.d_model}, {c.n_heads} heads, "
            f"{c.enhance_layers} enhancement + {c.cross_layers} integration block, CSD {c.csd}; live feature set "
            f"{c.dim_vision}/{c.dim_audio}/{c.dim_text})"
        )
    models: dict[str, LoadedCheckpoint] = {"mmcl": loaded}
    if spec.peer:
        models["mult"] = peer_checkpoint(loaded, spec.seed)
    peer_backends = [b for b in spec.peer_backends if b in backends] if spec.peer else []

    say(f"measuring the FP32 matmul peak ({spec.matmul_size}³, {torch.get_num_threads()} thread(s))")
    peak = matmul_peak_gflops(spec.matmul_size)
    peak_bf16 = matmul_peak_gflops(spec.matmul_size, torch.bfloat16) if cpu_supports_bf16() else None

    built: dict[tuple[str, str], InferenceBackend] = {}
    rows_setup: dict[tuple[str, str], float] = {}
    skipped: dict[str, str] = {}
    for model_name, ckpt in models.items():
        for name in backends if model_name == "mmcl" else peer_backends:
            say(f"building {model_name} / {name}")
            backend, seconds, why = _build(name, ckpt)
            if backend is None:
                skipped[f"{model_name}/{name}"] = why
                continue
            built[(model_name, name)] = backend
            rows_setup[(model_name, name)] = seconds

    summaries = {name: model_summary(ckpt.model, spec.steps) for name, ckpt in models.items()}
    rows: list[dict[str, Any]] = []
    for batch in spec.batches:
        say(f"batch {batch}: timing {len(built)} candidates interleaved")
        inputs = live_like_inputs(loaded.model, batch, spec.steps, seed=spec.seed + batch)
        refs = {m: eager_reference(ckpt.model, inputs) for m, ckpt in models.items()}
        flops = {m: count_flops(ckpt.model, inputs.tensors()) for m, ckpt in models.items()}
        parity: dict[tuple[str, str], float] = {}
        for (m, name), backend in built.items():
            out = backend.run(inputs)
            parity[(m, name)] = float(np.abs(out.astype(np.float64) - refs[m]).max())
        stats = measure_interleaved(
            {f"{m}/{name}": (lambda b=backend, x=inputs: b.run(x)) for (m, name), backend in built.items()},
            warmup=spec.warmup,
            min_iters=spec.min_iters,
            budget_s=spec.budget_s,
        )
        for (m, name), _backend in built.items():
            s = stats[f"{m}/{name}"]
            tol = TOLERANCES[_precision_of(name)]
            scale = float(np.abs(refs[m]).max())
            rows.append(
                {
                    "model": m,
                    "backend": name,
                    "batch": batch,
                    **s.to_dict(),
                    "throughput_sps": batch / (s.p50_ms / 1e3),
                    "gflop": flops[m] / 1e9,
                    "achieved_gflops": flops[m] / (s.p50_ms / 1e3) / 1e9,
                    "parity_max_abs_err": parity[(m, name)],
                    "parity_tolerance": tol.bound(scale),
                    "parity_ok": parity[(m, name)] <= tol.bound(scale),
                    "setup_s": rows_setup[(m, name)],
                }
            )
    say("measuring the FP32 matmul peak again")
    peak = max(peak, matmul_peak_gflops(spec.matmul_size))
    for row in rows:
        row["pct_fp32_peak"] = 100.0 * row["achieved_gflops"] / peak
    per_batch = {str(b): _summarise(rows, b) for b in spec.batches}
    return {
        "machine": machine_info(),
        "model": described,
        "config": dataclasses.asdict(spec) | {"backends": backends, "peer_backends": peer_backends},
        "threads": torch.get_num_threads(),
        "matmul_peak_gflops": peak,
        "matmul_peak_bf16_gflops": peak_bf16,
        "models": summaries,
        "results": rows,
        "summary": per_batch,
        "skipped": skipped,
        "descriptions": {f"{m}/{n}": b.describe() for (m, n), b in built.items()},
    }


def _precision_of(name: str) -> str:
    base, opts = parse_backend(name)
    return str(opts.get("precision", "fp16" if base == "tensorrt" else "fp32"))


def _summarise(rows: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    """Per batch: the fastest MMCL backend that passed parity (any precision) and the fastest FP32 one,
    their speed-ups over eager FP32, and MMCL/MulT latency per backend both ran on."""
    mine = {r["backend"]: r for r in rows if r["batch"] == batch and r["model"] == "mmcl"}
    peer = {r["backend"]: r for r in rows if r["batch"] == batch and r["model"] == "mult"}
    out: dict[str, Any] = {}
    for label, pool in (
        ("best", {k: r for k, r in mine.items() if r["parity_ok"]}),
        ("best_fp32", {k: r for k, r in mine.items() if r["parity_ok"] and _precision_of(k) == "fp32"}),
    ):
        if not pool:
            continue
        best = min(pool.values(), key=lambda r: r["p50_ms"])
        out[f"{label}_backend"] = best["backend"]
        out[f"{label}_p50_ms"] = best["p50_ms"]
        out[f"{label}_pct_fp32_peak"] = best["pct_fp32_peak"]
        if "eager" in mine:
            out[f"{label}_over_eager"] = mine["eager"]["p50_ms"] / best["p50_ms"]
    out["mmcl_over_mult"] = {k: mine[k]["p50_ms"] / peer[k]["p50_ms"] for k in peer if k in mine}
    return out
