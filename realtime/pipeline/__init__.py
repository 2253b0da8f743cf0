"""The live monitor: window assembly, feature workers, inference, state, latency, event log, demo session.

Importing this package is cheap; models load when a pipeline starts.
"""

from realtime.pipeline.config import MonitorConfig
from realtime.pipeline.eventlog import EventLog, latency_summary, read_events
from realtime.pipeline.inference import InferenceEngine, Prediction, SentimentDecoder
from realtime.pipeline.latency import LatencyStat, LatencyTracker
from realtime.pipeline.pipeline import Pipeline
from realtime.pipeline.state import MonitorSnapshot, MonitorState
from realtime.pipeline.windows import Window, WindowAssembler

__all__ = [
    "EventLog",
    "InferenceEngine",
    "LatencyStat",
    "LatencyTracker",
    "MonitorConfig",
    "MonitorSnapshot",
    "MonitorState",
    "Pipeline",
    "Prediction",
    "SentimentDecoder",
    "Window",
    "WindowAssembler",
    "latency_summary",
    "read_events",
]
