"""The terminal dashboard: pure panels of a snapshot (``panels``) and the pull-model runners (``live``).

The pipeline never imports this package; the ``mmcl monitor`` command wires the two together.
"""

from realtime.dashboard.live import Dashboard, HeadlessPrinter, SnapshotSource
from realtime.dashboard.panels import headless_line, latency_table, render

__all__ = ["Dashboard", "HeadlessPrinter", "SnapshotSource", "headless_line", "latency_table", "render"]
