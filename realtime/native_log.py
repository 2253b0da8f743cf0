"""Native libraries' stderr lines (MediaPipe / absl / glog, TensorFlow Lite) routed into ``logging``.

MediaPipe's FaceLandmarker and the TFLite interpreter write C++ log lines straight to file descriptor 2
when they are created ("WARNING: Logging before InitGoogle() is written to STDERR", "W0000 …
face_landmarker_graph.cc:181] …", "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.") — past
Python's logging, onto the monitor's first screen and dashboard. :func:`native_stderr_to_log` captures fd 2
while such a model loads (``Stage`` wraps every ``_load()`` in it) and hands each line on:

* a native log line → the ``realtime.native`` logger: DEBUG for info/warning lines (shown with ``-v``),
  WARNING for error/fatal ones;
* any other line (a Python traceback, another thread's output) → written back to stderr as it was.

With DEBUG logging enabled (``mmcl … -v``) nothing is captured: the lines print as the libraries wrote them.
The capture swaps fd 2 for the whole process, so it is meant for the short, sequential model loads of
``Pipeline.start()`` (stages start one after the other; the sources start afterwards).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

log = logging.getLogger("realtime.native")

# absl / glog: "W0000 00:00:1796408398.744030    5234 face_landmarker_graph.cc:181] …" (also "I1204 18:20:…")
_GLOG = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:[\d.]+\s+\d+ [^\]]+\] ")
# TFLite / absl pre-init: "INFO: Created TensorFlow Lite …", "WARNING: Logging before InitGoogle() …"
_PLAIN = re.compile(r"^(INFO|WARNING|ERROR|FATAL): ")


def native_level(line: str) -> int | None:
    """The logging level a native log line is routed at; None for a line that is not one."""
    m = _GLOG.match(line)
    if m:
        return logging.WARNING if m.group(1) in "EF" else logging.DEBUG
    m = _PLAIN.match(line)
    if m:
        return logging.WARNING if m.group(1) in ("ERROR", "FATAL") else logging.DEBUG
    return None


def route_lines(text: str) -> None:
    """Log the native lines of ``text``; write the others back to stderr."""
    for line in text.splitlines():
        if not line.strip():
            continue
        level = native_level(line)
        if level is None:
            sys.stderr.write(line + "\n")
        else:
            log.log(level, "%s", line.rstrip())
    sys.stderr.flush()


@contextlib.contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """Capture fd 2 for the duration of the block and route what was written (see the module docstring)."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (an embedding host): leave it alone
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()  # Python output written inside the block belongs to the capture too
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            route_lines(tmp.read().decode("utf-8", errors="replace"))
