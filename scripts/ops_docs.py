"""Make the README's pictures for driver monitoring and latency profiling (docs/alert_banner.txt,
docs/latency_demo.png), from real runs:

1. a 60 s demo session (the generated demo files, real time, as ``mmcl monitor --demo --duration 60``) with
   the dashboard drawn to a 160-column null terminal and ``--log``; then what ``mmcl profile --trace
   --plot`` does: the trace is built, loaded back and checked to hold every window's span, and the
   latency plot is written;
2. a real-time replay of three CREMA-D clips with the camera blocked from 2.0 s to 4.6 s under
   ``configs/alerts/looked_away.yaml``; the dashboard (120 columns) is captured as text while the alert
   is active.

Engine: the shipped default checkpoint (the monitor computes the feature set it records), eager backend.

    .venv/bin/python scripts/ops_docs.py [--out docs] [--seconds 60]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the CREMA-D clip builders the tests use
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def demo_profile(out: Path, seconds: float, tmp: Path) -> None:
    from rich.console import Console

    from mmcl.app_config import load_app_config
    from realtime.dashboard import Dashboard
    from realtime.pipeline.demo import ensure_demo
    from realtime.pipeline.eventlog import read_events
    from realtime.pipeline.session import DEMO_BANNER, build_pipeline, demo_sources
    from realtime.profiling.plot import plot_latency
    from realtime.profiling.samples import stage_samples
    from realtime.profiling.trace import write_trace

    app = load_app_config(overrides=["monitor.backend=eager", f"monitor.log={tmp / 'demo.jsonl'}"])
    demo = ensure_demo(None, app.monitor.demo_fps)
    app.sources = demo_sources(app.sources, demo.video, demo.audio)
    p = build_pipeline(app, mode="demo", banner=DEMO_BANNER)
    console = Console(file=open(os.devnull, "w"), width=160)
    p.start()
    t0 = time.monotonic()
    Dashboard(p, console, app.monitor.refresh_hz).run(threading.Event(), lambda: time.monotonic() - t0 >= seconds)
    p.stop()
    events = read_events(tmp / "demo.jsonl")
    trace = write_trace(events, tmp / "demo_trace.json")
    back = json.loads((tmp / "demo_trace.json").read_text())
    windows = [e["window"] for e in events if e["type"] == "window"]
    spans = {e["args"]["window"] for e in back["traceEvents"] if e["ph"] == "X" and e["name"].startswith("window ")}
    print(f"demo: {len(windows)} windows, trace {len(trace['traceEvents'])} events, window spans for "
          f"{len(spans & set(windows))}/{len(windows)} windows")  # fmt: skip
    title = f"{seconds:g} s demo session: per-stage latency"
    png = plot_latency(stage_samples(events), out / "latency_demo.png", title=title)
    print(f"wrote {png}")


def banner_capture(out: Path, tmp: Path) -> None:
    from helpers_monitor import crema_concat
    from helpers_ops import blocked_camera_clip
    from rich.console import Console

    from mmcl.app_config import load_app_config
    from realtime.alerts.rules import load_alerts
    from realtime.alerts.runtime import AlertRuntime
    from realtime.dashboard.panels import alert_line, render
    from realtime.pipeline.session import build_pipeline

    data = ROOT.parent / "shared" / "data" / "media" / "crema_d"
    clip = blocked_camera_clip(crema_concat(data, tmp / "crema3.mp4", "480:360"), tmp / "blocked.mp4")
    app = load_app_config(overrides=["sources.replay.mode=realtime", f"sources.camera.source={clip}",
                                     f"sources.microphone.device={clip}", "monitor.backend=eager"])  # fmt: skip
    cfg = load_alerts(ROOT / "configs" / "alerts" / "looked_away.yaml")
    cfg = dataclasses.replace(cfg, actions=dataclasses.replace(cfg.actions, log=dataclasses.replace(
        cfg.actions.log, path=str(tmp / "alerts.jsonl"))))  # fmt: skip
    p = build_pipeline(app, mode="replay")
    runtime = AlertRuntime(cfg)
    runtime.attach(p)
    p.start()
    text = ""
    while not p.finished.wait(0.1):
        snap = p.snapshot()
        active = [a for a in snap.alerts if a.kind == "active"]
        if not text and active and snap.elapsed_s - active[0].fired_at >= 0.4:
            console = Console(width=120, record=True, file=open(os.devnull, "w"), color_system=None)
            console.print(render(snap, 120))
            text = console.export_text()
    runtime.stop()
    p.stop()
    if not text:
        raise SystemExit("the looked_away alert did not fire on the blocked-camera clip")
    lines = "\n".join(alert_line(a) for a in p.snapshot().alert_events)
    (out / "alert_banner.txt").write_text(f"{text}\n--headless lines of the same run:\n{lines}\n", encoding="utf-8")
    print(f"wrote {out / 'alert_banner.txt'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--only", choices=("demo", "banner"), default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        if args.only in (None, "banner"):
            banner_capture(args.out, Path(d))
        if args.only in (None, "demo"):
            demo_profile(args.out, args.seconds, Path(d))


if __name__ == "__main__":
    main()
