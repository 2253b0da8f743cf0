"""A private PulseAudio daemon with a null sink, for microphone tests without a microphone.

The daemon runs in the foreground as a child of the test process (stopped by its PID), with its own
runtime dir and an anonymous-auth unix socket; ``PULSE_SERVER`` points every client (pactl, paplay, and
PyAudio's ALSA→pulse plugin in this process) at it. The null sink ``S`` (16 kHz mono) is the default
sink, its monitor ``S.monitor`` the default source: what ``play()`` sends to S is what PyAudio records.

Works as root (the CI containers) and as a normal user. ``pulse_available()`` says why it cannot run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TOOLS = ("pulseaudio", "pactl", "paplay")


def pulse_available() -> str | None:
    """None if a private PulseAudio can be started here, else the reason (for pytest.skip)."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install pulseaudio pulseaudio-utils)"
    try:
        import pyaudio  # noqa: F401
    except ImportError:
        return "PyAudio is not installed"
    return None


@dataclass
class PulseServer:
    server: str  # value for PULSE_SERVER
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    tmp: Path

    def pactl(self, *args: str) -> str:
        out = subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def play(self, wav: str | Path, sink: str = "S") -> subprocess.Popen[bytes]:
        """Start playing ``wav`` into ``sink``; returns the paplay process (wait() on it)."""
        return subprocess.Popen(
            ["paplay", "-d", sink, str(wav)], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )


@contextlib.contextmanager
def pulse_null_sink(rate: int = 16000) -> Iterator[PulseServer]:
    """Start a private PulseAudio with null sink S; set PULSE_SERVER in os.environ while it runs."""
    tmp = Path(tempfile.mkdtemp(prefix="mmcl-pulse-"))
    runtime = tmp / "runtime"
    runtime.mkdir()
    socket = tmp / "native"
    env = dict(os.environ)
    env.update(
        HOME=str(tmp),
        XDG_RUNTIME_DIR=str(tmp),
        PULSE_RUNTIME_PATH=str(runtime),
        PULSE_STATE_PATH=str(tmp / "state"),
        PULSE_SERVER=f"unix:{socket}",
    )
    env.pop("DISPLAY", None)
    cmd = [
        "pulseaudio",
        "--daemonize=no",
        "--exit-idle-time=-1",
        "--system=false",
        "-n",
        "--disallow-exit",
        "--use-pid-file=false",
        "--log-target=stderr",
        "--log-level=error",
        f"--load=module-native-protocol-unix auth-anonymous=1 socket={socket}",
        f"--load=module-null-sink sink_name=S rate={rate} channels=1",
        "--load=module-always-sink",
    ]
    log_path = tmp / "pulseaudio.log"
    log_file = open(log_path, "wb")  # closed in finally
    proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    saved = {k: os.environ.get(k) for k in ("PULSE_SERVER", "PULSE_RUNTIME_PATH")}
    try:
        server = PulseServer(server=env["PULSE_SERVER"], env=env, proc=proc, tmp=tmp)
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"pulseaudio exited with {proc.returncode}: {log_path.read_text()[-500:]}")
            ok = subprocess.run(["pactl", "info"], env=env, capture_output=True, timeout=5).returncode == 0
            if ok:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"pulseaudio did not answer within 10 s: {log_path.read_text()[-500:]}")
            time.sleep(0.1)
        server.pactl("set-default-sink", "S")
        server.pactl("set-default-source", "S.monitor")
        os.environ["PULSE_SERVER"] = env["PULSE_SERVER"]
        os.environ["PULSE_RUNTIME_PATH"] = str(runtime)
        yield server
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        log_file.close()
        shutil.rmtree(tmp, ignore_errors=True)


def write_wav(path: str | Path, samples, rate: int = 16000) -> Path:
    """Write mono float samples in [-1, 1] as 16-bit PCM WAV (paplay reads it)."""
    import numpy as np
    import soundfile as sf

    sf.write(str(path), np.asarray(samples, dtype=np.float32), rate, subtype="PCM_16")
    return Path(path)


def start_on_pulse(pipeline, attempts: int = 3, pause_s: float = 1.0) -> None:
    """Start a pipeline whose microphone is the PulseAudio null sink; a freshly started PulseAudio may not
    list its source yet under load, so a DeviceError is retried ``attempts`` times in all."""
    from model.errors import DeviceError

    for attempt in range(attempts):
        try:
            pipeline.start()
            return
        except DeviceError:
            if attempt == attempts - 1:
                raise
            time.sleep(pause_s)
