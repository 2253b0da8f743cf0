"""PNG figures of ``mmcl calibrate confidence`` (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calibration.confidence import ReliabilityBin


def _pyplot():  # imported on use: matplotlib costs ~0.5 s to import
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def reliability_diagram(
    panels: Sequence[tuple[str, list[ReliabilityBin], float]], path: str | Path, title: str = ""
) -> Path:
    """One panel per (label, bins, ECE): accuracy per confidence bin against the diagonal, the gap shaded,
    and the share of predictions per bin underneath."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        2,
        len(panels),
        figsize=(4.2 * len(panels), 5.2),
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1]},
        sharex=True,
    )
    for col, (label, bins, ece_value) in enumerate(panels):
        ax, hist = axes[0][col], axes[1][col]
        lo = np.array([b.lo for b in bins])
        width = np.array([b.hi - b.lo for b in bins])
        acc = np.array([b.accuracy if b.count else 0.0 for b in bins])
        conf = np.array([b.confidence if b.count else 0.0 for b in bins])
        counts = np.array([b.count for b in bins], dtype=float)
        ax.bar(lo, acc, width=width, align="edge", color="#4c72b0", edgecolor="black", label="accuracy")
        gap_lo = np.minimum(acc, conf)
        ax.bar(
            lo,
            np.abs(conf - acc),
            bottom=gap_lo,
            width=width,
            align="edge",
            color="#dd8452",
            alpha=0.5,
            edgecolor="#dd8452",
            label="gap to confidence",
        )
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{label}: ECE {ece_value:.3f}")
        ax.set_ylabel("accuracy")
        ax.legend(loc="upper left", fontsize=8)
        total = counts.sum() or 1.0
        hist.bar(lo, counts / total, width=width, align="edge", color="grey", edgecolor="black")
        hist.set_xlabel("confidence (top-class probability)")
        hist.set_ylabel("share")
    if title:
        fig.suptitle(title)
    return _save(plt, fig, path)


def interval_diagram(
    levels: Sequence[float],
    coverages: Sequence[float],
    chosen: tuple[float, float, float],
    path: str | Path,
    title: str = "",
) -> Path:
    """Empirical test coverage of split-conformal intervals against their nominal level; ``chosen`` is
    (level, coverage, half_width) of the stored interval."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="nominal = empirical")
    ax.plot(levels, coverages, "o-", color="#4c72b0", label="test coverage")
    level, cov, q = chosen
    ax.plot([level], [cov], "s", color="#c44e52", markersize=9, label=f"stored: ±{q:.3g} at {level:.0%}")
    ax.set_xlim(min(levels) - 0.05, 1.0)
    ax.set_ylim(min(min(coverages), min(levels)) - 0.05, 1.0)
    ax.set_xlabel("nominal level (fitted on validation)")
    ax.set_ylabel("coverage on test")
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: str | Path) -> Path:
    """Lay out, write ``fig`` as PNG (folders created) and free it."""
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
