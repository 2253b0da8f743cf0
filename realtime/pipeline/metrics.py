"""Prometheus ``/metrics`` for a running monitor (``mmcl monitor --metrics-port N``), via ``prometheus_client``.

The exporter has its own registry (nothing global) and serves it on ``host:port`` (127.0.0.1 unless
``--metrics-host`` says otherwise) from prometheus_client's HTTP server thread. Metrics:

==========================================  ================================================================
``mmcl_valence`` / ``mmcl_arousal``          the last scored window's sentiment score / arousal (arousal only
                                             when the model gives one); ``mmcl_confidence`` (top class
                                             probability or the model's confidence) and ``mmcl_trend``
``mmcl_stage_latency_seconds{stage}``        histogram of every latency sample of every stage (the same
                                             samples as the dashboard's latency panel; ``latency.py``)
``mmcl_windows_total``                       windows built (``mmcl_empty_windows_total`` without any input)
``mmcl_drops_total{kind}``                   cumulative drops as the dashboard counts them (audio in seconds)
``mmcl_queue_depth{queue}``                  hand-off queue depth (and ``mmcl_queue_capacity``)
``mmcl_device_up{device,kind,status}``       1 when a device/worker is running (or a file ended), else 0
``mmcl_modality_present{modality}``          1 when the modality is live now
``mmcl_asr_backlog_seconds``                 audio waiting for the speech recogniser
``mmcl_process_cpu_percent``, ``mmcl_process_rss_bytes``  the monitor process
``mmcl_alerts_fired_total{rule,severity}``   alerts fired (``--alerts``)
``mmcl_alert_deliveries_total{action,result}``  command/webhook deliveries: delivered, failed, dropped
==========================================  ================================================================

Gauges are read from ``pipeline.snapshot()`` when Prometheus scrapes (pull; nothing is done per window
except setting the four sentiment values); histograms are fed by the latency tracker's listener.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from model.errors import ConfigError
from realtime.pipeline.signals import prediction_signals

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UP_STATUSES = frozenset({"running", "ended"})


def _drop_kind(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


class _SnapshotCollector(Collector):
    """Gauges and counters read from one pipeline snapshot per scrape."""

    def __init__(self, exporter: MetricsExporter) -> None:
        self.exporter = exporter

    def collect(self) -> Any:
        t0 = time.thread_time()
        snap = self.exporter.pipeline.snapshot()
        for name, doc, value in self.exporter.signals():
            g = GaugeMetricFamily(f"mmcl_{name}", doc)
            g.add_metric([], value)
            yield g
        yield CounterMetricFamily("mmcl_windows", "Windows built.", value=snap.windows)
        yield CounterMetricFamily("mmcl_empty_windows", "Windows without any modality present.",
                                  value=snap.empty_windows)  # fmt: skip
        drops = CounterMetricFamily("mmcl_drops", "Cumulative drops (audio in seconds).", labels=["kind"])
        for k, v in snap.drops.items():
            drops.add_metric([_drop_kind(k)], float(v))
        yield drops
        depth = GaugeMetricFamily("mmcl_queue_depth", "Items waiting in a hand-off queue.", labels=["queue"])
        cap = GaugeMetricFamily("mmcl_queue_capacity", "Capacity of a hand-off queue.", labels=["queue"])
        for q in snap.queues:
            depth.add_metric([q.name], q.depth)
            cap.add_metric([q.name], q.capacity)
        yield depth
        yield cap
        up = GaugeMetricFamily("mmcl_device_up", "1 when the device/worker runs (or its file ended).",
                               labels=["device", "kind", "status"])  # fmt: skip
        for d in snap.devices:
            up.add_metric([d.name, d.kind, d.status], 1.0 if d.status in UP_STATUSES else 0.0)
        yield up
        present = GaugeMetricFamily("mmcl_modality_present", "1 when the modality is live.", labels=["modality"])
        for m in snap.modalities:
            present.add_metric([m.name], 1.0 if m.live else 0.0)
        yield present
        yield GaugeMetricFamily("mmcl_asr_backlog_seconds", "Audio waiting for the ASR.", value=snap.asr_lag_s)
        yield GaugeMetricFamily("mmcl_process_cpu_percent", "Process CPU, % of one core.",
                                value=snap.resources.cpu_percent)  # fmt: skip
        yield GaugeMetricFamily("mmcl_process_rss_bytes", "Process resident memory.",
                                value=snap.resources.rss_mb * 2**20)  # fmt: skip
        if self.exporter.delivery_source is not None:
            fam = CounterMetricFamily("mmcl_alert_deliveries", "Alert deliveries by the command/webhook actions.",
                                      labels=["action", "result"])  # fmt: skip
            for st in self.exporter.delivery_source():
                for result in ("delivered", "failed", "dropped"):
                    fam.add_metric([st.name, result], float(getattr(st, result)))
            yield fam
        self.exporter.collect_cpu_s += time.thread_time() - t0
        self.exporter.scrapes += 1


class MetricsExporter:
    """``attach(pipeline)`` before ``pipeline.start()``; ``serve(port, host)``; ``close()`` at the end."""

    def __init__(self, rules: list[tuple[str, str]] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = Histogram(
            "mmcl_stage_latency_seconds", "Latency of each pipeline stage (see realtime/pipeline/latency.py).",
            ["stage"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.alerts = Counter("mmcl_alerts_fired", "Alerts fired.", ["rule", "severity"], registry=self.registry)
        for rule, severity in rules or []:
            self.alerts.labels(rule, severity)  # 0 from the start, so rate() works
        self.pipeline: Any = None
        self.delivery_source: Any = None  # () -> [DeliveryStats] (the alert runtime's delivery_stats)
        self.collect_cpu_s = 0.0  # CPU time spent building scrapes (for the overhead benchmark)
        self.scrapes = 0
        self._signals: dict[str, float] = {}
        self._server: Any = None
        self._thread: Any = None
        self.port: int | None = None

    def attach(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        pipeline.latency.add_listener(self._on_latency)
        pipeline.add_window_listener(self.on_window)
        self.registry.register(_SnapshotCollector(self))

    def _on_latency(self, stage: str, seconds: float) -> None:
        self.latency.labels(stage).observe(seconds)

    def on_window(self, event: dict[str, Any], prediction: Any) -> None:
        if prediction is None:
            return
        # arousal only once the model has an arousal output; confidence only when there is one
        self._signals = {k: v for k, v in prediction_signals(prediction).items() if v is not None}

    def signals(self) -> list[tuple[str, str, float]]:
        docs = {"valence": "Sentiment score of the last scored window.", "arousal": "Arousal of the last window.",
                "confidence": "Confidence of the last window.", "trend": "Smoothed sentiment score."}  # fmt: skip
        return [(k, docs[k], v) for k, v in self._signals.items()]

    def on_alert(self, ev: Any) -> None:
        if ev.kind == "fire":
            self.alerts.labels(ev.rule, ev.severity).inc()

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Start the HTTP server; returns the bound port (``port`` 0 picks a free one)."""
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; pick another --metrics-port"
            ) from None
        self.port = int(self._server.server_port)
        log.info("metrics on http://%s:%d/metrics", host, self.port)
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(5.0)
            self._server = None
