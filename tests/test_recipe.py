"""The default-model recipe (mmcl/recipes/): config, label mappings, person groups and folds, TTS, window
composition (speaker sessions, talking faces), CV metrics, and `mmcl train-default` end to end on a tiny
subset of the real data (twice, to check it is deterministic)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from mmcl.cli import main
from mmcl.recipes.compose import MOUTH, Composer, Sample, face_window, speech_window, talking
from mmcl.recipes.config import ComposeConfig, RecipeConfig, load_recipe_config
from mmcl.recipes.cv import fit_probe, fold_of_items, inner_holdout, late_fusion, linear_probe, window_metrics
from mmcl.recipes.items import Item, empty_features, limit_per_split
from mmcl.recipes.sources_text import clean_text, read_sentences, select_sentences, speak, text_groups
from model.errors import ConfigError
from model.featureset import LIVE_FEATURE_SET

D = LIVE_FEATURE_SET.dims


def test_recipe_yaml_is_strict_and_complete():
    cfg = load_recipe_config()
    assert cfg.text.rating_scale == 0.75 and cfg.compose.window_s == 5.0
    assert cfg.voice.valence["happy"] > 0 > cfg.voice.valence["sad"]
    assert cfg.protocol.folds >= 3 and len(cfg.protocol.seeds) >= 3 and len(cfg.protocol.candidates) >= 3
    assert {c.get("csd") for c in cfg.protocol.candidates} >= {"paper", "reference"}
    assert any(c.get("ablation") == "no_csd" for c in cfg.protocol.candidates)
    assert cfg.train.select_metric in ("auto", "last")
    with pytest.raises(ConfigError, match=r"unknown config key 'recipe\.text\.n_sentense'"):
        load_recipe_config(overrides={"text": {"n_sentense": 10}})
    with pytest.raises(ConfigError, match=r"protocol\.folds"):
        load_recipe_config(overrides={"protocol": {"folds": 1}})


def test_clean_text_drops_tweet_placeholders_and_entities():
    assert clean_text("@anonymous I love it &amp; more http://url_removed !") == "I love it & more !"


def test_limit_per_split_spreads_over_each_split():
    items = [("a", i) for i in range(10)] + [("b", i) for i in range(3)]
    got = limit_per_split(items, lambda it: it[0], 3)
    assert got == [("a", 0), ("a", 4), ("a", 9), ("b", 0), ("b", 1), ("b", 2)]
    assert limit_per_split(items, lambda it: it[0], 0) == items


def test_sentences_are_held_out_by_document_and_spoken_ones_balanced(shared_data):
    cfg = RecipeConfig(data_root=str(shared_data))
    sentences = read_sentences(cfg.data_path)
    side = text_groups(sentences, cfg.text, seed=0)
    assert set(side.values()) == {"dev", "test"}
    share = np.mean([side[s.document] == "test" for s in sentences])
    assert 0.05 < share < 0.3  # documents, not sentences, are held out (a review has many sentences)
    assert text_groups(sentences, cfg.text, seed=0) == side
    spoken = select_sentences(sentences, cfg.text, seed=0)
    assert len(spoken) == cfg.text.n_tts
    buckets = Counter((s.source, s.rating > 0) for s in spoken)
    assert len(buckets) == 8 and max(buckets.values()) - min(buckets.values()) <= 1


def test_espeak_speech_is_16k_and_deterministic():
    a = speak("What a wonderful day", "en-us", 170, 50)
    b = speak("What a wonderful day", "en-us", 170, 50)
    assert a.dtype == np.float32 and 0.5 < len(a) / 16000 < 4.0
    assert np.array_equal(a, b) and np.abs(a).max() > 0.05
    # a rated sentence may begin with a dash (the tweets do): it is text to speak, not an eSpeak option
    assert np.array_equal(speak("- What a wonderful day", "en-us", 170, 50), a)


def test_ravdess_direct_read_equals_ffmpeg_decoding(shared_data):
    from mmcl.recipes.sources_voice import RAVDESS, read_clip
    from realtime.features.media import read_audio

    path = shared_data / RAVDESS / "Actor_01" / "03-01-05-02-01-01-01.flac"
    assert np.array_equal(read_clip(path), read_audio(path))


def _speech_item(iid: str, source: str, split: str, label: float, seconds: float, speaker: str = "",
                 level: float = 1.0) -> Item:  # fmt: skip
    ff = empty_features(iid, seconds)
    n = round(seconds * 10)
    ff.audio_t = (np.arange(n) + 0.5) / 10
    ff.audio_raw = np.full((n, D["audio"]), level, np.float32)
    ff.audio_x = ff.audio_raw.copy()
    ff.audio_valid = np.ones(n, bool)
    ff.text_start, ff.text_end = np.array([0.0]), np.array([seconds])
    ff.text_x = np.ones((1, D["text"]), np.float32)
    meta = {"speaker": speaker or iid, "emotion": "happy" if label > 0 else "sad", "rating": label}
    return Item(iid, source, split, label, speaker or iid, ff, meta)


def _face_item(iid: str, split: str, smiling: bool) -> Item:
    ff = empty_features(iid, 5.0)
    ff.vision_t = (np.arange(50) + 0.5) / 10
    ff.vision_x = np.full((50, D["vision"]), 0.6 if smiling else 0.2, np.float32)
    ff.vision_valid = np.ones(50, bool)
    expression = "smiling" if smiling else "neutral"
    return Item(iid, "face", split, 1.5 if smiling else 0.0, iid, ff, {"expression": expression})


def test_windows_put_speech_at_the_end_like_the_live_window():
    short = speech_window(_speech_item("s", "text", "dev", 1.0, 2.0), 5.0, tail_s=0.5)
    assert short.audio_mask.tolist() == [False] * 25 + [True] * 20 + [False] * 5
    long = speech_window(_speech_item("l", "text", "dev", 1.0, 8.0), 5.0, tail_s=0.5)
    assert long.audio_mask.all() and long.t_start == pytest.approx(3.0)
    assert face_window(_face_item("f", "dev", True), 5.0).vision_mask.all()


def test_compose_kinds_agreeing_faces_and_determinism():
    items = [_speech_item(f"t{i}", "text", "dev", lab, 3.0) for i, lab in enumerate((2.5, -2.0, 0.5))]
    items += [_speech_item(f"v{i}", "voice", "dev", lab, 3.0, "actor01") for i, lab in enumerate((2.0, -2.0))]
    items += [_face_item(f"f{i}", "dev", smile) for i, smile in enumerate((True, False))]
    cfg = ComposeConfig(smile_prob=1.0, talking_prob=0.0, voice_copies=2)
    prior = np.zeros(D["audio"])
    train = Composer(cfg, prior, 0, train=True).compose(items)
    kinds = Counter(s.kind for s in train)
    assert kinds == {"T": 3, "TF": 3, "V": 4, "Va": 2, "VF": 2, "F": 2}
    for s in train:
        assert s.win.vision_mask.any() == (s.kind in ("TF", "VF", "F"))
        assert s.win.text_mask.any() == (s.kind in ("T", "TF", "V", "VF"))  # Va: the voice alone
        if s.kind in ("TF", "VF"):
            smiling = s.win.vision[s.win.vision_mask].mean() == pytest.approx(0.6)
            assert smiling == (s.label >= cfg.smile_min_label)  # smile_prob 1: always a smile
    again = Composer(cfg, prior, 0, train=True).compose(items)
    assert [s.id for s in again] == [s.id for s in train]
    assert all(np.array_equal(a.win.audio, b.win.audio) for a, b in zip(again, train, strict=True))
    valid = Composer(cfg, prior, 0, train=False).compose(items)
    assert Counter(s.kind for s in valid) == {"T": 3, "V": 2, "Va": 2, "F": 2}  # one of each, no pairing
    more = ComposeConfig(smile_prob=1.0, talking_prob=0.0, voice_copies=2, tts_copies=3)
    train3 = Composer(more, prior, 0, train=True).compose(items)
    assert Counter(s.kind for s in train3)["T"] == 9 and len({s.id for s in train3}) == len(train3)
    assert Counter(s.kind for s in Composer(more, prior, 0, train=False).compose(items))["T"] == 3
    with pytest.raises(ConfigError, match="tts_copies"):
        ComposeConfig(tts_copies=0)


def test_voice_is_normalised_in_a_session_of_the_same_speaker():
    """A speaker's other recordings prime the running mean (never another speaker's)."""
    loud = _speech_item("a1", "voice", "dev", 2.0, 3.0, "actorA", level=4.0)
    quiet = _speech_item("a2", "voice", "dev", -2.0, 3.0, "actorA", level=2.0)
    other = _speech_item("b1", "voice", "dev", -2.0, 3.0, "actorB", level=100.0)
    cfg = ComposeConfig(max_priming_clips=12)
    out = {s.id.split("|")[1].split("#")[0]: s for s in Composer(cfg, np.zeros(D["audio"]), 0, train=False)
           .compose([loud, quiet, other]) if s.kind == "V"}  # fmt: skip
    a1 = out["a1"].win.audio[out["a1"].win.audio_mask]
    # primed with a2 (30 raw steps at 2.0) on top of the prior (30 steps of 0): the first step of a1 (4.0)
    # is judged against (30·0 + 30·2 + 4) / 61 — actorB's loud voice does not enter
    assert a1[0, 0] == pytest.approx(4.0 - (60.0 + 4.0) / 61.0, rel=1e-5)
    assert (np.diff(a1[:, 0]) < 0).all()  # the running mean moves towards this clip's level


def test_talking_faces_move_only_the_mouth():
    face = face_window(_face_item("f", "dev", False), 5.0)
    moved = talking(face, np.random.default_rng(0))
    changed = np.flatnonzero(np.abs(moved.vision - face.vision).max(axis=0) > 0)
    cols = [LIVE_FEATURE_SET.vision[j] for j in changed]
    assert cols and set(cols) <= set(MOUTH) and "bs_jawOpen" in cols
    assert (moved.vision >= 0).all() and (moved.vision <= 1).all()


def test_grouped_folds_never_put_one_person_in_two_folds():
    items = [_speech_item(f"v{a}_{k}", "voice", "dev", 1.0, 1.0, f"actor{a:02d}") for a in range(12)
             for k in range(5)]  # fmt: skip
    items += [_speech_item(f"t{k}", "clean_text", "dev", 1.0, 1.0, f"doc{k // 3}") for k in range(30)]
    items += [_speech_item("x", "voice", "test", 1.0, 1.0, "actor99")]
    folds = fold_of_items(items, 3, seed=0)
    assert "x" not in folds  # the final test never enters the CV
    by_group: dict[str, set[int]] = {}
    for it in items:
        if it.id in folds:
            by_group.setdefault(it.group, set()).add(folds[it.id])
    assert all(len(f) == 1 for f in by_group.values())
    per_fold = Counter(folds[it.id] for it in items if it.source == "voice" and it.id in folds)
    assert sorted(per_fold.values()) == [20, 20, 20]  # 4 actors per fold


def test_window_metrics_answer_the_products_questions():
    def s(kind: str, label: float, **meta) -> Sample:
        return Sample(kind, kind, None, label, "x", "g", meta)  # type: ignore[arg-type]

    samples = [s("Va", 2, emotion="happy"), s("Va", -2, emotion="sad"), s("Va", -2, emotion="angry"),
               s("Va", 1, emotion="calm"), s("F", 1.5, expression="smiling"), s("F", 0, expression="neutral"),
               s("T0", 1, rating=1.0), s("T0", -1, rating=-1.0), s("T", 1, rating=2.0)]  # fmt: skip
    pred = np.array([1.0, -1.0, 0.5, -0.5, 0.2, 0.1, 0.3, 0.2, -1.0])
    m = window_metrics(pred, samples)
    assert m["voice_bal"] == pytest.approx(0.5 * (1 / 2 + 1 / 2))  # happy ✓ calm ✗ | sad ✓ angry ✗
    assert m["voice_happy"] == pytest.approx(0.5 * (1 + 1 / 2))
    assert m["face_auc"] == 1.0 and m["text_clean"] == 0.5 and m["text_tts"] == 0.0


def test_baselines_learn_a_planted_signal():
    rng = np.random.default_rng(0)
    cfg = ComposeConfig(talking_prob=0.0)
    items = []
    for i in range(300):
        label = float(rng.choice([-2.0, 2.0]))
        it = _speech_item(f"t{i}", "clean_text", "dev", label, 2.0)
        it.ff.text_x = np.full((1, D["text"]), 0.0, np.float32) + rng.normal(0, 0.1, (1, D["text"])).astype(np.float32)
        it.ff.text_x[0, -1] = label  # the "pos" column
        items.append(it)
    samples = Composer(cfg, np.zeros(D["audio"]), 0, train=False).compose(items)
    for make in (linear_probe, late_fusion):
        pred = make(samples[:240])(samples[240:])
        assert np.mean(np.sign(pred) == np.sign([s.label for s in samples[240:]])) >= 0.9


def test_probe_choice_uses_held_groups_and_finds_a_last_step_signal():
    rng = np.random.default_rng(1)
    cfg = ComposeConfig(talking_prob=0.0)
    items = []
    for i in range(800):  # 200 speakers × 4 clips; the label only in the last voice step's first column
        it = _speech_item(f"v{i}", "voice", "dev", float(rng.choice([-2.0, 2.0])), 2.0, speaker=f"s{i // 4}")
        it.ff.audio_x = rng.normal(0, 1, it.ff.audio_x.shape).astype(np.float32)
        it.ff.audio_x[-1, 0] = 3.0 * it.label
        it.ff.audio_raw = it.ff.audio_x.copy()  # what the speaker session normalises
        items.append(it)
    samples = [s for s in Composer(cfg, np.zeros(D["audio"]), 0, train=False).compose(items) if s.kind == "V"]
    held = inner_holdout(samples)
    by_group: dict[str, set[bool]] = {}
    for s, h in zip(samples, held, strict=True):
        by_group.setdefault(s.group, set()).add(bool(h))
    assert all(len(v) == 1 for v in by_group.values())  # a speaker is held entirely or not at all
    assert 0.15 < held.mean() < 0.35
    train, new = samples[:640], samples[640:]  # speakers s0..s159 vs s160..s199
    probe = fit_probe(train, np.asarray([s.label for s in train]), ["audio"])
    assert probe.last  # the mean of 20 steps dilutes the one informative step; the choice sees that
    assert np.mean(np.sign(probe.predict(new)) == np.sign([s.label for s in new])) >= 0.9


def run_cli(argv, capsys):
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_choose_prefers_csd_unless_csd_off_wins_beyond_the_spread():
    from mmcl.recipes.default_model import candidate_name, choose

    cands = [{"csd": "paper", "pool": "mean_last"}, {"csd": "reference", "pool": "mean_last"},
             {"ablation": "no_csd", "pool": "mean_last"}, {"csd": "reference"}]  # fmt: skip
    names = [candidate_name(c) for c in cands]
    assert names == ["MMCL CSD paper, pool mean_last", "MMCL CSD reference, pool mean_last",
                     "MMCL CSD off, pool mean_last", "MMCL CSD reference"]  # fmt: skip
    base = np.array([0.70, 0.74, 0.72])

    def table(*offsets: float) -> dict:
        return {n: {"score": list(base + o)} for n, o in zip(names, offsets, strict=True)}

    chosen, reason = choose(table(0.0, 0.02, 0.03, 0.01), cands)  # off +0.01 over the best CSD, no spread
    assert chosen == cands[2] and "beats MMCL CSD reference, pool mean_last" in reason
    noisy = table(0.0, 0.02, 0.0, 0.01)
    noisy[names[2]]["score"] = [0.60, 0.90, 0.74]  # better on average, but within its fold spread
    chosen, reason = choose(noisy, cands)
    assert chosen == cands[1] and "not beyond it" in reason
    chosen, _ = choose(table(0.0, 0.01, -0.05, 0.02), cands)  # the best CSD candidate, whichever pool
    assert chosen == cands[3]


def test_train_default_end_to_end_on_a_tiny_subset_is_deterministic(shared_data, tmp_path, capsys):
    import torch

    from model.checkpoint import load_checkpoint, read_checkpoint

    args = ["train-default", "--data-root", str(shared_data), "--cache", str(tmp_path / "cache"),
            "--limit", "2", "--epochs", "1", "--folds", "2", "--no-media-eval", "--quiet-progress"]  # fmt: skip
    code, out, err = run_cli([*args, "--out", str(tmp_path / "a")], capsys)
    assert code == 0, err
    ckpt = tmp_path / "a" / "mmcl_live_default.pt"
    loaded = load_checkpoint(ckpt, expected_features=LIVE_FEATURE_SET)
    assert loaded.task.task == "regression" and loaded.config["recipe"]["limit"] == 2
    result = json.loads((tmp_path / "a" / "recipe_result.json").read_text())
    assert set(result["sizes"]) == {"face", "voice", "pyaa", "text", "clean_text"}
    assert result["sizes"]["voice"] == {"dev": 2, "test": 2}
    assert {"linear probe", "late fusion", "MMCL CSD paper", "MMCL CSD reference", "MMCL CSD off"} <= set(result["cv"])
    assert "MMCL (shipped)" in out and (tmp_path / "a" / "report.md").is_file()
    # the interval the monitor shows: split conformal on the chosen candidate's out-of-fold CV residuals
    from realtime.pipeline.inference import checkpoint_interval

    interval = loaded.extra["calibration"]["interval"]
    assert interval["half_width"] > 0 and 0.0 <= interval["test_coverage"] <= 1.0 and interval["n_valid"] >= 9
    assert checkpoint_interval(loaded.extra, "interval") == (interval["half_width"], 0.9)
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
