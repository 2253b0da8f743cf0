"""Commit logic of the streaming ASR policy, with a scripted recogniser at the lowest layer.

The scripted recogniser knows the true words of a synthetic signal (noise bursts where words are spoken,
zeros elsewhere). It finds which part of the signal it was given by matching the samples, returns the
words fully inside that audio, returns a *truncated* form of a word the audio cuts in two (as whisper
does), and honours prompt/prefix like the real one. The VAD is the real energy detector.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from realtime.asr import AsrConfig, AsrWorker, StreamingAsrPolicy
from realtime.asr.recognizer import cut_collapsed, cut_loops, normalize_word
from realtime.clock import ManualClock
from realtime.sources import AudioRing, ReplayTimeline
from realtime.types import AudioChunk, Word

SR = 16000


class Script:
    """A synthetic utterance plan: words (text, start, end) in seconds; noise where words are."""

    def __init__(self, words: list[tuple[str, float, float]], duration: float, seed: int = 0) -> None:
        self.words = words
        rng = np.random.default_rng(seed)
        self.signal = np.zeros(round(duration * SR), dtype=np.float32)
        for _, s, e in words:
            a, b = round(s * SR), round(e * SR)
            self.signal[a:b] = (0.3 * rng.standard_normal(b - a)).astype(np.float32)
        self._index = {
            self.signal[i : i + 32].tobytes(): i for i in range(len(self.signal) - 32) if self.signal[i] != 0
        }

    def chunks(self, step: float = 0.1, t0: float = 0.0):
        n = round(step * SR)
        for i in range(0, len(self.signal), n):
            yield AudioChunk(self.signal[i : i + n].copy(), t0 + i / SR)


class ScriptedRecognizer:
    def __init__(
        self, script: Script, extra: list[tuple[str, float, float]] = (), delay: float = 0.0
    ) -> None:
        self.script = script
        self.extra = list(extra)  # words returned whenever their span is inside the audio (hallucinations)
        self.delay = delay
        self.calls: list[dict] = []

    def transcribe(
        self, audio: np.ndarray, prompt: str, prefix: str = ""
    ) -> list[tuple[str, float, float, float]]:
        if self.delay:
            time.sleep(self.delay)
        nz = np.flatnonzero(audio)  # locate the audio in the script by its first non-silent samples
        if len(nz) == 0:
            return []
        start = self.script._index[audio[nz[0] : nz[0] + 32].tobytes()] - nz[0]
        t0, t1 = start / SR, (start + len(audio)) / SR
        out = []
        for text, s, e in sorted(self.script.words + self.extra, key=lambda w: w[1]):
            if s >= t0 - 1e-6 and e <= t1 + 1e-6:
                out.append((text, s - t0, e - t0, 0.9))
            elif s >= t0 - 1e-6 and s < t1 - 0.05:  # cut by the end of the audio: a truncated guess
                out.append((text[: max(1, len(text) // 2)], s - t0, t1 - t0, 0.3))
                break
        n_prefix = len(prefix.split())
        self.calls.append(
            {"t0": t0, "t1": t1, "prompt": prompt, "prefix": prefix, "words": [w[0] for w in out]}
        )
        return out[n_prefix:]


def energy_config(**kw) -> AsrConfig:
    base = dict(vad="energy", interval_s=0.4, end_silence_s=0.5, context_keep_s=0.0)
    base.update(kw)
    return AsrConfig(**base)


def run_policy(policy: StreamingAsrPolicy, script: Script, step: float = 0.1) -> list[Word]:
    words: list[Word] = []
    for chunk in script.chunks(step):
        policy.insert_audio(chunk)
        if policy.ready():
            words += policy.process()
    return words + policy.finish()


def utterance(texts: list[str], start: float, dur: float = 0.3, gap: float = 0.05):
    out, t = [], start
    for w in texts:
        out.append((w, t, t + dur))
        t += dur + gap
    return out


def test_local_agreement_commits_each_word_once_and_never_a_cut_word():
    words = utterance(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"], start=0.5)
    script = Script(words, duration=5.0)
    rec = ScriptedRecognizer(script)
    policy = StreamingAsrPolicy(rec, energy_config())
    got = run_policy(policy, script)
    assert [w.text for w in got] == [w[0] for w in words]  # each once, in order, no truncated forms
    for w, (_, s, e) in zip(got, words, strict=True):
        assert w.start == pytest.approx(s, abs=1e-3) and w.end == pytest.approx(e, abs=1e-3)
        assert w.committed_at >= w.end  # causal
    # LocalAgreement-2: a word committed before the utterance end appeared whole in two consecutive runs
    agreed = [w for w in got if w.committed_at < words[-1][2] + 0.5 - 1e-6]
    assert len(agreed) >= 4
    for w in agreed:
        runs = [c for c in rec.calls if c["t1"] + 1e-6 >= w.end and c["t0"] <= w.start]
        seen = [c for c in rec.calls if w.text in c["words"] and c["t1"] <= w.committed_at + 1e-6]
        assert len(seen) >= 2 and len(runs) >= 2
    # the utterance end is committed end_silence_s after the last speech, within one 32 ms VAD frame
    # and one 0.1 s input chunk
    assert 0.5 - 0.04 <= got[-1].committed_at - words[-1][2] <= 0.5 + 0.1 + 0.04
    assert policy.stats.agreed_words == len(agreed) and policy.stats.utterances == 1


def test_silence_and_low_noise_never_reach_the_recogniser():
    rng = np.random.default_rng(1)
    script = Script([], duration=6.0)
    script.signal[3 * SR :] = (10 ** (-60 / 20) * rng.standard_normal(3 * SR)).astype(np.float32)
    rec = ScriptedRecognizer(script)
    policy = StreamingAsrPolicy(rec, energy_config())
    sizes = []
    for chunk in script.chunks(0.1):
        policy.insert_audio(chunk)
        assert not policy.ready()
        assert policy.process() == []
        sizes.append(policy.buffer_seconds)
    assert policy.finish() == [] and rec.calls == []
    assert max(sizes) < 0.6  # the idle buffer stays at the pre-roll, never grows


def test_prompt_and_context_kept_within_a_turn_dropped_after_silence():
    a = utterance(["one", "two", "three"], start=0.5)  # ends 1.55
    b = utterance(["four", "five"], start=2.8)  # 1.25 s pause: same turn
    c = utterance(["six", "seven"], start=6.5)  # 3.0 s pause: a new turn
    for keep in (0.0, 3.0):
        script = Script(a + b + c, duration=8.5)
        rec = ScriptedRecognizer(script)
        policy = StreamingAsrPolicy(rec, energy_config(context_keep_s=keep, prompt_reset_silence_s=2.0))
        got = run_policy(policy, script)
        assert [w.text for w in got] == ["one", "two", "three", "four", "five", "six", "seven"]
        during_b = [x for x in rec.calls if 2.8 < x["t1"] < 4.0]
        during_c = [x for x in rec.calls if x["t1"] > 6.5]
        assert during_b and during_c
        for x in during_b:  # earlier text of the turn reaches the decoder, as prompt or forced prefix
            assert "one two three" in f"{x['prompt']} {x['prefix']}"
            if keep == 0.0:
                assert "one" not in x["prefix"] and x["t0"] > 2.0  # no audio context kept: prompt only
                assert x["prompt"] == "one two three"
            else:
                assert x["prefix"].startswith("one two three") and x["t0"] < 0.6  # audio context kept
        for x in during_c:  # nothing carries over 3 s of silence (the prefix holds only "six" at most)
            assert x["prompt"] == "" and x["prefix"] in ("", "six") and x["t0"] > 6.0
        assert policy.stats.prompt_resets >= 1


def test_long_speech_buffer_is_trimmed_at_sentence_ends():
    texts = [f"w{i}." if i % 8 == 7 else f"w{i}" for i in range(60)]
    words = utterance(texts, start=0.3, dur=0.3, gap=0.05)  # 21 s of speech without a pause
    script = Script(words, duration=words[-1][2] + 1.0)
    rec = ScriptedRecognizer(script)
    policy = StreamingAsrPolicy(rec, energy_config(max_buffer_s=6.0, prompt_chars=30))
    got, sizes = [], []
    for chunk in script.chunks(0.1):
        policy.insert_audio(chunk)
        if policy.ready():
            got += policy.process()
        sizes.append(policy.buffer_seconds)
        assert len(policy.prompt) <= 30
    got += policy.finish()
    assert [w.text for w in got] == texts
    assert policy.stats.trims >= 2
    assert max(sizes) <= 6.0 + 0.4 + 0.1
    assert max(c["t1"] - c["t0"] for c in rec.calls) <= 6.0 + 0.4 + 0.1
    trimmed_starts = {round(c["t0"], 2) for c in rec.calls}
    sentence_ends = {round(e, 2) for t, _, e in words if t.endswith(".")}
    assert trimmed_starts & sentence_ends  # the buffer restarted where a committed sentence ended


def test_words_in_pauses_are_dropped_as_hallucinations():
    words = utterance(["hello", "there"], start=0.5) + utterance(["general", "kenobi"], start=2.1)
    script = Script(words, duration=4.0)
    # invented in the 0.85 s pause, more than word_speech_margin_s from any speech
    rec = ScriptedRecognizer(script, extra=[("Thank", 1.55, 1.75)])
    policy = StreamingAsrPolicy(rec, energy_config(end_silence_s=1.0, word_speech_margin_s=0.3))
    got = run_policy(policy, script)
    assert [w.text for w in got] == ["hello", "there", "general", "kenobi"]
    assert policy.stats.nonspeech_words_dropped >= 1


def test_input_gaps_are_filled_or_reset():
    words = utterance(["a1", "a2", "a3"], start=0.3)
    script = Script(words, duration=2.0)
    rec = ScriptedRecognizer(script)
    policy = StreamingAsrPolicy(rec, energy_config())
    chunks = list(script.chunks(0.1))
    for c in chunks[:5]:
        policy.insert_audio(c)
    end = policy.buffer_start + policy.buffer_seconds
    policy.insert_audio(AudioChunk(np.zeros(1600, np.float32), end + 1.0))  # 1 s of audio lost
    assert policy.stats.gaps_filled == 1
    assert policy.buffer_start + policy.buffer_seconds == pytest.approx(end + 1.1)
    policy.insert_audio(AudioChunk(np.zeros(1600, np.float32), end + 10.0))  # far too long: reset
    assert policy.stats.resets == 1 and not policy.in_utterance
    with pytest.raises(ValueError, match="16 kHz"):
        policy.insert_audio(AudioChunk(np.zeros(100, np.float32), 0.0, sample_rate=8000))


def test_loop_and_collapse_guards():
    w = [(t, i * 0.3, i * 0.3 + 0.25, 0.9) for i, t in enumerate("and so my fellow and so my fellow".split())]
    assert [x[0] for x in cut_loops(w)] == ["and", "so", "my", "fellow"]
    keep = [(t, i * 0.3, i * 0.3 + 0.25, 0.9) for i, t in enumerate("no no we will".split())]
    assert cut_loops(keep) == keep  # a word said twice is speech, not a loop
    collapsed = [
        ("ask", 0.0, 0.4, 0.9),
        ("what", 0.4, 0.7, 0.9),
        ("and", 0.7, 0.7, 0.2),
        ("so", 0.7, 0.71, 0.2),
    ]
    assert [x[0] for x in cut_collapsed(collapsed)] == ["ask", "what"]
    assert normalize_word("Country!") == "country" and normalize_word("don't") == "don't"


# ---- worker ------------------------------------------------------------------------------------------------
def asr_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("asr:")]


def test_worker_backlog_drops_oldest_audio_visibly():
    words = utterance([f"x{i}" for i in range(20)], start=0.2)
    script = Script(words, duration=8.0)
    rec = ScriptedRecognizer(script, delay=0.3)  # slower than the audio arrives
    cfg = energy_config(max_backlog_s=1.0, interval_s=0.4)
    clock = ManualClock()
    worker = AsrWorker(cfg, clock, recognizer=rec)
    worker.start()
    statuses = set()
    for chunk in script.chunks(0.1):
        worker.submit(chunk)
        statuses.add(worker.stats().status)
        assert worker.stats().pending_s <= cfg.max_backlog_s + 0.1  # bounded
    time.sleep(0.5)
    stats = worker.stats()
    assert stats.dropped_s > 1.0 and stats.drop_events >= 1
    assert "behind" in statuses or stats.status == "behind"
    assert worker.stop()
    assert not asr_threads()


def test_worker_with_reader_in_clock_stopped_replay_is_deterministic():
    words = utterance(["red", "green", "blue", "cyan", "magenta"], start=0.4)
    script = Script(words, duration=3.0)
    results = []
    for _ in range(2):
        timeline = ReplayTimeline("clock-stopped", ManualClock())
        ring = AudioRing(10.0, SR)
        reader = ring.open_reader("asr")
        worker = AsrWorker(
            energy_config(),
            timeline.clock,
            reader=reader,
            recognizer=ScriptedRecognizer(script, delay=0.01),
            timeline=timeline,
        )
        worker.start()
        producer = timeline.participant("producer")
        for chunk in script.chunks(0.05):
            assert producer.wait_until(chunk.t_end)
            ring.write(chunk.samples, chunk.t)
        producer.finish()
        assert worker.wait_idle(5.0)
        worker.stop()
        results.append([(w.text, round(w.committed_at, 6)) for w in worker.transcript()])
        _, cursor = worker.words_since(0)
        assert cursor == 5 and worker.words_since(cursor)[0] == []
        assert worker.partial() == ""  # everything committed at stop
    assert results[0] == results[1]
    assert [t for t, _ in results[0]] == ["red", "green", "blue", "cyan", "magenta"]
    assert not asr_threads()
