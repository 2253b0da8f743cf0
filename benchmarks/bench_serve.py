"""Many streams on one machine: `mmcl serve` (Ray Serve, dynamic batching) next to per-stream local inference.

For each N in --streams (default 1, 8, 32, 128), N simulated streams each send one window every 1/--rate s
(2 windows/s: the monitor's 0.5 s hop), phases spread evenly, for --duration s:

* **serve** — each stream is a ``ServerClient`` (the monitor's client: binary frame, the window and its
  three masked variants scored in one server-side call) against ``mmcl serve`` on 127.0.0.1, started
  here with the same backend;
* **local** — each stream owns a backend of its own and does what a monitor does per window: batch-1
  prediction, then the batch-3 masked-modality call (threads of one process standing in for N processes:
  the backends release the GIL while they compute).

Reported per N and mode: windows/s achieved vs offered, per-request latency p50/p95/p99 (send → raw
outputs back, i.e. prediction + attribution), windows per server backend call (mean / max), CPU of this
process and its descendants (Ray's processes included) in % of one core, and windows that missed their
deadline (late by more than one hop or timed out). Windows are replayed from a ``mmcl monitor
--record-calib`` folder with --windows, else generated live-like from the model's input statistics.

    .venv/bin/python benchmarks/bench_serve.py [--backend onnx] [--streams 1,8,32,128] [--duration 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.backends import create_backend
from model.backends.base import ModelInputs
from model.backends.inputs import live_like_inputs
from model.checkpoint import load_checkpoint
from model.pretrained import default_checkpoint_path
from realtime.pipeline.inference import masked_variants
from realtime.pipeline.remote import ServerClient

log = logging.getLogger("bench_serve")
P95_TARGET_MS = 150.0


@dataclass
class Level:
    mode: str
    streams: int
    offered_wps: float
    achieved_wps: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    batch_mean: float | None = None
    batch_max: int | None = None
    cpu_pct: float = 0.0
    cpu_by_role: dict[str, float] = field(default_factory=dict)  # clients / proxy / replica / ray other
    missed: int = 0
    errors: int = 0
    windows: int = 0
    notes: list[str] = field(default_factory=list)


def _role(p: psutil.Process, me: psutil.Process) -> str:
    if p.pid == me.pid:
        return "clients"  # this process: the stream threads (and, in local mode, their models)
    name = p.name()
    if "ProxyActor" in name:
        return "proxy"
    if "ServeReplica" in name:
        return "replica"
    return "ray other"  # raylet, GCS, controller, agents


def tree_cpu_s() -> dict[str, float]:
    """CPU seconds (user + system) of this process and every live descendant (Ray's processes), by role."""
    me = psutil.Process()
    out: dict[str, float] = {}
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            role = _role(p, me)
            out[role] = out.get(role, 0.0) + t.user + t.system
        except psutil.Error:
            pass
    return out


def load_windows(loaded, directory: str | None, n: int = 64) -> list[ModelInputs]:
    if directory:
        from calibration.shards import read_calibration

        calib = read_calibration(directory, loaded.feature_set)
        x = calib.inputs
    else:
        x = live_like_inputs(loaded.model, n, 50, seed=7)
    return [x.select([i]) for i in range(x.batch)]


def run_level(mode: str, n: int, args, windows, make_worker) -> Level:
    """N stream threads on a shared schedule; ``make_worker(k)`` returns a callable(window) → batch size."""
    hop = 1.0 / args.rate
    level = Level(mode, n, n * args.rate)
    workers = [make_worker(k) for k in range(n)]
    lat: list[list[float]] = [[] for _ in range(n)]
    batches: list[list[int]] = [[] for _ in range(n)]
    missed = [0] * n
    errors = [0] * n
    start = time.perf_counter() + 1.0
    warm_end = start + args.warmup
    end = warm_end + args.duration

    def stream(k: int) -> None:
        t = start + hop * k / n
        j = k
        while t < end:
            delay = t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter()
            try:
                b = workers[k](windows[j % len(windows)])
                ok = True
            except Exception:
                errors[k] += t0 >= warm_end
                ok, b = False, 0
            t1 = time.perf_counter()
            if t0 >= warm_end:
                if ok:
                    lat[k].append((t1 - t0) * 1000.0)
                    batches[k].append(b)
                if not ok or t1 - t > hop:  # late by more than one hop: that window missed its slot
                    missed[k] += 1
            j += 1
            t += hop
            while t < time.perf_counter() - hop:  # a stream that fell behind drops its stale slots
                missed[k] += t >= warm_end
                t += hop

    threads = [threading.Thread(target=stream, args=(k,), daemon=True) for k in range(n)]
    for th in threads:
        th.start()
    time.sleep(max(0.0, warm_end - time.perf_counter()))
    cpu0, w0 = tree_cpu_s(), time.perf_counter()
    for th in threads:
        th.join(args.duration + args.warmup + 60)
    cpu1, w1 = tree_cpu_s(), time.perf_counter()
    all_lat = np.asarray([x for xs in lat for x in xs])
    all_b = np.asarray([x for xs in batches for x in xs])
    level.windows = int(all_lat.size)
    level.achieved_wps = all_lat.size / args.duration
    if all_lat.size:
        level.p50_ms, level.p95_ms, level.p99_ms = (round(float(np.percentile(all_lat, q)), 2) for q in (50, 95, 99))
    if mode == "serve" and all_b.size:
        level.batch_mean, level.batch_max = round(float(all_b.mean()), 2), int(all_b.max())
    span = max(1e-9, w1 - w0)
    level.cpu_by_role = {k: round(100.0 * (cpu1.get(k, 0.0) - cpu0.get(k, 0.0)) / span, 1) for k in cpu1}
    level.cpu_pct = round(sum(level.cpu_by_role.values()), 1)
    level.missed, level.errors = sum(missed), sum(errors)
    return level


def serve_levels(args, loaded, windows) -> list[Level]:
    from mmcl.serve.config import ServeConfig
    from mmcl.serve.runner import start_server

    cfg = ServeConfig(checkpoint=args.checkpoint, backend=args.backend, replicas=args.replicas,
                      max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms, port=args.port,
                      threads=args.threads)  # fmt: skip
    server = start_server(cfg)
    log.info("server up in %.1f s: %s", server.started_s, server.info.get("backend"))
    ident = loaded.feature_set.ident
    out = []
    try:
        for n in args.streams:

            def make(k: int, n: int = n):
                client = ServerClient(server.url, args.timeout_ms / 1000.0, client_id=f"s{k}")

                def work(x: ModelInputs) -> int:
                    resp = client.score(x, ident, variants=True)
                    return int(resp.stats.get("batch_windows", 1))

                return work

            lv = run_level("serve", n, args, windows, make)
            lv.notes.append(f"server start {server.started_s:.1f} s")
            log.info("%s", asdict(lv))
            out.append(lv)
    finally:
        server.stop()
    return out


def local_levels(args, loaded, windows) -> list[Level]:
    import torch

    torch.set_num_threads(1)  # one monitor process per stream, one model thread each
    out = []
    backends = []
    for n in args.streams:
        while len(backends) < n:
            backends.append(create_backend(args.backend, loaded))

        def make(k: int):
            b = backends[k]

            def work(x: ModelInputs) -> int:
                b.run(x)
                b.run(masked_variants(x))
                return 1

            return work

        lv = run_level("local", n, args, windows, make)
        log.info("%s", asdict(lv))
        out.append(lv)
    return out


def holds(levels: list[Level], mode: str) -> int:
    """Largest N of this mode with p95 ≤ target, ≥ 95% of the offered windows served and < 1% missed."""
    best = 0
    for lv in levels:
        if lv.mode != mode or lv.p95_ms is None:
            continue
        if lv.p95_ms <= P95_TARGET_MS and lv.achieved_wps >= 0.95 * lv.offered_wps and lv.missed <= 0.01 * lv.windows:
            best = max(best, lv.streams)
    return best


def print_table(levels: list[Level], args, machine: str) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=160)
    t = Table(title=f"bench_serve: {args.rate:g} windows/s per stream, {args.duration:g} s per level · {machine}")
    for c in ("streams", "mode", "offered w/s", "achieved w/s", "p50 ms", "p95 ms", "p99 ms", "windows/call",
              "max/call", "CPU % (1 core)", "CPU ms/window", "missed", "errors"):  # fmt: skip
        t.add_column(c, justify="right")

    def f(v, fmt="{:.1f}"):
        return "–" if v is None else fmt.format(v)

    for lv in sorted(levels, key=lambda x: (x.streams, x.mode)):
        per_w = 10.0 * lv.cpu_pct / lv.achieved_wps if lv.achieved_wps else None  # % of a core·s → ms per window
        t.add_row(str(lv.streams), lv.mode, f(lv.offered_wps, "{:.0f}"), f(lv.achieved_wps), f(lv.p50_ms),
                  f(lv.p95_ms), f(lv.p99_ms), f(lv.batch_mean, "{:.2f}"), f(lv.batch_max, "{}"), f(lv.cpu_pct),
                  f(per_w, "{:.2f}"), str(lv.missed), str(lv.errors))  # fmt: skip
    con.print(t)
    for lv in levels:
        if lv.mode == "serve":
            roles = ", ".join(f"{k} {v:.0f}%" for k, v in sorted(lv.cpu_by_role.items()))
            con.print(f"N={lv.streams} serve CPU by process (% of one core): {roles}", highlight=False)
    by = {(lv.mode, lv.streams): lv for lv in levels}
    for n in args.streams:
        s, loc = by.get(("serve", n)), by.get(("local", n))
        if s and loc and s.p95_ms and loc.p95_ms and s.achieved_wps and loc.achieved_wps:
            cpu_ratio = (loc.cpu_pct / loc.achieved_wps) / max(1e-9, s.cpu_pct / s.achieved_wps)
            con.print(f"N={n}: serve/local — p95 {s.p95_ms / loc.p95_ms:.2f}×, CPU per window local/serve "
                      f"{cpu_ratio:.2f}× (>1: the server is cheaper per window)", highlight=False)  # fmt: skip
    cores = psutil.cpu_count() or 1
    con.print(f"streams held at p95 ≤ {P95_TARGET_MS:g} ms on this {cores}-core machine (of those tried): "
              f"serve {holds(levels, 'serve')}, local {holds(levels, 'local')}", highlight=False)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="")
    from model.backends import backend_choices, parse_backend
    from model.errors import ConfigError

    ap.add_argument("--backend", default="onnx", help=backend_choices())
    ap.add_argument("--streams", default="1,8,32,128")
    ap.add_argument("--rate", type=float, default=2.0)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="model threads per replica (0: cores / replicas)")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--batch-wait-ms", type=float, default=5.0)
    ap.add_argument("--timeout-ms", type=float, default=2000.0)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--modes", default="serve,local")
    ap.add_argument("--windows", default=None, help="a `mmcl monitor --record-calib` folder to replay")
    ap.add_argument("--json", default=None, help="also write the levels to this JSON file")
    args = ap.parse_args()
    try:
        parse_backend(args.backend)  # the registry's names and precisions
    except ConfigError as exc:
        ap.error(str(exc))
    args.streams = [int(s) for s in args.streams.split(",") if s]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    path = Path(args.checkpoint) if args.checkpoint else default_checkpoint_path()
    loaded = load_checkpoint(path)
    windows = load_windows(loaded, args.windows)
    machine = (f"{psutil.cpu_count()} logical CPUs, load {os.getloadavg()[0]:.1f}, backend {args.backend}, "
               f"{path.name}, {len(windows)} {'recorded' if args.windows else 'live-like'} windows")  # fmt: skip
    modes = args.modes.split(",")
    levels: list[Level] = []
    if "serve" in modes:
        levels += serve_levels(args, loaded, windows)
    if "local" in modes:
        levels += local_levels(args, loaded, windows)
    machine += f", load after {os.getloadavg()[0]:.1f}"
    print_table(levels, args, machine)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "args": vars(args),
                                               "levels": [asdict(lv) for lv in levels]}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
