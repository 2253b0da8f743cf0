"""``mmcl export``: ONNX / torch.export program / TensorRT engine, each with a printed parity check."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from mmcl.commands.common import stdout


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        out: str = typer.Option(..., "--out", help="Output file (.onnx, .pt2, .ep)."),
        fmt: str = typer.Option("onnx", "--format", help="onnx | exported-program | tensorrt"),
        checkpoint: str = typer.Option(None, "--checkpoint", help="Checkpoint (default: the shipped one)."),
        precision: str = typer.Option(
            None,
            "--precision",
            help="onnx: fp32; exported-program: fp32 | bf16 | fp16; tensorrt: fp16 (default) | int8 | fp32",
        ),
        seq: int = typer.Option(50, "--seq", help="Window length L of the parity inputs (and of TensorRT)."),
        opset: int = typer.Option(20, "--opset", help="ONNX opset (>= 18)."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    ) -> None:
        """Export a checkpoint and check it against eager PyTorch; a parity failure is an error (exit 2)."""
        from model.checkpoint import load_checkpoint
        from model.export import export_checkpoint
        from model.pretrained import default_checkpoint_path

        path = Path(checkpoint) if checkpoint is not None else default_checkpoint_path()
        loaded = load_checkpoint(path)
        report = export_checkpoint(loaded, fmt, Path(out), precision=precision, steps=seq, opset=opset)
        if as_json:
            typer.echo(json.dumps(report.to_dict()))
            return
        table = Table(
            title=f"parity of {fmt} ({report.precision}) against eager FP32 PyTorch — tolerance "
            f"{report.parity.tolerance.describe()}"
        )
        for col in ("case", "max |ref|", "max abs error", "tolerance", ""):
            table.add_column(col, justify="left" if col == "case" else "right")
        for c in report.parity.cases:
            table.add_row(
                c.name,
                f"{c.ref_scale:.3g}",
                f"{c.max_abs_err:.3g}",
                f"{c.bound:.3g}",
                "ok" if c.ok else "FAILED",
            )
        stdout.print(table)
        stdout.print(
            f"max abs error {report.parity.max_abs_err:.3g} "
            f"(tolerance {report.parity.tolerance.describe()}); "
            f"wrote {', '.join(str(f) for f in report.files)} in {report.seconds:.1f} s",
            highlight=False,
        )
