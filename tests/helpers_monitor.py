"""Shared pieces of the monitor tests: a small real checkpoint, models loaded once, a file pipeline, an
MJPEG camera server, and helpers to look for leftover threads."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

PIPELINE_THREAD_PREFIXES = ("camera:", "audio", "face:", "voice:", "asr:", "text:", "windows")


def pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(PIPELINE_THREAD_PREFIXES)]


def make_checkpoint(path: Path, task: str = "regression", seed: int = 0, version: str | None = None) -> Path:
    """A small real MMCL checkpoint on a live feature set (default: the default one; random weights)."""
    import torch

    from model.checkpoint import save_checkpoint
    from model.config import ModelConfig
    from model.evaluate import TaskInfo
    from model.featureset import LIVE_FEATURE_SET, live_feature_set
    from model.mmcl import MMCL

    fs = live_feature_set(version) if version else LIVE_FEATURE_SET
    dims = {"dim_vision": fs.dims["vision"], "dim_audio": fs.dims["audio"], "dim_text": fs.dims["text"]}
    torch.manual_seed(seed)
    if task == "regression":
        cfg = ModelConfig(**dims, d_model=32, n_heads=4, head_hidden=32)
        info = TaskInfo(task="regression", label_kind="msa")
    else:
        cfg = ModelConfig(**dims, d_model=32, n_heads=4, head_hidden=32, task="classification", num_classes=3)
        info = TaskInfo(task="classification", label_kind="msa", num_classes=3)
    save_checkpoint(path, MMCL(cfg).eval(), task=info, feature_set=fs)
    return path


def ffmpeg(*args: str) -> None:
    exe = shutil.which("ffmpeg")
    assert exe is not None, "ffmpeg is required"
    subprocess.run([exe, "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120)


def crema_concat(crema_dir: Path, out: Path, size: str, faststart: bool = False) -> Path:
    """Three CREMA-D clips of actor 1001 ("Don't forget a jacket": happy, sad, neutral) back to back as one
    6 s mp4 with a face and speech (mpeg4 + aac, 30 fps, ``size`` e.g. "320:240", 16 kHz audio)."""
    names = ["1001_DFA_HAP_XX.flv", "1001_DFA_SAD_XX.flv", "1001_DFA_NEU_XX.flv"]
    args: list[str] = []
    for n in names:
        args += ["-i", str(crema_dir / n)]
    chains = "".join(
        f"[{i}:v]fps=30,scale={size},setsar=1[v{i}];[{i}:a]aresample=16000[a{i}];" for i in range(3)
    )
    chains += "".join(f"[v{i}][a{i}]" for i in range(3)) + "concat=n=3:v=1:a=1[v][a]"
    extra = ["-movflags", "+faststart"] if faststart else []
    ffmpeg(*args, "-filter_complex", chains, "-map", "[v]", "-map", "[a]", "-c:v", "mpeg4", "-q:v", "4",
           "-c:a", "aac", *extra, str(out))  # fmt: skip
    return out


def wait_for(pred, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


class MjpegServer:
    """multipart/x-mixed-replace JPEG stream on 127.0.0.1 (a network camera); ``close()`` makes it vanish.

    ``part(k)`` gives the bytes of the k-th part (default: a flat gray JPEG of ``size``); tests pass their
    own to vary brightness or to send garbage."""

    def __init__(
        self,
        port: int = 0,
        fps: float = 15.0,
        size: tuple[int, int] = (160, 120),
        part: Callable[[int], bytes] | None = None,
    ) -> None:
        import cv2

        def gray(k: int) -> bytes:
            img = np.full((size[1], size[0], 3), 70 + (k % 20), dtype=np.uint8)
            return cv2.imencode(".jpg", img)[1].tobytes()

        server = self
        self.part = part or gray
        self.stopping = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                k = 0
                try:
                    while not server.stopping.is_set():
                        data = server.part(k)
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        k += 1
                        time.sleep(1.0 / fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="mjpeg-server")
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5.0)


_MODELS: dict[str, object] = {}


def shared_text_embedder(version: str | None = None):
    """One phrase embedder per feature set and test process (loading one costs seconds)."""
    from model.featureset import LIVE_FEATURE_SET

    version = version or LIVE_FEATURE_SET.version
    if f"text/{version}" not in _MODELS:
        from realtime.features.text import text_embedder_for

        _MODELS[f"text/{version}"] = text_embedder_for(version)
    return _MODELS[f"text/{version}"]


def shared_recognizer():
    """One faster-whisper recogniser per test process (used by one pipeline at a time)."""
    if "asr" not in _MODELS:
        from realtime.asr import AsrConfig, FasterWhisperRecognizer

        _MODELS["asr"] = FasterWhisperRecognizer(AsrConfig())
    return _MODELS["asr"]


def file_pipeline(
    checkpoint: Path,
    camera: str | None,
    audio: str | None,
    *,
    mode: str = "clock-stopped",
    log: Path | None = None,
    overrides: list[str] | None = None,
):
    """A real Pipeline replaying files (shared text/ASR models; everything else real and fresh)."""
    from mmcl.app_config import load_app_config
    from realtime.pipeline.session import build_pipeline

    ov = [f"sources.replay.mode={mode}"]
    if camera:
        ov.append(f"sources.camera.source={camera}")
    if audio:
        ov.append(f"sources.microphone.device={audio}")
    if log:
        ov.append(f"monitor.log={log}")
    app = load_app_config(overrides=[*ov, *(overrides or [])])
    return build_pipeline(
        app, mode="replay", checkpoint=checkpoint, camera=camera is not None, audio=audio is not None,
        # read when the text worker starts: build_pipeline has set the checkpoint's feature set by then
        embedder_factory=lambda: shared_text_embedder(app.features.feature_set),
        recognizer=shared_recognizer() if audio else None,
    )  # fmt: skip
