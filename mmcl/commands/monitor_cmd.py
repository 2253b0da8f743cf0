"""``mmcl monitor``: the live sentiment monitor (``mmcl profile`` reads its event log: ``profile_cmd``)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from mmcl.commands.common import build_config, stderr, stdout
from mmcl.commands.monitor_ops import MonitorOps
from model.backends import backend_choices  # the registry's names: the help never goes stale
from model.errors import ConfigError

log = logging.getLogger("mmcl")

REPLAY_MODES = ("realtime", "clock-stopped", "fast")


def _choose_session(
    cfg: Any, camera: str | None, mic: str | None, demo: bool, auto: bool
) -> tuple[str, str | None]:
    """(mode, banner): 'demo' when asked for or when --auto finds no camera+microphone."""
    from realtime.pipeline.session import DEMO_BANNER, DEMO_BANNER_AUTO, detect_devices
    from realtime.sources.factory import audio_spec_is_file

    if demo:
        return "demo", DEMO_BANNER
    if auto:
        report = detect_devices(cfg.sources.camera.source, cfg.sources.microphone.device)
        if report.camera and report.microphone:
            stderr.print(f"--auto: {report.reason}; monitoring the live devices", highlight=False)
            return "live", None
        stderr.print(f"--auto: {report.reason}; playing the generated DEMO session instead", highlight=False)
        return "demo", DEMO_BANNER_AUTO
    cam_file = camera not in (None, "none") and cfg.sources.camera.source_kind == "file"
    mic_file = mic not in (None, "none") and audio_spec_is_file(cfg.sources.microphone.device)
    return ("replay" if cam_file or mic_file else "live"), None


def _print_summary(pipeline: Any, log_path: str) -> None:
    from realtime.dashboard.panels import drop_label, latency_table

    snap = pipeline.snapshot()
    stdout.print(latency_table(pipeline.latency.summary(), title="mmcl monitor: latency summary (ms)"))
    drops = {drop_label(k): v for k, v in snap.drops.items() if v}
    r = snap.resources
    cpu = pipeline.resources.samples
    cpu_mean = f"{sum(cpu) / len(cpu):.0f}%" if cpu else "–"
    stdout.print(
        f"windows {snap.windows} (empty {snap.empty_windows}, skipped {snap.windows_skipped}) · "
        f"words {snap.words} · CPU mean {cpu_mean} of one core · "
        f"peak RSS {r.peak_rss_mb:.0f} MB · "
        f"drops: {', '.join(f'{k} {v:g}' for k, v in drops.items()) or 'none'}",
        highlight=False,
    )
    if log_path:
        stdout.print(f"event log: {log_path} (mmcl profile --log {log_path})", highlight=False)


def _connect_server(
    cfg: Any, url: str, timeout_ms: float, checkpoint: Path | None, no_fallback: bool, calib: Any
) -> Any:
    """The RemoteEngine for ``--server`` (sets ``cfg.features.feature_set`` to what the server's model reads)."""
    from realtime.pipeline.remote import RemoteConfig
    from realtime.pipeline.remote_session import connect_remote_engine

    if no_fallback and (cfg.calibration.baseline or cfg.calibration.record_calib):
        raise ConfigError("--baseline and --record-calib need the local model; drop --no-fallback")
    remote = connect_remote_engine(
        cfg, RemoteConfig(url, timeout_s=timeout_ms / 1000.0), str(checkpoint) if checkpoint else None,
        fallback=not no_fallback, engine_options=calib,
    )  # fmt: skip
    for line in remote.notes:
        stderr.print(f"--server: {line}", highlight=False, soft_wrap=True)
    if remote.engine.backend.loaded is None and (cfg.calibration.baseline or cfg.calibration.record_calib):
        raise ConfigError("--baseline and --record-calib need a local model on the server's feature set (--checkpoint)")
    return remote


def register(app: typer.Typer) -> None:
    @app.command("monitor")
    def monitor(
        camera: Annotated[
            str | None, typer.Option("--camera", help="Device index (0), video file, stream URL, or none.")
        ] = None,
        mic: Annotated[
            str | None, typer.Option("--mic", help="default, a device index or name, an audio file, or none.")
        ] = None,
        demo: Annotated[bool, typer.Option("--demo", help="Play the generated demo session.")] = False,
        auto: Annotated[
            bool, typer.Option("--auto", help="Live devices when camera and microphone exist, else the demo.")
        ] = False,
        backend: Annotated[
            str | None,
            typer.Option("--backend", help=backend_choices()),
        ] = None,
        checkpoint: Annotated[Path | None, typer.Option("--checkpoint", help="Model checkpoint.")] = None,
        log_file: Annotated[
            Path | None, typer.Option("--log", help="JSONL event log, one line per window.")
        ] = None,
        no_transcript_log: Annotated[
            bool, typer.Option("--no-transcript-log", help="Keep what was said out of the event log.")
        ] = False,
        duration: Annotated[float | None, typer.Option("--duration", help="Stop after S seconds.")] = None,
        headless: Annotated[bool, typer.Option("--headless", help="One summary line per second.")] = False,
        replay: Annotated[
            str | None, typer.Option("--replay", help="File sources: realtime | clock-stopped | fast.")
        ] = None,
        demo_dir: Annotated[Path | None, typer.Option("--demo-dir", help="Demo files cache folder.")] = None,
        record_calib: Annotated[
            Path | None, typer.Option("--record-calib", help="Save scored windows for `mmcl calibrate quantize`.")
        ] = None,
        baseline: Annotated[
            Path | None, typer.Option("--baseline", help="Per-user baseline from `mmcl calibrate baseline`.")
        ] = None,
        alerts: Annotated[
            Path | None, typer.Option("--alerts", help="Alert rules (YAML; examples in configs/alerts/).")
        ] = None,
        metrics_port: Annotated[
            int | None, typer.Option("--metrics-port", help="Serve Prometheus /metrics on this port (0 = any).")
        ] = None,
        metrics_host: Annotated[
            str, typer.Option("--metrics-host", help="Address for --metrics-port (default loopback only).")
        ] = "127.0.0.1",
        server: Annotated[
            str | None, typer.Option("--server", help="Score windows on `mmcl serve` at this URL (http://HOST:PORT).")
        ] = None,
        server_timeout_ms: Annotated[
            float, typer.Option("--server-timeout-ms", help="--server: a slower answer falls back to local inference.")
        ] = 500.0,
        no_fallback: Annotated[
            bool, typer.Option("--no-fallback", help="--server: never score locally (windows go unscored).")
        ] = False,
        config: Annotated[list[Path] | None, typer.Option("--config", help="YAML config file(s).")] = None,
        overrides: Annotated[
            list[str] | None, typer.Argument(help="key=value overrides, e.g. monitor.hop_s=0.25")
        ] = None,
    ) -> None:
        """Real-time multimodal sentiment from a camera and a microphone (or files, or the demo session).

        Shows a live dashboard (sentiment, trend, per-modality evidence, transcript, latency, devices);
        Ctrl-C stops cleanly and prints a latency summary.
        """
        from realtime.dashboard import Dashboard, HeadlessPrinter
        from realtime.pipeline.demo import ensure_demo
        from realtime.pipeline.session import build_pipeline, demo_sources

        if demo and auto:
            raise ConfigError(
                "--demo and --auto exclude each other; --auto picks the demo when no devices exist"
            )
        if replay is not None and replay not in REPLAY_MODES:
            raise ConfigError(f"--replay must be one of {', '.join(REPLAY_MODES)}, got {replay!r}")
        if duration is not None and duration <= 0:
            raise ConfigError("--duration must be > 0 seconds")
        options: dict[str, Any] = {
            "monitor.backend": backend, "monitor.log": str(log_file) if log_file else None,
            "monitor.log_transcript": False if no_transcript_log else None,
            "monitor.demo_dir": str(demo_dir) if demo_dir else None, "sources.replay.mode": replay,
            "sources.camera.source": camera if camera not in (None, "none") else None,
            "sources.microphone.device": mic if mic not in (None, "none") else None,
            "calibration.record_calib": str(record_calib) if record_calib else None,
            "calibration.baseline": str(baseline) if baseline else None,
        }  # fmt: skip
        cfg = build_config(config, options, overrides)
        ops = MonitorOps(alerts, metrics_port, metrics_host).load()  # rule file errors before loading models
        mode, banner = _choose_session(cfg, camera, mic, demo, auto)
        use_camera, use_audio = camera != "none", mic != "none"
        if mode == "demo":
            stderr.print("preparing the demo session (eSpeak NG speech + animated portrait; cached) …")
            session = ensure_demo(cfg.monitor.demo_dir or None, cfg.monitor.demo_fps)
            cfg.sources = demo_sources(cfg.sources, session.video, session.audio)
            use_camera = use_audio = True
        from calibration.live import EngineCalibration

        calib = EngineCalibration(cfg.calibration)  # baseline / --record-calib: built with the engine
        try:
            remote = _connect_server(cfg, server, server_timeout_ms, checkpoint, no_fallback, calib) if server else None
            stderr.print("loading models (face landmarker, speech recogniser, text embedder, sentiment model) …")
            pipeline = build_pipeline(cfg, mode=mode, banner=banner, checkpoint=checkpoint, camera=use_camera,
                                      audio=use_audio, engine=remote.engine if remote else None,
                                      engine_options=calib)  # fmt: skip
        except BaseException:
            if calib.live is not None:
                calib.live.close()  # the recorder's writer thread
            raise
        if remote is not None:
            pipeline.model_name = remote.model_name
            pipeline.session_info["server"] = server
        live_calib = calib.live
        if live_calib is not None:
            pipeline.session_info.update(live_calib.session_info(cfg.calibration))

        try:
            ops.attach(pipeline)
        except BaseException:
            ops.close()
            raise
        for line in ops.messages:
            stderr.print(line, highlight=False)

        stop = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            stop.set()

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        root = logging.getLogger()
        old_level = root.level
        try:
            pipeline.start()
            t0 = time.monotonic()

            def done() -> bool:
                if pipeline.finished.is_set():
                    return True
                return duration is not None and time.monotonic() - t0 >= duration

            if headless:
                HeadlessPrinter(pipeline, stdout, cfg.monitor.headless_interval_s).run(stop, done)
            else:
                if root.level < logging.WARNING:
                    root.setLevel(logging.WARNING)  # INFO lines would scroll the dashboard away
                Dashboard(pipeline, stdout, cfg.monitor.refresh_hz).run(stop, done)
        finally:
            root.setLevel(old_level)
            ops.close_alerts()  # pending alert deliveries reach the logs before they close
            ok = pipeline.stop()
            ops.close()
            calib_stats = live_calib.close() if live_calib is not None else None
            for s, h in old.items():
                signal.signal(s, h)
            if not ok:
                stderr.print("[yellow]warning:[/] some threads did not stop in time (see the log)")
            elog = pipeline.event_log
            if elog is not None and elog.error:
                stderr.print(
                    f"[yellow]warning:[/] {elog.error}; {elog.lines_lost} event(s) after that were not recorded",
                    highlight=False,
                )
        _print_summary(pipeline, cfg.monitor.log)
        if ops.summary():
            stdout.print(ops.summary(), highlight=False)
        if calib_stats is not None:
            stdout.print(
                f"calibration windows: {calib_stats.written} written this session, {calib_stats.total} in "
                f"{calib_stats.directory} (dropped {calib_stats.dropped})", highlight=False,
            )  # fmt: skip
        if remote is not None:
            st = remote.engine.backend.stats.to_dict()
            stdout.print(
                f"server {server}: {st['served']} window(s) scored there (round trip p50 {st['rtt_p50_ms']} ms, "
                f"p95 {st['rtt_p95_ms']} ms), {st['local']} locally, {st['unscored']} unscored, "
                f"{st['failures']} failed request(s){'; last error: ' + st['last_error'] if st['last_error'] else ''}",
                highlight=False, soft_wrap=True,
            )  # fmt: skip
        if stop.is_set():
            stderr.print("stopped by signal; devices released, log flushed")
