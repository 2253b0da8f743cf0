"""Helpers shared by CLI commands: config assembly, progress bars, metric tables."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mmcl.app_config import AppConfig, load_app_config

stdout = Console()
stderr = Console(stderr=True)


def build_config(config_files: list[Path] | None, options: dict[str, Any], overrides: list[str] | None) -> AppConfig:
    """defaults ← --config files ← explicit CLI options (not None) ← key=value overrides."""
    opt_overrides = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in options.items()
                     if v is not None]
    return load_app_config(files=list(config_files or []), overrides=[*opt_overrides, *(overrides or [])])


@contextmanager
def training_progress(total_epochs: int, quiet: bool = False) -> Iterator[tuple[Any, Any]]:
    """Yields (on_epoch, on_batch) callbacks that drive a rich progress bar on stderr."""
    if quiet:
        yield None, None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=stderr,
        transient=False,
    ) as progress:
        epochs = progress.add_task("epochs", total=total_epochs, info="")
        batches = progress.add_task("batches", total=1, info="")

        def on_batch(done: int, total: int) -> None:
            progress.update(batches, total=total, completed=done)

        def on_epoch(epoch: int, total: int, record: dict[str, Any]) -> None:
            shown = {k: v for k, v in record.items() if k.startswith("valid_")}
            first = next(iter(shown.items()), None)
            info = f"loss {record['train_loss']:.4f}"
            if first:
                info += f"  {first[0]} {first[1]:.4f}"
            progress.update(epochs, completed=epoch, info=info + ("  *" if record.get("improved") else ""))

        yield on_epoch, on_batch


def metrics_table(title: str, columns: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    keys: list[str] = []
    for values in columns.values():
        keys.extend(k for k in values if k not in keys)
    for k in keys:
        row = []
        for values in columns.values():
            v = values.get(k)
            row.append("–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}")
        table.add_row(k, *row)
    return table
