"""Configuration of ``mmcl serve`` (one dataclass, validated where it is built)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from model.errors import ConfigError


@dataclass
class ServeConfig:
    """What ``mmcl serve`` starts: one Serve application of ``replicas`` model replicas behind Ray's HTTP proxy."""

    checkpoint: str = ""  # empty: the shipped default model
    backend: str = "auto"  # any registered backend (model.backends), loaded once per replica
    replicas: int = 1
    max_batch: int = 32  # windows per backend call (each window is 4 rows with attribution)
    batch_wait_ms: float = 5.0  # how long a replica waits for more windows once one is queued
    host: str = "127.0.0.1"
    port: int = 8000
    replica_cpus: float = 0.0  # Ray CPUs reserved per replica; 0 = this machine's cores / replicas
    threads: int = 0  # torch / ONNX Runtime threads per replica; 0 = round(replica_cpus), at least 1
    app_name: str = "mmcl"

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= 64:
            raise ConfigError(f"--replicas must be between 1 and 64, got {self.replicas}")
        if not 1 <= self.max_batch <= 64:
            raise ConfigError(f"--max-batch must be between 1 and 64 windows, got {self.max_batch}")
        if not 0.0 <= self.batch_wait_ms <= 1000.0:
            raise ConfigError(f"--batch-wait-ms must be between 0 and 1000, got {self.batch_wait_ms}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be between 0 and 65535, got {self.port}")
        if self.replica_cpus < 0 or self.threads < 0:
            raise ConfigError("replica_cpus and threads must be >= 0 (0 = derived from the core count)")
        if self.replica_cpus == 0:
            self.replica_cpus = max(1.0, (os.cpu_count() or 1) / self.replicas)
        if self.threads == 0:
            self.threads = max(1, round(self.replica_cpus))

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ray_cpus(self) -> int:
        """CPUs the local Ray node announces: enough for every replica (the proxy/controller reserve none)."""
        return max(os.cpu_count() or 1, int(-(-self.replicas * self.replica_cpus // 1)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
