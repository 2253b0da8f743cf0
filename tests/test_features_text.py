"""Offline transcription (faster-whisper tiny.en) and the text features placed on the words' steps."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.features.grid import to_grid
from realtime.features.text import (
    PHRASE_MAX_SECONDS,
    PHRASE_MAX_WORDS,
    PHRASE_SENTENCE,
    PHRASE_WINDOW,
    TEXT_DIM,
    TextEmbedder,
    WordTextTrack,
    phrase_of,
    phrase_rule_for,
    text_arrays,
)
from realtime.features.transcribe import load_whisper, transcribe_samples, word_error_rate
from realtime.types import Word

WER_MAX = 0.15  # tiny.en int8 gets jfk.flac word-perfect here; 0.15 leaves room for 3 slips in 22 words


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return TextEmbedder()


@pytest.fixture(scope="module")
def jfk_audio(shared_data) -> np.ndarray:
    from realtime.features.media import read_audio

    return read_audio(shared_data / "media" / "jfk.flac")


@pytest.fixture(scope="module")
def jfk_words(jfk_audio) -> list[Word]:
    return transcribe_samples(jfk_audio, load_whisper(2))


def test_transcript_of_real_speech_is_accurate(jfk_words, shared_data) -> None:
    reference = (shared_data / "media" / "jfk.txt").read_text()
    hypothesis = " ".join(w.text for w in jfk_words)
    assert word_error_rate(reference, hypothesis) <= WER_MAX, hypothesis
    assert all(0 <= w.start <= w.end <= 11.05 for w in jfk_words)
    assert [w.start for w in jfk_words] == sorted(w.start for w in jfk_words)
    assert jfk_words[0].text.lower().startswith("and") and jfk_words[-1].text.lower().startswith("country")


def test_transcript_times_are_offset_by_t0(jfk_audio, jfk_words) -> None:
    shifted = transcribe_samples(jfk_audio, load_whisper(2), t0=100.0)
    assert [w.text for w in shifted] == [w.text for w in jfk_words]
    np.testing.assert_allclose([w.start for w in shifted], [100.0 + w.start for w in jfk_words], atol=1e-6)


def test_silence_and_faint_noise_give_no_words() -> None:
    model = load_whisper(2)
    assert transcribe_samples(np.zeros(5 * 16000, np.float32), model) == []
    noise = (3e-4 * np.random.default_rng(0).standard_normal(5 * 16000)).astype(np.float32)
    assert transcribe_samples(noise, model) == []


def test_load_whisper_returns_one_shared_model() -> None:
    assert load_whisper(2) is load_whisper(cpu_threads=2)


def test_word_error_rate() -> None:
    assert word_error_rate("Ask not, what", "ask not what") == 0.0
    assert word_error_rate("a b c d", "a x c") == 0.5
    assert word_error_rate("", "") == 0.0


def test_embeddings_are_unit_vectors_and_cached(embedder: TextEmbedder) -> None:
    before = embedder.cache_misses
    a = embedder.embed(["what a wonderful film", "this is awful"])
    assert a.shape == (2, TEXT_DIM) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    b = embedder.embed(["this is awful"])
    np.testing.assert_array_equal(b[0], a[1])
    assert embedder.cache_misses == before + 2 and embedder.cache_hits >= 1
    # meaning, not spelling: paraphrases are closer than opposites
    c = embedder.embed(["what a great movie", "what a terrible movie"])
    assert float(a[0] @ c[0]) > float(a[0] @ c[1])


def _w(text: str, start: float, end: float) -> Word:
    return Word(text=text, start=start, end=end)


def test_phrase_looks_back_at_most_n_words_and_s_seconds() -> None:
    words = [_w(f"w{i}", 0.3 * i, 0.3 * i + 0.2) for i in range(20)]
    assert phrase_of(words[:3], words[3]) == "w0 w1 w2 w3"
    assert phrase_of(words[:19], words[19]).split() == [f"w{i}" for i in range(20 - PHRASE_MAX_WORDS, 20)]
    far = [_w("old", 0.0, 0.5), _w("new", PHRASE_MAX_SECONDS + 1.0, PHRASE_MAX_SECONDS + 1.4)]
    assert phrase_of(far[:1], far[1]) == "new"



def test_v3_phrase_is_the_sentence_so_far() -> None:
    """live-v3: the context starts after the last sentence end or ≥ 2 s pause, up to 32 words / 15 s;
    v1/v2 keep their 12-word window over the same words."""
    assert phrase_rule_for("live-v3") is PHRASE_SENTENCE and phrase_rule_for("mmcl-live@live-v2") is PHRASE_WINDOW
    text = 'This is awful, I hate waiting in the rain. But "today" was a really wonderful day for all of us here'
    words = [_w(t, 0.35 * i, 0.35 * i + 0.3) for i, t in enumerate(text.split())]
    last = len(words) - 1
    second = 'But "today" was a really wonderful day for all of us here'
    assert phrase_of(words[:last], words[last], PHRASE_SENTENCE) == second
    assert phrase_of(words[:last], words[last]).split() == text.split()[-PHRASE_MAX_WORDS:]
    assert phrase_of(words[:9], words[9], PHRASE_SENTENCE) == "But"  # the word after "rain."
    assert phrase_of(words[:8], words[8], PHRASE_SENTENCE) == "This is awful, I hate waiting in the rain."
    closers = [_w("(it's over!)", 0.0, 0.3), _w("next", 0.4, 0.6)]
    assert phrase_of(closers[:1], closers[1], PHRASE_SENTENCE) == "next"
    paused = [_w("before", 0.0, 0.4), _w("after", 2.4, 2.8), _w("more", 4.3, 4.6)]
    assert phrase_of(paused[:1], paused[1], PHRASE_SENTENCE) == "after"  # a 2.0 s pause ends the context
    assert phrase_of(paused[:2], paused[2], PHRASE_SENTENCE) == "after more"  # 1.5 s does not
    long = [_w(f"w{i}", 0.3 * i, 0.3 * i + 0.2) for i in range(45)]
    assert phrase_of(long[:44], long[44], PHRASE_SENTENCE).split() == [f"w{i}" for i in range(13, 45)]
    slow = [_w(f"s{i}", 1.0 * i, 1.0 * i + 0.5) for i in range(20)]  # 1 word/s: the 15 s limit binds first
    assert phrase_of(slow[:19], slow[19], PHRASE_SENTENCE).split() == [f"s{i}" for i in range(5, 20)]


def test_track_uses_its_rule_for_history_and_phrases() -> None:
    class Echo:
        dim = 1

        def __init__(self) -> None:
            self.seen: list[str] = []

        def embed(self, texts):
            self.seen.extend(texts)
            return np.zeros((len(texts), 1), np.float32)

    words = [_w(f"w{i}", 0.3 * i, 0.3 * i + 0.2) for i in range(30)]
    v3, v2 = Echo(), Echo()
    WordTextTrack(v3, PHRASE_SENTENCE).add(words)
    WordTextTrack(v2).add(words)
    assert v3.seen[-1].split() == [f"w{i}" for i in range(30)]
    assert v2.seen[-1].split() == [f"w{i}" for i in range(30 - PHRASE_MAX_WORDS, 30)]
    track = WordTextTrack(Echo(), PHRASE_SENTENCE)
    track.remember(words[:20])  # offline: context without embedding
    track.add(words[20:21])
    assert track.embedder.seen == [" ".join(f"w{i}" for i in range(21))]

def test_words_are_placed_on_the_steps_they_span_and_pauses_are_masked(embedder, jfk_words) -> None:
    samples = WordTextTrack(embedder).add(jfk_words)
    assert len(samples) == len(jfk_words)
    starts, ends, values, valid = text_arrays(samples)
    grid, mask = to_grid(starts, values, valid, 0.0, 110, 10.0, ends=ends)
    for k in range(110):
        a, b = k / 10, (k + 1) / 10
        spoken = any(w.start < b and w.end > a for w in jfk_words if w.end > w.start)
        assert mask[k] == spoken, (k, a, b)
    assert 0 < mask.mean() < 1  # the speech has pauses
    assert (grid[~mask] == 0).all() and np.isfinite(grid).all()


def test_incremental_words_give_the_same_features_as_all_at_once(embedder, jfk_words) -> None:
    batch = WordTextTrack(embedder)
    all_at_once = text_arrays(batch.add(jfk_words))
    fresh = TextEmbedder(cache_size=0)  # no cache: every phrase is re-embedded in a batch of one
    live = WordTextTrack(fresh)
    pieces = []
    for i in range(0, len(jfk_words), 3):  # as a streaming ASR commits them, a few at a time
        pieces += live.add(jfk_words[i : i + 3])
    one_by_one = text_arrays(pieces)
    g1, m1 = to_grid(all_at_once[0], all_at_once[2], all_at_once[3], 0.0, 110, 10.0, ends=all_at_once[1])
    g2, m2 = to_grid(one_by_one[0], one_by_one[2], one_by_one[3], 0.0, 110, 10.0, ends=one_by_one[1])
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_allclose(g1, g2, atol=1e-5)  # tolerance: MiniLM batch padding moves outputs ~1e-7


def test_out_of_order_and_repeated_words_are_dropped(embedder) -> None:
    track = WordTextTrack(embedder)
    assert len(track.add([_w("hello", 1.0, 1.2), _w("world", 1.3, 1.5)])) == 2
    assert track.add([_w("hello", 1.0, 1.2)]) == []  # before the last word
    assert track.add([_w("world", 1.3, 1.5)]) == []  # the same word again
    assert track.add([_w("   ", 2.0, 2.1)]) == []  # empty text is not a word
    assert track.dropped_out_of_order == 2
    assert track.add([_w("again", 1.6, 1.8)])[0].phrase == "hello world again"
