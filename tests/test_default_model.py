"""The shipped default checkpoint (model/pretrained/mmcl_live_default.pt).

It loads for the live feature set live-v3 and nothing else, and on real held-out inputs from ../shared/data,
extracted now through the live extractors (eSpeak NG → faster-whisper → e5 + sentiment head; RAVDESS voice
in a speaker session; MediaPipe + expression model on the London portraits), it separates clearly positive
from clearly negative (or neutral) inputs. The held-out items are those of the recipe's final-test groups,
read from the config stored in the checkpoint (never trained on, never used to choose).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from model.errors import CheckpointError
from model.featureset import LIVE_FEATURE_SET
from model.mmcl import count_parameters
from model.pretrained import default_checkpoint_path


@pytest.fixture(scope="module")
def shipped():
    return load_checkpoint(default_checkpoint_path(), expected_features=LIVE_FEATURE_SET)


@pytest.fixture(scope="module")
def recipe(shipped, shared_data):
    from mmcl.recipes.config import RecipeConfig
    from model.configlib import from_dict

    stored = dict(shipped.config["recipe"])
    stored.update(data_root=str(shared_data), limit=0)
    return from_dict(RecipeConfig, stored, "stored recipe")


@pytest.fixture(scope="module")
def extractor():
    from realtime.features.config import FeatureConfig
    from realtime.features.extract import OfflineExtractor

    ex = OfflineExtractor(FeatureConfig(whisper_beam_size=1), voice_prior=np.zeros(LIVE_FEATURE_SET.dims["audio"]))
    yield ex  # raw voice steps kept; the recipe's speaker session normalises them (compose.normalise_voice)
    ex.close()


def predict_samples(model, items, recipe, kind: str) -> tuple[np.ndarray, list]:
    """Compose the items as the recipe evaluates them, predict the windows of ``kind``."""
    from mmcl.recipes.compose import Composer, to_split
    from model.evaluate import predict
    from realtime.features.speaker import load_prior

    samples = [s for s in Composer(recipe.compose, load_prior(), 0, train=False).compose(items) if s.kind == kind]
    return predict(model, to_split(samples))[:, 0], samples  # output 0: valence


def test_shipped_checkpoint_loads_for_the_live_feature_set(shipped):
    assert shipped.feature_set.ident == LIVE_FEATURE_SET.ident == "mmcl-live@live-v3"
    assert shipped.model_cfg.input_dims == LIVE_FEATURE_SET.dims
    assert shipped.model_cfg.csd in ("paper", "reference", "step") or shipped.model_cfg.ablation == "no_csd"
    assert shipped.task.task == "regression"
    assert count_parameters(shipped.model) == shipped.metrics["parameters"]
    assert shipped.config["recipe"]["compose"]["window_s"] == 5.0
    assert {"linear probe", "late fusion"} <= set(shipped.metrics["cv"])  # the CV table travels with it
    x = [torch.zeros(2, 50, d) for d in (63, 418, 387)]
    masks = [torch.zeros(2, 50, dtype=torch.bool) for _ in range(3)]
    masks[2][:, 10:30] = True
    out = shipped.model(*x, *masks)
    assert out.shape == (2, shipped.model_cfg.out_dim) and torch.isfinite(out).all()  # valence (+ arousal)


def test_shipped_file_is_small_with_fp16_weights():
    path = default_checkpoint_path()
    assert path.stat().st_size < 20e6
    state = read_checkpoint(path)["state_dict"]
    floats = [v for v in state.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)


def test_checkpoint_of_another_feature_set_version_is_refused(shipped, tmp_path):
    from model.evaluate import TaskInfo

    other = dataclasses.replace(LIVE_FEATURE_SET, version="live-v0")
    path = save_checkpoint(tmp_path / "old.pt", shipped.model, task=TaskInfo(**shipped.task.to_dict()),
                           feature_set=other, half=True)  # fmt: skip
    with pytest.raises(CheckpointError, match=r"mmcl-live@live-v0.*mmcl-live@live-v3"):
        load_checkpoint(path, expected_features=LIVE_FEATURE_SET)
    renamed = dataclasses.replace(LIVE_FEATURE_SET, audio=("loudness", *LIVE_FEATURE_SET.audio[1:]))
    path = save_checkpoint(tmp_path / "cols.pt", shipped.model, task=TaskInfo(**shipped.task.to_dict()),
                           feature_set=renamed, half=True)  # fmt: skip
    with pytest.raises(CheckpointError, match="different column names"):
        load_checkpoint(path, expected_features=LIVE_FEATURE_SET)
    assert load_checkpoint(path).feature_set.audio[0] == "loudness"  # without an expectation it loads


@pytest.mark.slow
def test_strongest_held_out_sentences_get_opposite_signs(shipped, recipe, extractor):
    """The 4 most positive and 4 most negative sentences of held-out documents, spoken and transcribed now."""
    from mmcl.recipes.items import Item
    from mmcl.recipes.sources_text import read_sentences, speak, speech_features, text_groups, tts_settings

    sentences = read_sentences(recipe.data_path)
    side = text_groups(sentences, recipe.text, recipe.seed)
    ok = [s for s in sentences if side[s.document] == "test" and 4 <= len(s.text.split()) <= 16]
    ok.sort(key=lambda s: s.rating)
    chosen = ok[:4] + ok[-4:]
    assert chosen[3].rating < -2 and chosen[4].rating > 2
    items = []
    for s in chosen:
        voice, rate, pitch = tts_settings(s, recipe.text, recipe.seed)
        ff = speech_features(extractor, speak(s.text, voice, rate, pitch), s.key, 1)
        items.append(Item(s.key, "text", "test", s.rating, s.document, ff, {"speaker": voice, "rating": s.rating}))
    pred, samples = predict_samples(shipped.model, items, recipe, "T")
    by_id = {s.id.split("|")[1].split("#")[0]: p for s, p in zip(samples, pred, strict=True)}
    pred = np.array([by_id[it.id] for it in items])
    neg, pos = pred[:4], pred[4:]
    assert neg.mean() < 0 < pos.mean(), (neg, pos)
    assert (neg < 0).sum() >= 3 and (pos > 0).sum() >= 3, (neg, pos)


@pytest.mark.slow
def test_held_out_happy_voices_above_angry_and_sad_ones(shipped, recipe, extractor):
    """Strong happy vs angry/sad clips of the held-out RAVDESS actors, the voice alone (words masked), each
    actor's clips one speaker session: on average happy above angry and above sad, and above 0."""
    from mmcl.recipes.items import Item
    from mmcl.recipes.sources_text import speech_features
    from mmcl.recipes.sources_voice import RAVDESS, actor_gains, read_clip, read_ravdess

    index = read_ravdess(recipe.data_path)
    actors = set(recipe.voice.test_actors)
    rows = [r for r in index if int(r["actor"]) in actors and r["intensity"] == "2" and r["repetition"] == "1"
            and r["emotion_name"] in ("happy", "angry", "sad", "calm")]  # fmt: skip
    gains = actor_gains(recipe.data_path, index, actors)
    items = []
    for r in rows:
        x = np.clip(
            read_clip(recipe.data_path / RAVDESS / r["path"]) * 10 ** (gains[int(r["actor"])] / 20), -1, 1
        )
        ff = speech_features(extractor, x.astype(np.float32), r["path"], 1, False)
        items.append(Item(r["path"], "voice", "test", recipe.voice.valence[r["emotion_name"]], f"actor{r['actor']}",
                          ff, {"emotion": r["emotion_name"], "speaker": f"actor{r['actor']}"}))  # fmt: skip
    pred, samples = predict_samples(shipped.model, items, recipe, "Va")
    emo = np.array([s.meta["emotion"] for s in samples])
    assert len(pred) == 32
    by_emotion = {e: pred[emo == e].round(2).tolist() for e in set(emo)}
    happy = pred[emo == "happy"].mean()
    assert happy > pred[emo == "angry"].mean() and happy > pred[emo == "sad"].mean(), by_emotion
    assert happy > 0, by_emotion


@pytest.mark.slow
def test_held_out_smiles_score_above_neutral_faces(shipped, recipe, extractor):
    """The first 8 held-out London subjects, smiling and neutral, through MediaPipe now."""
    from mmcl.recipes.items import Item
    from mmcl.recipes.sources_face import LONDON, face_window_features, read_london, subject_splits

    rows = read_london(recipe.data_path)
    split_of = subject_splits(rows, recipe.face, recipe.seed)
    subjects = sorted(s for s, sp in split_of.items() if sp == "test")[:8]
    items = []
    for r in rows:
        if r["subject_id"] in subjects:
            smile = r["label"] == "smiling"
            ff = face_window_features(extractor, recipe.data_path / LONDON / r["path"], recipe.face, 5.0,
                                      [recipe.seed, int(r["subject_id"]), 0, int(smile)])  # fmt: skip
            items.append(Item(r["path"], "face", "test", 1.5 * smile, r["subject_id"], ff,
                              {"expression": r["label"]}))  # fmt: skip
    pred, samples = predict_samples(shipped.model, items, recipe, "F")
    smile = np.array([s.meta["expression"] == "smiling" for s in samples])
    assert smile.sum() == 8 and (~smile).sum() == 8
    assert pred[smile].mean() > pred[~smile].mean() + 0.5, (pred[smile], pred[~smile])
    auc = (pred[smile][:, None] > pred[~smile][None, :]).mean()
    assert auc >= 0.9, (pred[smile], pred[~smile])
