"""The default-model recipe (mmcl/recipes/): config, label mappings, splits, TTS, window composition, and
`mmcl train-default` end to end on a tiny subset of the real data (twice, to check it is deterministic)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from mmcl.cli import main
from mmcl.recipes.build import BuiltItems
from mmcl.recipes.compose import compose_dataset, face_window, kind_of, speech_window
from mmcl.recipes.config import ComposeConfig, RecipeConfig, load_recipe_config
from mmcl.recipes.items import Item, empty_features, limit_per_split
from mmcl.recipes.sources_text import clean_text, plan_sentences, speak
from model.errors import ConfigError
from model.featureset import LIVE_FEATURE_SET


def test_recipe_yaml_is_strict_and_complete():
    cfg = load_recipe_config()
    assert cfg.text.rating_scale == 0.75 and cfg.compose.window_s == 5.0
    assert cfg.voice.valence["happy"] > 0 > cfg.voice.valence["sad"] and "surprised" not in cfg.voice.valence
    assert set(cfg.voice.valid_actors).isdisjoint(cfg.voice.test_actors)
    with pytest.raises(ConfigError, match=r"unknown config key 'recipe\.text\.n_sentense'"):
        load_recipe_config(overrides={"text": {"n_sentense": 10}})
    with pytest.raises(ConfigError, match="disjoint"):
        load_recipe_config(overrides={"voice": {"valid_actors": [1], "test_actors": [1]}})


def test_clean_text_drops_tweet_placeholders_and_entities():
    assert clean_text("@anonymous I love it &amp; more http://url_removed !") == "I love it & more !"


def test_limit_per_split_spreads_over_each_split():
    items = [("a", i) for i in range(10)] + [("b", i) for i in range(3)]
    got = limit_per_split(items, lambda it: it[0], 3)
    assert got == [("a", 0), ("a", 4), ("a", 9), ("b", 0), ("b", 1), ("b", 2)]
    assert limit_per_split(items, lambda it: it[0], 0) == items


def test_sentences_balanced_mapped_and_split_by_document(shared_data):
    cfg = RecipeConfig(data_root=str(shared_data))
    planned = plan_sentences(cfg.data_path, cfg.text, seed=0)
    assert len(planned) == cfg.text.n_sentences
    buckets = Counter((s.source, s.rating > 0) for s, _ in planned)
    assert len(buckets) == 8 and max(buckets.values()) - min(buckets.values()) <= 1
    split_of_doc: dict[str, str] = {}
    for s, split in planned:
        assert split_of_doc.setdefault(s.document, split) == split, f"document {s.document} in two splits"
        assert cfg.text.min_words <= len(s.text.split()) <= cfg.text.max_words
        assert -3.0 <= s.rating * cfg.text.rating_scale <= 3.0
    assert set(split_of_doc.values()) == {"train", "valid", "test"}
    again = plan_sentences(cfg.data_path, cfg.text, seed=0)
    assert [(s.key, sp) for s, sp in again] == [(s.key, sp) for s, sp in planned]


def test_espeak_speech_is_16k_and_deterministic():
    a = speak("What a wonderful day", "en-us", 170, 50)
    b = speak("What a wonderful day", "en-us", 170, 50)
    assert a.dtype == np.float32 and 0.5 < len(a) / 16000 < 4.0
    assert np.array_equal(a, b) and np.abs(a).max() > 0.05


def test_ravdess_direct_read_equals_ffmpeg_decoding(shared_data):
    from mmcl.recipes.sources_voice import RAVDESS, read_clip
    from realtime.features.media import read_audio

    path = shared_data / RAVDESS / "Actor_01" / "03-01-05-02-01-01-01.flac"
    assert np.array_equal(read_clip(path), read_audio(path))


def _speech_item(iid: str, split: str, label: float, seconds: float) -> Item:
    ff = empty_features(iid, seconds)
    n = round(seconds * 10)
    ff.audio_t = (np.arange(n) + 0.5) / 10
    ff.audio_x = np.ones((n, 34), np.float32)
    ff.audio_valid = np.ones(n, bool)
    ff.text_start, ff.text_end = np.array([0.0]), np.array([seconds])
    ff.text_x = np.ones((1, 384), np.float32)
    return Item(iid, "text", split, label, iid, ff)


def _face_item(iid: str, split: str, smiling: bool) -> Item:
    ff = empty_features(iid, 5.0)
    ff.vision_t = (np.arange(50) + 0.5) / 10
    ff.vision_x = np.full((50, 56), 2.0 if smiling else 1.0, np.float32)
    ff.vision_valid = np.ones(50, bool)
    return Item(
        iid,
        "face",
        split,
        1.5 if smiling else 0.0,
        iid,
        ff,
        {"expression": "smiling" if smiling else "neutral"},
    )


def test_windows_put_speech_at_the_end_like_the_live_window():
    short = speech_window(_speech_item("s", "train", 1.0, 2.0), 5.0, tail_s=0.5)
    assert short.audio_mask.tolist() == [False] * 25 + [True] * 20 + [False] * 5
    long = speech_window(_speech_item("l", "train", 1.0, 8.0), 5.0, tail_s=0.5)
    assert long.audio_mask.all() and long.t_start == pytest.approx(3.0)
    assert face_window(_face_item("f", "train", True), 5.0).vision_mask.all()


def test_compose_pairs_agreeing_faces_within_one_split():
    items = {
        "text": [_speech_item(f"t{i}/{sp}", sp, lab, 3.0) for sp in ("train", "valid", "test")
                 for i, lab in enumerate((2.5, -2.0, 0.5))],
        "face": [_face_item(f"f{i}/{sp}", sp, smile) for sp in ("train", "valid", "test")
                 for i, smile in enumerate((True, False))],
    }  # fmt: skip
    cfg = ComposeConfig(smile_prob=1.0)
    data = compose_dataset(BuiltItems(items), cfg, seed=0)
    assert data.feature_set == LIVE_FEATURE_SET and data.seq_len == 50
    for split_name, split in data.splits.items():
        kinds = Counter(kind_of(i) for i in split.ids)
        assert kinds == {"T": 3, "TF": 3, "F": 2}
        for i, sid in enumerate(split.ids):
            kind = kind_of(sid)
            assert split.vision_mask[i].any() == (kind in ("TF", "F"))
            assert split.audio_mask[i].any() == (kind != "F") and split.text_mask[i].any() == (kind != "F")
            if kind == "TF":
                speech_id, face_id = sid.split("|", 1)[1].split("+")
                assert speech_id.split("/")[1].startswith(split_name) and f"/{split_name}" in face_id
                smiling = split.vision[i][split.vision_mask[i]].mean() == 2.0
                assert smiling == (split.labels[i] >= cfg.smile_min_label)  # smile_prob 1: always a smile
    again = compose_dataset(BuiltItems(items), cfg, seed=0)
    assert again.splits["train"].ids == data.splits["train"].ids


def run_cli(argv, capsys):
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_train_default_end_to_end_on_a_tiny_subset_is_deterministic(shared_data, tmp_path, capsys):
    import torch

    from model.checkpoint import load_checkpoint, read_checkpoint

    args = ["train-default", "--data-root", str(shared_data), "--cache", str(tmp_path / "cache"),
            "--limit", "2", "--epochs", "2", "--no-media-eval", "--quiet-progress"]  # fmt: skip
    code, out, err = run_cli([*args, "--out", str(tmp_path / "a")], capsys)
    assert code == 0, err
    ckpt = tmp_path / "a" / "mmcl_live_default.pt"
    loaded = load_checkpoint(ckpt, expected_features=LIVE_FEATURE_SET)
    assert loaded.task.task == "regression" and loaded.config["recipe"]["limit"] == 2
    result = json.loads((tmp_path / "a" / "recipe_result.json").read_text())
    assert result["sizes"]["voice"] == {"train": 2, "valid": 2, "test": 2}
    assert set(result["sizes"]) == {"face", "voice", "text"}
    assert "held-out test" in out and (tmp_path / "a" / "report.md").is_file()
    # Second run: everything from the cache, and the same weights.
    code, _, err = run_cli([*args, "--out", str(tmp_path / "b")], capsys)
    assert code == 0, err
    a = read_checkpoint(ckpt)["state_dict"]
    b = read_checkpoint(tmp_path / "b" / "mmcl_live_default.pt")["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_train_default_without_data_says_where_it_looked(tmp_path, capsys):
    args = ["train-default", "--data-root", str(tmp_path / "nowhere"), "--quiet-progress",
            "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c")]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "nowhere" in err and "--data-root" in err


def test_positive_voice_clips_are_repeated_in_training_only():
    def voice(iid: str, split: str, label: float) -> Item:
        it = _speech_item(iid, split, label, 3.0)
        return Item(iid, "voice", split, label, iid, it.ff, {"emotion": "x"})

    items = {
        "voice": [voice(f"v{i}/{sp}", sp, lab) for sp in ("train", "valid", "test")
                  for i, lab in enumerate((2.0, -2.0, -1.5, -2.0, -2.0, 0.0))],
        "face": [_face_item(f"f{i}/{sp}", sp, smile) for sp in ("train", "valid", "test")
                 for i, smile in enumerate((True, False))],
    }  # fmt: skip
    data = compose_dataset(BuiltItems(items), ComposeConfig(voice_copies=1, voice_face_copies=1), seed=0)
    for split, repeat in (("train", 4), ("valid", 1), ("test", 1)):
        labels = data.splits[split].labels[[kind_of(i) in ("V", "VF") for i in data.splits[split].ids]]
        assert (labels > 0).sum() == 2 * repeat and (labels < 0).sum() == 2 * 4 and (labels == 0).sum() == 2
