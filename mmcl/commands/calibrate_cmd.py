"""``mmcl calibrate quantize | confidence | baseline`` (see ``calibration/`` for the methods)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mmcl.commands.common import build_config, stderr, stdout
from model.errors import ConfigError

calibrate_app = typer.Typer(
    help="Quantisation from recorded windows, confidence calibration, per-user baselines.", no_args_is_help=True
)

ConfigOpt = Annotated[list[Path] | None, typer.Option("--config", help="YAML config file(s).")]
OverridesArg = Annotated[
    list[str] | None, typer.Argument(help="key=value overrides, e.g. calibration.quant_windows=128")
]


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=stderr,
        transient=False,
    )


def _batches(spec: str) -> list[int]:
    try:
        out = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--batch needs comma-separated batch sizes such as 64,1, got {spec!r}") from None
    if not out or min(out) < 1:
        raise ConfigError(f"--batch needs positive batch sizes, got {spec!r}")
    return out


# ---- quantize -------------------------------------------------------------------------------------------
@calibrate_app.command("quantize")
def quantize(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Model checkpoint (best.pt).")],
    calib: Annotated[Path, typer.Option("--calib", help="Folder of recorded windows (--record-calib).")],
    out: Annotated[Path, typer.Option("--out", help="Output: INT8 .onnx, or TensorRT engine file.")],
    target: Annotated[str, typer.Option("--target", help="onnx-int8 | tensorrt-int8 | tensorrt-fp8")] = "onnx-int8",
    eval_data: Annotated[
        Path | None, typer.Option("--eval-data", help="Dataset for the FP32 vs INT8 metrics (held-out split).")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Held-out split of --eval-data.")] = "test",
    windows: Annotated[int | None, typer.Option("--windows", help="Calibration windows used.")] = None,
    attention: Annotated[
        bool, typer.Option("--attention/--no-attention", help="Also quantise attention/CSD products.")
    ] = False,
    per_channel: Annotated[bool, typer.Option("--per-channel", help="Per-channel weight scales.")] = False,
    method: Annotated[str, typer.Option("--method", help="minmax | percentile | entropy")] = "minmax",
    batch: Annotated[str, typer.Option("--batch", help="Batch sizes timed, FP32 vs INT8.")] = "64,1",
    budget: Annotated[float, typer.Option("--budget", help="Timing seconds per backend and batch.")] = 3.0,
    threads: Annotated[int, typer.Option("--threads", help="ONNX Runtime threads (0 = torch's).")] = 0,
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="Note the INT8 file in the checkpoint (backend onnx-int8).")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    config: ConfigOpt = None,
    overrides: OverridesArg = None,
) -> None:
    """INT8 from recorded live windows, with FP32 vs INT8 metrics and speed.


    onnx-int8 runs here (ONNX Runtime static QDQ, CPU); tensorrt-int8/fp8 need NVIDIA ModelOpt, TensorRT
    and a CUDA GPU. Writes OUT, OUT.report.json, and (--record) the file's path into the checkpoint so
    that `mmcl monitor --backend onnx-int8` finds it.
    """
    from calibration.quantize_run import prepare_quantize, run_quantize

    cfg = build_config(config, {"calibration.quant_windows": windows}, overrides).calibration
    job = prepare_quantize(
        checkpoint, calib, out, target, cfg, attention=attention, per_channel=per_channel, method=method,
        batches=_batches(batch), eval_data=eval_data, split=split, budget_s=budget, threads=threads, record=record,
    )  # fmt: skip
    stderr.print(job.describe(), highlight=False)
    with _progress() as progress:
        steps = progress.add_task("quantize", total=None, info="")
        cal = progress.add_task("calibration batches", total=None, info="")
        timing: list[Any] = []

        def on_timed(done: int, total: int) -> None:
            if not timing:
                timing.append(progress.add_task("timing (interleaved)", total=total, info=""))
            progress.update(timing[0], completed=done)

        run = run_quantize(
            job, on_step=lambda msg: progress.update(steps, info=msg),
            on_batch=lambda done, total: progress.update(cal, completed=done, total=total), on_timed=on_timed,
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(run.report))
        return
    _print_quant_report(run)


def _print_quant_report(run: Any) -> None:
    """The ``calibration.quantize_run.QuantizeRun`` in words and tables."""
    report, result, labels, speed = run.report, run.result, run.labels, run.speed
    out, report_path, record = run.out, run.report_path, run.recorded
    stdout.print(f"wrote {out} ({result.target})", highlight=False)
    for note in result.notes:
        stdout.print(f"  {note}", highlight=False)
    stdout.print(
        f"  calibrated on {result.calib_windows} windows; gate on {result.check_windows} held-out recorded windows: "
        f"{result.parity.summary()}",
        highlight=False,
    )
    if result.synthetic is not None:
        stdout.print(f"  synthetic live-like cases (reported only): {result.synthetic.summary()}", highlight=False)
    acc = report.get("accuracy")
    if acc:
        table = Table(title=f"held-out {acc['split']} ({acc['samples']} samples): {labels[0]} vs {labels[1]}")
        for c in ("metric", labels[0], labels[1], "Δ"):
            table.add_column(c, justify="left" if c == "metric" else "right")
        for k, v in acc["fp32"].items():
            if k in acc["int8"]:
                table.add_row(k, f"{v:.4f}", f"{acc['int8'][k]:.4f}", f"{acc['int8'][k] - v:+.4f}")
        stdout.print(table)
        stdout.print(f"  max |output difference| over the split: {acc['max_abs_output_diff']:.4g}", highlight=False)
    table = Table(title=f"latency, interleaved in one run (L={speed.steps}, {speed.threads or '–'} thread(s))")
    for c in ("batch", f"{labels[0]} p50 ms", f"{labels[1]} p50 ms", "speed-up", "runs"):
        table.add_column(c, justify="right")
    for r in speed.rows:
        table.add_row(
            str(r.batch), f"{r.fp32_p50_ms:.2f}", f"{r.int8_p50_ms:.2f}", f"{r.ratio:.2f}×", str(r.iterations)
        )
    stdout.print(table)
    stdout.print(
        f"  load average (1/5/15 min) before {speed.load_before[0]:.1f}/{speed.load_before[1]:.1f}/"
        f"{speed.load_before[2]:.1f}, after {speed.load_after[0]:.1f}/{speed.load_after[1]:.1f}/"
        f"{speed.load_after[2]:.1f}: only the ratio is meaningful",
        highlight=False,
    )
    for name, t in report["targets"].items():
        mark = "[green]met[/]" if t["met"] else "[yellow]missed[/]"
        stdout.print(f"  target {name}: {t['value']:+.4f} (target {t['target']}) {mark}")
    stdout.print(
        f"report: {report_path}" + (" · recorded in the checkpoint (--backend onnx-int8)" if record else ""),
        highlight=False,
    )


# ---- confidence -----------------------------------------------------------------------------------------
@calibrate_app.command("confidence")
def confidence(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Model checkpoint (best.pt).")],
    data: Annotated[Path, typer.Option("--data", help="Dataset with valid (fit) and test (report) splits.")],
    plot: Annotated[Path | None, typer.Option("--plot", help="PNG (default: next to the checkpoint).")] = None,
    store: Annotated[bool, typer.Option("--store/--no-store", help="Write the result into the checkpoint.")] = True,
    level: Annotated[float | None, typer.Option("--level", help="Regression interval coverage (0.9).")] = None,
    bins: Annotated[int | None, typer.Option("--bins", help="ECE / reliability bins (15).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    config: ConfigOpt = None,
    overrides: OverridesArg = None,
) -> None:
    """Calibrated confidence: temperature scaling or a conformal interval, stored in the checkpoint.

    Classification: a temperature fitted on the validation split; ECE/Brier before and after on test; a
    reliability diagram. Regression: a split-conformal interval (default 90%). The monitor then shows
    calibrated probabilities, or `value ± q (90%)`.
    """
    from calibration.confidence_run import calibrate_confidence

    cfg = build_config(config, {"calibration.interval_level": level, "calibration.ece_bins": bins}, overrides)
    plot_path = plot or checkpoint.with_name(checkpoint.stem + "_calibration.png")
    with stderr.status("calibrating") as status:
        rep = calibrate_confidence(
            checkpoint, data, plot_path, cfg.calibration, store=store, on_step=lambda m: status.update(m)
        )
    payload = {
        "task": rep.task,
        "temperature": rep.temperature,
        "before": rep.before,
        "after": rep.after,
        "interval": rep.interval,
        "plot": str(rep.plot),
        "n_valid": rep.n_valid,
        "n_test": rep.n_test,
        "stored": store,
    }
    if as_json:
        typer.echo(json.dumps(payload))
        return
    if rep.task == "classification":
        table = Table(
            title=f"test split ({rep.n_test} samples): temperature T = {rep.temperature:.3f} (fit on "
            f"{rep.n_valid} validation samples)"
        )
        for c in ("metric", "before (T = 1)", "after", "Δ"):
            table.add_column(c, justify="left" if c == "metric" else "right")
        for k in ("ece", "brier", "nll", "accuracy", "valid_nll"):
            table.add_row(k, f"{rep.before[k]:.4f}", f"{rep.after[k]:.4f}", f"{rep.after[k] - rep.before[k]:+.4f}")
        stdout.print(table)
    else:
        iv = rep.interval or {}
        stdout.print(
            f"regression interval: ± {iv['half_width']:.4f} at {iv['level']:.0%} (split conformal on "
            f"{iv['n_valid']} validation residuals); test coverage {iv['test_coverage']:.1%}, "
            f"test MAE {iv['test_mae']:.4f}",
            highlight=False,
        )
    stdout.print(
        f"plot: {rep.plot}" + (f" · stored in {checkpoint} (extra.calibration)" if store else ""), highlight=False
    )


# ---- baseline -------------------------------------------------------------------------------------------
class _SampleCollector:
    """Assembler tap: keeps valid face frames and voiced steps (values copied) and counts everything."""

    def __init__(self) -> None:
        self.vision: list[Any] = []
        self.audio: list[Any] = []
        self.frames = self.steps = 0
        self.t_first: float | None = None
        self.t_last: float | None = None

    def __call__(self, modality: str, samples: list) -> None:
        for s in samples:
            t = getattr(s, "t", None)
            if t is not None:
                self.t_first = t if self.t_first is None else min(self.t_first, t)
                self.t_last = t if self.t_last is None else max(self.t_last, t)
            if modality == "vision":
                self.frames += 1
                if s.valid:
                    self.vision.append(s.values.copy())
            elif modality == "audio":
                self.steps += 1
                if s.valid:
                    self.audio.append(s.values.copy())

    @property
    def span(self) -> float:
        return 0.0 if self.t_first is None or self.t_last is None else self.t_last - self.t_first


def record_baseline_samples(
    app: Any, duration: float, *, camera: bool, audio: bool, live: bool, progress: Progress | None = None
) -> tuple[_SampleCollector, float]:
    """Run the real sources and face/voice workers (``realtime.pipeline.Pipeline`` without a model and
    without ASR) for ``duration`` seconds (live) or of media (files, or until they end); returns the
    collected samples and the wall seconds taken."""
    import dataclasses

    from realtime.pipeline.pipeline import Pipeline
    from realtime.sources.factory import build_sources

    asr = dataclasses.replace(app.asr, enabled=False)
    sources = build_sources(app.sources, None, camera=camera, audio=audio)
    collector = _SampleCollector()
    pipeline = Pipeline(
        sources, None, monitor=app.monitor, features=app.features, asr=asr, mode="live" if live else "replay",
        taps=[collector],
    )  # fmt: skip
    task = progress.add_task("baseline", total=duration, info="") if progress is not None else None
    t0 = time.monotonic()
    pipeline.start()
    try:
        while True:
            if pipeline.finished.wait(0.2):
                break
            wall = time.monotonic() - t0
            covered = wall if live else collector.span
            if task is not None and progress is not None:
                progress.update(
                    task,
                    completed=min(covered, duration),
                    info=f"face in {len(collector.vision)}/{collector.frames} frames · voice "
                    f"{len(collector.audio)}/{collector.steps} steps",
                )
            if covered >= duration or wall >= max(60.0, 5 * duration):
                break
    finally:
        pipeline.stop()
    wall = time.monotonic() - t0
    if task is not None and progress is not None:
        progress.update(task, completed=min(wall if live else collector.span, duration))
    return collector, wall


@calibrate_app.command("baseline")
def baseline(
    out: Annotated[Path, typer.Option("--out", help="Baseline YAML to write (user.yaml).")],
    duration: Annotated[float, typer.Option("--duration", help="Seconds to record.")] = 20.0,
    camera: Annotated[
        str | None, typer.Option("--camera", help="Device index (0), video file, stream URL, or none.")
    ] = None,
    mic: Annotated[
        str | None, typer.Option("--mic", help="default, a device index or name, an audio file, or none.")
    ] = None,
    config: ConfigOpt = None,
    overrides: OverridesArg = None,
) -> None:
    """Per-user baseline: record your resting face and voice, store per-feature statistics.

    Look at the camera with a relaxed face and say a few neutral sentences. `mmcl monitor --baseline OUT`
    then shifts your resting features onto the training population's (docs/CALIBRATION.md gives the exact
    transform).
    """
    from calibration.baseline import baseline_from_samples, save_baseline
    from realtime.sources.factory import audio_spec_is_file

    if duration <= 0:
        raise ConfigError("--duration must be > 0 seconds")
    use_camera, use_audio = camera != "none", mic != "none"
    if not (use_camera or use_audio):
        raise ConfigError("--camera none and --mic none leave nothing to record")
    options: dict[str, Any] = {
        "sources.camera.source": camera if use_camera else None,
        "sources.microphone.device": mic if use_audio else None,
    }
    cfg = build_config(config, options, overrides)
    files = (use_camera and cfg.sources.camera.source_kind == "file") or (
        use_audio and audio_spec_is_file(cfg.sources.microphone.device)
    )
    if files and not any(o.startswith("sources.replay.mode=") for o in overrides or []):
        # every frame and audio step, as fast as they are processed (fast replay would skip frames)
        cfg.sources.replay.mode = "clock-stopped"
    stderr.print(
        "loading the face landmarker and opening the devices …"
        if not files
        else "replaying the files through the face and voice extractors …"
    )
    with _progress() as progress:
        collector, wall = record_baseline_samples(
            cfg, duration, camera=use_camera, audio=use_audio, live=not files, progress=progress
        )
    import numpy as np

    if files and collector.span < 0.9 * duration:
        stderr.print(f"the files ended after {collector.span:.1f} s of the {duration:g} s asked for", highlight=False)
    src = {
        "camera": cfg.sources.camera.source if use_camera else None,
        "microphone": cfg.sources.microphone.device if use_audio else None,
    }
    fs = cfg.features.live_set  # the feature set recorded (features.feature_set; live-v2 unless set)
    base = baseline_from_samples(
        fs,
        np.asarray(collector.vision, dtype=np.float64).reshape(-1, len(fs.vision)) if use_camera else None,
        np.asarray(collector.audio, dtype=np.float64).reshape(-1, len(fs.audio)) if use_audio else None,
        min_face_frames=cfg.calibration.baseline_min_face_frames,
        min_voice_steps=cfg.calibration.baseline_min_voice_steps,
        duration_s=collector.span if files else wall,
        source=src,
        frames_seen=collector.frames,
        steps_seen=collector.steps,
    )
    save_baseline(out, base)
    table = Table(title=f"baseline → {out}")
    table.add_column("modality")
    table.add_column("samples", justify="right")
    table.add_column("resting values (mean)")
    if "vision" in base.stats:
        v = base.stats["vision"]
        cols = dict(zip(v.columns, v.mean, strict=True))
        top = sorted((c for c in v.columns if c.startswith("bs_")), key=lambda c: -cols[c])[:3]
        table.add_row(
            "face",
            f"{v.count}/{collector.frames} frames",
            f"head yaw {cols['head_yaw_deg']:+.1f}° pitch {cols['head_pitch_deg']:+.1f}° · "
            + ", ".join(f"{c[3:]} {cols[c]:.2f}" for c in top),
        )
    if "audio" in base.stats:
        a = base.stats["audio"]
        cols = {c.removeprefix("spk_"): v for c, v in zip(a.columns, a.mean, strict=True)}
        speaker = any(c.startswith("spk_") for c in a.columns)  # live-v2: deviations from the running mean
        f0 = f"F0 {float(np.exp(cols['log_f0_hz'])):.0f} Hz · " if cols["log_f0_hz"] > 0 and not speaker else ""
        table.add_row(
            "voice",
            f"{a.count}/{collector.steps} steps" + (" (speaker-normalised)" if speaker else ""),
            f"{f0}log-energy {cols['log_energy']:.2f} · spectral slope {cols['spectral_slope_db_khz']:.2f} dB/kHz",
        )
    stdout.print(table)
    stdout.print(f"use it with: mmcl monitor --baseline {out}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(calibrate_app, name="calibrate")
