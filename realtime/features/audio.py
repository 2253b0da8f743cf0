"""Voice features per 100 ms step from 16 kHz mono audio, streaming and offline with the same code.

One ``AudioStep`` per grid step with the 34 columns of ``model.featureset.AUDIO_COLUMNS`` (these are
*not* the offline COVAREP-74 of the MOSI/MOSEI pickles, which cannot be computed live):

=========================  ==============================================================================
``mfcc_0`` … ``mfcc_24``   MFCCs (40 mel bands 20–8000 Hz, log power, DCT-II ortho), mean of the step's
                           ten 25 ms Hann frames (10 ms hop)
``log_energy``             ln(mean square of the step's 1600 samples + 1e-10)
``log_f0_hz``              ln F0 (YIN, 60–500 Hz), median over the step's voiced 10 ms frames; 0 when fewer
                           than 2 frames are voiced
``voicing_periodicity``    1 − YIN aperiodicity (cumulative-mean-normalised difference at the chosen lag),
                           in [0, 1], mean over frames (a periodicity score, not a calibrated probability)
``spectral_slope_db_khz``  least-squares slope of the dB power spectrum against frequency (dB/kHz)
``spectral_flux``          L2 change of the sum-normalised magnitude spectrum between consecutive frames
``spectral_centroid_khz``  magnitude-weighted mean frequency (kHz)
``zero_crossing_rate``     share of adjacent samples in the step whose sign differs
``jitter_frame``           mean |ΔT| / mean T of the YIN period between consecutive voiced 10 ms frames
                           (frame-level, not Praat's cycle-to-cycle jitter); 0 without two such frames
``shimmer_frame``          mean |ΔA| / mean A of the frame RMS between consecutive voiced frames; 0 likewise
=========================  ==============================================================================

Timing: step ``k`` of a stream covers samples ``[k·1600, (k+1)·1600)`` after the stream's first sample;
``AudioStep.t`` is the step's **centre**, ``t0 + (k + 0.5) · 0.1`` s, so that a grid of 0.1 s steps with
any offset holds exactly one audio step per step. Each step is computed from a fixed span of samples
(the step plus 280 samples of left context and 334 samples of look-ahead; zeros before the stream's first
sample), so feeding a file whole or in chunks of any size gives bit-identical steps. A step is emitted as
soon as its look-ahead has arrived (latency 100 ms + ~21 ms). ``flush()`` pads with zeros to finish the
last step (emitted only when at least half of it is real audio).

``valid`` is False for steps whose RMS level is below ``FeatureConfig.audio_silence_dbfs``; their values
are still computed and returned.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from model.errors import DataFormatError
from model.featureset import AUDIO_COLUMNS
from realtime.features.config import AUDIO_SAMPLE_RATE, FeatureConfig
from realtime.types import AudioChunk

log = logging.getLogger(__name__)

AUDIO_DIM = len(AUDIO_COLUMNS)  # 34
# Feature definition (part of the feature-set version; do not make these configurable).
FRAME = 400  # 25 ms analysis frame
HOP = 160  # 10 ms
N_FFT = 512
N_MELS = 40
N_MFCC = 25
MEL_FMIN, MEL_FMAX = 20.0, 8000.0
F0_MIN, F0_MAX = 60.0, 500.0
YIN_WINDOW = 400  # integration window of the YIN difference function
YIN_THRESHOLD = 0.1  # first dip of the normalised difference below this is taken (YIN's absolute threshold)
YIN_VOICED_MAX = 0.35  # a frame is voiced when the normalised difference at its lag is below this ...
VOICED_MIN_DBFS = -60.0  # ... and its RMS level is above this
LOG_EPS = 1e-10

_COL = {name: i for i, name in enumerate(AUDIO_COLUMNS)}


@dataclass(frozen=True)
class AudioStep:
    """Voice features of one grid step; ``t`` is the step's centre on the common clock (seconds)."""

    t: float
    values: np.ndarray  # (34,) float32
    valid: bool
    level_dbfs: float = -200.0  # RMS level of the step (what the silence gate compared)
    raw: np.ndarray | None = None  # live-v2: the values before speaker normalisation (None in live-v1)


class _Analysis:
    """Precomputed windows, filterbanks and index tables for one step length (pure, reusable)."""

    def __init__(self, step: int, sr: int = AUDIO_SAMPLE_RATE) -> None:
        import scipy.fft

        self.step, self.sr = step, sr
        self.n_frames = step // HOP
        if step % HOP:
            raise ValueError(f"step of {step} samples is not a multiple of the {HOP}-sample hop")
        self.tau_min = math.floor(sr / F0_MAX)
        self.tau_max = math.ceil(sr / F0_MIN)
        centres = HOP // 2 + HOP * np.arange(-1, self.n_frames)  # frame −1 feeds the first flux value
        spec_start = centres - FRAME // 2
        yin_len = YIN_WINDOW + self.tau_max
        yin_start = centres[1:] - yin_len // 2
        lo = int(min(spec_start.min(), yin_start.min()))
        hi = int(max(spec_start.max() + FRAME, yin_start.max() + yin_len))
        self.left = -lo  # samples of left context needed before the step
        self.lookahead = hi - step  # samples needed after the step
        # Index tables into a span that starts `left` samples before the step.
        self.spec_idx = (spec_start + self.left)[:, None] + np.arange(FRAME)[None, :]  # (n+1, FRAME)
        self.yin_idx = (yin_start + self.left)[:, None] + np.arange(yin_len)[None, :]  # (n, yin_len)
        self.window = np.hanning(FRAME + 1)[:-1]  # periodic Hann
        import librosa

        self.mel = librosa.filters.mel(sr=sr, n_fft=N_FFT, n_mels=N_MELS, fmin=MEL_FMIN, fmax=MEL_FMAX)
        self.dct = scipy.fft.dct(np.eye(N_MELS), type=2, norm="ortho", axis=0)[:N_MFCC]  # (25, 40)
        freqs_khz = np.fft.rfftfreq(N_FFT, 1.0 / sr) / 1000.0
        self.freqs_khz = freqs_khz
        f = freqs_khz[1:]
        self.slope_w = (f - f.mean()) / ((f - f.mean()) ** 2).sum()  # least-squares slope weights
        self.yin_fft = 1 << math.ceil(math.log2(yin_len + YIN_WINDOW))

    @property
    def span(self) -> int:
        return self.left + self.step + self.lookahead

    def features(self, span: np.ndarray) -> np.ndarray:
        """The 34 features of the step held in ``span`` (left context + step + look-ahead), float64."""
        out = np.zeros(AUDIO_DIM, dtype=np.float64)
        x = span.astype(np.float64, copy=False)
        step = x[self.left : self.left + self.step]

        # Spectral frames (frame −1 .. n−1)
        frames = x[self.spec_idx]  # (n+1, FRAME)
        mag = np.abs(np.fft.rfft(frames * self.window, n=N_FFT, axis=1))  # (n+1, 257)
        power = mag**2
        cur_mag, cur_pow = mag[1:], power[1:]
        mel = np.log(cur_pow @ self.mel.T + LOG_EPS)  # (n, 40)
        out[:N_MFCC] = (mel @ self.dct.T).mean(axis=0)
        out[_COL["log_energy"]] = math.log(float(np.mean(step**2)) + LOG_EPS)
        db = 10.0 * np.log10(cur_pow[:, 1:] + 1e-12)
        out[_COL["spectral_slope_db_khz"]] = float((db @ self.slope_w).mean())
        norm = mag / (mag.sum(axis=1, keepdims=True) + 1e-12)
        out[_COL["spectral_flux"]] = float(np.linalg.norm(np.diff(norm, axis=0), axis=1).mean())
        out[_COL["spectral_centroid_khz"]] = float(
            ((cur_mag @ self.freqs_khz) / (cur_mag.sum(axis=1) + 1e-12)).mean()
        )
        signs = np.signbit(step)
        out[_COL["zero_crossing_rate"]] = float(np.count_nonzero(signs[1:] != signs[:-1]) / (len(step) - 1))

        # YIN per 10 ms frame
        period, aperiodicity = self._yin(x[self.yin_idx])
        rms = np.sqrt(np.mean(frames[1:] ** 2, axis=1))
        voiced = (aperiodicity < YIN_VOICED_MAX) & (20.0 * np.log10(rms + 1e-12) > VOICED_MIN_DBFS)
        out[_COL["voicing_periodicity"]] = float(np.clip(1.0 - aperiodicity, 0.0, 1.0).mean())
        if np.count_nonzero(voiced) >= 2:
            out[_COL["log_f0_hz"]] = float(np.median(np.log(self.sr / period[voiced])))
        pairs = voiced[1:] & voiced[:-1]
        if pairs.any():
            t_prev, t_next = period[:-1][pairs], period[1:][pairs]
            out[_COL["jitter_frame"]] = float(
                np.mean(np.abs(t_next - t_prev)) / np.mean((t_next + t_prev) / 2)
            )
            a_prev, a_next = rms[:-1][pairs], rms[1:][pairs]
            out[_COL["shimmer_frame"]] = float(
                np.mean(np.abs(a_next - a_prev)) / (np.mean((a_next + a_prev) / 2) + 1e-12)
            )
        return out

    def _yin(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """YIN on each row: (period in samples, normalised difference at that period)."""
        w, tmax = YIN_WINDOW, self.tau_max
        n = self.yin_fft
        spec_full = np.fft.rfft(frames, n=n, axis=1)
        spec_head = np.fft.rfft(frames[:, :w], n=n, axis=1)
        cross = np.fft.irfft(np.conj(spec_head) * spec_full, n=n, axis=1)[:, : tmax + 1]  # Σ x[j]x[j+τ]
        sq = np.concatenate([np.zeros((frames.shape[0], 1)), np.cumsum(frames**2, axis=1)], axis=1)
        taus = np.arange(tmax + 1)
        energy_head = sq[:, w][:, None]  # Σ_{j<w} x[j]²
        energy_lag = sq[:, taus + w] - sq[:, taus]  # Σ_{j<w} x[j+τ]²
        diff = np.maximum(energy_head + energy_lag - 2.0 * cross, 0.0)  # (rows, tmax+1)
        cum = np.cumsum(diff[:, 1:], axis=1)
        cmnd = np.ones_like(diff)
        cmnd[:, 1:] = diff[:, 1:] * taus[1:] / np.where(cum > 1e-20, cum, 1e-20)
        rng = cmnd[:, self.tau_min : tmax + 1]
        below = rng < YIN_THRESHOLD
        first = np.where(below.any(axis=1), below.argmax(axis=1), rng.argmin(axis=1))
        # From the first dip below the threshold, walk down to its local minimum.
        idx = first.copy()
        for r in range(rng.shape[0]):
            if below[r].any():
                i = idx[r]
                while i + 1 < rng.shape[1] and rng[r, i + 1] < rng[r, i]:
                    i += 1
                idx[r] = i
        tau = idx + self.tau_min
        value = cmnd[np.arange(len(tau)), tau]
        # Parabolic interpolation of the lag.
        period = tau.astype(np.float64)
        inner = (tau > 1) & (tau < tmax)
        rows = np.flatnonzero(inner)
        a, b, c = cmnd[rows, tau[rows] - 1], cmnd[rows, tau[rows]], cmnd[rows, tau[rows] + 1]
        denom = a - 2.0 * b + c
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1.0, denom), 0.0)
        period[rows] += np.clip(shift, -1.0, 1.0)
        return period, value


def chunk_samples(chunk: AudioChunk, sample_rate: int) -> np.ndarray:
    """The chunk's samples as flat float32, refusing another sample rate (the extractors' common check)."""
    if chunk.sample_rate != sample_rate:
        raise DataFormatError(
            f"audio chunks must be {sample_rate} Hz mono, got {chunk.sample_rate} Hz; resample "
            "at the source (the microphone and file sources deliver 16 kHz)"
        )
    return np.asarray(chunk.samples, dtype=np.float32).reshape(-1)


class AudioFeatureExtractor:
    """Streaming voice features: ``push`` audio chunks, receive finished ``AudioStep``s.

    Keeps the analysis context across chunk boundaries, so any chunking of a stream gives the same steps.
    Not thread-safe: one instance per voice worker (or per file).
    """

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()
        self.sample_rate = AUDIO_SAMPLE_RATE
        self.step_samples = round(self.sample_rate / self.config.grid_hz)
        self._an = _Analysis(self.step_samples, self.sample_rate)
        self.resyncs = 0
        self.steps_out = 0
        self.reset()

    @property
    def latency_s(self) -> float:
        """Delay between a step's end and the moment it can be emitted (its look-ahead)."""
        return self._an.lookahead / self.sample_rate

    def reset(self) -> None:
        """Start a new stream: the next chunk's ``t`` becomes the stream's time origin."""
        self._t0: float | None = None
        self._received = 0  # real samples received in this stream
        self._next_step = 0
        self._buf = np.zeros(self._an.left, dtype=np.float32)  # zeros before the first sample
        self._buf_start = -self._an.left  # stream sample index of _buf[0]

    def push(self, chunk: AudioChunk) -> list[AudioStep]:
        """Add a chunk; return the steps it completed (possibly none)."""
        samples = chunk_samples(chunk, self.sample_rate)
        if samples.size == 0:
            return []
        out: list[AudioStep] = []
        if self._t0 is None:
            self._t0 = float(chunk.t)
        else:
            expected = self._t0 + self._received / self.sample_rate
            if abs(chunk.t - expected) > self.config.audio_resync_s:
                log.info("audio stream jumped by %.3f s; restarting the step clock", chunk.t - expected)
                self.resyncs += 1
                out.extend(self.flush())
                self._t0 = float(chunk.t)
        self._buf = np.concatenate([self._buf, samples])
        self._received += samples.size
        out.extend(self._drain())
        return out

    def flush(self) -> list[AudioStep]:
        """End the stream: finish the pending steps with zero padding, then reset."""
        if self._t0 is None:
            return []
        an = self._an
        end_of_real = self._received
        last_step = (end_of_real - 1) // self.step_samples  # step holding the last real sample
        if end_of_real - last_step * self.step_samples < self.step_samples / 2:
            last_step -= 1  # the final partial step is mostly padding: drop it
        needed = (last_step + 1) * self.step_samples + an.lookahead
        pad = needed - (self._buf_start + len(self._buf))
        if pad > 0:
            self._buf = np.concatenate([self._buf, np.zeros(pad, dtype=np.float32)])
        out = self._drain(last=last_step)
        self.reset()
        return out

    def _drain(self, last: int | None = None) -> list[AudioStep]:
        """Emit every step whose span is in the buffer (and, when flushing, up to step ``last``)."""
        an, out = self._an, []
        buf_end = self._buf_start + len(self._buf)
        while last is None or self._next_step <= last:
            k = self._next_step
            start = k * self.step_samples - an.left  # stream index of the span's first sample
            if start + an.span > buf_end:
                break
            span = self._buf[start - self._buf_start : start - self._buf_start + an.span]
            out.append(self._make_step(k, span))
            self._next_step += 1
        # Keep only what the next step needs.
        keep_from = self._next_step * self.step_samples - an.left
        if keep_from > self._buf_start:
            self._buf = self._buf[keep_from - self._buf_start :].copy()
            self._buf_start = keep_from
        return out

    def _make_step(self, k: int, span: np.ndarray) -> AudioStep:
        values = self._an.features(span)
        step = span[self._an.left : self._an.left + self.step_samples].astype(np.float64)
        level = 10.0 * math.log10(float(np.mean(step**2)) + 1e-20)
        assert self._t0 is not None
        t = self._t0 + (k + 0.5) * self.step_samples / self.sample_rate
        self.steps_out += 1
        return AudioStep(
            t=t,
            values=values.astype(np.float32),
            valid=level >= self.config.audio_silence_dbfs,
            level_dbfs=level,
        )


def audio_steps_of(
    samples: np.ndarray, t0: float = 0.0, config: FeatureConfig | None = None
) -> list[AudioStep]:
    """All steps of a whole recording (the offline path: one push, then flush)."""
    ex = AudioFeatureExtractor(config)
    steps = ex.push(AudioChunk(samples=np.asarray(samples, dtype=np.float32), t=t0))
    return steps + ex.flush()
