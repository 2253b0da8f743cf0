"""Evaluation-only real clips with face, voice and words of one person in step (never trained on).

* ``media/crema_d/``: actor 1001 says "Don't forget a jacket" in 6 emotions. Label: the **intended**
  emotion through the RAVDESS mapping (anger/disgust/fear/sad → angry/disgust/fearful/sad, happy, neutral).
  The crowd votes disagree for some clips (SAD was seen as neutral in every presentation), so the table
  also lists ``av_vote``.
* ``media/moud_101_movies.mp4``: one Spanish speaker praising a film, 5 utterances labelled positive.
  tiny.en is English-only, so its "transcript" of Spanish is noise: this checks face + voice, not words.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from mmcl.recipes.items import Item, ItemCache, Progress, file_digest
from model.errors import DataFormatError
from realtime.features.extract import OfflineExtractor

log = logging.getLogger(__name__)

CREMA = Path("media") / "crema_d"
MOUD = Path("media") / "moud_101_movies.mp4"
MOUD_LABELS = Path("media") / "moud_101_movies_labels.csv"
CREMA_EMOTION = {"anger": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy",
                 "neutral": "neutral", "sad": "sad"}  # fmt: skip


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataFormatError(f"{path} is missing; --data-root must point at the shared data folder")
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def crema_items(
    data_root: Path, valence: dict[str, float], cache: ItemCache, ex: OfflineExtractor,
    progress: Progress | None = None,
) -> list[Item]:  # fmt: skip
    rows = _rows(data_root / CREMA / "labels.csv")
    items = []
    for i, r in enumerate(rows):
        path = data_root / CREMA / r["path"]
        key = cache.key("crema_d", file_digest(path), ex.config.whisper_beam_size)
        ff = cache.get_or_make("crema_d", key, lambda path=path: ex.file_features(path))
        emotion = CREMA_EMOTION[r["intended_emotion"]]
        items.append(Item(
            id=f"crema_d/{Path(r['path']).stem}", source="crema_d", split="eval",
            label=float(valence.get(emotion, 0.0)), group=f"actor{r['actor']}", ff=ff,
            meta={"emotion": r["intended_emotion"], "av_vote": r["av_vote"], "voice_vote": r["voice_vote"],
                  "face_vote": r["face_vote"], "transcript": " ".join(w.text for w in ff.words),
                  "face_rate": ff.face_rate},
        ))  # fmt: skip
        if progress:
            progress("CREMA-D clips", i + 1, len(rows))
    return items


def moud_items(
    data_root: Path, cache: ItemCache, ex: OfflineExtractor, progress: Progress | None = None
) -> list[Item]:
    path = data_root / MOUD
    rows = _rows(data_root / MOUD_LABELS)
    until = max(float(r["end_s"]) for r in rows)
    key = cache.key("moud", file_digest(path), until, ex.config.whisper_beam_size)
    ff = cache.get_or_make("moud", key, lambda: ex.file_features(path, until=until))
    items = []
    for r in rows:
        label = {"positive": 1.0, "negative": -1.0}.get(r["sentiment_label"], 0.0)
        items.append(Item(
            id=f"moud/{r['utterance_id']}", source="moud", split="eval", label=label, group="moud101", ff=ff,
            meta={"start": float(r["start_s"]), "end": float(r["end_s"]), "face_rate": ff.face_rate},
        ))  # fmt: skip
    if progress:
        progress("MOUD video", 1, 1)
    return items
