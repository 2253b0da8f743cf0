"""Live-monitor benchmark: the whole pipeline on a real-time replay of real media, with the dashboard drawn.

Signal (≥ 60 s): camera = ../shared/data/media/moud_101_movies.mp4 (a real face video, 33 s, looped;
capped at 15 fps) and microphone = jfk.flac repeated ``--repeats`` times with ``--gap`` s of silence after
each copy (default 5 × (11 + 1.5) = 62.5 s, the ASR benchmark's signal), replayed in ``realtime`` mode
through the real sources, workers, ASR, inference backend and the rich dashboard (rendered to a
160-column terminal that writes to /dev/null, at the configured refresh rate).

Printed: per-stage latency p50/p95/p99 (ms), end to end newest input → sentiment shown, ASR commit
latency and WER against jfk.txt, CPU use of the whole process (% of one core: mean over the run from
``os.times``, and per thread group), drops, windows skipped, peak RSS, and the machine's load average
(the machine may be shared: numbers under load are pessimistic).

Checkpoint: the shipped default when present, else a random-weight MMCL of the default recipe's largest
size (d_model 128) on the live feature set — the compute is what matters here, not the predictions.

    .venv/bin/python benchmarks/bench_monitor.py
    .venv/bin/python benchmarks/bench_monitor.py --backend onnx --json
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = ROOT.parent / "shared" / "data" / "media"


def build_audio(repeats: int, gap: float, out: Path) -> float:
    import soundfile as sf

    from realtime.sources import decode_audio

    x = decode_audio(DATA / "jfk.flac")
    parts = []
    for _ in range(repeats):
        parts += [x, np.zeros(round(gap * 16000), np.float32)]
    y = np.concatenate(parts)
    sf.write(str(out), y, 16000, subtype="PCM_16")
    return len(y) / 16000.0


def thread_times() -> dict[int, tuple[str, float]]:
    """CPU seconds of every thread of this process, with its Python name (native threads: 'native:' + the
    kernel thread name the library gave it, e.g. a BLAS or XNNPACK pool, so a pool that spins is named)."""
    import psutil

    names = {t.native_id: t.name for t in threading.enumerate()}
    return {
        t.id: (names.get(t.id) or f"native:{_comm(t.id)}", t.user_time + t.system_time)
        for t in psutil.Process().threads()
    }


def _comm(tid: int) -> str:
    try:
        name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
    except OSError:
        return "?"
    return name.rstrip("0123456789-_ ") or name


def bench_checkpoint(tmp: Path) -> Path:
    try:
        from model.pretrained import default_checkpoint_path

        return default_checkpoint_path()
    except Exception:  # no shipped checkpoint yet
        import torch

        from model.checkpoint import save_checkpoint
        from model.config import ModelConfig
        from model.evaluate import TaskInfo
        from model.featureset import LIVE_FEATURE_SET
        from model.mmcl import MMCL

        torch.manual_seed(0)
        cfg = ModelConfig(dim_vision=56, dim_audio=34, dim_text=384, d_model=128, head_hidden=64)
        path = tmp / "bench_d128.pt"
        save_checkpoint(path, MMCL(cfg).eval(), task=TaskInfo(task="regression", label_kind="msa"),
                        feature_set=LIVE_FEATURE_SET)  # fmt: skip
        return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--gap", type=float, default=1.5)
    from model.backends import backend_choices, parse_backend
    from model.errors import ConfigError

    ap.add_argument("--backend", default="eager", help=backend_choices())
    ap.add_argument("--video", default=str(DATA / "moud_101_movies.mp4"))
    ap.add_argument("--no-dashboard", action="store_true", help="Headless: e2e is measured to 'published'.")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = ap.parse_args()
    try:
        parse_backend(args.backend)  # the registry's names and precisions
    except ConfigError as exc:
        ap.error(str(exc))
    if not DATA.is_dir():
        print(f"needs {DATA}", file=sys.stderr)
        return 2

    from rich.console import Console

    from mmcl.app_config import load_app_config
    from realtime.dashboard import Dashboard
    from realtime.features.transcribe import normalize_words, token_error_rate
    from realtime.pipeline.session import build_pipeline

    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mmcl-bench-") as tmpdir:
        tmp = Path(tmpdir)
        wav = tmp / "jfk_x.wav"
        seconds = build_audio(args.repeats, args.gap, wav)
        ckpt = bench_checkpoint(tmp)
        app = load_app_config(overrides=[
            f"sources.camera.source={args.video}", f"sources.microphone.device={wav}",
            "sources.replay.mode=realtime", "sources.replay.loop=false", f"monitor.backend={args.backend}",
            *args.overrides,
        ])  # fmt: skip
        # the camera file loops (33 s < the audio); the session ends with the audio
        app.sources.replay.loop = False
        t_load = time.perf_counter()
        p = build_pipeline(app, mode="replay", checkpoint=app.monitor.checkpoint or ckpt)  # monitor.checkpoint=…
        # only the camera loops (the sources share one ReplayConfig object: give the camera its own)
        p.sources.camera.replay = dataclasses.replace(p.sources.camera.replay, loop=True)
        p.start()
        load_s = time.perf_counter() - t_load
        cpu0, wall0 = os.times(), time.monotonic()
        th0 = thread_times()
        stop = threading.Event()

        def audio_done() -> bool:
            return p.sources.audio.ended and p.voice.is_idle() and time.monotonic() - wall0 > seconds

        if args.no_dashboard:
            while not audio_done():
                time.sleep(0.1)
        else:
            console = Console(file=open(os.devnull, "w"), width=160, height=50, force_terminal=True)
            Dashboard(p, console, app.monitor.refresh_hz).run(stop, audio_done)
        cpu1, wall1 = os.times(), time.monotonic()
        th1 = thread_times()
        time.sleep(1.5)  # let the ASR commit the last utterance
        snap = p.snapshot()
        words = p.asr.transcript() if p.asr else []
        threads: dict[str, float] = {}
        for tid, (name, c) in th1.items():
            group = name if name.startswith("native:") else name.split(":", 1)[0]
            threads[group] = threads.get(group, 0.0) + 100.0 * (c - th0.get(tid, (name, 0.0))[1]) / (
                wall1 - wall0
            )
        p.stop()
    load1 = os.getloadavg()

    ref = normalize_words((DATA / "jfk.txt").read_text()) * args.repeats
    hyp = normalize_words(" ".join(w.text for w in words))
    lat = {k: v.to_dict() for k, v in snap.latency.items()}
    cpu = 100.0 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (wall1 - wall0)
    result = {
        "signal_s": seconds, "video": Path(args.video).name, "backend": snap.backend, "model": snap.model,
        "startup_s": load_s, "windows": snap.windows, "windows_skipped": snap.windows_skipped,
        "latency_ms": lat, "asr_wer": token_error_rate(ref, hyp), "asr_words": len(hyp), "ref_words": len(ref),
        "cpu_percent_of_one_core": cpu, "cpu_by_thread": threads, "peak_rss_mb": snap.resources.peak_rss_mb,
        "drops": snap.drops, "loadavg_before": load0, "loadavg_after": load1, "cores": os.cpu_count(),
        "camera_fps": next((d.rate_hz for d in snap.devices if d.name == "camera"), None),
    }  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"signal {seconds:.1f} s realtime replay · video {result['video']} (looped, ≤15 fps) · "
        f"audio jfk×{args.repeats} · backend {snap.backend} · model {snap.model} · startup {load_s:.1f} s"
    )
    print(f"{'stage':<26}{'p50':>8}{'p95':>8}{'p99':>8}{'n':>7}  (ms)")
    for k, v in lat.items():
        f = [f"{v[q]:.1f}" if v[q] is not None else "-" for q in ("p50_ms", "p95_ms", "p99_ms")]
        print(f"{k:<26}{f[0]:>8}{f[1]:>8}{f[2]:>8}{v['count']:>7}")
    print(f"ASR: WER {result['asr_wer']:.3f} ({len(hyp)} words vs {len(ref)})")
    by_thread = ", ".join(f"{k} {v:.0f}%" for k, v in sorted(threads.items(), key=lambda kv: -kv[1]))
    print(f"CPU {cpu:.0f}% of one core (whole process, mean) · by thread group: {by_thread}")
    print(
        f"windows {snap.windows} (skipped {snap.windows_skipped}) · camera {result['camera_fps']:.1f} fps"
        f" · peak RSS {snap.resources.peak_rss_mb:.0f} MB"
    )
    print("drops: " + ", ".join(f"{k} {v:g}" for k, v in snap.drops.items()))
    print(f"load average before {load0[0]:.2f} / after {load1[0]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
