"""Streaming transcription: an I/O-free LocalAgreement-2 policy over faster-whisper, and its worker thread.

faster-whisper is imported only when a recogniser or the Silero VAD is created.
"""

from realtime.asr.config import AsrConfig
from realtime.asr.policy import PolicyStats, StreamingAsrPolicy
from realtime.asr.recognizer import FasterWhisperRecognizer, RecognizedWord, Recognizer, normalize_word
from realtime.asr.vad import EnergyVad, SileroVad, SpeechDetector
from realtime.asr.worker import AsrStats, AsrWorker

__all__ = [
    "AsrConfig",
    "AsrStats",
    "AsrWorker",
    "EnergyVad",
    "FasterWhisperRecognizer",
    "PolicyStats",
    "RecognizedWord",
    "Recognizer",
    "SileroVad",
    "SpeechDetector",
    "StreamingAsrPolicy",
    "normalize_word",
]
