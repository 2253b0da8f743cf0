"""`mmcl monitor` as a user runs it: the demo inside tmux (screen read with capture-pane), --auto headless
with an event log, and the command's errors."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from helpers_monitor import make_checkpoint
from typer.testing import CliRunner

from mmcl.cli import app
from model.errors import CheckpointError, ConfigError
from realtime.pipeline.eventlog import read_events

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
MMCL = REPO / ".venv" / "bin" / "mmcl"
DEMO_CACHE = Path(tempfile.gettempdir()) / "mmcl-live-test-cache"  # the demo files are reused across runs


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "monitor.pt")


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=20, check=False).stdout


@pytest.mark.device
def test_demo_dashboard_in_tmux(checkpoint, tmp_path) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    exe = MMCL if MMCL.exists() else Path(shutil.which("mmcl") or "mmcl")
    session = f"mmcl-test-{os.getpid()}"
    env = (f"MMCL_DEFAULT_CHECKPOINT={checkpoint} XDG_CACHE_HOME={DEMO_CACHE} HF_HUB_OFFLINE=1 "
           f"PYTHONUNBUFFERED=1")  # fmt: skip
    # eager: the `auto` backend may export to ONNX first, which only makes the test slower
    run = f"env -u COLUMNS -u LINES {env} {exe} monitor --demo --duration 10 --backend eager"
    cmd = f"cd {REPO} && {run}; echo EXIT=$?; sleep 120"
    _tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "90", cmd)
    try:
        parts = ("DEMO session (--demo: generated speech and face)", "modalities: presence and evidence",
                 "face (vision)", "voice (audio)", "transcript", "latency (ms)", "devices · queues · resources",
                 "audio-file", "camera")  # fmt: skip
        gauge = r"[+-]\d\.\d\d (positive|negative|neutral)"

        def complete(screen: str) -> bool:
            return bool(re.search(gauge, screen)) and all(part in screen for part in parts)

        mid = ""
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # a capture can catch a frame half redrawn: wait for a whole one
            mid = _tmux("capture-pane", "-p", "-t", session)
            if complete(mid) or "EXIT=" in mid:
                break
            time.sleep(0.5)
        assert re.search(gauge, mid), mid
        for part in parts:
            assert part in mid, (part, mid)
        final = ""
        while time.monotonic() < deadline:
            final = _tmux("capture-pane", "-p", "-S", "-300", "-t", session)
            if "EXIT=" in final:
                break
            time.sleep(1.0)
        (tmp_path / "screen.txt").write_text(mid + "\n=====\n" + final)
        assert "EXIT=0" in final, final
        assert "mmcl monitor: latency summary (ms)" in final and "newest input → shown" in final
        assert "face found" in mid + final  # MediaPipe found the demo portrait
        words = final.split("transcript")[-1].lower()
        assert any(w in words for w in ("welcome", "monitor", "happy", "hello")), final
    finally:
        _tmux("kill-session", "-t", session)


def test_auto_headless_with_event_log(checkpoint, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(DEMO_CACHE))
    log_path = tmp_path / "events.jsonl"
    args = ["monitor", "--auto", "--headless", "--duration", "4", "--checkpoint", str(checkpoint)]
    res = CliRunner().invoke(app, [*args, "--log", str(log_path), "monitor.headless_interval_s=0.5"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    if not glob.glob("/dev/video*"):
        assert "no camera" in res.output and "DEMO session" in res.output
    lines = [ln for ln in res.stdout.splitlines() if "sentiment" in ln and "t=" in ln]
    assert len(lines) >= 4
    assert "mmcl monitor: latency summary (ms)" in res.stdout
    events = read_events(log_path)
    assert events[0]["type"] == "session" and events[0]["mode"] == "demo" and events[-1]["type"] == "summary"
    assert sum(e["type"] == "window" for e in events) >= 5


def test_monitor_errors_say_what_to_do(tmp_path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["monitor", "--demo", "--auto"])
    assert isinstance(res.exception, ConfigError) and "exclude each other" in str(res.exception)
    res = runner.invoke(app, ["monitor", "--replay", "slow"])
    assert isinstance(res.exception, ConfigError)
    res = runner.invoke(app, ["monitor", "--camera", "none", "--mic", "none", "--checkpoint",
                              str(tmp_path / "missing.pt")])  # fmt: skip
    assert isinstance(res.exception, CheckpointError) and "--checkpoint" in str(res.exception)
    res = runner.invoke(app, ["monitor", "monitor.hop_s=0"])
    assert isinstance(res.exception, ConfigError) and "hop_s" in str(res.exception)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_stops_cleanly_with_the_log_flushed(checkpoint, tmp_path, sig) -> None:
    import signal

    log_path = tmp_path / "events.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(XDG_CACHE_HOME=str(DEMO_CACHE), HF_HUB_OFFLINE="1")
    exe = MMCL if MMCL.exists() else Path(shutil.which("mmcl") or "mmcl")
    proc = subprocess.Popen(
        [str(exe), "monitor", "--demo", "--headless", "--backend", "eager", "--checkpoint", str(checkpoint),
         "--log", str(log_path)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if log_path.exists() and log_path.read_text().count('"type":"window"') >= 3:
                break
            time.sleep(0.5)
        windows_before = log_path.read_text().count('"type":"window"')
        assert windows_before >= 3, proc.stderr.read() if proc.poll() is not None else "no windows"
        proc.send_signal(getattr(signal, sig))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "stopped by signal; devices released, log flushed" in err
    assert "did not stop in time" not in err  # every thread (devices, workers, window loop) ended
    assert "mmcl monitor: latency summary (ms)" in out
    events = read_events(log_path)
    assert events[-1]["type"] == "summary" and sum(e["type"] == "window" for e in events) >= windows_before
