"""``mmcl monitor`` options for operations: ``--alerts rules.yaml`` and ``--metrics-port N``.

``MonitorOps.attach(pipeline)`` wires the alert runtime and the Prometheus exporter into a built pipeline
(before it starts); ``close()`` stops them (alerts first, so pending deliveries reach the logs while they
are open). The rule file is read and checked before any model is loaded (``load``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.errors import ConfigError


@dataclass
class MonitorOps:
    alerts_path: Path | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    alerts_cfg: Any = None
    runtime: Any = None
    exporter: Any = None
    messages: list[str] = field(default_factory=list)

    def load(self) -> MonitorOps:
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port must be between 0 and 65535, got {self.metrics_port}")
        if self.alerts_path is not None:
            from realtime.alerts.rules import load_alerts

            self.alerts_cfg = load_alerts(self.alerts_path)
        return self

    def attach(self, pipeline: Any) -> None:
        if self.alerts_cfg is not None:
            from realtime.alerts.runtime import AlertRuntime

            self.runtime = AlertRuntime(self.alerts_cfg)
            self.runtime.attach(pipeline)
            names = ", ".join(r.name for r in self.alerts_cfg.rules)
            self.messages.append(f"alerts: {len(self.alerts_cfg.rules)} rule(s) from {self.alerts_path} ({names})")
        if self.metrics_port is not None:
            from realtime.pipeline.metrics import MetricsExporter

            rules = [(r.name, r.severity) for r in self.alerts_cfg.rules] if self.alerts_cfg is not None else []
            self.exporter = MetricsExporter(rules)
            self.exporter.attach(pipeline)
            if self.runtime is not None:
                self.runtime.listeners.append(self.exporter.on_alert)
                self.exporter.delivery_source = self.runtime.delivery_stats
            port = self.exporter.serve(self.metrics_port, self.metrics_host)
            self.messages.append(f"metrics: http://{self.metrics_host}:{port}/metrics")

    def close_alerts(self) -> None:
        if self.runtime is not None:
            self.runtime.stop()

    def close(self) -> None:
        self.close_alerts()
        if self.exporter is not None:
            self.exporter.close()

    def summary(self) -> str | None:
        if self.runtime is None:
            return None
        fired = ", ".join(f"{k} {v}" for k, v in self.runtime.fired.items())
        delivery = self.runtime.delivery_line()
        return f"alerts fired: {fired}" + (f" · {delivery}" if delivery else "")
