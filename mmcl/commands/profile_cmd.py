"""``mmcl profile``: latency of a monitor session from its event log.

* ``--log events.jsonl`` — per-stage p50/p95/p99 table (``--json`` for one JSON object, ``--csv`` for a row
  per window);
* ``--trace out.json`` — Chrome/Perfetto trace-event JSON (open in ui.perfetto.dev or chrome://tracing);
* ``--plot out.png`` — per-stage latency histograms + CDFs with p50/p95/p99 marked;
* ``--compare a.jsonl b.jsonl`` — side-by-side p50/p95/p99 per stage and the ratio b/a.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mmcl.commands.common import stdout
from model.errors import ConfigError


def _fmt(v: float | None, ratio: bool = False) -> str:
    if v is None:
        return "–"
    if ratio:
        return f"{v:.2f}×"
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}"


def compare_table(result: dict[str, Any]) -> Table:
    from realtime.pipeline.latency import STAGE_LABELS

    table = Table(title=f"latency (ms), a → b (ratio b/a)\na = {result['a']}\nb = {result['b']}")
    table.add_column("stage")
    for p in ("p50", "p95", "p99"):
        table.add_column(p, justify="right", no_wrap=True)
    for stage, row in result["stages"].items():
        cells = [STAGE_LABELS.get(stage, stage)]
        for p in ("p50", "p95", "p99"):
            a = (row["a"] or {}).get(f"{p}_ms")
            b = (row["b"] or {}).get(f"{p}_ms")
            cells.append(f"{_fmt(a)} → {_fmt(b)} ({_fmt(row['ratio'][p], ratio=True)})")
        table.add_row(*cells)
    return table


def _summary(log_file: Path, events: list[dict[str, Any]]) -> tuple[dict[str, Any], Any]:
    from realtime.pipeline.eventlog import latency_summary
    from realtime.pipeline.latency import LatencyStat

    windows = [e for e in events if e["type"] == "window"]
    summaries = [e for e in events if e["type"] == "summary"]
    stats = latency_summary(windows)
    final = summaries[-1] if summaries else None
    if final:  # stages only the session summary knows (render, shown)
        for stage, d in (final.get("latency_ms") or {}).items():
            if stage not in stats and d.get("p50_ms") is not None:
                stats[stage] = LatencyStat(
                    stage, int(d["count"]), d["p50_ms"], d["p95_ms"], d["p99_ms"], d.get("max_ms"), d.get("mean_ms"),
                )  # fmt: skip
    scored = [w for w in windows if w.get("prediction")]
    result = {
        "log": str(log_file), "windows": len(windows), "scored_windows": len(scored), "complete": final is not None,
        "latency_ms": {k: v.to_dict() for k, v in stats.items()}, "drops": (final or {}).get("drops"),
    }  # fmt: skip
    return result, stats


def _write_csv(events: list[dict[str, Any]], out: Path) -> None:
    from realtime.pipeline.eventlog import window_table

    rows = window_table([e for e in events if e["type"] == "window"])
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def register(app: typer.Typer) -> None:
    @app.command("profile")
    def profile(
        log_file: Annotated[
            Path | None, typer.Option("--log", help="A JSONL event log from mmcl monitor --log.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
        csv_out: Annotated[Path | None, typer.Option("--csv", help="Also export one row per window.")] = None,
        trace_out: Annotated[
            Path | None, typer.Option("--trace", help="Write a Chrome/Perfetto trace (JSON) of the session.")
        ] = None,
        plot_out: Annotated[
            Path | None, typer.Option("--plot", help="Write per-stage latency histograms/CDFs (PNG).")
        ] = None,
        compare: Annotated[
            tuple[Path, Path] | None,
            typer.Option("--compare", help="Two event logs A B: p50/p95/p99 per stage side by side, ratio B/A."),
        ] = None,
    ) -> None:
        """Latency of a monitor event log: summary table, CSV, Perfetto trace, plot, or a comparison of two."""
        from realtime.pipeline.eventlog import read_events

        if compare is not None:
            if log_file or csv_out or trace_out or plot_out:
                raise ConfigError("--compare takes two logs by itself; use --log for --trace/--plot/--csv")
            from realtime.profiling.compare import compare_logs

            result = compare_logs(*compare)
            if as_json:
                typer.echo(json.dumps(result))
            else:
                stdout.print(compare_table(result))
            return
        if log_file is None:
            raise ConfigError("give --log events.jsonl (or --compare a.jsonl b.jsonl)")
        events = read_events(log_file)
        result, stats = _summary(log_file, events)
        if csv_out is not None:
            _write_csv(events, csv_out)
            result["csv"] = str(csv_out)
        if trace_out is not None:
            from realtime.profiling.trace import write_trace

            trace = write_trace(events, trace_out, source=str(log_file))
            result["trace"] = {"path": str(trace_out), "events": len(trace["traceEvents"])}
        if plot_out is not None:
            from realtime.profiling.plot import plot_latency
            from realtime.profiling.samples import stage_samples

            plot_latency(stage_samples(events), plot_out, title=f"{log_file.name}: per-stage latency")
            result["plot"] = str(plot_out)
        if as_json:
            typer.echo(json.dumps(result))
            return
        from realtime.dashboard.panels import latency_table

        stdout.print(latency_table(stats, title=f"{log_file}: latency (ms) over {result['windows']} windows"))
        ending = "session summary present"
        if not result["complete"]:
            ending = "no session summary (the monitor did not exit cleanly)"
        stdout.print(f"windows {result['windows']} (scored {result['scored_windows']}) · {ending}", highlight=False)
        for key in ("csv", "plot"):
            if key in result:
                stdout.print(f"wrote {result[key]}", highlight=False)
        if "trace" in result:
            stdout.print(f"wrote {trace_out} ({result['trace']['events']} trace events; open in ui.perfetto.dev)",
                         highlight=False)  # fmt: skip
