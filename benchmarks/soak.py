"""Soak test of the live monitor: a real clip replayed in a loop, in real time, for many minutes.

Signal: camera = ``--video`` (default ../shared/data/media/moud_101_movies.mp4, a real face video, 33 s)
and microphone = jfk.flac followed by ``--gap`` s of silence (12.5 s), each looped independently by the
file sources (``sources.replay.loop=true``, ``realtime`` pace), through the real sources, MediaPipe, voice
features, faster-whisper streaming ASR, MiniLM, the inference backend, the JSONL event log and (unless
``--no-dashboard``) the rich dashboard rendered to /dev/null — the whole monitor as ``mmcl monitor`` runs
it, for ``--minutes`` (default 10).

Recorded per minute (sampled every ``--sample-s`` seconds; per-minute figures are over that minute):

* ``rss_mb`` (at the end of the minute) and ``rss_max_mb``;
* ``queue_max`` — the largest depth seen of every bounded queue: the three worker → window hand-off
  queues (capacity ``monitor.queue_size``), the audio ring backlog of the slowest reader (s; capacity
  ``microphone.buffer_s``) and the ASR's unprocessed audio (s; policy ``asr.max_backlog_s``);
* ``drops`` — what each drop counter added during the minute (frames replaced in the camera slot,
  audio overflow, ASR backlog drops, queue drops, windows skipped);
* latency p50/p95 (ms) of ``e2e_published`` (newest input → prediction published), ``inference``,
  ``window``, and the newest ``face``/``voice``/``asr_commit`` latency of each window, taken from the window
  lines of the event log published during that minute;
* windows and words of the minute, CPU (% of one core, process) and the load average.

Verdicts (printed): RSS growth after warm-up (``--warmup-min``, default 2) < 5 %; every queue stayed
below its capacity; latency p95 flat (last minute's e2e p95 within 1.5× of the first post-warm-up
minute's, or within 100 ms). The machine may be shared: the load average is recorded with every minute.

Outputs: a table on stdout, ``soak.csv`` (one row per minute), ``soak.json`` (rows + run info) and
``soak.png`` (matplotlib Agg: RSS, e2e p95 and queue maxima per minute) in ``--out``.

    .venv/bin/python benchmarks/soak.py --minutes 10 --out benchmarks/results/soak
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = ROOT.parent / "shared" / "data" / "media"
LAT_STAGES = ("e2e_published", "inference", "window", "face", "voice", "asr_commit")


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class Sampler:
    """Samples queue depths, backlogs and drop counters every ``interval`` s on its own thread."""

    def __init__(self, pipeline: Any, interval: float) -> None:
        self.p = pipeline
        self.interval = interval
        self.stop = threading.Event()
        self.samples: list[dict[str, Any]] = []
        self.thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            self.samples.append(self.sample())

    def sample(self) -> dict[str, Any]:
        p = self.p
        snap = p.snapshot()
        queues = {q.name: q.depth for q in snap.queues}
        aud = p.sources.audio.stats() if p.sources.audio is not None else None
        queues["audio ring backlog s"] = float(aud.extra.get("buffered_s", 0.0)) if aud else 0.0
        queues["ASR pending s"] = float(snap.asr_lag_s)
        words = len(p.asr.transcript()) if p.asr is not None else 0
        return {
            "t": time.monotonic(),
            "rss_mb": _rss_mb(),
            "queues": queues,
            "drops": dict(snap.drops),
            "windows": snap.windows,
            "asr_words_total": p.asr.stats().committed_words if p.asr is not None else words,
            "cpu": os.times(),
            "load1": os.getloadavg()[0],
        }


def minute_rows(
    samples: list[dict[str, Any]], windows: list[dict[str, Any]], t0: float, clock_t0: float, minutes: int
) -> list[dict[str, Any]]:
    """Aggregate samples (monotonic time) and window events (session clock) into one row per minute."""
    rows = []
    prev: dict[str, Any] | None = None
    for m in range(minutes):
        lo, hi = t0 + 60.0 * m, t0 + 60.0 * (m + 1)
        ss = [s for s in samples if lo <= s["t"] < hi]
        if not ss:
            break
        last = ss[-1]
        row: dict[str, Any] = {"minute": m + 1, "rss_mb": round(last["rss_mb"], 1),
                               "rss_max_mb": round(max(s["rss_mb"] for s in ss), 1)}  # fmt: skip
        for name in last["queues"]:
            row[f"max {name}"] = round(max(s["queues"].get(name, 0) for s in ss), 3)
        base = prev or samples[0]
        for name, v in last["drops"].items():
            row[f"+{name}"] = round(float(v) - float(base["drops"].get(name, 0)), 3)
        row["windows"] = last["windows"] - base["windows"]
        row["words"] = last["asr_words_total"] - base["asr_words_total"]
        c0, c1 = base["cpu"], last["cpu"]
        wall = last["t"] - base["t"]
        row["cpu_pct"] = round(100.0 * ((c1.user + c1.system) - (c0.user + c0.system)) / wall, 1) if wall else None
        row["load1"] = round(float(np.mean([s["load1"] for s in ss])), 2)
        wlo, whi = clock_t0 + 60.0 * m, clock_t0 + 60.0 * (m + 1)
        ws = [w for w in windows if wlo <= w.get("published_at", -1.0) < whi]
        for stage in LAT_STAGES:
            vals = [w["latency_ms"][stage] for w in ws if (w.get("latency_ms") or {}).get(stage) is not None]
            p50, p95 = (np.percentile(vals, [50, 95]) if vals else (None, None))
            row[f"{stage} p50 ms"] = round(float(p50), 1) if p50 is not None else None
            row[f"{stage} p95 ms"] = round(float(p95), 1) if p95 is not None else None
        rows.append(row)
        prev = last
    return rows


def verdicts(rows: list[dict[str, Any]], warmup: int, capacity: dict[str, float]) -> dict[str, Any]:
    post = [r for r in rows if r["minute"] > warmup] or rows
    rss0, rss1 = post[0]["rss_mb"], post[-1]["rss_mb"]
    growth = 100.0 * (rss1 - rss0) / rss0
    qmax = {k[4:]: max(r[k] for r in rows) for k in rows[0] if k.startswith("max ")}
    bounded = {k: v < capacity.get(k, float("inf")) for k, v in qmax.items()}
    p95 = [r["e2e_published p95 ms"] for r in post if r["e2e_published p95 ms"] is not None]
    flat = bool(p95) and (p95[-1] <= 1.5 * p95[0] or p95[-1] - p95[0] <= 100.0)
    return {
        "rss_after_warmup_mb": rss0, "rss_end_mb": rss1, "rss_growth_pct": round(growth, 2),
        "rss_ok": growth < 5.0, "queue_max": qmax, "queue_capacity": capacity, "queues_bounded": bounded,
        "e2e_p95_first_ms": p95[0] if p95 else None, "e2e_p95_last_ms": p95[-1] if p95 else None,
        "latency_flat": flat,
    }  # fmt: skip


def plot(rows: list[dict[str, Any]], out: Path, title: str, warmup: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["minute"] for r in rows]
    fig, ax = plt.subplots(3, 1, figsize=(7, 7), sharex=True)
    ax[0].plot(x, [r["rss_mb"] for r in rows], "o-")
    post = [r for r in rows if r["minute"] > warmup] or rows
    ref = post[0]["rss_mb"]
    ax[0].axhspan(ref, ref * 1.05, color="green", alpha=0.12, label="< 5 % growth after warm-up")
    ax[0].axvline(warmup + 0.5, color="gray", ls=":", lw=1)
    ax[0].set_ylim(ref * 0.85, ref * 1.10)
    ax[0].legend(fontsize=7, loc="lower right")
    ax[0].set_ylabel("RSS (MB)")
    ax[0].set_title(title, fontsize=9)
    for stage, style in (("e2e_published", "o-"), ("inference", "s--"), ("face", "^:")):
        ax[1].plot(x, [r[f"{stage} p95 ms"] for r in rows], style, label=f"{stage} p95")
    ax[1].set_ylabel("latency p95 (ms)")
    ax[1].legend(fontsize=7)
    for k in [k for k in rows[0] if k.startswith("max ")]:
        ax[2].plot(x, [r[k] for r in rows], "o-", label=k[4:])
    ax[2].set_ylabel("queue max depth\n(items / s of audio)")
    ax[2].set_xlabel("minute")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--warmup-min", type=int, default=2)
    ap.add_argument("--video", default=str(DATA / "moud_101_movies.mp4"))
    ap.add_argument("--gap", type=float, default=1.5, help="silence after each copy of jfk.flac (s)")
    from model.backends import backend_choices, parse_backend
    from model.errors import ConfigError

    ap.add_argument("--backend", default="eager", help=backend_choices())
    ap.add_argument("--sample-s", type=float, default=1.0)
    ap.add_argument("--no-dashboard", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "soak"))
    ap.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = ap.parse_args()
    try:
        parse_backend(args.backend)  # the registry's names and precisions
    except ConfigError as exc:
        ap.error(str(exc))
    if not DATA.is_dir():
        print(f"needs {DATA}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from bench_monitor import bench_checkpoint, build_audio
    from rich.console import Console

    from mmcl.app_config import load_app_config
    from realtime.dashboard import Dashboard
    from realtime.pipeline.eventlog import read_events
    from realtime.pipeline.session import build_pipeline

    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mmcl-soak-") as tmpdir:
        tmp = Path(tmpdir)
        wav = tmp / "jfk_gap.wav"
        build_audio(1, args.gap, wav)
        ckpt = bench_checkpoint(tmp)
        log_path = tmp / "events.jsonl"
        app = load_app_config(overrides=[
            f"sources.camera.source={args.video}", f"sources.microphone.device={wav}",
            "sources.replay.mode=realtime", "sources.replay.loop=true", f"monitor.backend={args.backend}",
            f"monitor.log={log_path}", *args.overrides,
        ])  # fmt: skip
        p = build_pipeline(app, mode="replay", checkpoint=ckpt)
        p.start()
        sampler = Sampler(p, args.sample_s)
        t0 = time.monotonic()
        clock_t0 = p.clock.now()
        sampler.samples.append(sampler.sample())
        sampler.thread.start()
        stop = threading.Event()
        duration = 60.0 * args.minutes

        def done() -> bool:
            return time.monotonic() - t0 >= duration + 0.5 * args.sample_s

        try:
            if args.no_dashboard:
                while not done():
                    time.sleep(0.2)
            else:
                with open(os.devnull, "w") as devnull:
                    console = Console(file=devnull, width=160, height=50, force_terminal=True)
                    Dashboard(p, console, app.monitor.refresh_hz).run(stop, done)
        finally:
            sampler.stop.set()
            sampler.thread.join(5.0)
            ok = p.stop()
        final = p.snapshot()
        windows = read_events(log_path, types=("window",))
    load1 = os.getloadavg()
    rows = minute_rows(sampler.samples, windows, t0, clock_t0, args.minutes)
    capacity = {
        **{q.name: float(q.capacity) for q in final.queues},
        "audio ring backlog s": float(app.sources.microphone.buffer_s),
        "ASR pending s": float("inf"),  # policy bound, not a capacity: reported, judged by its maximum
    }
    v = verdicts(rows, args.warmup_min, capacity)
    info = {
        "minutes": args.minutes, "video": Path(args.video).name, "audio": f"jfk.flac + {args.gap} s silence",
        "backend": final.backend, "model": final.model, "dashboard": not args.no_dashboard,
        "stopped_cleanly": ok, "windows": final.windows, "loadavg_before": load0, "loadavg_after": load1,
        "cores": os.cpu_count(), "asr_max_backlog_s": app.asr.max_backlog_s,
        "rss_start_mb": round(sampler.samples[0]["rss_mb"], 1), **v,
    }  # fmt: skip

    with open(out / "soak.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "soak.json").write_text(json.dumps({"info": info, "minutes": rows}, indent=1))
    title = (f"soak: {args.minutes} min realtime loop, {info['video']} + jfk · load avg "
             f"{load0[0]:.1f}→{load1[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    plot(rows, out / "soak.png", title, args.warmup_min)

    cols = ["minute", "rss_mb", "windows", "words", "cpu_pct", "load1", "e2e_published p50 ms",
            "e2e_published p95 ms", "inference p95 ms", "face p95 ms", "asr_commit p95 ms"]  # fmt: skip
    print("  ".join(f"{c:>10}" for c in [c.replace(" ms", "").replace("e2e_published", "e2e") for c in cols]))
    for r in rows:
        print("  ".join(f"{r[c] if r[c] is not None else '-':>10}" for c in cols))
    qcols = [k for k in rows[0] if k.startswith("max ")]
    print("queue maxima per minute: " + "; ".join(k[4:] for k in qcols))
    for r in rows:
        print(f"  {r['minute']:>3}: " + "  ".join(f"{r[k]:g}" for k in qcols))
    dcols = [k for k in rows[0] if k.startswith("+")]
    print("drops per minute: " + "; ".join(k[1:] for k in dcols))
    for r in rows:
        print(f"  {r['minute']:>3}: " + "  ".join(f"{r[k]:g}" for k in dcols))
    print(
        f"RSS at start {info['rss_start_mb']:.1f} MB; after warm-up (minute {args.warmup_min + 1}) "
        f"{v['rss_after_warmup_mb']:.1f} MB → end {v['rss_end_mb']:.1f} MB: growth {v['rss_growth_pct']:+.2f} % "
        f"({'OK' if v['rss_ok'] else 'OVER'} < 5 %)"
    )
    print("queues bounded: " + ", ".join(f"{k} max {v['queue_max'][k]:g}/{capacity.get(k, 0):g}"
                                         for k in v["queue_max"]))  # fmt: skip
    print(f"e2e p95 first {v['e2e_p95_first_ms']} ms → last {v['e2e_p95_last_ms']} ms: "
          f"{'flat' if v['latency_flat'] else 'NOT flat'}")  # fmt: skip
    print(f"load average before {load0[0]:.2f} / after {load1[0]:.2f} on {os.cpu_count()} cores; "
          f"stopped cleanly: {ok}; wrote {out}/soak.csv, soak.json, soak.png")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
