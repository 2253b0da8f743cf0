"""On-disk cache of exported graphs, TensorRT engines and ``auto`` choices.

Location: ``$MMCL_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/mmcl-live/backends`` (default
``~/.cache/mmcl-live/backends``). Entries are keyed by what makes them valid: the checkpoint's content
hash (config + weights, not its path), the library versions, and for engines/choices the machine (GPU
name or CPU model and core count). A stale entry is simply never looked up again; delete the folder to
reclaim space.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn


def cache_dir(kind: str) -> Path:
    root = os.environ.get("MMCL_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "mmcl-live" / "backends"
    path = base / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_digest(model: nn.Module) -> str:
    """A content hash of a model: its class, config and every tensor of its state dict (16 hex digits)."""
    h = hashlib.sha256()
    h.update(type(model).__qualname__.encode())
    cfg = getattr(model, "cfg", None)
    if cfg is not None:
        h.update(repr(cfg).encode())
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        t = value.detach().cpu().contiguous()
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """What a timing or an engine depends on (printed by ``mmcl bench`` and stored with cached choices)."""
    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "torch_threads": torch.get_num_threads(),
        "onnxruntime": package_version("onnxruntime"),
        "onnx": package_version("onnx"),
        "torch_tensorrt": package_version("torch_tensorrt"),
        "tensorrt": package_version("tensorrt"),
        "cpu_capability": _cpu_capability(),
    }
    return info


def _cpu_capability() -> str:
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except AttributeError:  # pragma: no cover - old torch
        return "unknown"


def key_of(*parts: object) -> str:
    """A file-name-safe key from readable parts plus a short hash of them all."""
    text = json.dumps([str(p) for p in parts])
    readable = re.sub(r"[^A-Za-z0-9.+-]+", "-", "_".join(str(p) for p in parts[:2]))[:60]
    return f"{readable}_{hashlib.sha256(text.encode()).hexdigest()[:12]}"
