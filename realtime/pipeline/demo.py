"""The demo session: generated from assets on this machine, played through the real file sources.

``ensure_demo(dir)`` writes (once; reused while the recipe is unchanged):

* ``demo.wav`` — 16 kHz mono speech synthesised by eSpeak NG (apt ``espeak-ng``; it writes 22050 Hz,
  resampled here with a polyphase filter) speaking :data:`SENTENCES` — positive, negative and neutral
  statements, with pauses between them; positive lines a little higher and faster, negative ones lower
  and slower (eSpeak has no emotional voices: the sentiment is mostly in the words).
* ``demo.mp4`` — ``mp4v`` video of the same length at ``fps``: the portrait ``grace_hopper.jpg`` that
  ships inside matplotlib (``matplotlib.cbook.get_sample_data``; MediaPipe finds the face), animated
  modestly — slow head sway (±3° roll), a little drift and a breathing scale (±2 %).
* ``demo.json`` — the recipe, each sentence's start/end time and intended sentiment.

Nothing is downloaded. ``mmcl monitor --demo`` plays the mp4 as the camera and the wav as the microphone
(``realtime`` replay, looping) — the same camera/audio-file sources, workers and threads as real devices.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.errors import ModelAssetError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
ESPEAK_RATE = 22050
RECIPE_VERSION = 1

# (text, sentiment): sentiment is the intended polarity, −1 / 0 / +1
SENTENCES: tuple[tuple[str, int], ...] = (
    ("Hello, and welcome to the live sentiment monitor demonstration.", 0),
    ("I am really happy with how well this project turned out.", 1),
    ("Honestly, the results are wonderful and I love them.", 1),
    ("But yesterday was a terrible day, and everything went wrong.", -1),
    ("I feel sad and disappointed about the broken build.", -1),
    ("The meeting is scheduled for three o'clock on Tuesday.", 0),
    ("The report has twelve pages and two tables.", 0),
    ("What a fantastic surprise, thank you so much!", 1),
    ("This is awful, I hate waiting in the rain.", -1),
    ("Anyway, things are getting better, and I am grateful.", 1),
)
LEAD_IN_S = 0.8
PAUSE_S = 1.4
TAIL_S = 1.2


@dataclass(frozen=True)
class DemoSession:
    directory: Path
    video: Path
    audio: Path
    manifest: Path
    duration_s: float
    sentences: list[dict]


def default_demo_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmcl-live" / "demo"


def face_image_path() -> Path:
    """The portrait shipped inside matplotlib (``mpl-data/sample_data/grace_hopper.jpg``)."""
    try:
        from matplotlib import cbook

        path = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    except (ImportError, OSError, ValueError) as exc:
        raise ModelAssetError(
            f"the demo face image is missing ({exc}); reinstall matplotlib (it ships grace_hopper.jpg)"
        ) from None
    if not path.is_file():
        raise ModelAssetError(f"{path} is missing; reinstall matplotlib (it ships grace_hopper.jpg)")
    return path


def _recipe(fps: float) -> dict:
    return {
        "version": RECIPE_VERSION, "sentences": [list(s) for s in SENTENCES], "lead_in": LEAD_IN_S,
        "pause": PAUSE_S, "tail": TAIL_S, "fps": fps, "image": "matplotlib:grace_hopper.jpg",
    }  # fmt: skip


def _digest(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def synthesize(text: str, sentiment: int = 0, voice: str = "en-us") -> np.ndarray:
    """eSpeak NG speech of ``text`` as 16 kHz mono float32."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ModelAssetError("espeak-ng is not installed; install it (apt-get install espeak-ng) for --demo")
    pitch, speed = {1: (62, 165), -1: (38, 138)}.get(sentiment, (50, 155))
    with tempfile.TemporaryDirectory(prefix="mmcl-tts-") as tmp:
        wav = Path(tmp) / "s.wav"
        proc = subprocess.run(
            [exe, "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(wav), text],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if proc.returncode != 0 or not wav.is_file():
            raise ModelAssetError(f"espeak-ng failed ({proc.stderr.strip()[:200]}); check the installation")
        import soundfile as sf

        x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    return resample(x, sr, SAMPLE_RATE)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    from scipy.signal import resample_poly

    if sr_in == sr_out:
        return x.astype(np.float32)
    g = math.gcd(sr_in, sr_out)
    return resample_poly(x.astype(np.float64), sr_out // g, sr_in // g).astype(np.float32)


def build_audio() -> tuple[np.ndarray, list[dict]]:
    parts = [np.zeros(round(LEAD_IN_S * SAMPLE_RATE), np.float32)]
    t = LEAD_IN_S
    timing = []
    for text, sentiment in SENTENCES:
        x = synthesize(text, sentiment)
        peak = float(np.abs(x).max()) or 1.0
        x = 0.7 * x / peak
        timing.append({"text": text, "sentiment": sentiment, "start": round(t, 3),
                       "end": round(t + len(x) / SAMPLE_RATE, 3)})  # fmt: skip
        parts += [x, np.zeros(round(PAUSE_S * SAMPLE_RATE), np.float32)]
        t += len(x) / SAMPLE_RATE + PAUSE_S
    parts.append(np.zeros(round(TAIL_S * SAMPLE_RATE), np.float32))
    return np.concatenate(parts), timing


def write_video(path: Path, duration_s: float, fps: float, size: tuple[int, int] = (480, 360)) -> int:
    """The animated portrait, ``duration_s`` long; returns the number of frames."""
    import cv2

    img = cv2.imread(str(face_image_path()))
    if img is None:
        raise ModelAssetError("OpenCV cannot read the demo face image; reinstall matplotlib / opencv")
    w, h = size
    # fit the portrait (512×600) into the frame with a margin, on a soft grey background
    scale = 0.9 * min(w / img.shape[1], h / img.shape[0])
    face = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    base = np.full((h, w, 3), 96, np.uint8)
    y0, x0 = (h - face.shape[0]) // 2, (w - face.shape[1]) // 2
    base[y0 : y0 + face.shape[0], x0 : x0 + face.shape[1]] = face
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise ModelAssetError(f"OpenCV cannot write {path} with the mp4v codec")
    n = round(duration_s * fps)
    try:
        for k in range(n):
            t = k / fps
            angle = 3.0 * math.sin(2 * math.pi * t / 5.0)
            zoom = 1.0 + 0.02 * math.sin(2 * math.pi * t / 3.7)
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
            m[0, 2] += 6.0 * math.sin(2 * math.pi * t / 6.3)
            m[1, 2] += 3.0 * math.sin(2 * math.pi * t / 4.1)
            frame = cv2.warpAffine(base, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
            writer.write(frame)
    finally:
        writer.release()
    return n


def ensure_demo(directory: str | os.PathLike[str] | None = None, fps: float = 15.0) -> DemoSession:
    """Create the demo files in ``directory`` unless an identical recipe is already there."""
    d = Path(directory) if directory else default_demo_dir()
    recipe = _recipe(fps)
    digest = _digest(recipe)
    video, audio, manifest = d / "demo.mp4", d / "demo.wav", d / "demo.json"
    if manifest.is_file() and video.is_file() and audio.is_file():
        try:
            meta = json.loads(manifest.read_text())
            if meta.get("digest") == digest:
                return DemoSession(d, video, audio, manifest, float(meta["duration_s"]), meta["sentences"])
        except (ValueError, KeyError):
            pass
    d.mkdir(parents=True, exist_ok=True)
    log.info("generating the demo session in %s (eSpeak NG speech + animated portrait)", d)
    samples, timing = build_audio()
    duration = len(samples) / SAMPLE_RATE
    import soundfile as sf

    tmp_audio = d / "demo.tmp.wav"
    sf.write(str(tmp_audio), samples, SAMPLE_RATE, subtype="PCM_16")
    tmp_video = d / "demo.tmp.mp4"
    write_video(tmp_video, duration, fps)
    tmp_audio.replace(audio)
    tmp_video.replace(video)
    meta = {"digest": digest, "duration_s": duration, "recipe": recipe, "sentences": timing}
    manifest.write_text(json.dumps(meta, indent=2))
    return DemoSession(d, video, audio, manifest, duration, timing)
