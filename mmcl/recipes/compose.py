"""Cut live-sized windows from the items and combine modalities into training samples.

Windows (``compose.window_s`` = 5 s, L = 50 steps at 10 Hz, what the monitor feeds the model):

* speech (a spoken sentence or a RAVDESS clip, ``d`` seconds): a clip longer than the window gives its last
  5 s (the monitor at the end of the utterance); a shorter one ends ``U(0, max_tail_s)`` seconds before the
  window's end, so the steps before it (and after it) hold no speech and are masked, as live;
* face: the 5 s of the moving still (every step has a face).

Sample kinds (the id starts with the kind):

=====  ============================================================  ==============================
kind   modalities                                                    label
=====  ============================================================  ==============================
T      spoken sentence: TTS voice + ASR words; vision masked          the sentence's
TF     T + a face of the same split whose expression agrees           the sentence's
V      RAVDESS clip: voice + ASR words (neutral text); vision masked  the clip's emotion valence
VF     V + a face of the same split whose expression agrees           the clip's
F      face only (a silent person): audio and text masked             smiling +1.5 / neutral 0
=====  ============================================================  ==============================

Training split only (``balance_voice``): the windows of positive RAVDESS clips (calm, happy) are repeated
(each copy with its own offset and face) so positive and negative clips weigh the same.

"Agrees": a smiling face only with speech labelled ≥ ``smile_min_label`` (then with probability
``smile_prob``), otherwise a neutral face; a neutral face never changes the label. The face and the speech
come from different people, always from the same split, so no person is in two splits. All randomness
comes from one seeded generator: the same config gives the same samples.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from mmcl.recipes.build import BuiltItems
from mmcl.recipes.config import ComposeConfig
from mmcl.recipes.items import Item
from model.data.types import MultimodalData, Split
from model.featureset import LIVE_FEATURE_SET, MODALITIES
from realtime.features.extract import WindowArrays, window_of

log = logging.getLogger(__name__)

HZ = LIVE_FEATURE_SET.step_hz
KINDS = ("T", "TF", "V", "VF", "F")


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
    return WindowArrays(win.t_start, face.vision, win.audio, win.text, face.vision_mask, win.audio_mask,
                        win.text_mask, win.n_real, win.raw_text)  # fmt: skip


def drop(win: WindowArrays, modalities: Sequence[str]) -> WindowArrays:
    """A copy of ``win`` with ``modalities`` masked (features zeroed)."""
    parts = {}
    for m in MODALITIES:
        x, mask = getattr(win, m), getattr(win, f"{m}_mask")
        parts[m] = (np.zeros_like(x), np.zeros_like(mask)) if m in modalities else (x, mask)
    return WindowArrays(win.t_start, parts["vision"][0], parts["audio"][0], parts["text"][0],
                        parts["vision"][1], parts["audio"][1], parts["text"][1], win.n_real,
                        "" if "text" in modalities else win.raw_text)  # fmt: skip


def windows_to_split(wins: Sequence[WindowArrays], labels: Sequence[float], ids: list[str]) -> Split:
    def stack(m: str) -> np.ndarray:
        return np.stack([getattr(w, m) for w in wins]).astype(np.float32)

    def mask(m: str) -> np.ndarray:
        return np.stack([getattr(w, f"{m}_mask") for w in wins]).astype(bool)

    return Split(
        vision=stack("vision"), audio=stack("audio"), text=stack("text"),
        vision_mask=mask("vision"), audio_mask=mask("audio"), text_mask=mask("text"),
        labels=np.asarray(labels, np.float32), ids=ids, raw_text=[w.raw_text for w in wins],
    )  # fmt: skip


def kind_of(sample_id: str) -> str:
    return sample_id.split("|", 1)[0]


class _FacePicker:
    def __init__(self, faces: list[Item], cfg: ComposeConfig, rng: np.random.Generator) -> None:
        self.smiling = [f for f in faces if f.meta["expression"] == "smiling"]
        self.neutral = [f for f in faces if f.meta["expression"] == "neutral"]
        self.cfg, self.rng = cfg, rng

    def pick(self, label: float) -> Item | None:
        smile = label >= self.cfg.smile_min_label and self.rng.random() < self.cfg.smile_prob
        pool = self.smiling if smile and self.smiling else self.neutral
        return pool[int(self.rng.integers(len(pool)))] if pool else None


def compose_split(built: BuiltItems, split: str, cfg: ComposeConfig, seed: int) -> Split:
    rng = np.random.default_rng([seed, ("train", "valid", "test").index(split)])
    faces = built.of("face", split)
    picker = _FacePicker(faces, cfg, rng)
    face_win = {f.id: face_window(f, cfg.window_s) for f in faces}
    wins: list[WindowArrays] = []
    labels: list[float] = []
    ids: list[str] = []

    def add(kind: str, sid: str, win: WindowArrays, label: float) -> None:
        wins.append(win)
        labels.append(label)
        ids.append(f"{kind}|{sid}")

    def tail() -> float:
        return float(rng.uniform(0.0, cfg.max_tail_s))

    repeat_positive = 1
    voices = built.of("voice", split)
    if cfg.balance_voice and split == "train":
        n_pos, n_neg = sum(it.label > 0 for it in voices), sum(it.label < 0 for it in voices)
        repeat_positive = max(1, round(n_neg / n_pos)) if n_pos else 1
    for source, alone, paired, n_alone, n_paired in (
        ("text", "T", "TF", cfg.text_copies, cfg.text_face_copies),
        ("voice", "V", "VF", cfg.voice_copies, cfg.voice_face_copies),
    ):
        for it in built.of(source, split):
            if source == "voice" and it.label > 0:
                n_alone, n_paired = cfg.voice_copies * repeat_positive, cfg.voice_face_copies * repeat_positive
            elif source == "voice":
                n_alone, n_paired = cfg.voice_copies, cfg.voice_face_copies
            for c in range(n_alone):
                add(alone, f"{it.id}#{c}", speech_window(it, cfg.window_s, tail()), it.label)
            for c in range(n_paired):
                face = picker.pick(it.label)
                if face is None:
                    continue
                win = with_vision(speech_window(it, cfg.window_s, tail()), face_win[face.id])
                add(paired, f"{it.id}+{face.id}#{c}", win, it.label)
    for f in faces:
        for c in range(cfg.face_only_copies):
            add("F", f"{f.id}#{c}", face_win[f.id], f.label)
    if not wins:
        raise ValueError(f"no sample in the {split} split; is the data root complete?")
    return windows_to_split(wins, labels, ids)


def compose_dataset(built: BuiltItems, cfg: ComposeConfig, seed: int) -> MultimodalData:
    splits = {s: compose_split(built, s, cfg, seed) for s in ("train", "valid", "test")}
    counts = {s: {k: sum(kind_of(i) == k for i in sp.ids) for k in KINDS} for s, sp in splits.items()}
    return MultimodalData(
        name="mmcl-live-default", format="recipe", splits=splits, task="regression", label_kind="msa",
        feature_set=LIVE_FEATURE_SET, meta={"kinds": counts},
    )  # fmt: skip
