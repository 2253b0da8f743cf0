"""Speed of the live feature extractors on this CPU (a benchmark, not a test: it prints numbers).

    .venv/bin/python benchmarks/bench_features.py [--repeats 3] [--skip-asr]

* Face: per-frame time of the full ``FaceFeatureExtractor.process`` path (BGR → RGB, MediaPipe, 56 features)
  beside the raw MediaPipe FaceLandmarker (blendshapes + transformation matrix, RGB image prepared in
  advance) on the same 640×480 frames, pinned to one core, interleaved frame by frame; the ratio
  of throughputs is what the issue's target (≥ 85 %) refers to.
* Audio: per-step time of ``AudioFeatureExtractor`` fed in 1024-sample chunks, and its share of one core
  (one step is 100 ms of audio).
* ASR: real-time factor of offline transcription (tiny.en int8, 2 threads, word timestamps, VAD filter).
* Text: MiniLM phrase-embedding time per word (uncached).

Real media from ../shared/data/media; the script exits with a message when it is absent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MEDIA = ROOT.parent / "shared" / "data" / "media"


def _frames_640x480(path: Path, limit: int) -> list[np.ndarray]:
    import cv2

    from realtime.features.media import iter_frames

    frames = []
    for _t, frame in iter_frames(path):
        frames.append(cv2.resize(frame, (640, 480), interpolation=cv2.INTER_LINEAR))
        if len(frames) >= limit:
            break
    return frames


def bench_face(repeats: int, n_frames: int, video: str) -> dict[str, float]:
    import cv2
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    from realtime.assets import face_landmarker_path
    from realtime.features.config import FeatureConfig
    from realtime.features.vision import FaceFeatureExtractor

    frames = _frames_640x480(MEDIA / video, n_frames)
    rgb_images = [
        mp.Image(image_format=mp.ImageFormat.SRGB, data=cv2.cvtColor(f, cv2.COLOR_BGR2RGB)) for f in frames
    ]
    opts = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(face_landmarker_path())),
        running_mode=vision.RunningMode.VIDEO,
        num_faces=1,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )

    def interleaved_pass() -> tuple[list[float], list[float], int]:
        # Both run side by side, frame by frame (order alternating), so load from other processes hits
        # them alike; each keeps its own VIDEO-mode tracker and timestamps.
        raw_t, full_t = [], []
        landmarker = vision.FaceLandmarker.create_from_options(opts)
        with landmarker as lm, FaceFeatureExtractor(FeatureConfig()) as ex:
            for i, (img, frame) in enumerate(zip(rgb_images, frames, strict=True)):
                for which in (0, 1) if i % 2 else (1, 0):
                    t0 = time.perf_counter()
                    if which == 0:
                        lm.detect_for_video(img, i * 33)
                    else:
                        ex.process(frame, i / 30.0)
                    (raw_t if which == 0 else full_t).append(time.perf_counter() - t0)
            return raw_t, full_t, ex.faces

    interleaved_pass()  # warm-up (model load, XNNPACK init)
    raw, full = [], []
    faces = 0
    for _ in range(repeats):
        r, f, faces = interleaved_pass()
        raw += r
        full += f
    raw_ms = 1000 * statistics.mean(raw)
    full_ms = 1000 * statistics.mean(full)
    return {
        "frames": len(frames),
        "face_rate": faces / len(frames),
        "raw_ms": raw_ms,
        "raw_median_ms": 1000 * statistics.median(raw),
        "full_ms": full_ms,
        "full_median_ms": 1000 * statistics.median(full),
        "ratio": raw_ms / full_ms,
        "median_ratio": statistics.median(raw) / statistics.median(full),
    }


def bench_audio(repeats: int) -> dict[str, float]:
    from realtime.features.audio import AudioFeatureExtractor
    from realtime.features.media import read_audio
    from realtime.types import AudioChunk

    samples = np.concatenate([read_audio(MEDIA / "jfk.flac"), read_audio(MEDIA / "moud_101_movies.mp4")])
    best = np.inf
    steps = 0
    for _ in range(repeats):
        ex = AudioFeatureExtractor()
        t0 = time.perf_counter()
        n = 0
        for i in range(0, len(samples), 1024):
            n += len(ex.push(AudioChunk(samples[i : i + 1024], t=i / 16000)))
        n += len(ex.flush())
        best = min(best, time.perf_counter() - t0)
        steps = n
    per_step = best / steps
    return {"steps": steps, "per_step_ms": 1000 * per_step, "core_pct": 100 * per_step / 0.1}


def bench_asr(repeats: int) -> list[dict[str, float]]:
    from realtime.features.config import FeatureConfig
    from realtime.features.media import read_audio
    from realtime.features.transcribe import load_whisper, transcribe_samples

    model = load_whisper(cpu_threads=2)
    out = []
    for name in ("jfk.flac", "moud_101_movies.mp4"):  # English; Spanish (tiny.en falls back to sampling)
        audio = read_audio(MEDIA / name)
        for beam in (5, 1):
            cfg = FeatureConfig(whisper_beam_size=beam)
            transcribe_samples(audio[:16000], model, config=cfg)  # warm-up
            best = np.inf
            for _ in range(repeats):
                t0 = time.perf_counter()
                words = transcribe_samples(audio, model, config=cfg)
                best = min(best, time.perf_counter() - t0)
            dur = len(audio) / 16000
            out.append({"file": name, "beam": beam, "seconds": dur, "rtf": best / dur, "words": len(words)})
    return out


def bench_text() -> dict[str, float]:
    from realtime.features.text import TextEmbedder, WordTextTrack
    from realtime.features.transcribe import transcribe_file

    words = transcribe_file(MEDIA / "jfk.flac")
    emb = TextEmbedder(cache_size=0)
    WordTextTrack(emb).add(words[:3])  # warm-up
    t0 = time.perf_counter()
    for w in words:  # live: words arrive one by one
        WordTextTrack(emb).add([w])
    one_by_one = (time.perf_counter() - t0) / len(words)
    t0 = time.perf_counter()
    WordTextTrack(emb).add(words)
    batched = (time.perf_counter() - t0) / len(words)
    return {"words": len(words), "one_by_one_ms": 1000 * one_by_one, "batched_ms": 1000 * batched}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frames", type=int, default=200, help="640×480 frames per face pass")
    ap.add_argument("--video", default="moud_101_movies.mp4", help="file in the media folder (one face)")
    ap.add_argument("--skip-asr", action="store_true")
    args = ap.parse_args()
    if not MEDIA.is_dir():
        print(f"skipped: {MEDIA} is absent (the shared real-media folder is needed)")
        return
    print(f"CPU cores: {os.cpu_count()}; face benchmark pinned to core 0")
    try:
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(affinity)})
    except (AttributeError, OSError):
        affinity = None
        print("(could not pin to one core)")
    f = bench_face(args.repeats, args.frames, args.video)
    if affinity:
        os.sched_setaffinity(0, affinity)
    print(
        f"face  {args.video} resized to 640x480, {f['frames']} frames x {args.repeats}, "
        f"face found on {100 * f['face_rate']:.0f}%:\n"
        f"      raw FaceLandmarker   {f['raw_ms']:.2f} ms/frame (median {f['raw_median_ms']:.2f}) "
        f"= {1000 / f['raw_ms']:.1f} fps\n"
        f"      full VisionSample    {f['full_ms']:.2f} ms/frame (median {f['full_median_ms']:.2f}) "
        f"= {1000 / f['full_ms']:.1f} fps\n"
        f"      full / raw throughput {100 * f['ratio']:.1f}% of means, {100 * f['median_ratio']:.1f}% of "
        "medians  (target >= 85%)"
    )
    a = bench_audio(args.repeats)
    print(
        f"audio {a['steps']} steps of 100 ms in 1024-sample chunks: {a['per_step_ms']:.3f} ms/step "
        f"= {a['core_pct']:.2f}% of one core  (target < 5%)"
    )
    if not args.skip_asr:
        for r in bench_asr(max(1, args.repeats - 1)):
            print(
                f"asr   {r['file']} ({r['seconds']:.1f} s), tiny.en int8, 2 threads, beam {r['beam']}: "
                f"RTF {r['rtf']:.3f}, {r['words']} words  (target <= 0.15)"
            )
    t = bench_text()
    print(
        f"text  MiniLM phrase embedding: {t['one_by_one_ms']:.1f} ms/word one at a time, "
        f"{t['batched_ms']:.1f} ms/word batched ({t['words']} words)"
    )


if __name__ == "__main__":
    main()
