"""Streaming transcription as an I/O-free policy (after whisper_streaming's ``OnlineASRProcessor``).

``insert_audio(chunk)`` appends audio and runs the voice-activity gate; ``ready()`` says whether a
recogniser run is due; ``process(now)`` runs it and returns the words newly *committed*; ``finish(now)``
commits what is left. No threads, no clock: ``now`` (the commit time stamped on each word) defaults to
the end of the audio inserted so far, which is what clock-stopped replay wants (the worker re-stamps
words with its clock after the run).

How words get committed:

* **LocalAgreement-2** — every ``interval_s`` of new audio during speech the buffer is transcribed; the
  longest common prefix (compared lower-case, without punctuation) of this hypothesis and the previous
  one is committed — but only words that ended ``end_guard_s`` before the *previous* run's audio ended, so
  that both runs heard the word whole (a truncated "you" for "your" cannot agree its way in).
* **End of utterance** — after ``end_silence_s`` of silence the utterance is transcribed once more and its
  hypothesis committed whole (as whisper_streaming's VAD-controlled mode does). Utterance-final words are
  thus committed ``end_silence_s`` + one run after they are spoken instead of waiting for an agreeing
  hypothesis that no further audio would change.
* **Context and prefix** — within a turn (pauses shorter than ``prompt_reset_silence_s``) the last
  ``context_keep_s`` of audio before an utterance stays in the buffer, and the words committed in the
  buffer are passed as a forced decoder *prefix*: whisper hears the context but only returns what follows.
  Older committed text (at most ``prompt_chars``) is the *prompt*. Both are dropped after
  ``prompt_reset_silence_s`` of silence, so nothing carries over a silence.
* **Gate** — no recogniser run without detected speech (Silero VAD + an energy floor, ``min_speech_s``);
  words whose span is farther than ``word_speech_margin_s`` from detected speech are dropped
  (hallucinations in pauses); the audio sent stops ``tail_pad_s`` after the last speech frame.
* **Buffer** — kept to the pre-roll (plus context) while idle; during long speech without pauses it is
  trimmed beyond ``max_buffer_s`` at the last committed sentence end (or word end). Trims never cut a
  committed word in two.

Gaps in the input (dropped audio) up to 2 s are filled with silence; longer gaps reset the utterance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from realtime.asr.config import AsrConfig
from realtime.asr.recognizer import Recognizer, normalize_word
from realtime.asr.vad import FRAME, SpeechDetector, frame_db, make_vad
from realtime.types import AudioChunk, Word

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FRAME_S = FRAME / SAMPLE_RATE
MAX_GAP_FILL_S = 2.0
_SENTENCE_END = (".", "?", "!")


@dataclass
class _Hyp:
    text: str
    key: str
    start: float
    end: float
    prob: float


@dataclass
class PolicyStats:
    runs: int = 0  # recogniser calls
    reused_runs: int = 0  # runs answered from the previous call (identical input during a pause)
    empty_runs: int = 0  # failed decodes during speech, ignored for the agreement
    audio_transcribed_s: float = 0.0  # total audio passed to the recogniser
    utterances: int = 0  # utterances ended by silence (or finish)
    committed_words: int = 0
    agreed_words: int = 0  # committed by LocalAgreement-2
    final_words: int = 0  # committed at an utterance end / finish
    nonspeech_words_dropped: int = 0  # hypothesis words outside detected speech
    trims: int = 0  # buffer trims during long speech
    gaps_filled: int = 0
    resets: int = 0  # gaps too long to fill
    prompt_resets: int = 0


class StreamingAsrPolicy:
    def __init__(
        self, recognizer: Recognizer, config: AsrConfig | None = None, vad: SpeechDetector | None = None
    ) -> None:
        self.recognizer = recognizer
        self.config = config or AsrConfig()
        self.vad = vad if vad is not None else make_vad(self.config.vad)
        self.stats = PolicyStats()
        self.reset()

    def reset(self) -> None:
        """Forget all audio, hypotheses and prompt (keeps the counters)."""
        self._audio = np.zeros(0, dtype=np.float32)
        self._buf_t0: float | None = None
        self._end_t: float | None = None
        self._vad_rest = np.zeros(0, dtype=np.float32)
        self._vad_t: float | None = None  # time of the first not-yet-classified sample
        self._frame_speech = False
        self._run_start: float | None = None  # start of the current speech run
        self._regions: list[list[float]] = []  # detected speech [start, end] on the clock
        self._last_speech_end: float | None = None
        self._utt_start: float | None = None  # active utterance
        self._utt_ended = False
        self._last_run_end = 0.0
        self._run_audio_end = 0.0
        self._last_key: tuple | None = None  # input of the last recogniser call, and its output
        self._last_raw: list = []
        self._hyp_audio_end = -1e9  # audio end of the run that produced self._hyp
        self._hyp: list[_Hyp] = []  # uncommitted tail of the previous hypothesis
        self._committed_in_buffer: list[Word] = []
        self._last_committed_end = -1e9
        self._prompt_words: list[str] = []
        self.vad.reset()

    # ---- state for dashboards/tests ------------------------------------------------------------------------
    @property
    def in_utterance(self) -> bool:
        return self._utt_start is not None

    @property
    def utterance_ended(self) -> bool:
        """Silence of ``end_silence_s`` followed speech; the next ``process()`` commits the utterance."""
        return self._utt_start is not None and self._utt_ended

    @property
    def buffer_seconds(self) -> float:
        return len(self._audio) / SAMPLE_RATE

    @property
    def buffer_start(self) -> float | None:
        return self._buf_t0

    @property
    def prompt(self) -> str:
        text = ""
        for w in reversed(self._prompt_words):
            if len(text) + len(w) + 1 > self.config.prompt_chars:
                break
            text = f"{w} {text}" if text else w
        return text

    @property
    def hypothesis(self) -> list[str]:
        """The uncommitted tail of the last hypothesis (for a live 'typing' display)."""
        return [h.text for h in self._hyp]

    # ---- input ---------------------------------------------------------------------------------------------
    def insert_audio(self, chunk: AudioChunk) -> None:
        if chunk.sample_rate != SAMPLE_RATE:
            raise ValueError(f"the ASR policy takes 16 kHz audio, got {chunk.sample_rate} Hz")
        x = np.asarray(chunk.samples, dtype=np.float32).reshape(-1)
        t = float(chunk.t)
        if self._end_t is not None:
            gap = t - self._end_t
            if gap > 0.01:
                if gap <= MAX_GAP_FILL_S:
                    self.stats.gaps_filled += 1
                    self._append(np.zeros(round(gap * SAMPLE_RATE), dtype=np.float32), self._end_t)
                    t = self._end_t
                else:
                    log.info("ASR input jumped %.2f s ahead; resetting the utterance", gap)
                    self.stats.resets += 1
                    self.reset()  # the pending hypothesis and the prompt are dropped with the audio
            elif gap < -0.01:  # overlap: keep only the new part
                skip = round(-gap * SAMPLE_RATE)
                if skip >= len(x):
                    return
                x, t = x[skip:], self._end_t
        if len(x):
            self._append(x, t)

    def _append(self, x: np.ndarray, t: float) -> None:
        if self._buf_t0 is None:
            self._buf_t0, self._end_t, self._vad_t = t, t, t
        self._audio = np.concatenate([self._audio, x])
        assert self._end_t is not None
        self._end_t += len(x) / SAMPLE_RATE
        self._run_vad(x)
        if self._utt_start is None:
            keep = self.config.pre_roll_s + self.config.min_speech_s + 2 * FRAME_S
            if (
                self._last_speech_end is not None
                and self._end_t - self._last_speech_end < self.config.prompt_reset_silence_s
            ):
                keep = max(keep, self._end_t - self._last_speech_end + self.config.context_keep_s)
            self._trim_to(self._end_t - keep)

    def _run_vad(self, x: np.ndarray) -> None:
        cfg = self.config
        pending = np.concatenate([self._vad_rest, x])
        n = len(pending) // FRAME * FRAME
        self._vad_rest = pending[n:]
        if n == 0:
            return
        frames = pending[:n].reshape(-1, FRAME)
        probs = self.vad.probabilities(frames)
        levels = frame_db(frames)
        assert self._vad_t is not None
        for i, (p, db) in enumerate(zip(probs, levels, strict=True)):
            tf = self._vad_t + i * FRAME_S
            hold = self._frame_speech and p >= cfg.vad_threshold - 0.15
            speech = (p >= cfg.vad_threshold or hold) and db >= cfg.energy_floor_db
            self._frame_speech = speech
            if speech:
                if self._run_start is None:
                    self._run_start = tf
                if self._regions and tf - self._regions[-1][1] < 1e-6:
                    self._regions[-1][1] = tf + FRAME_S
                else:
                    self._regions.append([tf, tf + FRAME_S])
                if self._utt_start is not None or tf + FRAME_S - self._run_start >= cfg.min_speech_s:
                    if self._utt_start is None:
                        self._start_utterance(self._run_start)
                    self._last_speech_end = tf + FRAME_S
                    self._utt_ended = False
            else:
                self._run_start = None
                if (
                    self._utt_start is not None
                    and self._last_speech_end is not None
                    and tf + FRAME_S - self._last_speech_end >= cfg.end_silence_s
                ):
                    self._utt_ended = True
        self._vad_t += len(frames) * FRAME_S

    def _start_utterance(self, t: float) -> None:
        cfg = self.config
        if self._last_speech_end is None or t - self._last_speech_end >= cfg.prompt_reset_silence_s:
            if self._prompt_words or self._committed_in_buffer:
                self.stats.prompt_resets += 1
            self._prompt_words = []
            self._committed_in_buffer = []
        self._utt_start = t
        self._utt_ended = False
        self._last_run_end = t
        keep = cfg.pre_roll_s
        if self._committed_in_buffer:  # same turn: keep the end of the previous utterance as context
            keep = max(keep, t - (self._last_speech_end or t) + cfg.context_keep_s)
        self._trim_to(t - keep)

    # ---- processing ----------------------------------------------------------------------------------------
    def ready(self) -> bool:
        """True when ``process()`` would run the recogniser (new speech audio, or an utterance ended)."""
        if self._utt_start is None or self._end_t is None:
            return False
        return self._utt_ended or self._end_t - self._last_run_end >= self.config.interval_s - 1e-9

    def process(self, now: float | None = None) -> list[Word]:
        """Run the recogniser if speech is buffered; return newly committed words (may be empty)."""
        if self._utt_start is None or self._end_t is None:
            return []
        now = self._end_t if now is None else now
        if self._utt_ended:
            return self._end_utterance(now)
        prev_end = self._hyp_audio_end
        hyp = self._recognize()
        if not hyp and self._hyp:
            # an empty hypothesis while speech goes on is a failed decode (truncated as a loop or an
            # unaligned jump ahead), not evidence: keep the previous one for the next agreement
            self.stats.empty_runs += 1
            return []
        self._hyp_audio_end = self._run_audio_end
        agreed = 0
        # both hypotheses must have heard the whole word: a word the previous run's audio cut (or nearly
        # cut) may be a truncated guess that happens to agree ("you" for "your")
        limit = prev_end - self.config.end_guard_s
        while (
            agreed < min(len(hyp), len(self._hyp))
            and hyp[agreed].key == self._hyp[agreed].key
            and hyp[agreed].end <= limit
        ):
            agreed += 1
        self._hyp = hyp[agreed:]
        words = self._commit(hyp[:agreed], now)
        self.stats.agreed_words += len(words)
        if self.buffer_seconds > self.config.max_buffer_s:
            self._trim_long_buffer()
        return words

    def finish(self, now: float | None = None) -> list[Word]:
        """Commit everything still pending (end of stream)."""
        if self._utt_start is None or self._end_t is None:
            return []
        return self._end_utterance(self._end_t if now is None else now)

    def _end_utterance(self, now: float) -> list[Word]:
        hyp = self._recognize()
        if not hyp and self._hyp:  # the final decode failed: the last good hypothesis is all we have
            self.stats.empty_runs += 1
            hyp = self._hyp
        words = self._commit(hyp, now)
        self.stats.final_words += len(words)
        self.stats.utterances += 1
        self._hyp = []
        self._hyp_audio_end = -1e9
        self._utt_start = None
        self._utt_ended = False
        assert self._end_t is not None
        self._trim_to(self._end_t - max(self.config.pre_roll_s, self.config.context_keep_s))
        return words

    def _recognize(self) -> list[_Hyp]:
        cfg = self.config
        assert self._buf_t0 is not None and self._end_t is not None
        end = self._end_t
        if self._last_speech_end is not None:
            end = min(end, self._last_speech_end + cfg.tail_pad_s)
        n = max(0, round((end - self._buf_t0) * SAMPLE_RATE))
        audio = self._audio[:n]
        self._last_run_end = self._end_t
        self._run_audio_end = self._buf_t0 + n / SAMPLE_RATE
        if n < SAMPLE_RATE // 10:
            return []
        prefix, prompt = " ".join(w.text for w in self._committed_in_buffer), self.prompt
        key = (round(self._buf_t0, 6), n, prompt, prefix)
        if key == self._last_key:  # same audio, prompt and prefix (a pause): the result cannot differ
            raw = self._last_raw
            self.stats.reused_runs += 1
        else:
            self.stats.runs += 1
            self.stats.audio_transcribed_s += n / SAMPLE_RATE
            raw = self.recognizer.transcribe(audio, prompt, prefix=prefix)
            self._last_key, self._last_raw = key, raw
        t0 = self._buf_t0
        out: list[_Hyp] = []
        for text, s, e, p in raw:
            key = normalize_word(text)
            if not key:
                continue
            start, stop = t0 + max(0.0, float(s)), t0 + min(float(e), n / SAMPLE_RATE)
            stop = max(stop, start)
            if not self._near_speech(start, stop):
                self.stats.nonspeech_words_dropped += 1
                continue
            out.append(_Hyp(text, key, start, stop, float(p)))
        return self._drop_committed(out, by_time=not prefix)

    def _near_speech(self, start: float, end: float) -> bool:
        m = self.config.word_speech_margin_s
        return any(s - m <= end and start <= e + m for s, e in self._regions)

    def _drop_committed(self, hyp: list[_Hyp], by_time: bool) -> list[_Hyp]:
        """Remove words that repeat committed ones: by time (only without a forced prefix, whose output
        excludes committed words by construction) and by up to 5 words of textual overlap."""
        if by_time:
            hyp = [h for h in hyp if h.start > self._last_committed_end - 0.1]
        if hyp and self._committed_in_buffer and abs(hyp[0].start - self._last_committed_end) < 1.0:
            done = [normalize_word(w.text) for w in self._committed_in_buffer]
            for k in range(min(len(done), len(hyp), 5), 0, -1):
                if done[-k:] == [h.key for h in hyp[:k]]:
                    return hyp[k:]
        return hyp

    def _commit(self, hyp: list[_Hyp], now: float) -> list[Word]:
        words = [
            Word(text=h.text, start=h.start, end=h.end, probability=h.prob, committed_at=now) for h in hyp
        ]
        if words:
            self._committed_in_buffer.extend(words)
            self._last_committed_end = max(self._last_committed_end, words[-1].end)
            self.stats.committed_words += len(words)
        return words

    # ---- buffer management ---------------------------------------------------------------------------------
    def _trim_long_buffer(self) -> None:
        done = self._committed_in_buffer
        if not done:
            return
        cut_i = next((i for i in range(len(done) - 1, -1, -1) if done[i].text.endswith(_SENTENCE_END)), None)
        if cut_i is None:
            cut_i = len(done) - 1
        cut_t = done[cut_i].end
        self.stats.trims += 1
        self._move_to_prompt(done[: cut_i + 1])
        self._committed_in_buffer = done[cut_i + 1 :]
        self._trim_to(cut_t)

    def _move_to_prompt(self, words: list[Word]) -> None:
        self._prompt_words.extend(w.text for w in words)
        budget, kept = 0, 0
        for w in reversed(self._prompt_words):
            budget += len(w) + 1
            if budget > self.config.prompt_chars:
                break
            kept += 1
        self._prompt_words = self._prompt_words[len(self._prompt_words) - kept :] if kept else []

    def _trim_to(self, t: float) -> None:
        """Drop audio before ``t`` (moved forward past any committed word it would cut in two); committed
        words that leave the buffer become prompt text."""
        for w in self._committed_in_buffer:
            if w.start < t < w.end:
                t = w.end
        if self._buf_t0 is None or t <= self._buf_t0:
            return
        n = min(len(self._audio), round((t - self._buf_t0) * SAMPLE_RATE))
        self._audio = self._audio[n:]
        self._buf_t0 += n / SAMPLE_RATE
        keep_from = self._buf_t0 - self.config.word_speech_margin_s
        self._regions = [r for r in self._regions if r[1] >= keep_from]
        gone = [w for w in self._committed_in_buffer if w.end <= self._buf_t0 + 0.05]
        if gone:
            self._move_to_prompt(gone)
            self._committed_in_buffer = self._committed_in_buffer[len(gone) :]
