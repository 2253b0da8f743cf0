"""Text sources: every human-rated sentence as clean text, and a subset spoken by eSpeak NG and transcribed.

* Sentences: ``text/hutto_sentences.tsv`` (mean rating of ≥ 20 people, −4..+4). Valence = rating × 0.75
  (``text.rating_scale``), a linear map onto −3..+3 that keeps the sign and zero. No arousal rating.
* Groups: **documents** (amazon/nyt ids are ``<document>_<sentence>``; a tweet or movie snippet is its own
  document); ``text.test_frac`` of them (seeded) are held out for the final test.
* **Clean text** (source ``clean_text``, all 23.7 k sentences): the words are timed at a natural reading
  pace (``synthetic_words``: duration grows with word length, pauses at punctuation, a seeded tempo per
  sentence) and embedded by the live ``WordTextTrack`` exactly as live words are (phrase ending at each
  word). Only the words that can fall in a window ending at the sentence's end (the last
  ``window_s + max_tail_s`` seconds) are embedded; the phrase of each still reaches back over the words
  before it, so the features equal the live ones for those windows. Audio and vision are absent.
* **Spoken** (source ``text``, ``text.n_tts`` sentences, stratified by corpus and sign): eSpeak NG with a
  seeded voice/rate/pitch per sentence, 22 050 Hz → 16 kHz (polyphase), then the live extractors: voice
  features of the synthetic speech, words from faster-whisper (greedy, as the live ASR) and their phrase
  features, so the model learns real transcripts (errors included), not only clean text.
* Cleaning before use: HTML entities decoded, the ``@anonymous`` and ``http://url_removed`` placeholders of
  the tweets dropped (nobody says them aloud).
"""

from __future__ import annotations

import csv
import html
import io
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmcl.recipes.config import TextSourceConfig
from mmcl.recipes.groups import held_out
from mmcl.recipes.items import Item, ItemCache, Progress, empty_features, limit_per_split
from model.errors import DataFormatError, ModelAssetError
from realtime.features.config import AUDIO_SAMPLE_RATE, FeatureConfig
from realtime.features.extract import OfflineExtractor
from realtime.features.text import text_arrays
from realtime.features.transcribe import load_whisper, transcribe_samples
from realtime.types import Word

log = logging.getLogger(__name__)

TSV = Path("text") / "hutto_sentences.tsv"
_PLACEHOLDERS = re.compile(r"(@anonymous|https?://url_removed)", re.IGNORECASE)


@dataclass(frozen=True)
class Sentence:
    source: str
    id: str
    rating: float
    text: str  # cleaned text that is spoken
    original: str

    @property
    def key(self) -> str:
        return f"{self.source}:{self.id}"

    @property
    def document(self) -> str:
        doc = self.id.split("_")[0] if self.source in ("amazon", "nyt") else self.id
        return f"{self.source}:{doc}"


def clean_text(text: str) -> str:
    text = _PLACEHOLDERS.sub(" ", html.unescape(text))
    return re.sub(r"\s+", " ", text).strip()


def read_sentences(data_root: Path) -> list[Sentence]:
    path = data_root / TSV
    if not path.is_file():
        raise DataFormatError(f"{path} is missing; --data-root must point at the shared data folder")
    out = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        if header[:4] != ["source", "id", "rating", "text"]:
            raise DataFormatError(f"{path}: unexpected header {header}; expected source, id, rating, text")
        for row in reader:
            out.append(Sentence(row[0], row[1], float(row[2]), clean_text(row[3]), row[3]))
    return out


def select_sentences(sentences: list[Sentence], cfg: TextSourceConfig, seed: int) -> list[Sentence]:
    """``n_tts`` sentences, equal numbers per (corpus, rating sign), seeded; filled from the others if short."""
    ok = [s for s in sentences if cfg.tts_min_words <= len(s.text.split()) <= cfg.tts_max_words and s.rating != 0]
    buckets: dict[tuple[str, bool], list[Sentence]] = {}
    for s in ok:
        buckets.setdefault((s.source, s.rating > 0), []).append(s)
    rng = np.random.default_rng(seed)
    keys = sorted(buckets)
    for k in keys:
        order = rng.permutation(len(buckets[k]))
        buckets[k] = [buckets[k][i] for i in order]
    chosen: list[Sentence] = []
    per = cfg.n_tts // max(len(keys), 1)
    for k in keys:
        chosen.extend(buckets[k][:per])
    rest = [s for k in keys for s in buckets[k][per:]]
    extra = cfg.n_tts - len(chosen)
    if extra > 0 and rest:
        chosen.extend(rest[i] for i in rng.permutation(len(rest))[:extra])
    return sorted(chosen, key=lambda s: s.key)


_PAUSE = {",": 0.18, ";": 0.25, ":": 0.25, ".": 0.35, "!": 0.35, "?": 0.35}


def synthetic_words(text: str, words_per_s: float, seed: list[int]) -> list[Word]:
    """Word timings of ``text`` read aloud at about ``words_per_s`` (tempo ±20% seeded per sentence): each
    word lasts 0.10 s + 0.05 s per letter (scaled), 40 ms apart, with pauses after punctuation."""
    rng = np.random.default_rng(seed)
    tempo = words_per_s / 2.6 * float(rng.uniform(0.8, 1.25))
    t = 0.0
    out = []
    for tok in text.split():
        letters = sum(ch.isalnum() for ch in tok)
        dur = (0.10 + 0.05 * max(letters, 1)) / tempo
        out.append(Word(text=tok, start=round(t, 4), end=round(t + dur, 4)))
        t += dur + 0.04 / tempo + _PAUSE.get(tok[-1], 0.0) / tempo
    return out


def text_groups(sentences: list[Sentence], cfg: TextSourceConfig, seed: int) -> dict[str, str]:
    """document → "test" (final test, ``test_frac`` of the documents, seeded) or "dev"."""
    return held_out(sorted({s.document for s in sentences}), cfg.test_frac, seed)


def clean_text_features(
    ex: OfflineExtractor, s: Sentence, cfg: TextSourceConfig, seed: int, horizon_s: float
):  # -> FileFeatures
    words = synthetic_words(s.text, cfg.words_per_s, [seed, int.from_bytes(s.key.encode()[-8:], "little")])
    duration = words[-1].end if words else 0.0
    track = ex.text_track()
    samples = []
    for w in words:  # in order, so every phrase sees the words before it; only late words are embedded
        if w.end > duration - horizon_s:
            samples.extend(track.add([w]))
        else:
            track.remember([w])
    ff = empty_features(s.key, duration, ex.dims)
    ff.words = words
    ff.text_start, ff.text_end, ff.text_x, _ = text_arrays(samples, ex.dims["text"])
    return ff


def clean_text_items(
    data_root: Path, cfg: TextSourceConfig, seed: int, horizon_s: float, cache: ItemCache,
    ex: OfflineExtractor, limit: int = 0, progress: Progress | None = None,
) -> list[Item]:  # fmt: skip
    everything = read_sentences(data_root)
    side = text_groups(everything, cfg, seed)  # over all documents: the same held-out set for every source
    sentences = [s for s in everything if len(s.text.split()) >= cfg.clean_min_words]
    strides = {"dev": cfg.clean_stride, "test": cfg.clean_stride_test or cfg.clean_stride}
    for split, most in (("dev", cfg.clean_max_dev), ("test", cfg.clean_max_test)):
        if most:
            part = [s for s in sentences if side[s.document] == split]
            picked = set(map(id, limit_per_split(part, lambda _, sp=split: sp, most)[:: strides[split]]))
            sentences = [s for s in sentences if side[s.document] != split or id(s) in picked]
    sentences = limit_per_split(sentences, lambda s: side[s.document], limit)
    items = []
    for i, s in enumerate(sentences):
        key = cache.key("clean_text", s.text, cfg.words_per_s, horizon_s, seed)
        ff = cache.get_or_make("clean_text", key, lambda s=s: clean_text_features(ex, s, cfg, seed, horizon_s))
        items.append(Item(
            id=f"clean_text/{s.key}", source="clean_text", split=side[s.document],
            label=float(np.clip(s.rating * cfg.rating_scale, -3.0, 3.0)), group=s.document, ff=ff,
            meta={"rating": s.rating, "text": s.text, "corpus": s.source},
        ))  # fmt: skip
        if progress:
            progress("rated sentences (clean text)", i + 1, len(sentences))
    return items


def speak(text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    """eSpeak NG speech of ``text`` as 16 kHz mono float32 in [-1, 1]."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ModelAssetError(
            "espeak-ng is not installed: `apt-get install espeak-ng` (scripts/setup.sh does)"
        )
    proc = subprocess.run(
        [exe, "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", "--", text],  # "--": text may start with "-"
        capture_output=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0 or len(proc.stdout) < 100:
        raise DataFormatError(
            f"espeak-ng failed for voice {voice!r}: {proc.stderr.decode(errors='replace')[:200]}"
        )
    import soundfile as sf
    from scipy.signal import resample_poly

    x, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    if x.ndim > 1:
        x = x.mean(axis=1)
    if sr != AUDIO_SAMPLE_RATE:
        g = np.gcd(int(sr), AUDIO_SAMPLE_RATE)
        x = resample_poly(x, AUDIO_SAMPLE_RATE // g, int(sr) // g).astype(np.float32)
    return np.clip(x, -1.0, 1.0)


def tts_settings(s: Sentence, cfg: TextSourceConfig, seed: int) -> tuple[str, int, int]:
    """The (voice, rate, pitch) of one sentence: a function of the seed and the sentence, nothing else."""
    h = int.from_bytes(s.key.encode(), "little") % (2**32)
    rng = np.random.default_rng([seed, h])
    voice = cfg.voices[int(rng.integers(len(cfg.voices)))]
    return (
        voice,
        int(rng.integers(cfg.rate_min, cfg.rate_max + 1)),
        int(rng.integers(cfg.pitch_min, cfg.pitch_max + 1)),
    )


def speech_features(
    ex: OfflineExtractor, samples: np.ndarray, name: str, beam_size: int, transcribe: bool = True
):  # -> FileFeatures
    """Voice + words + text features of 16 kHz mono speech, through the live extractors."""
    from realtime.features.extract import steps_arrays

    ff = empty_features(name, len(samples) / AUDIO_SAMPLE_RATE, ex.dims)
    ff.has_audio = True
    ff.audio_t, ff.audio_x, ff.audio_valid, ff.audio_raw = steps_arrays(ex.audio_steps(samples), ex.dims["audio"])
    if transcribe:
        fcfg = FeatureConfig(whisper_beam_size=beam_size, whisper_cpu_threads=ex.config.whisper_cpu_threads)
        ff.words = transcribe_samples(samples, load_whisper(fcfg.whisper_cpu_threads), config=fcfg)
        ff.text_start, ff.text_end, ff.text_x = ex.text_samples(ff.words)
    return ff


def text_items(
    data_root: Path, cfg: TextSourceConfig, seed: int, cache: ItemCache, ex: OfflineExtractor,
    limit: int = 0, progress: Progress | None = None,
) -> list[Item]:  # fmt: skip
    sentences = read_sentences(data_root)
    side = text_groups(sentences, cfg, seed)
    planned = limit_per_split(select_sentences(sentences, cfg, seed), lambda s: side[s.document], limit)
    items = []
    for i, s in enumerate(planned):
        voice, rate, pitch = tts_settings(s, cfg, seed)
        key = cache.key("text", s.text, voice, rate, pitch, cfg.asr_beam_size)

        def make(s=s, voice=voice, rate=rate, pitch=pitch):
            return speech_features(ex, speak(s.text, voice, rate, pitch), s.key, cfg.asr_beam_size)

        ff = cache.get_or_make("text", key, make)
        items.append(Item(
            id=f"text/{s.key}", source="text", split=side[s.document],
            label=float(np.clip(s.rating * cfg.rating_scale, -3.0, 3.0)), group=s.document, ff=ff,
            meta={"rating": s.rating, "text": s.text, "transcript": " ".join(w.text for w in ff.words),
                  "voice": voice, "rate": rate, "pitch": pitch, "corpus": s.source, "speaker": voice},
        ))  # fmt: skip
        if progress:
            progress("rated sentences (eSpeak + ASR)", i + 1, len(planned))
    return items
