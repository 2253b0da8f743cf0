"""The recogniser behind the streaming policy: a small protocol and its faster-whisper implementation.

``transcribe(audio, prompt)`` returns ``(text, start, end, probability)`` per word, times in seconds from
the start of ``audio``. Everything happens inside the call on the caller's thread — faster-whisper's lazy
segment generator is never handed to another thread.

:class:`FasterWhisperRecognizer` decodes greedily (``beam_size`` 1 by default), without conditioning on
previous text except the explicit prompt, and with word timestamps from the cross-attention alignment.
With ``reduced_context`` (default) the encoder sees only the buffered audio plus ``context_pad_s`` of
padding, rounded up to whole seconds, instead of whisper's fixed 30 s window: on one CPU thread this cuts
tiny.en's encoder from ~0.5 s to ~0.02–0.1 s per call, which is what makes sub-second commit latency
possible (the same idea as whisper.cpp's ``audio_ctx``). Guards against whisper's failure modes on short
windows: a no-speech/low-log-probability check, a token budget proportional to the audio length, and
a mild repetition penalty (1.1) and truncation of looping n-grams ("and so my fellow Americans. And so
my fellow Americans." — measured on jfk.flac prefixes: loops in 6 of 26 reduced-context decodes without
the penalty, none with it; 1.2 started to damage legitimate repeats).
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any, Protocol

import numpy as np

from realtime.asr.config import AsrConfig

log = logging.getLogger(__name__)

RecognizedWord = tuple[str, float, float, float]  # (text, start s, end s, probability)
SAMPLE_RATE = 16000
_PREPEND = "\"'“¿([{-"
_APPEND = "\"'.。,，!！?？:：”)]}、"


class Recognizer(Protocol):
    def transcribe(self, audio: np.ndarray, prompt: str, prefix: str = "") -> list[RecognizedWord]:
        """Words of 16 kHz mono float32 ``audio`` (times relative to its first sample). ``prompt`` is
        earlier text (context only); ``prefix`` is the already-committed text spoken at the start of
        ``audio``: the decoder is forced to begin with it and only the words after it are returned."""
        ...


def normalize_word(text: str) -> str:
    """Lower-case, punctuation-free form used to compare words across hypotheses."""
    return re.sub(r"[^\w']", "", text.lower())


def cut_loops(words: list[RecognizedWord], max_n: int = 8) -> list[RecognizedWord]:
    """Truncate a decoding loop, keeping its first copy: an n-gram repeated back to back (twice for
    n ≥ 3 words, three times for 1–2 words, so "very very" and "no, no" survive)."""
    keys = [normalize_word(w[0]) for w in words]
    for i in range(len(keys)):
        for n in range(1, max_n + 1):
            repeats = 3 if n <= 2 else 2
            if i + repeats * n > len(keys):
                break
            gram = keys[i : i + n]
            if all(keys[i + k * n : i + (k + 1) * n] == gram for k in range(1, repeats)):
                return words[: i + n]
    return words


def cut_collapsed(words: list[RecognizedWord], min_dur: float = 0.03) -> list[RecognizedWord]:
    """Truncate before the first two consecutive words the alignment squeezed into (almost) no time: text
    without acoustic support, typically a decoding restart ("…fellow America and so my fellow…")."""
    for i in range(len(words) - 1):
        if words[i][2] - words[i][1] < min_dur and words[i + 1][2] - words[i + 1][1] < min_dur:
            return words[:i]
    return words


def load_whisper_model(config: AsrConfig) -> Any:
    """The shared faster-whisper model (via realtime.features.transcribe.load_whisper when present)."""
    try:
        from realtime.features.transcribe import load_whisper
    except ImportError:
        load_whisper = None
    if load_whisper is not None:
        return load_whisper(config.cpu_threads, model_dir=config.model_dir or None)
    from faster_whisper import WhisperModel

    from realtime.assets import whisper_model_dir

    path = config.model_dir or str(whisper_model_dir())
    return WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=config.cpu_threads)


class FasterWhisperRecognizer:
    def __init__(self, config: AsrConfig | None = None, model: Any | None = None) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.config = config or AsrConfig()
        self.model = model if model is not None else load_whisper_model(self.config)
        self.tokenizer = Tokenizer(
            self.model.hf_tokenizer,
            self.model.model.is_multilingual,
            task="transcribe",
            language=self.config.language,
        )
        self._suppress = list(get_suppressed_tokens(self.tokenizer, [-1]))
        self.calls = 0
        self.rejected_no_speech = 0
        self.loops_cut = 0

    def transcribe(self, audio: np.ndarray, prompt: str = "", prefix: str = "") -> list[RecognizedWord]:
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        if len(x) < SAMPLE_RATE // 10:
            return []
        self.calls += 1
        offset = 0.0
        if len(x) > 29 * SAMPLE_RATE:  # whisper's window is 30 s; keep the newest audio (no prefix then)
            offset = (len(x) - 29 * SAMPLE_RATE) / SAMPLE_RATE
            x = x[-29 * SAMPLE_RATE :]
            prefix = ""
        if self.config.reduced_context:
            words = self._reduced(x, prompt, prefix)
        else:
            words = _drop_prefix(self._full(x, prompt, prefix), prefix)
        n = len(words)
        words = cut_loops(cut_collapsed(words))
        if len(words) < n:
            self.loops_cut += 1
        return [(t, s + offset, e + offset, p) for t, s, e, p in words]

    def _full(self, x: np.ndarray, prompt: str, prefix: str) -> list[RecognizedWord]:
        segments, _info = self.model.transcribe(
            x,
            language=self.config.language,
            beam_size=self.config.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            prefix=prefix or None,
            repetition_penalty=self.config.repetition_penalty,
            vad_filter=False,
            no_speech_threshold=self.config.no_speech_threshold,
            temperature=0.0,
        )
        out: list[RecognizedWord] = []
        for seg in segments:  # the lazy generator is consumed here, on this thread
            for w in seg.words or []:
                if w.word.strip():
                    out.append((w.word.strip(), float(w.start), float(w.end), float(w.probability)))
        return out

    def _reduced(self, x: np.ndarray, prompt: str, prefix: str) -> list[RecognizedWord]:
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.transcribe import merge_punctuations

        m, tok = self.model, self.tokenizer
        n_frames = len(x) // 160  # 10 ms mel frames of content
        ctx = min(3000, math.ceil((n_frames + self.config.context_pad_s * 100) / 100.0) * 100)
        # pad with silent *audio* (as whisper pads to 30 s), then cut the mel to the reduced window
        if ctx * 160 > len(x):
            x = np.concatenate([x, np.zeros(ctx * 160 - len(x), dtype=np.float32)])
        encoder_output = m.encode(pad_or_trim(m.feature_extractor(x), ctx))  # (1, ctx / 2, d)
        prev = tok.encode(" " + prompt.strip())[-(m.max_length // 2 - 1) :] if prompt.strip() else []
        prefix_tokens = tok.encode(" " + prefix.strip()) if prefix.strip() else []
        if len(prefix_tokens) >= m.max_length // 2 - 1:  # too long to force: decode everything again
            prefix, prefix_tokens = "", []
        p = m.get_prompt(tok, prev, without_timestamps=True, prefix=prefix.strip() or None)
        content_end = n_frames / 100.0
        max_new = min(m.max_length - len(p) - 1, int(12 + 8 * content_end))
        result = m.model.generate(
            encoder_output,
            [p],
            beam_size=self.config.beam_size,
            patience=1.0,
            length_penalty=1.0,
            repetition_penalty=self.config.repetition_penalty,
            max_length=len(p) + max_new,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tok.eot]
        n_prefix = len(prefix_tokens)
        if tokens[:n_prefix] != prefix_tokens:  # the result did not echo the forced prefix
            n_prefix = 0
        if len(tokens) <= n_prefix:
            return []
        n_new = len(tokens) - n_prefix
        avg_logprob = result.scores[0] * n_new / (n_new + 1)
        if result.no_speech_prob > self.config.no_speech_threshold and avg_logprob < -1.0:
            self.rejected_no_speech += 1
            return []
        alignment = m.find_alignment(tok, [tokens], encoder_output, n_frames)[0]
        merge_punctuations(alignment, _PREPEND, _APPEND)
        out: list[RecognizedWord] = []
        consumed = 0
        for w in alignment:
            first_token = consumed
            consumed += len(w["tokens"])
            if first_token < n_prefix:  # a word of the forced prefix (already committed)
                continue
            text = w["word"].strip()
            start, end = float(w["start"]), min(float(w["end"]), content_end)
            # words aligned entirely past the audio are continuations invented over the padding
            if text and start < content_end - 0.05:
                out.append((text, start, end, float(w["probability"])))
        return out


def _drop_prefix(words: list[RecognizedWord], prefix: str) -> list[RecognizedWord]:
    """Remove the echo of a forced prefix from the start of ``words``."""
    keys = [k for k in (normalize_word(t) for t in prefix.split()) if k]
    i = 0
    while i < len(words) and i < len(keys) and normalize_word(words[i][0]) == keys[i]:
        i += 1
    return words[i:] if i == len(keys) else words
