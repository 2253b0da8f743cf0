"""Window assembler, inference decoding/contributions, latency tracker: real code, synthetic samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers_monitor import make_checkpoint

from model.errors import ConfigError
from model.featureset import LIVE_FEATURE_SET
from realtime.features.audio import AudioStep
from realtime.features.extract import FileFeatures, window_of
from realtime.features.text import TextSample
from realtime.features.vision import VisionSample
from realtime.pipeline.config import MonitorConfig
from realtime.pipeline.inference import InferenceEngine, SentimentDecoder, checkpoint_temperature
from realtime.pipeline.latency import LatencyTracker
from realtime.pipeline.windows import WindowAssembler

DV, DA, DT = (LIVE_FEATURE_SET.dims[m] for m in ("vision", "audio", "text"))


def _samples(rng: np.random.Generator, t0: float, t1: float):
    vt = np.arange(t0, t1, 1 / 15.0)
    vx = rng.random((len(vt), DV)).astype(np.float32)
    vv = rng.random(len(vt)) > 0.3  # some frames without a face
    at = np.arange(t0 + 0.05, t1, 0.1)
    ax = rng.standard_normal((len(at), DA)).astype(np.float32)
    av = rng.random(len(at)) > 0.2  # some silent steps
    ts = np.array([t0 + 1.0, t0 + 1.6, t0 + 3.2])
    te = ts + np.array([0.4, 0.5, 0.3])
    tx = rng.standard_normal((3, DT)).astype(np.float32)
    return vt, vx, vv, at, ax, av, ts, te, tx


def test_live_window_equals_the_offline_window_of_the_same_samples() -> None:
    rng = np.random.default_rng(0)
    vt, vx, vv, at, ax, av, ts, te, tx = _samples(rng, 10.0, 18.0)
    asm = WindowAssembler(window_s=5.0, hz=10.0)
    asm.add_vision([VisionSample(float(t), x, bool(ok)) for t, x, ok in zip(vt, vx, vv, strict=True)])
    asm.add_audio([AudioStep(float(t), x, bool(ok)) for t, x, ok in zip(at, ax, av, strict=True)])
    asm.add_text(
        [
            TextSample(float(a), float(b), x, "p", f"w{i}")
            for i, (a, b, x) in enumerate(zip(ts, te, tx, strict=True))
        ]
    )
    ff = FileFeatures("x", 8.0, vt, vx, vv, at, ax, av, text_start=ts, text_end=te, text_x=tx)
    t_end = 15.3
    live = asm.build(t_end)
    offline = window_of(ff, t_end - 5.0, 50, 50, 10.0)
    expected = {
        "vision": (offline.vision, offline.vision_mask),
        "audio": (offline.audio, offline.audio_mask),
        "text": (offline.text, offline.text_mask),
    }
    for m, (feat, mask) in expected.items():
        np.testing.assert_array_equal(live.masks[m], mask, err_msg=m)
        np.testing.assert_allclose(live.features[m], feat, atol=1e-6, err_msg=m)
    assert live.features["vision"].shape == (50, DV) and live.steps == 50
    assert 0 < live.coverage["vision"] < 1 and 0 < live.coverage["text"] < 0.3
    assert [w.text for w in live.words] == ["w0", "w1", "w2"]
    # newest input of each modality: last frame / last audio sample / last word end before t_end
    assert live.newest_input["vision"] == pytest.approx(vt[vt < t_end].max())
    assert live.newest_input["audio"] == pytest.approx(at[at < t_end].max() + 0.05)
    assert live.newest_input["text"] == pytest.approx(te[2])
    assert live.newest == pytest.approx(max(live.newest_input.values()))


def test_assembler_masks_missing_modalities_and_prunes_old_samples() -> None:
    asm = WindowAssembler(5.0, 10.0)
    asm.add_vision([VisionSample(t, np.zeros(DV, np.float32), False) for t in np.arange(0, 3, 0.1)])
    w = asm.build(3.0)
    assert not w.any_present and w.newest_input["vision"] == pytest.approx(2.9)  # frames seen, no face
    assert w.samples == {"vision": 30, "audio": 0, "text": 0} and w.newest_input["audio"] is None
    assert w.index == 0 and asm.build(3.5).index == 1
    asm.build(20.0)  # everything is older than the new window start: forgotten
    assert len(asm.buffers["vision"]) == 0


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from model.backends import create_backend
    from model.checkpoint import load_checkpoint

    loaded = load_checkpoint(make_checkpoint(tmp_path_factory.mktemp("ck") / "r.pt"))
    return InferenceEngine(create_backend("eager", loaded), loaded.task, ema_tau_s=2.0), loaded


def _window(present: dict[str, bool], t_end: float = 5.0, seed: int = 1):
    rng = np.random.default_rng(seed)
    asm = WindowAssembler(5.0, 10.0)
    if present.get("vision"):
        asm.add_vision(
            [VisionSample(t, rng.random(DV).astype(np.float32), True) for t in np.arange(0.5, 4.9, 0.1)]
        )
    if present.get("audio"):
        asm.add_audio(
            [
                AudioStep(t, rng.standard_normal(DA).astype(np.float32), True)
                for t in np.arange(1.05, 4.9, 0.1)
            ]
        )
    if present.get("text"):
        asm.add_text([TextSample(2.0, 2.6, rng.standard_normal(DT).astype(np.float32), "hi", "hi")])
    return asm.build(t_end)


def test_contributions_are_masked_modality_deltas(engine) -> None:
    import torch

    eng, loaded = engine
    w = _window({"vision": True, "audio": True, "text": False})
    pred = eng.score(w)
    batch = eng.masked_inputs(w)  # one call of batch 3: vision, audio, text masked in turn
    assert batch.batch == 3
    assert not batch.vision_mask[0].any() and batch.audio_mask[0].any() and not batch.audio_mask[1].any()
    assert not batch.vision[0].any() and batch.vision[1].any()

    def direct(masks: dict[str, np.ndarray]) -> float:
        args = [torch.from_numpy(w.features[m])[None] for m in ("vision", "audio", "text")]
        args += [torch.from_numpy(masks[m])[None] for m in ("vision", "audio", "text")]
        with torch.no_grad():
            return float(loaded.model(*args)[0, 0])

    full = direct(w.masks)
    assert pred.value == pytest.approx(full, abs=1e-5) and pred.score == pred.value
    no_vision = direct({**w.masks, "vision": np.zeros(50, bool)})
    assert pred.contributions["vision"] == pytest.approx(full - no_vision, abs=1e-5)
    assert pred.contributions["text"] is None  # absent: masking it changes nothing
    assert abs(pred.contributions["vision"]) > 1e-6
    fast = eng.predict(w)  # what the pipeline publishes first: same score, contributions pending
    assert fast.score == pytest.approx(pred.score) and fast.contributions == {}


def test_trend_is_an_exponential_moving_average(engine) -> None:
    eng, _ = engine
    eng.reset()
    p1 = eng.score(_window({"vision": True}, t_end=5.0, seed=1))
    p2 = eng.score(_window({"vision": True, "audio": True}, t_end=5.5, seed=2))
    alpha = 1 - math.exp(-0.5 / 2.0)
    assert p1.trend == p1.score
    assert p2.trend == pytest.approx(p1.score + alpha * (p2.score - p1.score))


def test_classification_decoding_with_temperature() -> None:
    from model.evaluate import TaskInfo

    dec = SentimentDecoder(TaskInfo(task="classification", label_kind="msa", num_classes=3), temperature=2.0)
    score, value, probs, label = dec.decode(np.array([0.0, 1.0, 3.0]))
    assert value is None and label == "positive" and list(probs) == ["negative", "neutral", "positive"]
    p = np.exp(np.array([0.0, 0.5, 1.5]))
    p /= p.sum()
    assert [probs[k] for k in probs] == pytest.approx(list(p))
    assert score == pytest.approx(p[2] - p[0]) and dec.score_range == (-1.0, 1.0)
    multi = SentimentDecoder(TaskInfo(task="classification", label_kind="mer", num_labels=2, num_classes=2,
                                      label_names=["happy", "sad"]))  # fmt: skip
    s, _, pr, lab = multi.decode(np.array([0.0, 2.0, 1.0, 0.0]))
    assert lab == "happy" and pr["sad"] == pytest.approx(1 / (1 + math.e)) and s == pytest.approx(pr["happy"])
    assert checkpoint_temperature({"calibration": {"temperature": 1.7}}) == 1.7
    assert checkpoint_temperature({"temperature": -1}) == 1.0


def test_latency_tracker_percentiles_and_config_validation() -> None:
    tr = LatencyTracker(max_samples=100)
    for v in range(1, 201):
        tr.record("inference", v / 1000.0)
    st = tr.stat("inference")
    assert st.count == 200 and st.p50_ms == pytest.approx(150.5) and st.max_ms == pytest.approx(200.0)
    assert tr.last("inference") == pytest.approx(0.2) and tr.stat("render").p50_ms is None
    with pytest.raises(ConfigError):
        MonitorConfig(hop_s=0.0)
    with pytest.raises(ConfigError):
        MonitorConfig(backend="cuda")


def test_voice_level_is_the_last_voiced_steps_not_the_silence_floor():
    """The dashboard's "speech · −23 dBFS": a silent step after speech (the gate's −200 floor) keeps the
    level of the last voiced audio; before any voiced step there is no level."""
    from realtime.clock import ManualClock
    from realtime.pipeline.workers import Outbox, VoiceWorker

    w = VoiceWorker(reader=None, outbox=Outbox("voice"), clock=ManualClock(), latency=LatencyTracker(max_samples=10))
    z = np.zeros(3, np.float32)
    w._emit([AudioStep(0.05, z, False)], 0.1)
    assert w.stats().level_dbfs is None
    w._emit([AudioStep(0.15, z, True, -23.4), AudioStep(0.25, z, True, -31.0), AudioStep(0.35, z, False)], 0.3)
    assert w.stats().level_dbfs == -31.0
    w._emit([AudioStep(0.45, z, False, -200.0)], 0.1)
    assert w.stats().level_dbfs == -31.0 and not w.stats().live


def test_the_window_loop_is_the_one_feeder_of_the_transcript() -> None:
    """Words reach the transcript with the window that drained them (committed words kept as committed), the
    word count goes past the transcript's bound, and words not yet drained are in neither."""
    from realtime.clock import ManualClock
    from realtime.pipeline.state import MonitorState
    from realtime.pipeline.window_loop import WindowLoop
    from realtime.pipeline.workers import Outbox
    from realtime.types import Word

    rng = np.random.default_rng(3)
    state = MonitorState(transcript_words=3)
    face, voice, text = Outbox("face"), Outbox("voice"), Outbox("text")
    loop = WindowLoop(MonitorConfig(), WindowAssembler(5.0, 10.0), None, state, LatencyTracker(),
                      (face, voice, text), clock=ManualClock(0.0))  # fmt: skip

    def said(i: int, t: float) -> TextSample:
        w = Word(f"w{i}", t, t + 0.3, probability=0.9, committed_at=t + 1.0)
        return TextSample(w.start, w.end, rng.standard_normal(DT).astype(np.float32), w.text, w.text, source=w)

    for i in range(2):
        text.put(said(i, 1.0 + i))
    loop.tick(3.0)
    first = state.read()
    assert [w.text for w in first["transcript"]] == ["w0", "w1"] and first["words"] == 2
    assert first["transcript"][0].committed_at == pytest.approx(2.0)  # the ASR's word, not a copy without times
    for i in range(2, 6):
        text.put(said(i, 1.0 + i))
    loop.tick(7.0)
    text.put(said(6, 7.5))  # committed after the last window: not published yet
    st = state.read()
    assert [w.text for w in st["transcript"]] == ["w3", "w4", "w5"] and st["words"] == 6 and st["windows"] == 2
