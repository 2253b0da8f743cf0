"""Overhead of alerts + Prometheus metrics on the monitor's CPU share, measured in one run.

The same replay of a real clip (default ../shared/data/media/moud_101_movies.mp4: 33 s, one face, Spanish
speech) is monitored ``--rounds`` times each way, alternating: *plain* (the pipeline and a ``--headless``
printer) and *ops* (the same plus ``--alerts`` with both shipped rule files' rules — their command and
webhook actions pointed at a ``true`` command and a webhook server on 127.0.0.1 — and ``--metrics-port``
with a scraper pulling ``/metrics`` every ``--scrape-s`` s of wall time).

Two measures, both printed:

1. **CPU share** of the whole process = CPU time (user + system, every thread, ``os.times``) from start to
   the end of the replay ÷ wall time, in % of one core, in ``realtime`` replay (as a live monitor runs);
   the ratio ops/plain of the means over the rounds. On a shared machine this moves with the other load
   (windows skipped under load mean less work): the load average is printed with it.
2. **Accounting** of what alerts + metrics add, from their own CPU time: the alert runtime on the window
   thread per window (``time.thread_time``), building each ``/metrics`` answer (``thread_time`` in the
   collector), and the histogram observations (timed here over 200,000 calls × the latency samples per
   second of the run) → CPU % of one core and the ratio (plain share + that) / plain share. This one
   does not move with the other load.

(``--mode clock-stopped`` replays without skipping, but its waiting loops cost CPU in proportion to wall
time, which makes measure 1 meaningless there; use it for measure 2 only.)

Checkpoint: the shipped default (the monitor computes the feature set it records), eager backend.

    .venv/bin/python benchmarks/bench_ops_overhead.py [--rounds 3] [--clip FILE] [--json]
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


def one_round(clip: Path, ops: bool, url: str, scrape_s: float, shared: dict[str, Any], mode: str) -> dict[str, Any]:
    from rich.console import Console

    from mmcl.app_config import load_app_config
    from realtime.alerts.runtime import AlertRuntime
    from realtime.dashboard import HeadlessPrinter
    from realtime.pipeline.metrics import MetricsExporter
    from realtime.pipeline.session import build_pipeline

    app = load_app_config(overrides=[f"sources.replay.mode={mode}", f"sources.camera.source={clip}",
                                     f"sources.microphone.device={clip}", "monitor.backend=eager"])  # fmt: skip
    if "recognizer" not in shared:  # loaded once: rounds differ only in alerts + metrics
        from realtime.asr import AsrConfig, FasterWhisperRecognizer

        shared["recognizer"] = FasterWhisperRecognizer(AsrConfig())

    def embedder() -> Any:  # called when the text worker starts (the checkpoint's feature set is known)
        from realtime.features.text import text_embedder_for

        key = f"text:{app.features.feature_set}"
        if key not in shared:
            shared[key] = text_embedder_for(app.features.feature_set)
        return shared[key]

    pipeline = build_pipeline(app, mode="replay", recognizer=shared["recognizer"], embedder_factory=embedder)
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
    collect_s = exporter.collect_cpu_s if exporter is not None else 0.0
    samples = sum(st.count for st in pipeline.latency.summary().values())
    if runtime is not None:
        runtime.stop()
    pipeline.stop()
    if exporter is not None:
        exporter.close()
    windows = pipeline.snapshot().windows
    return {"ops": ops, "wall_s": round(wall, 2), "media_s": round(media, 2), "cpu_s": round(cpu, 2),
            "skipped": pipeline.snapshot().windows_skipped,
            "windows": windows, "alert_runtime_ms_per_window": round(1000 * busy / max(1, windows), 3),
            "alert_cpu_s": round(busy, 4), "scrape_cpu_s": round(collect_s, 4), "latency_samples": samples,
            "scrapes": scrapes, "alerts_fired": fired}  # fmt: skip


def observe_cost_s() -> float:
    """CPU seconds of one Prometheus histogram observation (labelled child, as the exporter does)."""
    from prometheus_client import CollectorRegistry, Histogram

    from realtime.pipeline.metrics import LATENCY_BUCKETS

    h = Histogram("x_seconds", "x", ["stage"], buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    n = 200_000
    t0 = time.thread_time()
    for k in range(n):
        h.labels("face").observe(0.001 * (k % 50))
    return (time.thread_time() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each way (alternating plain, ops, …)")
    ap.add_argument("--scrape-s", type=float, default=1.0, help="seconds between /metrics scrapes")
    ap.add_argument("--mode", choices=("realtime", "clock-stopped"), default="realtime")
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
    share = {k: [100 * r["cpu_s"] / r["wall_s"] for r in rounds if r["ops"] is k] for k in (False, True)}
    mean = {k: sum(v) / len(v) for k, v in share.items()}
    per_obs = observe_cost_s()
    ops = [r for r in rounds if r["ops"]]
    added_s = sum(r["alert_cpu_s"] + r["scrape_cpu_s"] + per_obs * r["latency_samples"] for r in ops)
    added_pct = 100 * added_s / sum(r["wall_s"] for r in ops)
    result = {"clip": str(args.clip), "mode": args.mode, "rounds": rounds, "cpu_share_plain_pct": round(mean[False], 1),
              "cpu_share_ops_pct": round(mean[True], 1), "ratio_ops_over_plain": round(mean[True] / mean[False], 3),
              "observe_us": round(per_obs * 1e6, 3), "ops_cpu_pct_of_one_core": round(added_pct, 3),
              "ratio_by_accounting": round((mean[False] + added_pct) / mean[False], 4),
              "load_average": os.getloadavg(), "cpus": os.cpu_count()}  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return
    for r in rounds:
        print(f"{'ops  ' if r['ops'] else 'plain'} media {r['media_s']:5.1f} s  wall {r['wall_s']:6.1f} s  "
              f"cpu {r['cpu_s']:6.1f} s  share {100 * r['cpu_s'] / r['wall_s']:5.1f}% of one core  "
              f"windows {r['windows']} (skipped {r['skipped']})  "
              f"alert runtime {r['alert_runtime_ms_per_window']:.3f} ms/window  scrapes {r['scrapes']}  "
              f"fired {r['alerts_fired']}")  # fmt: skip
    per_window = 1000 * sum(r["alert_cpu_s"] for r in ops) / max(1, sum(r["windows"] for r in ops))
    per_scrape = 1000 * sum(r["scrape_cpu_s"] for r in ops) / max(1, sum(r["scrapes"] for r in ops))
    print(f"1. mean CPU share (wall): plain {mean[False]:.1f}%, with alerts + metrics {mean[True]:.1f}% of one "
          f"core → ratio {result['ratio_ops_over_plain']:.3f}")
    print(f"2. accounting: alert runtime {per_window:.3f} ms CPU/window, /metrics {per_scrape:.2f} ms CPU/scrape, "
          f"histogram observe {per_obs * 1e6:.2f} µs × {sum(r['latency_samples'] for r in ops)} samples "
          f"→ {added_pct:.3f}% of one core → ratio {result['ratio_by_accounting']:.4f}")
    print(f"mode {args.mode}; load average {result['load_average'][0]:.2f} on {result['cpus']} CPUs")


if __name__ == "__main__":
    main()
