"""Voice sources: RAVDESS acted emotional speech (grouped by actor) and the pyAudioAnalysis rated clips.

RAVDESS (``speech/ravdess16k``, 20 actors × 60 clips):

* Labels: the intended emotion mapped onto valence (``voice.valence``: neutral 0, calm +1, happy +2,
  surprised +1, sad −2, angry −2, fearful −1.5, disgust −2) and arousal (``voice.arousal``, positions on
  Russell's circumplex; "strong" intensity scales the arousal by ``strong_arousal_gain``).
* Text: every clip says one of two neutral sentences ("Kids/Dogs are … by the door"). Clips of
  ``voice.transcribe_repetitions`` (repetition 1) are transcribed by the same faster-whisper as live (the
  model must learn that neutral words plus an emotional voice mean the voice decides); the others have
  text masked (voice alone, as live before the ASR commits words).
* Level: one gain per **actor**, so that the actor's loudest clip peaks at −1 dBFS (per-speaker peak
  normalisation). The loudness differences between an actor's emotions are real and kept.
* Groups: actors; ``voice.test_actors`` (2 male, 2 female) are the final test.
* The voice features are stored **raw** (``FileFeatures.audio_raw``) too: the compose step re-applies the
  live speaker normaliser in simulated sessions of several clips of the same actor.

pyAudioAnalysis ``speechEmotion`` (``speech/pyaa_emotion``, 47 clips with valence and arousal ratings in
−1..+1; speakers undocumented, so each clip is its own group): valence × ``pyaa_valence_scale``, arousal as
rated; ``pyaa_test_clips`` clips (seeded) are held out. The text is transcribed (the clips' language is not
documented either; tiny.en's words are kept whatever they are).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from mmcl.recipes.config import VoiceSourceConfig
from mmcl.recipes.groups import held_out
from mmcl.recipes.items import Item, ItemCache, Progress, file_digest, limit_per_split
from mmcl.recipes.sources_text import speech_features
from model.errors import DataFormatError
from realtime.features.extract import OfflineExtractor
from realtime.features.media import read_audio

log = logging.getLogger(__name__)

RAVDESS = Path("speech") / "ravdess16k"
PYAA = Path("speech") / "pyaa_emotion"


def read_ravdess(data_root: Path) -> list[dict[str, str]]:
    index = data_root / RAVDESS / "index.csv"
    if not index.is_file():
        raise DataFormatError(f"{index} is missing; --data-root must point at the shared data folder")
    with index.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def actor_split(actor: int, cfg: VoiceSourceConfig) -> str:
    return "test" if actor in cfg.test_actors else "dev"


def clip_arousal(emotion: str, intensity: int, cfg: VoiceSourceConfig) -> float:
    gain = cfg.strong_arousal_gain if intensity == 2 else 1.0
    return float(np.clip(cfg.arousal[emotion] * gain, -1.0, 1.0))


def read_clip(path: Path) -> np.ndarray:
    """A RAVDESS clip as 16 kHz mono float32: read directly when it already is 16 kHz mono (bit-identical to
    ffmpeg's decoding, checked in the tests, and ~100× faster than a subprocess), else through ffmpeg."""
    import soundfile as sf

    info = sf.info(str(path))
    if info.samplerate == 16000 and info.channels == 1:
        x, _ = sf.read(str(path), dtype="float32")
        return x
    return read_audio(path)


def actor_gains(data_root: Path, rows: list[dict[str, str]], actors: set[int]) -> dict[int, float]:
    """Gain (dB) per actor that puts the actor's loudest clip (of all in the index) at −1 dBFS."""
    peaks: dict[int, float] = {}
    for r in rows:
        a = int(r["actor"])
        if a in actors:
            x = read_clip(data_root / RAVDESS / r["path"])
            peaks[a] = max(peaks.get(a, -120.0), 20.0 * float(np.log10(np.abs(x).max() + 1e-12)))
    return {a: round(-1.0 - p, 2) for a, p in peaks.items()}


def voice_items(
    data_root: Path, cfg: VoiceSourceConfig, cache: ItemCache, ex: OfflineExtractor,
    limit: int = 0, progress: Progress | None = None,
) -> list[Item]:  # fmt: skip
    index = read_ravdess(data_root)
    rows = [r for r in index if r["emotion_name"] in cfg.valence]
    rows = limit_per_split(rows, lambda r: actor_split(int(r["actor"]), cfg), limit)
    gains = actor_gains(data_root, index, {int(r["actor"]) for r in rows})
    items = []
    for i, r in enumerate(rows):
        path = data_root / RAVDESS / r["path"]
        gain = gains[int(r["actor"])]
        transcribe = int(r["repetition"]) in cfg.transcribe_repetitions
        key = cache.key("voice", file_digest(path), gain, transcribe, cfg.asr_beam_size)

        def make(path=path, gain=gain, transcribe=transcribe):
            x = np.clip(read_clip(path) * np.float32(10 ** (gain / 20)), -1.0, 1.0)
            return speech_features(ex, x, str(path), cfg.asr_beam_size, transcribe)

        ff = cache.get_or_make("voice", key, make)
        actor = int(r["actor"])
        items.append(Item(
            id=f"voice/{Path(r['path']).stem}", source="voice", split=actor_split(actor, cfg),
            label=float(cfg.valence[r["emotion_name"]]), group=f"actor{actor:02d}", ff=ff,
            arousal=clip_arousal(r["emotion_name"], int(r["intensity"]), cfg),
            meta={"emotion": r["emotion_name"], "intensity": int(r["intensity"]), "actor": actor,
                  "gain_db": gain, "transcribed": transcribe, "speaker": f"actor{actor:02d}",
                  "sex": "male" if actor % 2 else "female",
                  "transcript": " ".join(w.text for w in ff.words)},
        ))  # fmt: skip
        if progress:
            progress("RAVDESS clips (voice + ASR)", i + 1, len(rows))
    return items


def pyaa_items(
    data_root: Path, cfg: VoiceSourceConfig, seed: int, cache: ItemCache, ex: OfflineExtractor,
    limit: int = 0, progress: Progress | None = None,
) -> list[Item]:  # fmt: skip
    index = data_root / PYAA / "index.csv"
    if not index.is_file():
        raise DataFormatError(f"{index} is missing; --data-root must point at the shared data folder")
    with index.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    side = held_out([r["path"] for r in rows], cfg.pyaa_test_clips / max(len(rows), 1), seed)
    rows = limit_per_split(rows, lambda r: side[r["path"]], limit)
    items = []
    for i, r in enumerate(rows):
        path = data_root / PYAA / r["path"]
        key = cache.key("pyaa", file_digest(path), cfg.asr_beam_size)
        ff = cache.get_or_make(
            "pyaa", key, lambda path=path: speech_features(ex, np.clip(read_clip(path), -1, 1), str(path),
                                                           cfg.asr_beam_size, True),
        )  # fmt: skip
        items.append(Item(
            id=f"pyaa/{Path(r['path']).stem}", source="pyaa", split=side[r["path"]],
            label=float(np.clip(float(r["valence"]) * cfg.pyaa_valence_scale, -3, 3)),
            arousal=float(np.clip(float(r["arousal"]), -1, 1)), group=f"pyaa{Path(r['path']).stem}", ff=ff,
            meta={"speaker": f"pyaa{Path(r['path']).stem}", "transcript": " ".join(w.text for w in ff.words)},
        ))  # fmt: skip
        if progress:
            progress("pyAudioAnalysis clips (voice + ASR)", i + 1, len(rows))
    return items
