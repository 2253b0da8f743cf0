"""Voice features per 100 ms step: streaming = offline (bit for bit), real speech, silence, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model.errors import DataFormatError
from model.featureset import AUDIO_COLUMNS, LIVE_V1
from realtime.features.audio import AUDIO_DIM, AudioFeatureExtractor, audio_steps_of
from realtime.features.config import FeatureConfig
from realtime.types import AudioChunk

COL = {name: i for i, name in enumerate(AUDIO_COLUMNS)}


@pytest.fixture(scope="module")
def jfk(shared_data) -> np.ndarray:
    from realtime.features.media import read_audio

    return read_audio(shared_data / "media" / "jfk.flac")


def _stream(samples: np.ndarray, sizes, t0: float = 0.0) -> list:
    ex = AudioFeatureExtractor()
    out, i, k = [], 0, 0
    while i < len(samples):
        n = sizes[k % len(sizes)]
        out += ex.push(AudioChunk(samples[i : i + n], t=t0 + i / 16000))
        i, k = i + n, k + 1
    return out + ex.flush()


def test_columns_are_the_feature_set_columns() -> None:
    assert AUDIO_DIM == len(AUDIO_COLUMNS) == LIVE_V1.dims["audio"] == 34
    assert len(set(AUDIO_COLUMNS)) == 34


def test_streaming_in_real_time_chunks_equals_the_whole_file(jfk: np.ndarray) -> None:
    whole = audio_steps_of(jfk, t0=2.0)
    assert len(whole) == 110  # 11.0 s → 110 steps of 100 ms
    for sizes in ([1024], [160], [1600], [7, 3001, 512, 80]):  # PyAudio-sized, tiny, one step, ragged
        live = _stream(jfk, sizes, t0=2.0)
        assert len(live) == len(whole)
        for a, b in zip(live, whole, strict=True):
            assert a.t == b.t and a.valid == b.valid
            np.testing.assert_array_equal(a.values, b.values)  # tolerance: exactly equal


def test_steps_are_stamped_at_their_centres_and_have_the_declared_shape(jfk: np.ndarray) -> None:
    steps = audio_steps_of(jfk[:16000], t0=10.0)
    assert [round(s.t, 6) for s in steps] == [round(10.0 + (k + 0.5) * 0.1, 6) for k in range(10)]
    for s in steps:
        assert s.values.shape == (34,) and s.values.dtype == np.float32 and np.isfinite(s.values).all()


def test_real_speech_has_sane_values(jfk: np.ndarray) -> None:
    steps = audio_steps_of(jfk)
    x = np.stack([s.values for s in steps])
    assert np.mean([s.valid for s in steps]) > 0.9  # a speech with crowd noise: hardly any silent step
    voiced = x[:, COL["log_f0_hz"]] != 0
    assert 0.4 < voiced.mean() < 0.95
    f0 = np.exp(x[voiced, COL["log_f0_hz"]])
    assert 120 < np.median(f0) < 320  # Kennedy declaiming (pYIN agrees: ~240 Hz)
    assert np.all((x[:, COL["voicing_periodicity"]] >= 0) & (x[:, COL["voicing_periodicity"]] <= 1))
    assert np.all((x[:, COL["zero_crossing_rate"]] >= 0) & (x[:, COL["zero_crossing_rate"]] <= 1))
    assert np.all(x[:, COL["spectral_centroid_khz"]] < 8.0)
    # louder steps have more energy in mfcc_0 too
    assert np.corrcoef(x[:, COL["log_energy"]], x[:, COL["mfcc_0"]])[0, 1] > 0.9


def test_yin_agrees_with_librosa_pyin_on_real_speech(jfk: np.ndarray) -> None:
    import librosa

    from realtime.features.audio import YIN_VOICED_MAX, _Analysis

    an = _Analysis(1600)
    x = np.concatenate([np.zeros(an.left), jfk.astype(np.float64), np.zeros(an.span)])
    periods, aper = [], []
    for k in range(len(jfk) // 1600):
        span = x[k * 1600 : k * 1600 + an.span]
        p, a = an._yin(span[an.yin_idx])
        periods += list(p)
        aper += list(a)
    mine, aper = 16000 / np.array(periods), np.array(aper)
    f0, voiced, _ = librosa.pyin(jfk, fmin=60, fmax=500, sr=16000, frame_length=1024, hop_length=160)
    n = min(len(mine), len(f0) - 1)
    ref = (f0[:n] + f0[1 : n + 1]) / 2  # pYIN frames are centred at 160·i, ours at 80 + 160·i
    both = voiced[:n] & voiced[1 : n + 1] & (aper[:n] < YIN_VOICED_MAX)
    assert both.sum() > 200
    assert np.mean(np.abs(mine[:n][both] / ref[both] - 1) < 0.05) > 0.85


def test_pitch_of_a_harmonic_tone() -> None:
    t = np.arange(16000) / 16000
    tone = sum(0.3 / h * np.sin(2 * np.pi * 150 * h * t) for h in (1, 2, 3)).astype(np.float32)
    steps = audio_steps_of(tone)
    inner = np.stack([s.values for s in steps[1:-1]])
    np.testing.assert_allclose(np.exp(inner[:, COL["log_f0_hz"]]), 150.0, rtol=0.01)
    assert np.all(inner[:, COL["voicing_periodicity"]] > 0.95)
    assert np.all(inner[:, COL["jitter_frame"]] < 0.01) and np.all(inner[:, COL["shimmer_frame"]] < 0.05)


def test_silence_is_masked_but_still_has_finite_values() -> None:
    steps = audio_steps_of(np.zeros(16000, np.float32))
    assert len(steps) == 10 and not any(s.valid for s in steps)
    x = np.stack([s.values for s in steps])
    assert np.isfinite(x).all() and (x[:, COL["log_f0_hz"]] == 0).all()
    quiet = audio_steps_of((1e-4 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32))
    assert not any(s.valid for s in quiet)  # −80 dBFS noise is below the −50 dBFS gate
    loud = audio_steps_of((0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32))
    assert all(s.valid for s in loud)


def test_silence_gate_is_configurable() -> None:
    noise = (1e-3 * np.random.default_rng(1).standard_normal(8000)).astype(np.float32)  # ≈ −60 dBFS
    assert not any(s.valid for s in audio_steps_of(noise))
    assert all(s.valid for s in audio_steps_of(noise, config=FeatureConfig(audio_silence_dbfs=-70.0)))


def test_flush_keeps_a_final_step_only_when_mostly_real() -> None:
    assert len(audio_steps_of(np.ones(1600 * 3 + 700, np.float32) * 0.1)) == 3
    assert len(audio_steps_of(np.ones(1600 * 3 + 900, np.float32) * 0.1)) == 4
    assert audio_steps_of(np.ones(500, np.float32)) == []


def test_a_jump_in_chunk_time_restarts_the_step_clock(jfk: np.ndarray) -> None:
    ex = AudioFeatureExtractor()
    first = ex.push(AudioChunk(jfk[:8000], t=0.0))
    later = ex.push(AudioChunk(jfk[8000:16000], t=3.0))  # 2.5 s of audio lost upstream
    rest = ex.flush()
    assert ex.resyncs == 1
    times = [s.t for s in first + later + rest]
    assert times == sorted(times)
    assert any(abs(t - 3.05) < 1e-9 for t in times)  # the new stream's first step centre
    assert not any(1.0 < t < 3.0 for t in times)


def test_wrong_sample_rate_is_a_clear_error() -> None:
    with pytest.raises(DataFormatError, match="16000 Hz"):
        AudioFeatureExtractor().push(AudioChunk(np.zeros(4410, np.float32), t=0.0, sample_rate=44100))


def test_step_is_computed_from_a_bounded_span() -> None:
    # latency: a step is out as soon as its look-ahead (< 25 ms) has arrived
    ex = AudioFeatureExtractor()
    assert 0 < ex.latency_s < 0.025
    need = 1600 + math.ceil(ex.latency_s * 16000)
    assert ex.push(AudioChunk(np.zeros(need - 1, np.float32), t=0.0)) == []
    assert len(ex.push(AudioChunk(np.zeros(1, np.float32), t=(need - 1) / 16000))) == 1
