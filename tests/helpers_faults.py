"""Lowest-layer fault injectors shared by the fault tests: a tiny tmpfs (a disk that fills up), a file-size
limit for a child process, broken media files, an MJPEG server with garbage parts, a slow recogniser."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from helpers_monitor import MjpegServer


@contextlib.contextmanager
def tiny_tmpfs(size_kb: int) -> Iterator[Path | None]:
    """A tmpfs of ``size_kb`` KiB mounted on a fresh folder (root only); yields None where it cannot be
    mounted (not root, no mount permission in the container). Unmounted and removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="mmcl-fullfs-"))
    mounted = False
    try:
        if os.geteuid() == 0 and shutil.which("mount"):
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", str(d)],
                               capture_output=True, timeout=10)  # fmt: skip
            mounted = r.returncode == 0
        yield d if mounted else None
    finally:
        if mounted:
            for _ in range(20):
                if subprocess.run(["umount", str(d)], capture_output=True, timeout=10).returncode == 0:
                    break
                time.sleep(0.25)  # a child that wrote there may still be exiting
            else:
                subprocess.run(["umount", "-l", str(d)], capture_output=True, timeout=10)
        shutil.rmtree(d, ignore_errors=True)


def limit_file_size(max_bytes: int):  # -> preexec_fn for subprocess
    """A ``preexec_fn`` that caps every file the child writes at ``max_bytes`` (RLIMIT_FSIZE: writes past
    it fail with EFBIG; Python ignores SIGXFSZ). Works without root."""

    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


def write_float_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """32-bit float WAV: the only common format that can carry NaN/inf samples (a broken recorder)."""
    import soundfile as sf

    sf.write(str(path), np.asarray(samples, dtype=np.float32), rate, subtype="FLOAT")
    return path


def corrupt_bytes(src: Path, dst: Path, start_frac: float, n_spans: int, span: int, seed: int = 0) -> Path:
    """Copy ``src`` with ``n_spans`` spans of ``span`` random bytes overwritten after ``start_frac`` of it."""
    raw = bytearray(src.read_bytes())
    rng = np.random.default_rng(seed)
    lo = int(len(raw) * start_frac)
    for pos in rng.integers(lo, len(raw) - span, n_spans):
        raw[pos : pos + span] = rng.integers(0, 256, span, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(raw))
    return dst


class GarbageMjpegServer(MjpegServer):
    """MJPEG over HTTP on 127.0.0.1 where every ``bad_every``-th part is garbage: random bytes, or a JPEG
    cut to a third (alternating). Frame ``k`` is a flat gray of level ``(40 + 7k) % 200``."""

    def __init__(self, bad_every: int = 4, fps: float = 15.0) -> None:
        import cv2

        self.sent_good = 0
        self.sent_bad = 0
        rng = np.random.default_rng(0)

        def part(k: int) -> bytes:
            img = np.full((120, 160, 3), (40 + 7 * k) % 200, dtype=np.uint8)
            data = cv2.imencode(".jpg", img)[1].tobytes()
            if k % bad_every == bad_every - 1:
                bad = rng.integers(0, 256, len(data), dtype=np.uint8).tobytes()
                self.sent_bad += 1
                return bad if (k // bad_every) % 2 else data[: len(data) // 3]
            self.sent_good += 1
            return data

        super().__init__(fps=fps, part=part)


class SlowRecognizer:
    """The real faster-whisper recogniser with ``delay_s`` of extra compute per call (a machine too slow
    for real-time ASR): the lowest layer of the ASR made slower, everything above it real."""

    def __init__(self, inner: object, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.calls = 0

    def transcribe(self, audio: np.ndarray, prompt: str = "", prefix: str = "") -> list:
        self.calls += 1
        time.sleep(self.delay_s)
        return self.inner.transcribe(audio, prompt, prefix)  # type: ignore[attr-defined]
