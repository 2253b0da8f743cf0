"""The default checkpoint shipped inside the package (trained by the recipe in ``mmcl train-default``).

``default_checkpoint_path()`` is what ``mmcl monitor`` loads when no ``--checkpoint`` is given.
``MMCL_DEFAULT_CHECKPOINT`` points it elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from model.errors import CheckpointError

DEFAULT_NAME = "mmcl_live_default.pt"


def default_checkpoint_path() -> Path:
    env = os.environ.get("MMCL_DEFAULT_CHECKPOINT")
    path = Path(env) if env else Path(__file__).resolve().parent / DEFAULT_NAME
    if not path.is_file():
        raise CheckpointError(
            f"no default checkpoint at {path}: pass --checkpoint PATH (a model trained on the live feature set, "
            "e.g. with `mmcl train` on `mmcl extract` output), or rebuild the shipped one with `mmcl train-default`"
        )
    return path
