"""Shared pieces of the alert / metrics / profiling tests: the replayed clip with the camera blocked.

The tests use a small real checkpoint on ``live-v1`` (``make_checkpoint(version="live-v1")``): the monitor
computes the feature set a checkpoint records, and v1 is the cheaper one on the test machines."""

from __future__ import annotations

from pathlib import Path

from helpers_monitor import ffmpeg


def blocked_camera_clip(crema3: Path, out: Path, start_s: float = 2.0, end_s: float = 4.6) -> Path:
    """The CREMA-D clip with the camera blocked (black picture) from ``start_s`` to ``end_s``: the face is
    lost for 2.6 s while the speech goes on (the "looked away" case)."""
    box = f"drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='between(t,{start_s},{end_s})'"
    ffmpeg("-i", str(crema3), "-vf", box, "-c:v", "mpeg4", "-q:v", "4", "-c:a", "copy", str(out))
    return out
