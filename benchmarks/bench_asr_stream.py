"""Streaming ASR benchmark: commit latency, WER and real-time behaviour of the ASR worker on one thread.

Signal: ../shared/data/media/jfk.flac (11 s, resampled to 16 kHz mono) repeated ``--repeats`` times with
``--gap`` seconds of silence after each copy (default 5 × (11 + 1.5) = 62.5 s), written to a temporary
WAV and replayed through the real path: AudioFileSource (ffmpeg) → AudioRing → AsrWorker (Silero VAD +
faster-whisper tiny.en int8, ``cpu_threads`` 1).

* ``--mode realtime``: wall-clock pace; latency includes compute time; reports whether the worker kept
  up (no audio dropped, compute fraction < 1, lag at the end).
* ``--mode clock-stopped``: the clock waits for the worker; latency is the policy's algorithmic latency.

Commit latency = committed_at − end of the word in a reference timing (faster-whisper full-window
offline transcription of jfk.flac, shifted to each copy), over committed words matched to the reference
by alignment. The words' own streaming end times give a second figure ("self-timed"). CPU: the
recogniser's wall time per audio second (``compute_fraction``, inflated when the machine is busy) and
the whole process's CPU seconds per audio second (``process_cpu_per_audio_s``: VAD, ASR, replay thread).

    .venv/bin/python benchmarks/bench_asr_stream.py --mode realtime
    .venv/bin/python benchmarks/bench_asr_stream.py --mode clock-stopped asr.interval_s=0.3
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.configlib import apply_overrides, from_dict  # noqa: E402
from realtime.asr import AsrConfig, AsrWorker, FasterWhisperRecognizer  # noqa: E402
from realtime.features.transcribe import normalize_words, word_error_rate  # noqa: E402
from realtime.sources import AudioFileSource, ReplayConfig, ReplayTimeline, decode_audio  # noqa: E402
from realtime.types import Word  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "media"


def align(ref: list[str], hyp: list[str]) -> list[tuple[int, int]]:
    """Index pairs (i, j) with ref[i] == hyp[j] on a minimum-edit-distance (monotonic) alignment."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int32)
    d[:, 0] = np.arange(n + 1)
    d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        if d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            if ref[i - 1] == hyp[j - 1]:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def reference_timing(audio: np.ndarray, recognizer: FasterWhisperRecognizer) -> list[tuple[str, float]]:
    """(normalized word, end s) of jfk from an offline full 30 s-window transcription."""
    segments, _ = recognizer.model.transcribe(
        audio,
        language="en",
        beam_size=5,
        word_timestamps=True,
        condition_on_previous_text=False,
        vad_filter=False,
    )
    out = []
    for seg in segments:
        for w in seg.words or []:
            for k in normalize_words(w.word):
                out.append((k, float(w.end)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["realtime", "clock-stopped"], default="realtime")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--gap", type=float, default=1.5)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    ap.add_argument("overrides", nargs="*", help="AsrConfig overrides such as asr.interval_s=0.3")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    flac = DATA / "jfk.flac"
    if not flac.is_file():
        print(f"missing {flac}; the benchmark needs ../shared/data", file=sys.stderr)
        return 2
    data = apply_overrides({"asr": {}}, args.overrides)["asr"]
    config = from_dict(AsrConfig, data, "asr")
    jfk = decode_audio(flac)
    ref_text = (DATA / "jfk.txt").read_text().strip()
    gap = np.zeros(round(args.gap * 16000), dtype=np.float32)
    signal = np.concatenate([np.concatenate([jfk, gap]) for _ in range(args.repeats)])
    period = (len(jfk) + len(gap)) / 16000

    import soundfile as sf

    recognizer = FasterWhisperRecognizer(config)
    ref_words = reference_timing(jfk, recognizer)
    ref_seq = [(k, e + i * period) for i in range(args.repeats) for k, e in ref_words]

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "jfk_x.wav"
        sf.write(wav, signal, 16000, subtype="FLOAT")
        timeline = ReplayTimeline(args.mode, stall_timeout_s=60.0)
        source = AudioFileSource(wav, timeline, ReplayConfig(mode=args.mode, audio_block_s=0.05))
        worker = AsrWorker(
            config,
            timeline.clock,
            reader=source.open_reader("asr"),
            recognizer=recognizer,
            timeline=timeline if args.mode == "clock-stopped" else None,
        )
        worker.start()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        source.start()
        source.wait_ended(timeout=len(signal) / 16000 * 3 + 60)
        audio_end = timeline.to_clock(len(signal) / 16000)
        worker.wait_idle(30.0)
        before_finish = worker.words_since(0)[1]
        worker.stop()
        source.stop()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    words: list[Word] = worker.transcript()
    stats = worker.stats()

    hyp_keys: list[tuple[str, Word]] = [(k, w) for w in words for k in normalize_words(w.text)]
    ref_keys = [k for k, _ in ref_seq]
    t0 = timeline.t0 or 0.0
    lat_ref = []
    slow = []
    for i, j in align(ref_keys, [k for k, _ in hyp_keys]):
        w = hyp_keys[j][1]
        if w.committed_at is not None:
            lat_ref.append(w.committed_at - (t0 + ref_seq[i][1]))
            if lat_ref[-1] > 1.0:
                slow.append(f"{w.text}@{t0 + ref_seq[i][1] - t0:.2f}s:{lat_ref[-1]:.2f}")
    lat_self = [w.committed_at - w.end for w in words if w.committed_at is not None]
    hyp_text = " ".join(w.text for w in words)
    result = {
        "mode": args.mode,
        "signal_s": round(len(signal) / 16000, 2),
        "wall_s": round(wall, 2),
        "wer": round(word_error_rate(" ".join([ref_text] * args.repeats), hyp_text), 4),
        "words": len(words),
        "words_at_finish": len(words) - before_finish,
        "latency_ref_p50_s": round(float(np.percentile(lat_ref, 50)), 3) if lat_ref else None,
        "latency_ref_p95_s": round(float(np.percentile(lat_ref, 95)), 3) if lat_ref else None,
        "latency_ref_max_s": round(float(np.max(lat_ref)), 3) if lat_ref else None,
        "latency_self_p50_s": round(float(np.percentile(lat_self, 50)), 3) if lat_self else None,
        "latency_self_p95_s": round(float(np.percentile(lat_self, 95)), 3) if lat_self else None,
        "matched_words": len(lat_ref),
        "dropped_audio_s": round(stats.dropped_s, 3),
        "compute_fraction": round(stats.compute_fraction, 3),
        "process_cpu_per_audio_s": round(cpu / (len(signal) / 16000), 3),
        "recogniser_runs": stats.runs,
        "last_commit_after_audio_end_s": round(max(w.committed_at or 0 for w in words) - audio_end, 3)
        if words
        else None,
        "kept_up": stats.dropped_s == 0 and stats.compute_fraction < 1.0,
        "config": {k: v for k, v in data.items()},
        "slow_words": slow[:12] + ([f"... {len(slow) - 12} more"] if len(slow) > 12 else []),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:32s} {v}")
        print(f"{'transcript':32s} {hyp_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
