"""benchmarks/merge_cv_tables.py: recipe CV tables merge only where their runs are comparable."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def merge_mod():
    spec = importlib.util.spec_from_file_location("merge_cv_tables", ROOT / "benchmarks" / "merge_cv_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(offset: float, seeds=(0, 1)) -> list[dict]:
    return [{"fold": f, "seed": s, "voice_bal": 0.7 + offset, "voice_happy": 0.7, "face_auc": 0.9 + offset,
             "text_clean": 0.8, "text_tts": 0.7 + offset + 0.01 * f, "mae": 0.8, "arousal_r": 0.6}
            for f in (0, 1) for s in seeds]  # fmt: skip


def _entry(rows: list[dict]) -> dict:
    from mmcl.recipes import cv
    from mmcl.recipes.default_model import score

    return {"folds": rows, "summary": cv.summarise(rows), "score": [score(r) for r in rows]}


def _run(**cands: float) -> dict:
    table = {"linear probe": _entry(_rows(0.0, seeds=(0,))), "late fusion": _entry(_rows(-0.01, seeds=(0,)))}
    table.update({name: _entry(_rows(off)) for name, off in cands.items()})
    return table


def test_runs_with_the_same_baselines_merge_and_the_rule_sees_the_union(merge_mod):
    from mmcl.recipes.default_model import choose

    merged = merge_mod.merge([_run(**{"MMCL CSD step": 0.0, "MMCL CSD off": 0.02}),
                              _run(**{"MMCL CSD step, specific_residual True": 0.03})])  # fmt: skip
    assert set(merged) == {"linear probe", "late fusion", "MMCL CSD step", "MMCL CSD off",
                           "MMCL CSD step, specific_residual True"}  # fmt: skip
    cands = [{"csd": "step"}, {"csd": "step", "specific_residual": True}, {"ablation": "no_csd"}]
    chosen, reason = choose(merged, cands)
    assert chosen == cands[1] and "not beyond it" in reason
    assert "| MMCL CSD off | 4 |" in merge_mod.markdown(merged)


def test_runs_whose_baselines_or_run_order_differ_are_refused(merge_mod):
    other = _run(**{"MMCL CSD off": 0.02})
    other["linear probe"]["folds"][1]["text_tts"] += 0.017  # another machine's features
    with pytest.raises(SystemExit, match="'linear probe' differs"):
        merge_mod.merge([_run(**{"MMCL CSD step": 0.0}), other])
    shuffled = _run(**{"MMCL CSD off": 0.02})
    shuffled["MMCL CSD off"] = _entry(list(reversed(_rows(0.02))))
    with pytest.raises(SystemExit, match="same \\(fold, seed\\) order"):
        merge_mod.merge([_run(**{"MMCL CSD step": 0.0}), shuffled])
