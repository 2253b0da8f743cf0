"""Merge the CV tables of recipe runs made on the same folds, windows and seeds, and apply the recipe's choice
rule (``mmcl.recipes.default_model.choose``) to the union.

A recipe run's CV rows depend only on the data, the folds, the seed and the candidate's settings, so a
candidate measured by one run need not be re-trained by the next. The merge checks that: the deterministic
baselines (linear probe, late fusion) must agree row by row across the runs, and a candidate present in
several runs must agree too; otherwise it stops.

    .venv/bin/python benchmarks/merge_cv_tables.py benchmarks/results/default_model_v8_recipe.json \\
        benchmarks/results/default_model_v8_wd001_cv.json --candidate '{"csd": "step", "specific_residual": true}' ...

Prints the merged CV table (markdown, as the model card quotes it) and the candidate the rule chooses.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmcl.recipes.cv import METRICS  # noqa: E402
from mmcl.recipes.default_model import candidate_name, choose  # noqa: E402
from mmcl.recipes.report import cv_table  # noqa: E402

BASELINES = ("linear probe", "late fusion")
KEYS = ("fold", "seed", *METRICS)


def _same_rows(a: list[dict[str, Any]], b: list[dict[str, Any]], tol: float = 1e-9) -> bool:
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b, strict=True):
        for k in KEYS:
            va, vb = ra.get(k), rb.get(k)
            if va is None and vb is None:
                continue
            if va is None or vb is None:
                return False
            if not (math.isnan(va) and math.isnan(vb)) and abs(va - vb) > tol:
                return False
    return True


def merge(tables: list[dict[str, Any]]) -> dict[str, Any]:
    """The union of the runs' CV tables; raises if any shared row differs (then the runs are not comparable)."""
    out: dict[str, Any] = {}
    for table in tables:
        for name, entry in table.items():
            if name in out:
                if not _same_rows(out[name]["folds"], entry["folds"]):
                    raise SystemExit(f"{name!r} differs between the runs: they did not use the same folds/windows")
                continue
            out[name] = entry
    order = {tuple((r["fold"], r["seed"]) for r in e["folds"]) for n, e in out.items() if n not in BASELINES}
    if len(order) > 1:
        raise SystemExit("the candidates' runs are not in the same (fold, seed) order: the rule pairs them by run")
    missing = [b for b in BASELINES if b not in out]
    if missing:
        raise SystemExit(f"no {', '.join(missing)} rows: not recipe CV tables")
    return out


def markdown(table: dict[str, Any]) -> str:
    """The recipe report's CV table, then each row's mean CV score (what the choice rule ranks)."""
    scores = "\n".join(f"- {name}: score {float(np.nanmean(e['score'])):.4f}" for name, e in table.items())
    return cv_table(table) + "\n" + scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path, help="recipe_result.json files (or their copies)")
    ap.add_argument("--candidate", action="append", default=[], type=json.loads,
                    help="a candidate (JSON), in the recipe's order; repeat for each")  # fmt: skip
    args = ap.parse_args(argv)
    table = merge([json.loads(p.read_text())["cv"] for p in args.results])
    print(markdown(table))
    if args.candidate:
        names = [candidate_name(c) for c in args.candidate]
        absent = [n for n in names if n not in table]
        if absent:
            raise SystemExit(f"not in any run: {', '.join(absent)}")
        chosen, reason = choose(table, args.candidate)
        print(f"\nchosen: {candidate_name(chosen)} — {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
