"""Privacy: nothing leaves the machine, the event log is private (0600) and `--no-transcript-log` keeps what
was said out of it.

The network guard replaces the lowest layer of every Python network call — ``socket.socket.connect`` /
``connect_ex`` / ``sendto`` and ``socket.getaddrinfo`` — with versions that record and refuse anything
not on the loopback interface or a unix socket, while `mmcl monitor` loads every model from scratch
(MediaPipe, faster-whisper, MiniLM, the checkpoint) and replays a real clip with the event log on.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
from pathlib import Path

import pytest
from helpers_monitor import make_checkpoint, pipeline_threads
from typer.testing import CliRunner

from mmcl.cli import app
from realtime.pipeline.eventlog import read_events


def _is_local(host: object) -> bool:
    if host is None:
        return True
    h = host.decode() if isinstance(host, bytes) else str(host)
    if h in ("localhost", "", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(h.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def network_guard(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuse (and record) every connection, datagram or name lookup that is not local."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_sendto, real_getaddrinfo = socket.socket.sendto, socket.getaddrinfo

    def allowed(address: object) -> bool:
        if isinstance(address, (str, bytes)):  # AF_UNIX path (PulseAudio, …)
            return True
        return isinstance(address, tuple) and _is_local(address[0])

    def connect(self: socket.socket, address: object) -> None:
        if not allowed(address):
            attempts.append(f"connect {address!r}")
            raise OSError(101, "network access is forbidden in this test")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        if not allowed(address):
            attempts.append(f"connect_ex {address!r}")
            return 101
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: bytes, *args: object) -> int:
        address = args[-1]
        if not allowed(address):
            attempts.append(f"sendto {address!r}")
            raise OSError(101, "network access is forbidden in this test")
        return real_sendto(self, data, *args)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
        if not _is_local(host):
            attempts.append(f"getaddrinfo {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, "name lookups are forbidden in this test")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    # the guard itself works: a lookup and a connection to the outside are refused and recorded
    with socket.socket() as s, pytest.raises(OSError):
        s.connect(("203.0.113.7", 443))
    with pytest.raises(OSError):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    assert attempts == ["connect ('203.0.113.7', 443)", "getaddrinfo 'huggingface.co'"]
    attempts.clear()
    return attempts


@pytest.mark.slow
def test_monitor_sends_nothing_and_keeps_the_transcript_out_of_the_log(
    network_guard: list[str], shared_data: Path, tmp_path: Path
) -> None:
    clip = shared_data / "media" / "crema_d" / "1001_DFA_HAP_XX.flv"  # a face saying "Don't forget a jacket"
    ckpt = make_checkpoint(tmp_path / "ck.pt")
    log_path = tmp_path / "private" / "events.jsonl"
    res = CliRunner().invoke(app, [
        "monitor", "--camera", str(clip), "--mic", str(clip), "--replay", "clock-stopped", "--backend", "eager",
        "--checkpoint", str(ckpt), "--headless", "--log", str(log_path), "--no-transcript-log",
        "monitor.headless_interval_s=0.2",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert network_guard == [], f"the monitor tried to reach the network: {network_guard}"
    assert pipeline_threads() == []

    assert stat.S_IMODE(os.stat(log_path).st_mode) == 0o600
    events = read_events(log_path)
    windows = [e for e in events if e["type"] == "window"]
    assert windows and events[-1]["type"] == "summary"
    assert events[-1]["words"] >= 2, "the ASR must have heard words, or this test proves nothing"
    assert all("words" not in w for w in windows)
    raw = log_path.read_text(encoding="utf-8").lower()
    for word in ("forget", "jacket"):
        assert word not in raw, f"'{word}' was written to the log despite --no-transcript-log"
    assert "forget" in res.stdout.lower()  # shown live on the screen, just not stored
