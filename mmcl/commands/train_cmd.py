"""``mmcl train``, ``mmcl eval``, ``mmcl ablate`` and ``mmcl make-planted``."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import typer

from mmcl.commands.common import build_config, metrics_table, stderr, stdout, training_progress
from model.errors import CheckpointError, ConfigError

log = logging.getLogger("mmcl")


def _task_for(data_format: str, task: str | None) -> str | None:
    if task is not None and task not in ("regression", "classification"):
        raise ConfigError(f"--task must be regression or classification, got {task!r}")
    if data_format == "mult-iemocap" and task == "regression":
        raise ConfigError("the MulT IEMOCAP data is 4-emotion classification; drop --task regression")
    return task


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        data: Path = typer.Option(..., "--data", help="Dataset file (MMSA/MulT pickle) or CMDC folder."),
        out: Path = typer.Option(..., "--out", help="Output folder for best.pt and metrics.json."),
        data_format: str = typer.Option("auto", "--format", help="mmsa | mult-iemocap | cmdc | auto"),
        task: str = typer.Option(None, "--task", help="regression | classification (default: the data's)"),
        epochs: int = typer.Option(None, "--epochs", help="Maximum epochs (early stopping on valid)."),
        seed: int = typer.Option(None, "--seed"),
        ablation: str = typer.Option(None, "--ablation", help="none | no_csd | no_self_attn | no_cross_attn"),
        config: list[Path] = typer.Option(None, "--config", help="YAML config file(s), applied in order."),
        quiet: bool = typer.Option(False, "--quiet-progress", help="No progress bar."),
        overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. model.d_model=128"),
    ) -> None:
        """Train MMCL; select on the validation split; write DIR/best.pt and DIR/metrics.json."""
        from model.data.loading import load_dataset
        from model.train import fit, model_config_for

        cfg = build_config(
            config,
            {"data.path": str(data), "data.format": data_format, "train.epochs": epochs, "train.seed": seed,
             "model.ablation": ablation},
            overrides,
        )
        task = _task_for(cfg.data.format, task)
        dataset = load_dataset(cfg.data, task)
        mcfg = model_config_for(cfg.model, dataset)
        stderr.print(
            f"training on [bold]{dataset.name}[/] ({dataset.format}, {dataset.task}, "
            f"{ {k: len(v) for k, v in dataset.splits.items()} } samples, dims {dataset.dims}, L={dataset.seq_len}, "
            f"ablation={mcfg.ablation}, csd={mcfg.csd})",
            highlight=False,
        )
        with training_progress(cfg.train.epochs, quiet) as (on_epoch, on_batch):
            result = fit(mcfg, cfg.train, dataset, out_dir=out, dcfg=cfg.data, on_epoch=on_epoch, on_batch=on_batch)
        stdout.print(metrics_table(
            f"best epoch {result.best_epoch}/{result.epochs_run} by valid {result.select_metric}; "
            f"{result.seconds_per_epoch:.2f} s/epoch; {result.parameters:,} parameters",
            {"valid": result.valid, "test": result.test},
        ))
        stdout.print(f"wrote {out / 'best.pt'} and {out / 'metrics.json'}", highlight=False)

    @app.command("eval")
    def evaluate(
        checkpoint: Path = typer.Option(..., "--checkpoint", help="A best.pt written by mmcl train."),
        data: Path = typer.Option(..., "--data", help="Dataset in the format the checkpoint was trained on."),
        split: str = typer.Option("test", "--split", help="train | valid | test"),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object of metrics on stdout."),
        save_predictions: Path = typer.Option(None, "--save-predictions", help="CSV with id,y_true,y_pred."),
        data_format: str = typer.Option(None, "--format", help="Override the stored data format."),
    ) -> None:
        """Evaluate a checkpoint on a split of a dataset."""
        import dataclasses

        from model.checkpoint import load_checkpoint
        from model.config import DataConfig
        from model.configlib import from_dict
        from model.data.loading import load_dataset
        from model.evaluate import compute_metrics, predict
        from model.evaluate import save_predictions as write_csv

        ckpt = load_checkpoint(checkpoint)
        stored = dict(ckpt.config.get("data", {}))
        dcfg = from_dict(DataConfig, stored, "checkpoint data config") if stored else DataConfig()
        dcfg = dataclasses.replace(dcfg, path=str(data), format=data_format or dcfg.format)
        dataset = load_dataset(dcfg, ckpt.task.task)
        if split not in dataset.splits:
            raise ConfigError(f"--split must be one of {', '.join(dataset.splits)}")
        expected = ckpt.model_cfg.input_dims
        if dataset.dims != expected:
            raise CheckpointError(
                f"{checkpoint} expects feature sizes {expected} but {data} has {dataset.dims}: "
                "evaluate on data in the same feature layout it was trained on"
            )
        if dataset.feature_set.ident != ckpt.feature_set.ident:
            raise CheckpointError(
                f"{checkpoint} was trained on feature set {ckpt.feature_set.ident}, but {data} holds "
                f"{dataset.feature_set.ident}"
            )
        part = dataset.splits[split]
        raw = predict(ckpt.model, part)
        metrics = compute_metrics(raw, part, ckpt.task)
        if save_predictions:
            write_csv(save_predictions, raw, part, ckpt.task)
        if as_json:
            typer.echo(json.dumps(metrics))
        else:
            stdout.print(metrics_table(f"{checkpoint} on {data} [{split}], n={len(part)}", {split: metrics}))
            if save_predictions:
                stdout.print(f"predictions written to {save_predictions}", highlight=False)

    @app.command("ablate")
    def ablate(
        data: Path = typer.Option(..., "--data"),
        out: Path = typer.Option(Path("ablation.md"), "--out", help="Markdown table (Table I shape)."),
        seeds: str = typer.Option("0,1,2", "--seeds", help="Comma-separated seeds."),
        data_format: str = typer.Option("auto", "--format"),
        task: str = typer.Option(None, "--task"),
        epochs: int = typer.Option(None, "--epochs"),
        config: list[Path] = typer.Option(None, "--config"),
        baselines: bool = typer.Option(True, "--baselines/--no-baselines",
                                       help="Also a linear probe and late fusion on pooled features."),
        overrides: list[str] = typer.Argument(None),
    ) -> None:
        """Full model + no_csd / no_self_attn / no_cross_attn over several seeds, and the linear probe and
        late-fusion baselines on the same splits → mean ± std table."""
        from rich.markdown import Markdown

        from model.ablation import ablation_table, columns_for, run_ablations
        from model.baselines import BASELINES
        from model.data.loading import load_dataset

        cfg = build_config(config, {"data.path": str(data), "data.format": data_format, "train.epochs": epochs},
                           overrides)
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        dataset = load_dataset(cfg.data, _task_for(cfg.data.format, task))

        def on_run(ablation: str, seed: int, test: dict[str, float]) -> None:
            stderr.print(f"{ablation} seed {seed}: " + ", ".join(f"{k}={v:.4f}" for k, v in test.items()),
                         highlight=False)

        results = run_ablations(cfg.model, cfg.train, dataset, seed_list, on_run=on_run,
                                baselines=BASELINES if baselines else ())
        table = ablation_table(results, columns_for(dataset))
        out.write_text(
            f"# Ablations on {dataset.name} (test split, {len(seed_list)} seeds, mean ± std)\n\n{table}"
        )
        stdout.print(Markdown(table))
        stdout.print(f"wrote {out}", highlight=False)

    @app.command("make-planted")
    def make_planted(
        out: Path = typer.Option(..., "--out", help="Where to write the MMSA-format pickle."),
        n_train: int = typer.Option(1200, "--n-train"),
        n_valid: int = typer.Option(300, "--n-valid"),
        n_test: int = typer.Option(300, "--n-test"),
        seq_len: int = typer.Option(50, "--seq-len"),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Generate planted-signal data (label = what the modalities agree on in time) as an MMSA pickle."""
        from model.data.planted import make_planted_mmsa

        data = make_planted_mmsa(n_train, n_valid, n_test, seq_len=seq_len, seed=seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as f:
            pickle.dump(data, f, protocol=4)
        stdout.print(f"wrote {out} ({n_train}/{n_valid}/{n_test} samples, L={seq_len})", highlight=False)
