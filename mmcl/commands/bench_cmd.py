"""``mmcl bench``: latency/throughput of every inference backend, MMCL beside a MulT-style peer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mmcl.commands.common import stderr, stdout
from model.backends import bench_specs  # the registry's bench specs: the help never goes stale
from model.errors import ConfigError


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated integers, e.g. 1,8,64 (got {text!r})") from None
    if not values:
        raise ConfigError(f"{what} is empty")
    return values


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def results_table(result: dict[str, Any]) -> Table:
    peak = result["matmul_peak_gflops"]
    table = Table(
        title=f"mmcl bench — L={result['config']['steps']}, {result['threads']} thread(s), "
        f"FP32 matmul peak {peak:.1f} GFLOP/s (ratios within this run are what counts)",
    )
    for col in (
        "model",
        "backend",
        "batch",
        "n",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "samples/s",
        "GFLOP/s",
        "% peak",
        "parity err",
        "setup s",
    ):
        table.add_column(col, justify="left" if col in ("model", "backend") else "right")
    for r in result["results"]:
        table.add_row(
            r["model"],
            r["backend"],
            str(r["batch"]),
            str(r["n"]),
            f"{r['p50_ms']:.2f}",
            f"{r['p95_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['throughput_sps']:.1f}",
            f"{r['achieved_gflops']:.1f}",
            f"{r['pct_fp32_peak']:.0f}%",
            f"{r['parity_max_abs_err']:.1e}" + ("" if r["parity_ok"] else " FAIL"),
            f"{r['setup_s']:.1f}",
        )
    return table


def summary_table(result: dict[str, Any]) -> Table:
    table = Table(
        title="per batch: fastest backend within its parity tolerance (any precision / FP32 only), "
        "speed-up over eager FP32, MMCL/MulT latency ratio"
    )
    for col in (
        "batch",
        "best",
        "p50 ms",
        "/ eager",
        "% FP32 peak",
        "best FP32",
        "p50 ms",
        "/ eager",
        "% FP32 peak",
        "MMCL / MulT",
    ):
        table.add_column(col, justify="right")

    def cells(s: dict[str, Any], label: str) -> list[str]:
        if f"{label}_backend" not in s:
            return ["–"] * 4
        return [
            s[f"{label}_backend"],
            f"{s[f'{label}_p50_ms']:.2f}",
            f"{s[f'{label}_over_eager']:.2f}×" if f"{label}_over_eager" in s else "–",
            f"{s[f'{label}_pct_fp32_peak']:.0f}%",
        ]

    for batch, s in result["summary"].items():
        ratios = ", ".join(f"{k} {v:.2f}" for k, v in s.get("mmcl_over_mult", {}).items()) or "–"
        table.add_row(batch, *cells(s, "best"), *cells(s, "best_fp32"), ratios)
    return table


def machine_line(result: dict[str, Any]) -> str:
    m = result["machine"]
    bf16 = result.get("matmul_peak_bf16_gflops")
    return (
        f"machine: {m['cpu']} ({m['logical_cpus']} logical CPUs, {m['cpu_capability']}), {m['platform']}; "
        f"python {m['python']}, torch {m['torch']}, onnxruntime {m['onnxruntime']}, "
        f"torch_tensorrt {m['torch_tensorrt']}; threads {result['threads']}; "
        f"matmul peak FP32 {result['matmul_peak_gflops']:.1f} GFLOP/s" + (f", BF16 {bf16:.1f} GFLOP/s" if bf16 else "")
    )


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        backend: str = typer.Option(
            "all",
            "--backend",
            help=f"all | comma list of backend specs, e.g. {','.join(bench_specs(gpu=True))}",
        ),
        batch: str = typer.Option("1,8,64", "--batch", help="Batch sizes, comma-separated."),
        seq: int = typer.Option(50, "--seq", help="Window length L (steps)."),
        threads: int = typer.Option(None, "--threads", help="Intra-op threads (torch and onnxruntime)."),
        checkpoint: str = typer.Option(
            None,
            "--checkpoint",
            help="Checkpoint to time (default: a random initialisation of the shipped configuration).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout (tables on stderr)."),
        peer: bool = typer.Option(True, "--peer/--no-peer", help="Time the MulT-style peer too."),
        peer_backends: str = typer.Option("eager,onnx", "--peer-backends", help="Backends the peer runs on."),
        budget: float = typer.Option(2.0, "--budget", help="Seconds of timing per backend and batch."),
        min_iters: int = typer.Option(5, "--min-iters", help="Timed runs per backend and batch, at least."),
        warmup: int = typer.Option(3, "--warmup", help="Untimed runs per backend and batch first."),
        matmul_size: int = typer.Option(2048, "--matmul-size", help="N of the N×N×N matmul peak probe."),
    ) -> None:
        """Latency p50/p95/p99, throughput and % of matmul peak per backend; MMCL beside a MulT-style peer."""
        from model.backends.bench import BenchSpec, run_bench

        spec = BenchSpec(
            backends=_names(backend),
            batches=_ints(batch, "--batch"),
            steps=seq,
            threads=threads,
            peer=peer,
            peer_backends=_names(peer_backends),
            budget_s=budget,
            min_iters=min_iters,
            warmup=warmup,
            matmul_size=matmul_size,
        )
        loaded = None
        if checkpoint is not None:
            from model.checkpoint import load_checkpoint

            loaded = load_checkpoint(Path(checkpoint))
        out = stderr if as_json else stdout
        if not out.is_terminal:  # a file or pipe: do not squeeze the 12-column table into 80 columns
            out = Console(stderr=as_json, width=170)
        with stderr.status("benchmarking…") as status:
            result = run_bench(spec, loaded, progress=lambda msg: status.update(msg))
        out.print(machine_line(result), highlight=False)
        out.print(f"model: {result['model']}", highlight=False)
        for name, s in result["models"].items():
            out.print(
                f"  {name}: {s['class']}, {s['parameters']:,} parameters, {s['gflop_per_sample']:.3f} "
                f"GFLOP per sample at L={seq}",
                highlight=False,
            )
        out.print(results_table(result))
        out.print(summary_table(result))
        for name, why in result["skipped"].items():
            out.print(f"skipped {name}: {why}", highlight=False)
        if as_json:
            typer.echo(json.dumps(result, default=str))
