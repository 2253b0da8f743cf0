"""Build the camera and audio sources of one session from :class:`SourcesConfig`.

``camera.source`` is a device index, a video file or a URL; ``microphone.device`` is "default", a
PortAudio index, a device-name substring — or an audio/video file or URL, which is then replayed by an
:class:`AudioFileSource`. File sources of one session share one :class:`ReplayTimeline` (they stay in
step); in ``clock-stopped`` replay every consumer must use ``SourceSet.clock`` (the timeline's clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from realtime.clock import Clock, MonotonicClock
from realtime.sources.audio_file import AudioFileSource
from realtime.sources.audio_source import AudioSource
from realtime.sources.camera import CameraConfig, CameraSource
from realtime.sources.microphone import MicrophoneConfig, MicrophoneSource
from realtime.sources.replay import ReplayConfig, ReplayTimeline, is_url


@dataclass
class SourcesConfig:
    camera: CameraConfig = field(default_factory=CameraConfig)
    microphone: MicrophoneConfig = field(default_factory=MicrophoneConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)


def audio_spec_is_file(spec: str) -> bool:
    """True when a --mic value names a file or URL rather than a capture device."""
    if is_url(spec):
        return True
    if spec == "default" or spec.isdigit():
        return False
    return Path(spec).is_file()


@dataclass
class SourceSet:
    camera: CameraSource | None
    audio: AudioSource | None
    timeline: ReplayTimeline
    clock: Clock  # the clock every consumer must use (the timeline's clock when replaying files)

    def start(self) -> None:
        """Start the sources (audio first: it is cheap); stops what started if one fails."""
        started = []
        try:
            for s in (self.audio, self.camera):
                if s is not None:
                    s.start()
                    started.append(s)
        except BaseException:
            for s in started:
                s.stop()
            raise

    def stop(self, timeout: float = 3.0) -> bool:
        ok = True
        for s in (self.camera, self.audio):
            if s is not None:
                ok = s.stop(timeout) and ok
        return ok


def build_sources(
    config: SourcesConfig, clock: Clock | None = None, *, camera: bool = True, audio: bool = True
) -> SourceSet:
    base = clock or MonotonicClock()
    timeline = ReplayTimeline.from_config(config.replay, base)
    cam_is_file = config.camera.source_kind == "file"
    mic_is_file = audio_spec_is_file(config.microphone.device)
    uses_timeline = (camera and cam_is_file) or (audio and mic_is_file)
    session_clock = timeline.clock if uses_timeline else base
    cam = None
    if camera:
        cam = CameraSource(
            config.camera, session_clock, timeline=timeline if cam_is_file else None, replay=config.replay
        )
    aud: AudioSource | None = None
    if audio:
        if mic_is_file:
            aud = AudioFileSource(
                config.microphone.device, timeline, config.replay, buffer_s=config.microphone.buffer_s
            )
        else:
            aud = MicrophoneSource(config.microphone, session_clock)
    return SourceSet(camera=cam, audio=aud, timeline=timeline, clock=session_clock)
