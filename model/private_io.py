"""Writing files that hold personal data (features of a user's face and voice, transcripts).

Such files are created readable and writable by their owner only (0600), and their folders 0700, whatever
the umask says. Used for calibration recordings and user baselines (the event log does the same).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) if needed; a folder created here is 0700."""
    p = Path(path)
    if not p.is_dir():
        p.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(p, 0o700)
    return p


def private_open(path: str | Path, mode: str = "wb") -> IO:
    """Open ``path`` for writing (truncating) as a 0600 file."""
    if not mode.startswith("w"):
        raise ValueError(f"private_open writes files; mode {mode!r} is not a write mode")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file existed with wider permissions
    return os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8")


def write_private_text(path: str | Path, text: str) -> None:
    with private_open(path, "w") as f:
        f.write(text)
