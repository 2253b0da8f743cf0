"""Cut live-sized windows from the items and combine modalities into samples (the live feature set).

Windows (``compose.window_s`` = 5 s, L = 50 steps at 10 Hz, what the monitor feeds the model):

* speech (a spoken sentence, a RAVDESS or pyAudioAnalysis clip, ``d`` seconds): a clip longer than the
  window gives its last 5 s (the monitor at the end of the utterance); a shorter one ends
  ``U(0, max_tail_s)`` seconds before the window's end, so the steps around it hold no speech and are
  masked, as live;
* face: the 5 s of the moving still (every step has a face).

Sample kinds (the id starts with the kind):

=====  ===================================================================  ===========================
kind   modalities                                                           label
=====  ===================================================================  ===========================
T0     a rated sentence as clean text (words timed at reading pace)         the sentence's
T      the sentence spoken (eSpeak NG) + the live ASR's words               the sentence's
TF     T + a face whose expression agrees                                    the sentence's
V      a RAVDESS clip: voice + ASR words of its neutral statement           the clip's emotion valence
Va     V with the words masked (the voice alone)                            the clip's
VF     V + a face whose expression agrees                                    the clip's
P      a pyAudioAnalysis clip (voice + words)                               its rated valence
F      a face only (a silent person): audio and text masked                 smiling +1.5 / neutral 0
=====  ===================================================================  ===========================

* **Speaker sessions** (live-v2/v3 voice): the items keep the raw voice steps; each voice window is
  normalised by ``realtime.features.speaker.SpeakerNormalizer`` — the shipped prior, then 0 ..
  ``max_priming_clips`` other recordings of the same speaker (training: a random number; evaluation: all of
  them up to that number), then the clip itself causally. That is what the monitor does after the person
  has talked a while.
* **Talking faces**: with probability ``talking_prob`` a face window's mouth blendshapes get a speech-like
  movement (jaw opening at a syllable rate, lips following), its label unchanged, so mouth movement alone
  does not read as a smile.
* "Agrees": a smiling face only with speech labelled ≥ ``smile_min_label`` (then with probability
  ``smile_prob``), else a neutral face. Faces and speech come from the same item set (the same side of a
  CV fold), never across it. All randomness comes from one seeded generator.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmcl.recipes.config import ComposeConfig
from mmcl.recipes.items import Item
from model.data.types import Split
from model.featureset import LIVE_FEATURE_SET, MODALITIES
from realtime.features.extract import WindowArrays, window_of
from realtime.features.speaker import SpeakerNormalizer

log = logging.getLogger(__name__)

HZ = LIVE_FEATURE_SET.step_hz
KINDS = ("T0", "T", "TF", "V", "Va", "VF", "P", "F")
VOICE_SOURCES = ("text", "voice", "pyaa")
MOUTH = {  # blendshape → share of the jaw movement it follows (speech: the jaw leads, the lips follow)
    "bs_jawOpen": 1.0, "bs_mouthClose": -0.3, "bs_mouthFunnel": 0.25, "bs_mouthPucker": 0.2,
    "bs_mouthLowerDownLeft": 0.45, "bs_mouthLowerDownRight": 0.45, "bs_mouthUpperUpLeft": 0.25,
    "bs_mouthUpperUpRight": 0.25, "bs_mouthStretchLeft": 0.15, "bs_mouthStretchRight": 0.15,
}  # fmt: skip


@dataclass
class Sample:
    """One composed window with what the evaluation needs to know about it."""

    kind: str
    id: str
    win: WindowArrays
    label: float
    source: str
    group: str
    meta: dict


def speech_window(item: Item, window_s: float, tail_s: float = 0.0) -> WindowArrays:
    """The window holding ``item``'s speech, ending ``tail_s`` seconds after the speech ends."""
    n = round(window_s * HZ)
    d = item.ff.duration
    t_start = d - window_s if d >= window_s else d + min(tail_s, window_s - d) - window_s
    return window_of(item.ff, t_start, n, n, HZ)


def face_window(item: Item, window_s: float) -> WindowArrays:
    n = round(window_s * HZ)
    return window_of(item.ff, 0.0, n, n, HZ)


def with_vision(win: WindowArrays, face: WindowArrays) -> WindowArrays:
    return dataclasses.replace(win, vision=face.vision, vision_mask=face.vision_mask)


def drop(win: WindowArrays, modalities: Sequence[str]) -> WindowArrays:
    """A copy of ``win`` with ``modalities`` masked (features zeroed)."""
    parts = {}
    for m in modalities:
        parts[m] = np.zeros_like(getattr(win, m))
        parts[f"{m}_mask"] = np.zeros_like(getattr(win, f"{m}_mask"))
    if "text" in modalities:
        parts["raw_text"] = ""
    return dataclasses.replace(win, **parts)


def talking(win: WindowArrays, rng: np.random.Generator) -> WindowArrays:
    """``win`` with a speech-like mouth movement added to its face steps (syllables at 3–6 Hz)."""
    cols = {c: i for i, c in enumerate(LIVE_FEATURE_SET.vision)}
    t = np.arange(win.vision.shape[0]) / HZ
    rate, depth = rng.uniform(3.0, 6.0), rng.uniform(0.15, 0.55)
    jaw = depth * np.abs(np.sin(np.pi * rate * t + rng.uniform(0, np.pi))) * (rng.random(t.size) > 0.15)
    v = win.vision.copy()
    for name, share in MOUTH.items():
        j = cols[name]
        v[:, j] = np.clip(v[:, j] + share * jaw, 0.0, 1.0)
    v[~win.vision_mask] = 0.0
    return dataclasses.replace(win, vision=v.astype(np.float32))


def normalise_voice(item: Item, primers: Sequence[Item], prior: np.ndarray) -> Item:
    """``item`` with its voice steps normalised in a speaker session primed by ``primers`` (raw steps)."""
    ff = item.ff
    if ff.audio_raw is None or not len(ff.audio_raw):
        return item
    norm = SpeakerNormalizer(prior)
    for p in primers:
        if p.ff.audio_raw is not None and len(p.ff.audio_raw):
            norm.prime(p.ff.audio_raw[p.ff.audio_valid])
    x = np.stack([norm.apply(r, bool(ok)) for r, ok in zip(ff.audio_raw, ff.audio_valid, strict=True)])
    return dataclasses.replace(item, ff=dataclasses.replace(ff, audio_x=x))


def speaker_of(item: Item) -> str:
    return str(item.meta.get("speaker") or item.group)


class Composer:
    """Composes the samples of one item set (one side of a fold, or the final test) reproducibly."""

    def __init__(self, cfg: ComposeConfig, prior: np.ndarray, seed: int | Sequence[int], train: bool) -> None:
        self.cfg, self.prior, self.train = cfg, np.asarray(prior, np.float64), train
        self.rng = np.random.default_rng([*np.atleast_1d(seed).tolist(), int(train)])

    def _voices(self, items: list[Item]) -> dict[str, Item]:
        """Every voice item normalised in its speaker's session (id → item)."""
        by_speaker: dict[str, list[Item]] = {}
        for it in items:
            by_speaker.setdefault(speaker_of(it), []).append(it)
        out = {}
        for clips in by_speaker.values():
            for i, it in enumerate(clips):
                others = clips[:i] + clips[i + 1 :]
                k = min(len(others), self.cfg.max_priming_clips)
                if self.train:
                    k = int(self.rng.integers(0, k + 1))
                pick = self.rng.permutation(len(others))[:k] if self.train else np.arange(k)
                out[it.id] = normalise_voice(it, [others[j] for j in pick], self.prior)
        return out

    def _tail(self) -> float:
        return float(self.rng.uniform(0.0, self.cfg.max_tail_s)) if self.train else 0.5 * self.cfg.max_tail_s

    def _face(self, faces: list[Item], label: float) -> Item | None:
        smiling = [f for f in faces if f.meta["expression"] == "smiling"]
        neutral = [f for f in faces if f.meta["expression"] == "neutral"]
        smile = label >= self.cfg.smile_min_label and self.rng.random() < self.cfg.smile_prob
        pool = smiling if smile and smiling else neutral
        return pool[int(self.rng.integers(len(pool)))] if pool else None

    def _maybe_talking(self, win: WindowArrays) -> WindowArrays:
        return talking(win, self.rng) if self.rng.random() < self.cfg.talking_prob else win

    def compose(self, items: Sequence[Item]) -> list[Sample]:
        cfg, out = self.cfg, []
        voiced = self._voices([it for it in items if it.source in VOICE_SOURCES])
        faces = [it for it in items if it.source == "face"]
        face_win = {f.id: face_window(f, cfg.window_s) for f in faces}
        n_pos = sum(1 for it in voiced.values() if it.source == "voice" and it.label > 0)
        n_neg = sum(1 for it in voiced.values() if it.source == "voice" and it.label < 0)
        repeat = max(1, round(n_neg / n_pos)) if (self.train and cfg.balance_voice and n_pos) else 1

        def add(kind: str, it: Item, win: WindowArrays, suffix: str = "") -> None:
            out.append(Sample(kind, f"{kind}|{it.id}{suffix}", win, it.label, it.source, it.group,
                              {**it.meta, "arousal": it.arousal}))  # fmt: skip

        for it in items:
            if it.source == "clean_text":
                add("T0", it, speech_window(it, cfg.window_s, self._tail()))
            elif it.source == "face":
                for c in range(cfg.face_only_copies):
                    win = self._maybe_talking(face_win[it.id]) if self.train else face_win[it.id]
                    add("F", it, win, f"#{c}")
        for it in voiced.values():
            copies = {"voice": cfg.voice_copies * (repeat if it.label > 0 else 1), "text": cfg.tts_copies}.get(
                it.source, 1
            )
            if not self.train:
                copies = 1
            alone = {"text": "T", "voice": "V", "pyaa": "P"}[it.source]
            for c in range(copies):
                win = speech_window(it, cfg.window_s, self._tail())
                add(alone, it, win, f"#{c}")
                if it.source == "voice" and (not self.train or c % 2 == 1):
                    add("Va", it, drop(win, ["text"]), f"#{c}")
            n_face = {"text": cfg.text_face_copies, "voice": cfg.voice_face_copies}.get(it.source, 0)
            for c in range(n_face if self.train else 0):
                face = self._face(faces, it.label)
                if face is not None:
                    win = with_vision(speech_window(it, cfg.window_s, self._tail()), face_win[face.id])
                    add(alone + "F", it, self._maybe_talking(win), f"+{face.id}#{c}")
        return out


def arousal_of(samples: Sequence[Sample]) -> np.ndarray:
    """(N,) the samples' arousal ratings, NaN where the source has none."""
    return np.asarray([np.nan if s.meta.get("arousal") is None else float(s.meta["arousal"]) for s in samples])


def to_split(samples: Sequence[Sample]) -> Split:
    if not samples:
        raise ValueError("no sample to train or evaluate on; is the data root complete?")
    wins = [s.win for s in samples]

    def stack(m: str) -> np.ndarray:
        return np.stack([getattr(w, m) for w in wins]).astype(np.float32)

    def mask(m: str) -> np.ndarray:
        return np.stack([getattr(w, f"{m}_mask") for w in wins]).astype(bool)

    return Split(
        **{m: stack(m) for m in MODALITIES}, **{f"{m}_mask": mask(m) for m in MODALITIES},
        labels=np.asarray([s.label for s in samples], np.float32), ids=[s.id for s in samples],
        raw_text=[w.raw_text for w in wins],
        arousal=arousal_of(samples).astype(np.float32),
    )  # fmt: skip


def kind_of(sample_id: str) -> str:
    return sample_id.split("|", 1)[0]
