"""Logging is configured once, by the CLI entry point; library code only calls ``logging.getLogger``."""

from __future__ import annotations

import logging
import os

from rich.console import Console
from rich.logging import RichHandler

_CONFIGURED = False
stderr_console = Console(stderr=True)


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Route all logs to stderr through rich. ``MMCL_LOG_LEVEL`` overrides the level."""
    global _CONFIGURED
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 0 else logging.INFO)
    env = os.environ.get("MMCL_LOG_LEVEL")
    if env:
        level = logging.getLevelName(env.upper()) if isinstance(logging.getLevelName(env.upper()), int) else level
    root = logging.getLogger()
    if _CONFIGURED:
        root.setLevel(level)
        return
    handler = RichHandler(console=stderr_console, show_path=False, rich_tracebacks=False, markup=False)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("matplotlib", "PIL", "urllib3", "filelock", "httpx", "numba", "faster_whisper"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    _CONFIGURED = True
