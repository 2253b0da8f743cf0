"""Markdown tables of a recipe run (``<out>/report.md``; the model card and README quote them)."""

from __future__ import annotations

import math
from typing import Any

from mmcl.recipes.config import RecipeConfig
from model.featureset import LIVE_FEATURE_SET

COLUMNS = (
    ("voice_bal", "voice alone: valence polarity (balanced)", True),
    ("voice_happy", "voice alone: happy vs sad/angry (balanced)", True),
    ("face_auc", "face alone: smiling vs neutral AUC", False),
    ("text_clean", "words: sign acc., clean text", True),
    ("text_tts", "words: sign acc., eSpeak + ASR", True),
    ("mae", "MAE (all windows)", False),
    ("arousal_r", "arousal r (RAVDESS voice + words)", False),
)


NAMES = {"vision": "face", "audio": "voice", "text": "words"}  # presence keys as the dashboard names them


def _v(v: Any, pct: bool) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def cv_table(cv: dict[str, Any]) -> str:
    """Mean ± std over runs (folds × seeds; the baselines are deterministic: one run per fold)."""
    rows = []
    for name, entry in cv.items():
        cells = [name, len(entry["folds"])]
        for key, _, pct in COLUMNS:
            mean, std = entry["summary"][key]
            cells.append(f"{_v(mean, pct)} ± {_v(std, pct)}" if not math.isnan(mean) else "–")
        rows.append(cells)
    return _table(["model", "runs", *(title for _, title, _ in COLUMNS)], rows)


def test_table(final: dict[str, dict[str, float]]) -> str:
    rows = [[name, *(_v(m.get(key), pct) for key, _, pct in COLUMNS)] for name, m in final.items()]
    return _table(["model", *(title for _, title, _ in COLUMNS)], rows)


def summary_table(result: Any) -> str:
    return test_table(result.final_test)


def intervals_table(calib: dict[str, Any]) -> str:
    """The 90% widths: pooled and per presence pattern, with their final-test coverage."""
    rows = []
    for key, what in (("interval", "valence"), ("arousal_interval", "arousal")):
        rec = calib.get(key)
        if not rec:
            continue
        for name, r in [("all windows", rec), *sorted((rec.get("by_presence") or {}).items())]:
            name = " + ".join(NAMES.get(m, m) for m in name.split("+")) if name != "all windows" else name
            cov = r.get("test_coverage")
            rows.append([what, name, f"± {r['half_width']:.2f}", r.get("n_valid", "–"),
                         _v(cov, True) if cov is not None else "–", r.get("n_test", "–")])  # fmt: skip
    return _table(["output", "windows with", "90% half-width", "CV residuals", "final-test coverage", "test windows"],
                  rows)  # fmt: skip


def render_report(result: Any, cfg: RecipeConfig) -> str:
    out = ["# Default model: recipe report\n"]
    out.append(f"Feature set {LIVE_FEATURE_SET.version}; {cfg.protocol.folds}-fold person-grouped CV over the "
               "development groups, "
               f"seeds {cfg.protocol.seeds}, {cfg.train.epochs} epochs (last kept).\n")  # fmt: skip
    out.append("## Items per source and side\n")
    out.append(_table(["source", "dev", "test", "eval"],
                      [[s, n.get("dev", 0), n.get("test", 0), n.get("eval", 0)] for s, n in result.sizes.items()]))
    out.append("\n## Cross-validation (mean ± std over folds × seeds)\n")
    out.append(cv_table(result.cv))
    out.append(f"\nChosen: {result.chosen['reason']}.\n")
    out.append("\n## Final test (held-out groups, scored once after every choice)\n")
    out.append(test_table(result.final_test))
    if getattr(result, "intervals", None):
        out.append("\n## Intervals (split conformal on the chosen candidate's out-of-fold CV residuals)\n")
        out.append(intervals_table(result.intervals))
    if result.media:
        out.append("\n## CREMA-D (one actor, six emotions; evaluation only): mean prediction per emotion\n")
        emotions = sorted(result.media.get("all", {}))
        rows = [[k, *(f"{v.get(e, float('nan')):+.2f}" for e in emotions)] for k, v in result.media.items()]
        out.append(_table(["input", *emotions], rows))
    out.append(f"\nCheckpoint: {result.parameters:,} parameters, {result.size_bytes / 1e6:.2f} MB; "
               f"seconds {result.seconds}.\n")  # fmt: skip
    return "\n".join(out)
