"""Audio from files and URLs: ffmpeg decodes to 16 kHz mono float32, delivered through a replay timeline.

:class:`AudioFileSource` is the file counterpart of the microphone (same :class:`AudioSource` readers);
it paces by the shared :class:`~realtime.sources.replay.ReplayTimeline` so that a video's audio and frames
stay in step in every replay mode.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import IO

import numpy as np

from model.errors import DeviceError
from realtime.sources.audio_source import SAMPLE_RATE, AudioSource
from realtime.sources.replay import ReplayConfig, ReplayMode, ReplayTimeline, is_url


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise DeviceError("ffmpeg is not installed; install it (apt-get install ffmpeg) to read audio files")
    return exe


def decode_audio(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode any file ffmpeg reads into mono float32 at ``sample_rate`` (whole file, in memory)."""
    src = str(path)
    if not is_url(src) and not Path(src).is_file():
        raise DeviceError(f"audio file {src} does not exist")
    proc = subprocess.run(
        [
            _ffmpeg(),
            "-nostdin",
            "-v",
            "error",
            "-i",
            src,
            "-vn",
            "-f",
            "f32le",
            "-ac",
            "1",
            "-ar",
            str(sample_rate),
            "-",
        ],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise DeviceError(
            f"ffmpeg cannot decode {src}: {proc.stderr.decode(errors='replace').strip()[-300:]}"
        )
    return np.frombuffer(proc.stdout, dtype=np.float32).copy()


def _drain(pipe: IO[bytes] | None, tail: collections.deque[bytes]) -> None:
    """Read ``pipe`` to its end, keeping its last lines in ``tail``."""
    if pipe is None:
        return
    with contextlib.suppress(OSError, ValueError):  # the pipe was closed under us: nothing left to read
        for line in iter(pipe.readline, b""):
            tail.append(line)


class AudioFileSource(AudioSource):
    """Audio from a file or URL (anything ffmpeg reads) decoded to 16 kHz mono float32 by an ffmpeg
    subprocess owned by the source thread, delivered in ``audio_block_s`` blocks paced by the timeline.
    Each block is delivered when its *last* sample is due (as a microphone would), stamped with the
    clock time of its first sample."""

    kind = "audio-file"

    def __init__(
        self,
        path: str | os.PathLike[str],
        timeline: ReplayTimeline,
        config: ReplayConfig | None = None,
        name: str = "audio-file",
        buffer_s: float = 30.0,
    ) -> None:
        super().__init__(name, timeline.clock, buffer_s=buffer_s)
        self.path = str(path)
        self.timeline = timeline
        self.config = config or ReplayConfig(mode=timeline.mode.value)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_thread: threading.Thread | None = None
        self._stderr_tail: collections.deque[bytes] = collections.deque(maxlen=20)
        self.media_t = 0.0
        # registered now, so a clock-stopped replay does not move before this source runs
        self._participant = timeline.participant(name)

    def start(self) -> None:
        if self._participant.finished:
            self._participant = self.timeline.participant(self.name)
        super().start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                _ffmpeg(),
                "-nostdin",
                "-v",
                "error",
                "-i",
                self.path,
                "-vn",
                "-f",
                "f32le",
                "-ac",
                "1",
                "-ar",
                str(SAMPLE_RATE),
                "-",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        # ffmpeg reports every damaged packet on stderr: drain it (keeping the last lines for messages), or a
        # corrupt file fills the pipe, blocks ffmpeg and freezes the replay
        self._stderr_tail = collections.deque(maxlen=20)
        self._stderr_thread = threading.Thread(
            target=_drain, args=(proc.stderr, self._stderr_tail), name=f"{self.name}:ffmpeg-stderr", daemon=True
        )
        self._stderr_thread.start()
        return proc

    def _reap(self, proc: subprocess.Popen[bytes]) -> str:
        """Stop ``proc`` (killed if still running), close its pipes; the tail of its stderr."""
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)
        if self._stderr_thread is not None:
            self._stderr_thread.join(5.0)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        return b"".join(self._stderr_tail).decode(errors="replace").strip()[-300:]

    def _read_block(self, proc: subprocess.Popen[bytes], nbytes: int) -> bytes:
        assert proc.stdout is not None
        parts: list[bytes] = []
        got = 0
        while got < nbytes:
            b = proc.stdout.read(nbytes - got)
            if not b:
                break
            parts.append(b)
            got += len(b)
        return b"".join(parts)

    def _on_stop_requested(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def _drained(self) -> bool:
        """clock-stopped: every reader took all audio; with no reader yet, wait for the first one (open
        readers, or call ``read()``, before ``start()`` when a replay must not wait)."""
        readers = self.ring.readers()
        return bool(readers) and all(r.available == 0 for r in readers)

    def _run(self) -> None:
        try:
            self._replay()
        finally:
            self._participant.finish()

    def _replay(self) -> None:
        if not is_url(self.path) and not Path(self.path).is_file():
            raise DeviceError(f"audio file {self.path} does not exist; pass an existing file or a URL")
        block = max(1, round(self.config.audio_block_s * SAMPLE_RATE))
        nbytes = block * 4
        proc = self._proc = self._spawn()
        first = self._read_block(proc, nbytes)
        if not first:
            err = self._reap(proc)
            raise DeviceError(f"ffmpeg found no audio in {self.path}: {err or 'empty stream'}")
        check_name = f"{self.name}:readers"
        if self.timeline.mode is ReplayMode.CLOCK_STOPPED and self.config.wait_for_readers:
            self.timeline.add_idle_check(check_name, self._drained)
        self._mark_ready()
        participant = self._participant
        media_t = 0.0
        data = first
        try:
            while not self._stop_event.is_set():
                if len(data) < 4:
                    proc.wait(timeout=5)
                    if self._stop_event.is_set():
                        break
                    if not self.config.loop:
                        self._mark_ended(f"end of {Path(self.path).name} at {media_t:.2f} s")
                        break
                    self._reap(proc)
                    proc = self._proc = self._spawn()
                    data = self._read_block(proc, nbytes)
                    if len(data) < 4:
                        raise DeviceError(f"{self.path} decoded to nothing on loop restart")
                    continue
                x = np.frombuffer(data[: len(data) // 4 * 4], dtype=np.float32)
                dur = len(x) / SAMPLE_RATE
                t_first = self.timeline.to_clock(media_t)
                if not participant.wait_until(t_first + dur, self._stop_event):
                    break
                self.ring.write(x, t_first)
                self._count_delivered(t_first)
                media_t += dur
                self.media_t = media_t
                data = self._read_block(proc, nbytes)
        finally:
            self.timeline.remove_idle_check(check_name)
            self._reap(proc)
            self.ring.close()
