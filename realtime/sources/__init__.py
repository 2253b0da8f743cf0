"""Sources: one daemon thread per device (camera, microphone, file, URL), items stamped on one clock.

Heavy libraries (cv2, pyaudio, soxr) are imported inside the threads that use them, so importing this
package is cheap.
"""

from realtime.sources.audio_file import AudioFileSource, decode_audio
from realtime.sources.audio_ring import AudioReader, AudioRing
from realtime.sources.audio_source import SAMPLE_RATE, AudioSource
from realtime.sources.base import Source, SourceStats, SourceStatus
from realtime.sources.camera import CameraConfig, CameraSource
from realtime.sources.factory import SourcesConfig, SourceSet, audio_spec_is_file, build_sources
from realtime.sources.microphone import (
    AudioDeviceInfo,
    MicrophoneConfig,
    MicrophoneSource,
    list_input_devices,
)
from realtime.sources.replay import (
    ReplayConfig,
    ReplayMode,
    ReplayParticipant,
    ReplayTimeline,
)

__all__ = [
    "SAMPLE_RATE",
    "AudioDeviceInfo",
    "AudioFileSource",
    "AudioReader",
    "AudioRing",
    "AudioSource",
    "CameraConfig",
    "CameraSource",
    "MicrophoneConfig",
    "MicrophoneSource",
    "ReplayConfig",
    "ReplayMode",
    "ReplayParticipant",
    "ReplayTimeline",
    "Source",
    "SourceSet",
    "SourceStats",
    "SourceStatus",
    "SourcesConfig",
    "audio_spec_is_file",
    "build_sources",
    "decode_audio",
    "list_input_devices",
]
