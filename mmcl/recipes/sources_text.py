"""Text source: human-rated sentences spoken by eSpeak NG and transcribed by the real faster-whisper ASR.

* Sentences: ``text/hutto_sentences.tsv`` (mean rating of ≥ 20 people, −4..+4). Label = rating × 0.75
  (``text.rating_scale``), a linear map onto −3..+3 that keeps the sign and zero.
* Cleaning before speech: HTML entities decoded, the ``@anonymous`` and ``http://url_removed`` placeholders
  of the tweets dropped (nobody says them aloud); sentences with ``min_words..max_words`` words remain.
* Selection: the same number from each of the 4 sources × 2 rating signs (seeded), so tweets, movie
  snippets, product reviews and editorials are all present and the labels are balanced in sign.
* Splits by **document** (amazon/nyt ids are ``<document>_<sentence>``; a tweet or movie snippet is its own
  document), so no sentence and no sentence of the same review/editorial is in two splits.
* Speech: ``espeak-ng`` with a seeded voice/rate/pitch per sentence, 22 050 Hz → 16 kHz (polyphase);
  features through the live extractors: voice features of the synthetic speech, words from faster-whisper
  (greedy, as the live ASR) with the MiniLM phrase embeddings of ``WordTextTrack``.
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
from mmcl.recipes.items import Item, ItemCache, Progress, empty_features, limit_per_split
from model.errors import DataFormatError, ModelAssetError
from realtime.features.config import AUDIO_SAMPLE_RATE, FeatureConfig
from realtime.features.dataset import assign_splits
from realtime.features.extract import OfflineExtractor
from realtime.features.transcribe import load_whisper, transcribe_samples

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
    """Equal numbers per (source, rating sign), seeded; filled from the other buckets if one runs short."""
    ok = [s for s in sentences if cfg.min_words <= len(s.text.split()) <= cfg.max_words and s.rating != 0]
    buckets: dict[tuple[str, bool], list[Sentence]] = {}
    for s in ok:
        buckets.setdefault((s.source, s.rating > 0), []).append(s)
    rng = np.random.default_rng(seed)
    keys = sorted(buckets)
    for k in keys:
        order = rng.permutation(len(buckets[k]))
        buckets[k] = [buckets[k][i] for i in order]
    chosen: list[Sentence] = []
    per = cfg.n_sentences // max(len(keys), 1)
    for k in keys:
        chosen.extend(buckets[k][:per])
    rest = [s for k in keys for s in buckets[k][per:]]
    extra = cfg.n_sentences - len(chosen)
    if extra > 0 and rest:
        chosen.extend(rest[i] for i in rng.permutation(len(rest))[:extra])
    return sorted(chosen, key=lambda s: s.key)


def speak(text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    """eSpeak NG speech of ``text`` as 16 kHz mono float32 in [-1, 1]."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ModelAssetError(
            "espeak-ng is not installed: `apt-get install espeak-ng` (scripts/setup.sh does)"
        )
    proc = subprocess.run(
        [exe, "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", text],
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
    ff = empty_features(name, len(samples) / AUDIO_SAMPLE_RATE)
    ff.has_audio = True
    ff.audio_t, ff.audio_x, ff.audio_valid = ex.audio_samples(samples)
    if transcribe:
        fcfg = FeatureConfig(whisper_beam_size=beam_size, whisper_cpu_threads=ex.config.whisper_cpu_threads)
        ff.words = transcribe_samples(samples, load_whisper(fcfg.whisper_cpu_threads), config=fcfg)
        ff.text_start, ff.text_end, ff.text_x = ex.text_samples(ff.words)
    return ff


def plan_sentences(
    data_root: Path, cfg: TextSourceConfig, seed: int, limit: int = 0
) -> list[tuple[Sentence, str]]:
    """The selected sentences with their split (by document), in a fixed order."""
    sentences = select_sentences(read_sentences(data_root), cfg, seed)
    split_of = assign_splits(sorted({s.document for s in sentences}), cfg.valid_frac, cfg.test_frac, seed)
    sentences = limit_per_split(sentences, lambda s: split_of[s.document], limit)
    return [(s, split_of[s.document]) for s in sentences]


def text_items(
    data_root: Path, cfg: TextSourceConfig, seed: int, cache: ItemCache, ex: OfflineExtractor,
    limit: int = 0, progress: Progress | None = None,
) -> list[Item]:  # fmt: skip
    planned = plan_sentences(data_root, cfg, seed, limit)
    items = []
    for i, (s, split) in enumerate(planned):
        voice, rate, pitch = tts_settings(s, cfg, seed)
        key = cache.key("text", s.text, voice, rate, pitch, cfg.asr_beam_size)

        def make(s=s, voice=voice, rate=rate, pitch=pitch):
            return speech_features(ex, speak(s.text, voice, rate, pitch), s.key, cfg.asr_beam_size)

        ff = cache.get_or_make("text", key, make)
        items.append(Item(
            id=f"text/{s.key}", source="text", split=split,
            label=float(np.clip(s.rating * cfg.rating_scale, -3.0, 3.0)), group=s.document, ff=ff,
            meta={"rating": s.rating, "text": s.text, "transcript": " ".join(w.text for w in ff.words),
                  "voice": voice, "rate": rate, "pitch": pitch, "corpus": s.source},
        ))  # fmt: skip
        if progress:
            progress("sentences (TTS + ASR)", i + 1, len(planned))
    return items
