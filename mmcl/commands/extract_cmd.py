"""``mmcl extract``: labelled videos → an MMSA-format pickle with the live feature set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmcl.logging_setup import stderr_console


def extract(
    inputs: Annotated[
        list[Path],
        typer.Argument(metavar="VIDEO_OR_DIR...", help="Media files or folders (searched recursively)."),
    ],
    labels: Annotated[
        Path, typer.Option("--labels", help="CSV with path,start,end,label (+ optional id, split).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output pickle (MMSA layout + per-step masks).")],
    window: Annotated[
        float | None,
        typer.Option("--window", help="Window seconds (default features.window_s = 5 → L = 50)."),
    ] = None,
    hop: Annotated[
        float, typer.Option("--hop", help="Long segments: also windows ending HOP s earlier (0 = last only).")
    ] = 0.0,
    split_by: Annotated[
        str, typer.Option("--split-by", help="file (no file in two splits) or segment.")
    ] = "file",
    valid_frac: Annotated[float, typer.Option("--valid-frac", help="Share of files for validation.")] = 0.15,
    test_frac: Annotated[float, typer.Option("--test-frac", help="Share of files for test.")] = 0.15,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split shuffle.")] = 0,
    allow_missing_streams: Annotated[
        bool, typer.Option("--allow-missing-streams", help="Keep files without video/audio, modality masked.")
    ] = False,
    record_calib: Annotated[
        Path | None,
        typer.Option("--record-calib", help="Also save the train+valid windows as quantisation calibration shards."),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option("--features", help="Live feature set: live-v3 (default), live-v2 or live-v1."),
    ] = None,
    config: Annotated[
        list[Path] | None, typer.Option("--config", help="App config YAML (features: section); repeatable.")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override key=value, e.g. features.whisper_beam_size=1.")
    ] = None,
) -> None:
    """Extract face, voice and text features of labelled media on the live 10 Hz grid (MMSA pickle).

    Each finished file is kept in OUT.parts/ at once, so a re-run (after a stop or a failure) reuses it;
    delete that folder to force re-extraction. Files that fail are reported and skipped.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from mmcl.app_config import load_app_config
    from model.errors import DataFormatError
    from realtime.features.dataset import build_dataset, read_labels
    from realtime.features.media import find_media

    if split_by not in ("file", "segment"):
        raise DataFormatError(f"--split-by must be file or segment, got {split_by!r}")
    extra = [f"features.feature_set={features}"] if features else []
    cfg = load_app_config(list(config or []), [*list(overrides or []), *extra]).features
    rows = read_labels(labels)
    files = find_media(list(inputs))
    if not files:
        raise DataFormatError(f"no media files found in {', '.join(map(str, inputs))}")
    wanted = {r.path for r in rows}
    n_todo = sum(1 for f in files if f in wanted)
    console = Console()
    with Progress(
        TextColumn("[bold]extract[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=stderr_console, transient=False,
    ) as progress:  # fmt: skip
        task = progress.add_task("", total=n_todo)

        def on_file(path: Path, status: str) -> None:
            if status == "start":
                progress.update(task, description=path.name)
            else:
                if status.startswith("failed"):
                    progress.console.print(f"[red]✗[/] {path}: {status[8:]}", highlight=False)
                progress.advance(task)

        report = build_dataset(
            files, rows, out, cfg, window_s=window, hop_s=hop, split_by=split_by,  # type: ignore[arg-type]
            valid_frac=valid_frac, test_frac=test_frac, seed=seed, allow_missing=allow_missing_streams,
            on_file=on_file,
        )  # fmt: skip

    table = Table(title=f"mmcl extract → {out}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("files extracted", str(len(report.done)))
    table.add_row("files from cache", str(len(report.cached)))
    table.add_row("files failed (skipped)", str(len(report.failed)))
    table.add_row("input files without label rows", str(len(report.unlabelled)))
    table.add_row("label rows for files not given", str(report.rows_without_input))
    table.add_row("samples", str(report.samples))
    for name, n in report.split_sizes.items():
        table.add_row(f"  {name}", str(n))
    console.print(table)
    for path, reason in report.failed.items():
        console.print(f"[red]failed[/] {path}: {reason}", highlight=False)
    if report.samples == 0:
        raise DataFormatError("no sample was extracted; see the failures above")
    if record_calib is not None:
        from calibration.recorder import record_dataset_windows

        n = record_dataset_windows(out, record_calib)
        console.print(f"calibration windows: {n} (train + valid; test kept out) → {record_calib}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
