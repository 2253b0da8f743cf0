"""Overhead of alerts + Prometheus metrics on the monitor's CPU share, measured in one run.

The same replay of a real clip (default ../shared/data/media/moud_101_movies.mp4: 33 s, one face, Spanish
speech) is monitored ``--rounds`` times each way, alternating: *plain* (the pipeline and a ``--headless``
printer) and *ops* (the same plus ``--alerts`` with both shipped rule files' rules — their command and
webhook actions pointed at a ``true`` command and a webhook server on 127.0.0.1 — and ``--metrics-port``
with a scraper pulling ``/metrics`` every ``--scrape-s`` s of wall time).

CPU share = process CPU time (user + system, every thread, ``os.times``) from start to the end of the
replay ÷ seconds of media replayed, in % of one core: what the monitor needs to keep up in real time.
The default replay mode is ``clock-stopped``, so that both ways do exactly the same work (every frame,
every window; no window skipped because another process took the CPU) — on a shared machine a
``realtime`` round's figures move with the other load (``--mode realtime`` to see it). Printed: every
round, the mean of each way and the ratio ops/plain, the CPU time the alert runtime spent on the window
thread per window (``time.thread_time``), and the machine's load average.

Checkpoint: the shipped default, on the feature set it records (the monitor computes that version).

    .venv/bin/python benchmarks/bench_ops_overhead.py [--rounds 2] [--clip FILE] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
DEFAULT_CLIP = ROOT.parent / "shared" / "data" / "media" / "moud_101_movies.mp4"


class _Sink(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()


def _rules(url: str) -> Any:
    from realtime.alerts.rules import AlertsConfig, CommandAction, WebhookAction, load_alerts

    files = [load_alerts(ROOT / "configs" / "alerts" / n) for n in ("looked_away.yaml", "driver_distress.yaml")]
    actions = dataclasses.replace(files[0].actions, command=CommandAction(argv=["true"], timeout_s=5),
                                  webhook=WebhookAction(url=url))  # fmt: skip
    return AlertsConfig(rules=[r for f in files for r in f.rules], actions=actions)


def _engine_and_version() -> tuple[Any, str]:
    from model.backends import create_backend
    from model.checkpoint import load_checkpoint, read_checkpoint
    from model.featureset import live_feature_set
    from model.pretrained import default_checkpoint_path
    from realtime.pipeline.inference import InferenceEngine

    path = default_checkpoint_path()
    version = read_checkpoint(path)["feature_set"]["version"]
    loaded = load_checkpoint(path, expected_features=live_feature_set(version))
    return InferenceEngine(create_backend("eager", loaded), loaded.task, contributions=True), version


def one_round(clip: Path, ops: bool, url: str, scrape_s: float, shared: dict[str, Any], mode: str) -> dict[str, Any]:
    from rich.console import Console

    from mmcl.app_config import load_app_config
    from realtime.alerts.runtime import AlertRuntime
    from realtime.dashboard import HeadlessPrinter
    from realtime.pipeline.metrics import MetricsExporter
    from realtime.pipeline.session import build_pipeline

    if "engine" not in shared:  # loaded once: rounds differ only in alerts + metrics
        from realtime.asr import AsrConfig, FasterWhisperRecognizer
        from realtime.features.text import TextEmbedder

        shared["engine"] = _engine_and_version()
        embedder, recognizer = TextEmbedder(), FasterWhisperRecognizer(AsrConfig())
        shared["models"] = {"embedder_factory": lambda: embedder, "recognizer": recognizer}
    engine, version = shared["engine"]
    app = load_app_config(overrides=[f"sources.replay.mode={mode}", f"sources.camera.source={clip}",
                                     f"sources.microphone.device={clip}", f"features.feature_set={version}",
                                     "monitor.torch_threads=1"])  # fmt: skip
    pipeline = build_pipeline(app, mode="replay", engine=engine, **shared["models"])
    runtime = exporter = None
    stop = threading.Event()
    scrapes = 0
    if ops:
        runtime = AlertRuntime(_rules(url))
        runtime.attach(pipeline)
        exporter = MetricsExporter([(r.name, r.severity) for r in runtime.cfg.rules])
        exporter.attach(pipeline)
        runtime.listeners.append(exporter.on_alert)
        port = exporter.serve(0)

        def scrape() -> None:
            nonlocal scrapes
            while not stop.wait(scrape_s):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    r.read()
                scrapes += 1

        threading.Thread(target=scrape, daemon=True, name="bench-scraper").start()
    console = Console(file=open(os.devnull, "w"), width=160)
    pipeline.start()
    t0, c0, s0 = time.monotonic(), sum(os.times()[:2]), pipeline.clock.now()
    HeadlessPrinter(pipeline, console, 1.0).run(threading.Event(), lambda: pipeline.finished.is_set())
    wall, cpu, media = time.monotonic() - t0, sum(os.times()[:2]) - c0, pipeline.clock.now() - s0
    stop.set()
    fired = dict(runtime.fired) if runtime is not None else {}
    busy = runtime.busy_s if runtime is not None else 0.0
    if runtime is not None:
        runtime.stop()
    pipeline.stop()
    if exporter is not None:
        exporter.close()
    windows = pipeline.snapshot().windows
    return {"ops": ops, "wall_s": round(wall, 2), "media_s": round(media, 2), "cpu_s": round(cpu, 2),
            "cpu_share_pct": round(100 * cpu / media, 1), "skipped": pipeline.snapshot().windows_skipped,
            "windows": windows, "alert_runtime_ms_per_window": round(1000 * busy / max(1, windows), 3),
            "scrapes": scrapes, "alerts_fired": fired}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of each way (alternating plain, ops, …)")
    ap.add_argument("--scrape-s", type=float, default=1.0, help="seconds between /metrics scrapes")
    ap.add_argument("--mode", choices=("clock-stopped", "realtime"), default="clock-stopped")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    shared: dict[str, Any] = {}
    with tempfile.TemporaryDirectory():
        rounds = [one_round(args.clip, ops, url, args.scrape_s, shared, args.mode)
                  for _ in range(args.rounds) for ops in (False, True)]  # fmt: skip
    server.shutdown()
    mean = {k: sum(r["cpu_share_pct"] for r in rounds if r["ops"] is k) / args.rounds for k in (False, True)}
    result = {"clip": str(args.clip), "mode": args.mode, "rounds": rounds, "cpu_share_plain_pct": round(mean[False], 1),
              "cpu_share_ops_pct": round(mean[True], 1), "ratio_ops_over_plain": round(mean[True] / mean[False], 3),
              "load_average": os.getloadavg(), "cpus": os.cpu_count()}  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return
    for r in rounds:
        print(f"{'ops  ' if r['ops'] else 'plain'} media {r['media_s']:5.1f} s  wall {r['wall_s']:6.1f} s  "
              f"cpu {r['cpu_s']:6.1f} s  share {r['cpu_share_pct']:5.1f}% of one core  windows {r['windows']} "
              f"(skipped {r['skipped']})  "
              f"alert runtime {r['alert_runtime_ms_per_window']:.3f} ms/window  scrapes {r['scrapes']}  "
              f"fired {r['alerts_fired']}")  # fmt: skip
    print(f"mean CPU share: plain {mean[False]:.1f}%, with alerts + metrics {mean[True]:.1f}% "
          f"→ ratio {result['ratio_ops_over_plain']:.3f}")
    print(f"mode {args.mode}; load average {result['load_average'][0]:.2f} on {result['cpus']} CPUs")


if __name__ == "__main__":
    main()
