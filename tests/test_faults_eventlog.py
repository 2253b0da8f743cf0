"""Fault: the disk under the JSONL event log fills up (a real tiny tmpfs when root, else a file-size limit).

The monitor must keep running, say clearly that the log stopped and why, and lose none of the events it
had already recorded: the file is cut back to its last complete line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_faults import limit_file_size, tiny_tmpfs
from helpers_monitor import make_checkpoint

from realtime.pipeline.eventlog import EventLog, read_events

REPO = Path(__file__).resolve().parents[1]
MMCL = REPO / ".venv" / "bin" / "mmcl"


def _window(i: int) -> dict:
    return {"type": "window", "window": i, "t_end": 0.5 * i, "words": "ask not what your country " * 2,
            "prediction": {"score": 0.01 * i}, "latency_ms": {"e2e_published": 90.0 + i}}  # fmt: skip


_CHILD = """
import json, sys
from realtime.pipeline.eventlog import EventLog
log = EventLog(sys.argv[1])
written = []
for i in range(400):
    ev = {"type": "window", "window": i, "words": "ask not what your country " * 2, "t_end": 0.5 * i}
    if log.write(ev):
        written.append(i)
extra = log.write({"type": "window", "window": -1})
log.close({"windows": len(written)})
print(json.dumps({"written": written, "lines": log.lines, "lost": log.lines_lost, "error": log.error,
                  "extra": extra}))
"""


def _check_cut_log(path: Path, written: list[int], lines: int) -> None:
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), "a partly written line was left at the end"
    events = read_events(path)
    assert len(events) == lines == len(written) > 0
    assert [e["window"] for e in events] == written == list(range(len(written)))


@pytest.mark.parametrize("kind", ["tmpfs", "rlimit"])
def test_event_log_on_a_full_disk_keeps_every_recorded_event(kind: str, tmp_path: Path) -> None:
    if kind == "tmpfs":
        with tiny_tmpfs(12) as mnt:
            if mnt is None:
                pytest.skip("cannot mount a tmpfs here (needs root); the rlimit case covers the same path")
            path = mnt / "events.jsonl"
            log = EventLog(path)
            written = [i for i in range(400) if log.write(_window(i))]
            assert log.error is not None and "No space left on device" in log.error
            assert 0 < len(written) < 400
            assert log.write(_window(999)) is False  # after the failure: not written, counted
            assert log.lines_lost == 400 - len(written) + 1
            log.close({"windows": len(written)})  # never raises, even with the disk full
            _check_cut_log(path, written, log.lines)
            assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    else:
        path = tmp_path / "events.jsonl"
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], cwd=REPO, capture_output=True, text=True,
                             timeout=120, preexec_fn=limit_file_size(8192))  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["error"] and "File too large" in res["error"] and "free disk space" in res["error"]
        assert res["extra"] is False and res["lost"] >= 2 and 0 < res["lines"] < 400
        assert "the monitor goes on without the log" in out.stderr  # logged once, clearly
        _check_cut_log(path, res["written"], res["lines"])
        assert path.stat().st_size <= 8192


@pytest.mark.slow
def test_monitor_goes_on_when_its_log_disk_fills_up(shared_data: Path, tmp_path: Path) -> None:
    """`mmcl monitor` replaying jfk.flac with its log on a 16 KiB disk (or a 16 KiB file-size limit):
    exit 0, the replay finishes, a clear warning, and every complete event readable."""
    ckpt = make_checkpoint(tmp_path / "ck.pt")
    exe = str(MMCL) if MMCL.exists() else "mmcl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    with tiny_tmpfs(16) as mnt:
        log_path = (mnt or tmp_path) / "events.jsonl"
        cmd = [exe, "monitor", "--camera", "none", "--mic", str(shared_data / "media" / "jfk.flac"),
               "--replay", "clock-stopped", "--backend", "eager", "--checkpoint", str(ckpt), "--headless",
               "--log", str(log_path), "monitor.headless_interval_s=0.2"]  # fmt: skip
        out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400,
                             preexec_fn=None if mnt else limit_file_size(16384))  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        err = " ".join(out.stderr.split())
        reason = "No space left on device" if mnt else "File too large"
        assert f"warning: writing the event log {log_path} failed after" in err and reason in err, err[-2000:]
        assert "event(s) after that were not recorded" in err
        assert "EVENT LOG STOPPED" in out.stdout  # the live status line said so while running
        assert "mmcl monitor: latency summary (ms)" in out.stdout  # and it went on to a normal end
        events = read_events(log_path)
        windows = [e for e in events if e["type"] == "window"]
        assert events[0]["type"] == "session" and len(windows) >= 3
        assert [w["window"] for w in windows] == list(range(len(windows)))  # none lost in the middle
        assert log_path.read_bytes().endswith(b"\n")
        n_written = int(err.split("failed after ")[1].split(" events")[0])
        assert n_written == len(events)
