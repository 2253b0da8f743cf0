"""``mmcl train-default``: rebuild the shipped default checkpoint from the real data (mmcl/recipes/)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from mmcl.commands.common import stderr, stdout, training_progress

log = logging.getLogger("mmcl")


def register(app: typer.Typer) -> None:
    @app.command("train-default")
    def train_default(
        data_root: Path = typer.Option(
            None, "--data-root", help="The shared data folder (default ../shared/data)."
        ),
        out: Path = typer.Option(
            Path("runs/default-model"), "--out", help="Output folder (checkpoint, report)."
        ),
        cache: Path = typer.Option(
            None, "--cache", help="Feature cache (default ~/.cache/mmcl-live/recipe); re-runs reuse it."
        ),
        limit: int = typer.Option(None, "--limit", help="At most N items per source and split (smoke runs)."),
        epochs: int = typer.Option(None, "--epochs", help="Epochs of every training (the last one is kept)."),
        folds: int = typer.Option(None, "--folds", help="Person-grouped CV folds (default: the recipe's)."),
        jobs: int = typer.Option(1, "--jobs", help="Trainings run at once during CV (one CPU thread each)."),
        seed: int = typer.Option(None, "--seed", help="Seed of every random choice (default 0)."),
        config: Path = typer.Option(
            None, "--config", help="Recipe YAML (default configs/recipes/default_model.yaml)."
        ),
        install: bool = typer.Option(
            False, "--install", help="Copy the checkpoint to model/pretrained/ (what the monitor loads)."
        ),
        media_eval: bool = typer.Option(
            True, "--media-eval/--no-media-eval", help="Also evaluate on the CREMA-D and MOUD clips."
        ),
        quiet: bool = typer.Option(False, "--quiet-progress", help="No progress bars."),
    ) -> None:
        """Build the data through the live extractors, cross-validate MMCL variants and baselines by person,
        train the chosen one on every development group, score the held-out groups once, save."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from mmcl.recipes.config import load_recipe_config
        from mmcl.recipes.default_model import run_recipe
        from mmcl.recipes.report import summary_table

        overrides: dict[str, Any] = {}
        for key, value in (("data_root", data_root), ("cache_dir", cache), ("limit", limit), ("seed", seed)):
            if value is not None:
                overrides[key] = str(value) if isinstance(value, Path) else value
        if epochs is not None:
            overrides["train"] = {"epochs": epochs, "patience": epochs}
        if folds is not None:
            overrides["protocol"] = {"folds": folds}
        if seed is not None:
            overrides.setdefault("train", {})["seed"] = seed
        cfg = load_recipe_config(config, overrides)
        stderr.print(
            f"recipe: data {cfg.data_path}, cache {cfg.cache_path}, seed {cfg.seed}"
            + (f", limit {cfg.limit} per source and split" if cfg.limit else ""),
            highlight=False,
        )

        bars = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=stderr, transient=False, disable=quiet,
        )  # fmt: skip
        tasks: dict[str, Any] = {}

        def on_item(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        @contextlib.contextmanager
        def training(title: str, total_epochs: int) -> Iterator[tuple[Any, Any]]:
            bars.stop()  # the build is done; one live display at a time
            stderr.print(f"training {title}", highlight=False)
            with training_progress(total_epochs, quiet) as callbacks:
                yield callbacks

        with bars:
            result = run_recipe(cfg, out, progress=on_item, training=training, media_eval=media_eval,
                                install=install, jobs=jobs)  # fmt: skip
        stdout.print(
            f"wrote {result.checkpoint} ({result.parameters:,} parameters, "
            f"{result.size_bytes / 1e6:.2f} MB), {out / 'report.md'}, {out / 'recipe_result.json'}; "
            f"times {result.seconds} s",
            highlight=False,
        )
        stdout.print(f"chosen: {result.chosen['reason']}", highlight=False)
        stdout.print(summary_table(result), highlight=False)
        if result.installed:
            stdout.print(f"installed as {result.installed}", highlight=False)
