"""Markdown tables of a recipe run (``<out>/report.md``; the model card and README quote them)."""

from __future__ import annotations

import math
from typing import Any

from mmcl.recipes.config import RecipeConfig


def _f(v: Any, pct: bool = False) -> str:
    """Percent, or a signed value (valence, correlation) with two decimals."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{100 * v:.1f}%" if pct else f"{v:+.2f}"
    return str(v)


def _u(v: Any) -> str:
    """An unsigned quantity (MAE, AUC, threshold)."""
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.2f}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def summary_table(ev: dict[str, Any]) -> str:
    """The README-ready table: one line per held-out test, the model next to its baseline."""
    rows = []
    t = ev.get("text", {})
    if t:
        base = t.get("VADER on the ASR transcript", {})
        m = t["model: words + TTS voice"]
        rows.append(["Text polarity, held-out rated sentences via eSpeak + Whisper", m["n"],
                     _f(m["acc"], True), f"VADER lexicon: {_f(base.get('acc'), True)}"])  # fmt: skip
    v = ev.get("voice", {})
    if v:
        m, b = v["model: voice + transcript"], v.get("linear probe on voice features", {})
        rows.append(["Voice polarity (balanced acc.), 4 held-out RAVDESS actors", m["n"],
                     _f(m["bal_acc"], True), f"linear probe: {_f(b.get('bal_acc'), True)}"])  # fmt: skip
    f = ev.get("face", {})
    if f:
        m, b = f["model: face only"], f.get("linear probe on face features", {})
        rows.append(["Face smiling vs neutral, held-out London subjects", m["n"], _f(m["acc"], True),
                     f"linear probe: {_f(b.get('acc'), True)}"])  # fmt: skip
    c = ev.get("media", {}).get("crema_d")
    if c:
        m, b = c["polarity"]["all"], c["polarity"].get("voice probe", {})
        rows.append(["Face + voice + words, CREMA-D (1 actor, non-neutral clips)", m["n"], _f(m["acc"], True),
                     f"voice probe: {_f(b.get('acc'), True)}"])  # fmt: skip
    return _table(["held-out test", "n", "default model", "baseline"], rows)


def render_report(result: Any, cfg: RecipeConfig) -> str:
    ev = result.evaluation
    out = ["# Default model: recipe report\n"]
    out.append(
        f"Checkpoint `{result.checkpoint.name}`: {result.parameters:,} parameters, "
        f"{result.size_bytes / 1e6:.2f} MB (FP16 weights), selected model "
        f"d_model={result.selected['model']['d_model']}, best epoch {result.selected['best_epoch']}. "
        f"Times (s): {result.seconds}.\n"
    )
    out.append("## Items per source and split\n")
    splits = ["train", "valid", "test", "eval"]
    out.append(
        _table(["source", *splits], [[s, *(n.get(k, 0) for k in splits)] for s, n in result.sizes.items()])
    )
    out.append("\n## Samples per kind and split\n")
    kinds = ["T", "TF", "V", "VF", "F"]
    out.append(
        _table(["split", *kinds], [[s, *(n.get(k, 0) for k in kinds)] for s, n in result.kinds.items()])
    )
    out.append("\n## Model size (selected by validation MAE)\n")
    out.append(_table(
        ["candidate", "parameters", "best epoch", "valid MAE", "valid corr", "valid Acc2 (non-0)", "s", ""],
        [[r["overrides"], f"{r['parameters']:,}", r["best_epoch"], _u(r["valid_mae"]), _f(r["valid_corr"]),
          _f(r["valid_acc2_non0"], True), r["seconds"], "selected" if r["selected"] else ""]
         for r in result.candidates],
    ))  # fmt: skip
    out.append("\n## Summary (README table)\n")
    out.append(summary_table(ev))
    if ev.get("text"):
        out.append(
            f"\n## Text: held-out sentences (strong = |label| ≥ 1.5, n = {ev['text'].get('_n_strong')})\n"
        )
        out.append(_table(
            ["predictor", "n", "polarity acc", "bal. acc", "weighted F1", "acc (strong)", "Pearson r"],
            [[k, r["n"], _f(r["acc"], True), _f(r["bal_acc"], True), _f(r["f1"], True),
              _f(r["acc_strong"], True), _f(r["corr"])]
             for k, r in ev["text"].items() if not k.startswith("_")],
        ))  # fmt: skip
    if ev.get("voice"):
        out.append("\n## Voice: held-out RAVDESS actors, non-neutral clips\n")
        emos = sorted(next(iter(ev["voice"].values()))["mean_by_emotion"])
        out.append(_table(
            ["predictor", "n", "acc", "bal. acc", "weighted F1", "happy vs sad/angry",
             *[f"mean {e}" for e in emos]],
            [[k, r["n"], _f(r["acc"], True), _f(r["bal_acc"], True), _f(r["f1"], True),
              _f(r["acc_happy_vs_sad_angry"], True), *[_f(r["mean_by_emotion"][e]) for e in emos]]
             for k, r in ev["voice"].items()],
        ))  # fmt: skip
    if ev.get("face"):
        out.append("\n## Face: held-out London subjects (smiling vs neutral)\n")
        out.append(_table(
            ["predictor", "n", "acc", "AUC", "mean (smiling)", "mean (neutral)", "threshold"],
            [[k, r["n"], _f(r["acc"], True), _u(r["auc"]), _f(r["mean_smiling"]), _f(r["mean_neutral"]),
              _u(r["threshold"])] for k, r in ev["face"].items()],
        ))  # fmt: skip
    if ev.get("pairs"):
        out.append("\n## Held-out cross-source pairs (speech + a face from another held-out person)\n")
        rows = []
        for kind, r in ev["pairs"].items():
            for cond, m in r.items():
                rows.append([kind, cond, m["n"], _f(m["acc"], True), _f(m["bal_acc"], True), _u(m["mae"])])
        out.append(_table(["kind", "condition", "n (non-0)", "acc", "bal. acc", "MAE"], rows))
    crema = ev.get("media", {}).get("crema_d")
    if crema:
        out.append('\n## CREMA-D actor 1001, "Don\'t forget a jacket" (face + voice + words in step)\n')
        preds = [k for k in crema["clips"][0] if k in ("all", "voice + words", "face only", "voice probe")]
        out.append(_table(
            ["clip", "intended", "AV vote", "label", "face steps", "transcript", *preds],
            [[c["clip"], c["emotion"], c["av_vote"], _f(c["label"]), _f(c["face_rate"], True),
              c["transcript"], *[_f(c[p]) for p in preds]] for c in crema["clips"]],
        ))  # fmt: skip
    moud = ev.get("media", {}).get("moud")
    if moud:
        out.append(
            "\n## MOUD 101 (Spanish, 5 utterances labelled positive; tiny.en cannot transcribe Spanish)\n"
        )
        out.append(_table(
            ["input", "predictions", "share > 0"],
            [[k, ", ".join(_f(x) for x in v), _f(moud["share_positive"][k], True)]
             for k, v in moud["predictions"].items()],
        ))  # fmt: skip
    out.append(f"\nConfig: seed {cfg.seed}, data root `{cfg.data_root}`.\n")
    return "\n".join(out)
