"""`mmcl serve` for real: Ray Serve on 127.0.0.1 in a child process (one instance for the module, ~20-40 s to
start on 2 cores), two clients, parity with local eager inference, the feature-set refusal, and a monitor
that falls back to its local model when the server is stopped mid-session (the last test)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from helpers_serve import make_v1_checkpoint, make_windows

from model.backends import create_backend
from model.backends.inputs import live_like_inputs
from model.checkpoint import load_checkpoint
from model.featureset import LIVE_V1, LIVE_V2
from realtime.pipeline.inference import InferenceEngine
from realtime.pipeline.remote import RemoteBackend, RemoteConfig, RemoteEngine, ServerClient
from realtime.pipeline.wire import FeatureSetMismatch

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
TOL = 1e-5
DEMO_CACHE = Path(tempfile.gettempdir()) / "mmcl-live-test-cache"  # shared with test_monitor_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_v1_checkpoint(tmp_path_factory.mktemp("serve") / "v1.pt")


@pytest.fixture(scope="module")
def server(ckpt, tmp_path_factory):
    port = _free_port()
    out = tmp_path_factory.mktemp("serve-log") / "serve.out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with open(out, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mmcl.cli", "serve", "--checkpoint", str(ckpt), "--backend", "eager",
             "--port", str(port), "--max-batch", "8", "--batch-wait-ms", "30"],
            cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    t0 = time.monotonic()
    while "ready at" not in out.read_text() and proc.poll() is None and time.monotonic() - t0 < 240:
        time.sleep(0.5)
    assert proc.poll() is None and "ready at" in out.read_text(), out.read_text()[-3000:]
    print(f"mmcl serve ready in {time.monotonic() - t0:.1f} s")
    yield {"url": f"http://127.0.0.1:{port}", "proc": proc, "out": out}
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, json.loads(r.read() or b"{}")


def test_health_readiness_and_info(server) -> None:
    url = server["url"]
    assert _get(f"{url}/healthz")[0] == 200
    status, ready = _get(f"{url}/readyz")
    assert status == 200 and ready["ready"] and ready["feature_set"] == LIVE_V1.ident
    _, info = _get(f"{url}/v1/info")
    assert info["feature_set"] == LIVE_V1.ident and info["feature_dims"] == LIVE_V1.dims
    assert info["task"]["task"] == "regression" and info["max_batch"] == 8 and info["backend"].startswith("eager")


def test_two_clients_get_the_local_eager_answers_in_shared_batches(server, ckpt) -> None:
    loaded = load_checkpoint(ckpt)
    windows = make_windows(loaded, 12, seed=3)
    ref = InferenceEngine(create_backend("eager", loaded), loaded.task)
    expected = [ref.score(w) for w in windows]
    results: dict[int, list] = {0: [], 1: []}
    batches: list[int] = []
    gate = threading.Barrier(2)

    def client(k: int) -> None:
        backend = RemoteBackend(RemoteConfig(server["url"], timeout_s=5.0), LIVE_V1, loaded.task.to_dict(), None)
        eng = RemoteEngine(backend, loaded.task)
        for w in windows:
            gate.wait(10)
            results[k].append(eng.score(w))
            batches.append(backend.stats.last_batch)

    threads = [threading.Thread(target=client, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    err = 0.0
    for k in (0, 1):
        assert len(results[k]) == len(windows)
        for p, r in zip(results[k], expected, strict=True):
            assert p.scored_by == "server"
            err = max(err, abs(p.score - r.score), abs((p.value or 0) - (r.value or 0)))
            for m, c in r.contributions.items():
                assert (p.contributions[m] is None) == (c is None)
                if c is not None:
                    err = max(err, abs(p.contributions[m] - c))
            assert p.trend == pytest.approx(r.trend, abs=1e-4)
    print(f"two clients vs local eager: max |diff| of score/value/contributions {err:.2e} (tolerance {TOL:g}); "
          f"windows per server call {sorted(batches)}")  # fmt: skip
    assert err <= TOL
    assert max(batches) >= 2  # the two clients' windows shared a backend call


def test_a_client_on_another_feature_set_is_refused(server, ckpt) -> None:
    loaded = load_checkpoint(ckpt)
    x = live_like_inputs(loaded.model, 1, 50)
    x.vision = np.zeros((1, 50, LIVE_V2.dims["vision"]), np.float32)
    x.audio = np.zeros((1, 50, LIVE_V2.dims["audio"]), np.float32)
    x.text = np.zeros((1, 50, LIVE_V2.dims["text"]), np.float32)
    client = ServerClient(server["url"], timeout_s=5.0)
    with pytest.raises(FeatureSetMismatch) as exc:
        client.score(x, LIVE_V2.ident, variants=True)
    print(f"refusal: {exc.value}")
    assert LIVE_V1.ident in str(exc.value) and LIVE_V2.ident in str(exc.value)
    status, data = client._request("POST", "/v1/windows", b"not a frame", 5.0)  # a malformed body
    assert status == 400 and json.loads(data)["error"] == "bad_frame"


def _windows_logged(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            ev = json.loads(line)
        except ValueError:  # a line being written
            continue
        if ev.get("type") == "window":
            out.append(ev)
    return out


def _scored_by(ev: dict) -> str | None:
    return (ev.get("prediction") or {}).get("scored_by")


def test_monitor_falls_back_to_local_when_the_server_stops_mid_session(server, ckpt, tmp_path) -> None:
    """`mmcl monitor --demo --server URL` (the real pipeline and event log); the server is stopped mid-session."""
    log_path = tmp_path / "events.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "XDG_CACHE_HOME": str(DEMO_CACHE), "HF_HUB_OFFLINE": "1"}  # fmt: skip
    env.pop("COLUMNS", None)
    mon = subprocess.Popen(
        [sys.executable, "-m", "mmcl.cli", "monitor", "--demo", "--headless", "--server", server["url"],
         "--server-timeout-ms", "3000", "--checkpoint", str(ckpt), "--backend", "eager", "--log", str(log_path),
         "monitor.headless_interval_s=0.5"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and mon.poll() is None:
            if sum(_scored_by(e) == "server" for e in _windows_logged(log_path)) >= 3:
                break
            time.sleep(0.25)
        assert sum(_scored_by(e) == "server" for e in _windows_logged(log_path)) >= 3, "no server-scored windows"
        server["proc"].send_signal(signal.SIGTERM)  # the server goes away mid-session
        stopped_at = len(_windows_logged(log_path))
        server["proc"].wait(60)
        while time.monotonic() < deadline and len(_windows_logged(log_path)) < stopped_at + 8:
            time.sleep(0.25)
        mon.send_signal(signal.SIGINT)
        out, err = mon.communicate(timeout=60)
    finally:
        if mon.poll() is None:
            mon.kill()
    assert mon.returncode == 0, err[-3000:]
    assert server["proc"].returncode == 0 and "mmcl serve stopped" in server["out"].read_text()
    events = [json.loads(line) for line in log_path.read_text().splitlines()]
    windows = [e for e in events if e["type"] == "window"]
    assert events[0]["type"] == "session" and events[0]["server"] == server["url"] and events[-1]["type"] == "summary"
    assert [w["window"] for w in windows] == list(range(len(windows)))  # no window lost from the log
    origins = [_scored_by(w) for w in windows if w["prediction"] is not None]
    print(f"{len(windows)} windows logged; scored by: {origins}")
    assert all(w["prediction"] is not None for w in windows[1:])  # every window with input got a prediction
    assert "server" in origins and origins[-5:] == ["local"] * 5
    assert "DOWN" in out and "→ local eager" in out  # the headless line shows the server's state
    assert "window(s) scored there" in out and "locally" in out
