"""``mmcl profile``: latency of a monitor session from its event log — Chrome/Perfetto traces, latency
plots and before/after comparisons. Reads logs only (``realtime.pipeline.eventlog``); drives nothing."""

from realtime.profiling.compare import compare_logs
from realtime.profiling.samples import StageSamples, stage_samples
from realtime.profiling.trace import build_trace, write_trace

__all__ = ["StageSamples", "build_trace", "compare_logs", "stage_samples", "write_trace"]
