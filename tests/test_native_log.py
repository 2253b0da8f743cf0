"""C++ log lines written to fd 2 while a model loads go to logging (DEBUG), other stderr output stays."""

from __future__ import annotations

import logging
import os

import numpy as np

from realtime.native_log import native_level, native_stderr_to_log

GLOG = "W0000 00:00:1796408398.744030    5234 face_landmarker_graph.cc:181] Sets FaceBlendshapesGraph acceleration"


def test_native_lines_are_recognised() -> None:
    assert native_level(GLOG) == logging.DEBUG
    assert native_level("E1204 18:20:01.5 77 gl_context.cc:12] no GPU") == logging.WARNING
    assert native_level("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.") == logging.DEBUG
    assert native_level("WARNING: Logging before InitGoogle() is written to STDERR") == logging.DEBUG
    assert native_level("Traceback (most recent call last):") is None
    assert native_level("WARNING:root:a Python warning without a handler") is None


def test_fd2_output_is_routed(capfd, caplog) -> None:
    caplog.set_level(logging.INFO, logger="realtime.native")
    with native_stderr_to_log():
        os.write(2, f"WARNING: Logging before InitGoogle() is written to STDERR\n{GLOG}\n".encode())
        os.write(2, b"E1204 18:20:01.5 77 gl_context.cc:12] no GPU\nsomething else\n")
    err = capfd.readouterr().err
    assert "InitGoogle" not in err and "face_landmarker_graph" not in err  # off the screen
    assert "something else" in err  # not a native log line: written back as it was
    assert [r.getMessage() for r in caplog.records] == ["E1204 18:20:01.5 77 gl_context.cc:12] no GPU"]
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="realtime.native")  # -v: nothing is captured
    with native_stderr_to_log():
        os.write(2, f"{GLOG}\n".encode())
    assert "face_landmarker_graph" in capfd.readouterr().err and not caplog.records


def test_offline_extraction_keeps_mediapipe_lines_off_the_screen(capfd, caplog) -> None:
    from realtime.features.extract import OfflineExtractor

    caplog.set_level(logging.INFO, logger="realtime.native")
    ex = OfflineExtractor()
    try:
        ex.face.process(np.zeros((120, 160, 3), np.uint8), 0.0)  # loads the landmarker and runs it once
    finally:
        ex.close()
    err = capfd.readouterr().err
    assert not [line for line in err.splitlines() if native_level(line) is not None], err
