"""Per-stage latency plot of an event log (``mmcl profile --log events.jsonl --plot out.png``).

One panel per stage: a histogram of its samples (left axis) and their empirical CDF (right axis), with
p50/p95/p99 marked by vertical lines and written in the panel title. matplotlib with the Agg backend (no
display needed).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from realtime.pipeline.latency import STAGE_LABELS
from realtime.profiling.samples import StageSamples

MARKS = (("p50", 50, "tab:green"), ("p95", 95, "tab:orange"), ("p99", 99, "tab:red"))


def plot_latency(samples: StageSamples, out: str | os.PathLike[str], title: str = "") -> Path:
    """Write the PNG; stages without samples are left out. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [(s, np.asarray(v, dtype=float)) for s, v in samples.ms.items() if len(v)]
    stages = [(s, v[np.isfinite(v)]) for s, v in stages]
    stages = [(s, v) for s, v in stages if v.size]
    if not stages:
        from model.errors import DataFormatError

        raise DataFormatError("the event log has no latency samples to plot (no window lines)")
    cols = 3 if len(stages) > 4 else 2
    rows = math.ceil(len(stages) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (stage, v) in zip(axes.flat, stages, strict=False):
        ax.hist(v, bins=min(40, max(5, v.size // 3)), color="tab:blue", alpha=0.55)
        ax.set_xlabel("ms")
        ax.set_ylabel("windows")
        cdf = ax.twinx()
        xs = np.sort(v)
        cdf.plot(xs, np.arange(1, xs.size + 1) / xs.size, color="black", lw=1.2)
        cdf.set_ylim(0, 1.02)
        cdf.set_ylabel("CDF")
        pct = np.percentile(v, [m[1] for m in MARKS])
        for (name, _, colour), x in zip(MARKS, pct, strict=True):
            ax.axvline(x, color=colour, ls="--", lw=1.1, label=f"{name} {x:.1f} ms")
        ax.set_title(f"{STAGE_LABELS.get(stage, stage)} (n={v.size})", fontsize=10)
        ax.legend(fontsize=7, loc="center right")
    for ax in list(axes.flat)[len(stages):]:
        ax.axis("off")
    fig.suptitle(title or "per-stage latency", fontsize=11)
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
