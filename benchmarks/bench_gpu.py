"""GPU checks: benchmark every GPU inference path installed here and check the graph TensorRT would get.

    PYTHONPATH=. python benchmarks/bench_gpu.py [--checkpoint P] [--batch 1,8,64] [--seq 50]
                                               [--time-limit 400] [--json-out FILE]

Paths (each at every batch size, L = 50, MMCL of the shipped configuration unless --checkpoint):

* CUDA eager FP32; FP16 and BF16 (matrix products in low precision, LayerNorm/softmax/CSD in FP32:
  ``model.backends.precision``); ``torch.autocast`` FP16; CUDA graphs over eager FP32 and FP16
  (``model.backends.cudagraph``); ``torch.compile`` (Inductor/Triton) FP32 and FP16 with
  ``mode="reduce-overhead"`` (CUDA graphs); TensorRT FP16/INT8 engines when torch-tensorrt is installed
  (``model.backends.tensorrt_backend``; skipped with the reason otherwise).
* The MulT-style peer in eager FP32 and FP16 at the same shapes (MMCL/MulT ratio).
* Graph checks: ``torch._dynamo.explain`` (graph breaks, the torch.compile view) and ``torch.export`` with
  a dynamic batch 1–64 of the FP32 and the FP16 module (the graph torch-tensorrt's dynamo path consumes),
  run at batch 1 and 64 against eager.

Every path is parity-checked against eager FP32 on the CPU. Latencies are wall-clock per call with a
device synchronise (what the live pipeline sees), timed interleaved. Only plain printing here: the GPU
machine runs this with its own Python (torch, numpy), not the project's environment.
``--allow-cpu`` runs the same code on the CPU with a tiny model (a dry run of the script itself).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.backends.cudagraph import CudaGraphRunner
from model.backends.graphs import export_program
from model.backends.inputs import live_like_inputs
from model.backends.parity import eager_reference
from model.backends.precision import TOLERANCES, low_precision_copy
from model.backends.probe import find_spec, modelopt_status, tensorrt_status
from model.backends.timing import measure_interleaved
from model.config import ModelConfig
from model.featureset import LIVE_FEATURE_SET
from model.mmcl import MMCL
from model.peers.mult import MulTConfig, MulTPeer

T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def build_models(args: argparse.Namespace) -> tuple[torch.nn.Module, torch.nn.Module, str]:
    if args.checkpoint:
        from model.checkpoint import load_checkpoint

        loaded = load_checkpoint(args.checkpoint)
        mmcl, cfg, what = loaded.model, loaded.model_cfg, f"checkpoint {args.checkpoint}"
    else:
        dims = LIVE_FEATURE_SET.dims
        kw = dict(d_model=32, n_heads=4, head_hidden=16) if args.allow_cpu else {}
        cfg = ModelConfig(dim_vision=dims["vision"], dim_audio=dims["audio"], dim_text=dims["text"], **kw)
        torch.manual_seed(0)
        mmcl = MMCL(cfg)
        what = f"random init of the shipped configuration (d={cfg.d_model}, live features 56/34/384)"
    torch.manual_seed(0)
    peer = MulTPeer(MulTConfig.like(cfg))
    return mmcl.eval(), peer.eval(), what


class Path_:
    """One GPU path: a callable over device tensors, built lazily, with a name and a precision."""

    def __init__(
        self, name: str, precision: str, make: Callable[[], Callable[..., torch.Tensor]], model: str
    ):
        self.name, self.precision, self.make, self.model = name, precision, make, model
        self.fn: Callable[..., torch.Tensor] | None = None
        self.error = ""
        self.setup_s = 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint")
    ap.add_argument("--batch", default="1,8,64")
    ap.add_argument("--seq", type=int, default=50)
    ap.add_argument(
        "--time-limit", type=float, default=400.0, help="skip what is left after this many seconds"
    )
    ap.add_argument("--budget", type=float, default=0.6, help="timing seconds per path and batch")
    ap.add_argument("--json-out")
    ap.add_argument("--allow-cpu", action="store_true", help="dry run on the CPU with a tiny model")
    ap.add_argument("--skip-compile", action="store_true")
    args = ap.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        print("no CUDA GPU visible; nothing to benchmark (use --allow-cpu for a dry run)")
        return 1
    dev = torch.device("cuda" if cuda else "cpu")
    gpu = torch.cuda.get_device_name(0) if cuda else "none (dry run on CPU)"
    trt, mo = tensorrt_status(), modelopt_status()
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": gpu,
        "triton": "present" if find_spec("triton") else "absent",
        "torch_tensorrt": trt.reason,
        "modelopt": mo.reason,
        "onnxruntime": "present" if find_spec("onnxruntime") else "absent",
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
    }
    say("environment: " + json.dumps(env))
    mmcl, peer, what = build_models(args)
    say(f"model: {what}")
    mmcl_cpu, peer_cpu = copy.deepcopy(mmcl), copy.deepcopy(peer)  # references stay on the CPU in FP32
    inputs = {b: live_like_inputs(mmcl_cpu, b, args.seq, seed=b) for b in batches}
    refs = {("mmcl", b): eager_reference(mmcl_cpu, inputs[b]) for b in batches}
    refs.update({("mult", b): eager_reference(peer_cpu, inputs[b]) for b in batches})
    mm_dev = {"mmcl": mmcl.to(dev), "mult": peer.to(dev)}
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def eager(model: str, precision: str) -> Callable[[], Callable[..., torch.Tensor]]:
        def make() -> Callable[..., torch.Tensor]:
            m = low_precision_copy(mm_dev[model], precision).to(dev) if precision != "fp32" else mm_dev[model]
            return m

        return make

    def autocast_fp16() -> Callable[..., torch.Tensor]:
        m = mm_dev["mmcl"]

        def run(*xs: torch.Tensor) -> torch.Tensor:
            with torch.autocast(dev.type, dtype=torch.float16 if cuda else torch.bfloat16):
                return m(*xs)

        return run

    graph_cache: dict[tuple[str, str, int], CudaGraphRunner] = {}

    def graphed(precision: str, model: str = "mmcl") -> Callable[[], Callable[..., torch.Tensor]]:
        def make() -> Callable[..., torch.Tensor]:
            if not cuda:
                raise RuntimeError("CUDA graphs need a GPU")
            m = eager(model, precision)()

            def run(*xs: torch.Tensor) -> torch.Tensor:
                key = (model, precision, int(xs[0].shape[0]))
                if key not in graph_cache:
                    graph_cache[key] = CudaGraphRunner(m, xs)
                return graph_cache[key](*xs)

            return run

        return make

    def compiled(precision: str, mode: str | None) -> Callable[[], Callable[..., torch.Tensor]]:
        def make() -> Callable[..., torch.Tensor]:
            m = eager("mmcl", precision)()
            fn = torch.compile(m, mode=mode) if mode else torch.compile(m)
            if mode == "reduce-overhead":

                def run(*xs: torch.Tensor) -> torch.Tensor:
                    torch.compiler.cudagraph_mark_step_begin()
                    return fn(*xs).clone()

                return run
            return fn

        return make

    def tensorrt(precision: str) -> Callable[[], Callable[..., torch.Tensor]]:
        def make() -> Callable[..., torch.Tensor]:
            from model.backends.tensorrt_backend import TensorRTBackend
            from model.checkpoint import LoadedCheckpoint
            from model.evaluate import TaskInfo

            ckpt = LoadedCheckpoint(
                model=copy.deepcopy(mmcl_cpu),
                model_cfg=mmcl.cfg,
                task=TaskInfo("regression", "msa"),
                feature_set=LIVE_FEATURE_SET,
            )
            backend = TensorRTBackend(ckpt, precision=precision, steps=args.seq)
            say(f"TensorRT {precision}: {backend.parity.summary() if backend.parity else ''}")
            return backend.run_tensors

        return make

    paths = [
        Path_("eager fp32", "fp32", eager("mmcl", "fp32"), "mmcl"),
        Path_("eager fp16", "fp16", eager("mmcl", "fp16"), "mmcl"),
        Path_("eager bf16", "bf16", eager("mmcl", "bf16"), "mmcl"),
        Path_("autocast fp16", "fp16", autocast_fp16, "mmcl"),
        Path_("cuda-graph fp32", "fp32", graphed("fp32"), "mmcl"),
        Path_("cuda-graph fp16", "fp16", graphed("fp16"), "mmcl"),
    ]
    if not args.skip_compile:
        paths += [
            Path_("compile fp32", "fp32", compiled("fp32", None), "mmcl"),
            Path_(
                "compile fp16 +graphs", "fp16", compiled("fp16", "reduce-overhead" if cuda else None), "mmcl"
            ),
        ]
    if trt.ok:
        paths += [
            Path_("tensorrt fp16", "fp16", tensorrt("fp16"), "mmcl"),
            Path_("tensorrt int8", "int8", tensorrt("int8"), "mmcl"),
        ]
    else:
        say(f"TensorRT paths skipped: {trt.reason}")
    paths += [
        Path_("MulT eager fp32", "fp32", eager("mult", "fp32"), "mult"),
        Path_("MulT eager fp16", "fp16", eager("mult", "fp16"), "mult"),
        Path_("MulT cuda-graph fp32", "fp32", graphed("fp32", "mult"), "mult"),
        Path_("MulT cuda-graph fp16", "fp16", graphed("fp16", "mult"), "mult"),
    ]

    # ---- graph checks (what torch-tensorrt would consume) ----
    checks: dict[str, object] = {}
    for precision in ("fp32", "fp16"):
        try:
            m = eager("mmcl", precision)()
            x4 = inputs[batches[-1]].select(slice(0, 4)).tensors(dev)
            explanation = torch._dynamo.explain(m)(*x4)
            start = time.perf_counter()
            prog = export_program(m, steps=args.seq, batch=(1, 64), dynamic_steps=False, device=str(dev))
            ops = sorted({str(n.target) for n in prog.graph.nodes if n.op == "call_function"})
            module = prog.module()
            errs = {}
            for b in (1, 64):
                x = live_like_inputs(mmcl_cpu, b, args.seq, seed=100 + b)
                with torch.inference_mode():
                    out = module(*x.tensors(dev)).float().cpu().numpy()
                errs[b] = float(np.abs(out - eager_reference(mmcl_cpu, x)).max())
            checks[precision] = {
                "dynamo_graphs": explanation.graph_count,
                "dynamo_graph_breaks": explanation.graph_break_count,
                "export_ok": True,
                "export_s": round(time.perf_counter() - start, 1),
                "export_nodes": len(prog.graph.nodes),
                "distinct_aten_ops": len(ops),
                "dynamic_batch_range": str(prog.range_constraints),
                "max_abs_err_b1_b64": errs,
            }
        except Exception as exc:
            checks[precision] = {"export_ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        say(f"graph check {precision}: {json.dumps(checks[precision])}")

    # ---- set up paths ----
    for p in paths:
        if time.perf_counter() - T0 > args.time_limit:
            p.error = "skipped: time limit"
            continue
        start = time.perf_counter()
        try:
            p.fn = p.make()
            with torch.inference_mode():
                for b in batches:  # compile/capture every shape before timing
                    p.fn(*inputs[b].tensors(dev))
            sync()
        except Exception as exc:
            p.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            traceback.print_exc(limit=2)
        p.setup_s = time.perf_counter() - start
        say(f"set up {p.name}: {p.error or 'ok'} ({p.setup_s:.1f} s)")

    rows = []
    for b in batches:
        if time.perf_counter() - T0 > args.time_limit:
            say(f"batch {b}: skipped (time limit)")
            continue
        xs = inputs[b].tensors(dev)
        live = [p for p in paths if p.fn is not None]
        errs = {}
        with torch.inference_mode():
            for p in live:
                out = p.fn(*xs).float().cpu().numpy()
                errs[p.name] = float(np.abs(out - refs[(p.model, b)]).max())

            def timed(p: Path_, xs: tuple[torch.Tensor, ...] = xs) -> Callable[[], None]:
                def call() -> None:
                    p.fn(*xs)
                    sync()

                return call

            stats = measure_interleaved(
                {p.name: timed(p) for p in live}, warmup=3, min_iters=20, max_iters=500, budget_s=args.budget
            )
        for p in live:
            s = stats[p.name]
            scale = float(np.abs(refs[(p.model, b)]).max())
            bound = TOLERANCES[p.precision].bound(scale)
            rows.append(
                {
                    "path": p.name,
                    "batch": b,
                    "p50_ms": s.p50_ms,
                    "p95_ms": s.p95_ms,
                    "p99_ms": s.p99_ms,
                    "n": s.n,
                    "samples_per_s": b / (s.p50_ms / 1e3),
                    "parity_err": errs[p.name],
                    "parity_ok": errs[p.name] <= bound,
                    "setup_s": p.setup_s,
                }
            )
        say(f"batch {b}: timed {len(live)} paths")

    print()
    print(f"GPU paths — {gpu}, torch {torch.__version__}, L={args.seq}, {what}")
    header = (
        f"{'path':24} {'batch':>5} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'samples/s':>11} "
        f"{'vs eager':>9} {'parity err':>11} {'setup s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        base = next((x for x in rows if x["path"] == "eager fp32" and x["batch"] == r["batch"]), None)
        speed = f"{base['p50_ms'] / r['p50_ms']:.2f}x" if base else "-"
        flag = "" if r["parity_ok"] else " FAIL"
        print(
            f"{r['path']:24} {r['batch']:>5} {r['p50_ms']:>9.3f} {r['p95_ms']:>9.3f} {r['p99_ms']:>9.3f} "
            f"{r['samples_per_s']:>11.0f} {speed:>9} {r['parity_err']:>11.2e}{flag} {r['setup_s']:>8.1f}"
        )
    for b in batches:
        for kind in ("eager fp32", "eager fp16", "cuda-graph fp32", "cuda-graph fp16"):
            mm = next((x for x in rows if x["path"] == kind and x["batch"] == b), None)
            mt = next((x for x in rows if x["path"] == f"MulT {kind}" and x["batch"] == b), None)
            if mm and mt:
                print(f"MMCL/MulT {kind} latency at batch {b}: {mm['p50_ms'] / mt['p50_ms']:.2f}")
    for p in paths:
        if p.error:
            print(f"not measured: {p.name}: {p.error}")
    print(f"graph checks: {json.dumps(checks)}")
    print(f"total {time.perf_counter() - T0:.0f} s")
    out = args.json_out or (
        os.path.join(os.environ["OUT"], "bench_gpu.json") if os.environ.get("OUT") else None
    )
    if out:
        Path(out).write_text(
            json.dumps(
                {
                    "env": env,
                    "model": what,
                    "rows": rows,
                    "checks": checks,
                    "errors": {p.name: p.error for p in paths if p.error},
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
