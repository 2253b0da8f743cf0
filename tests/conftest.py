"""Shared fixtures. Real data lives in ../shared/data (read-only); tests that need it skip without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MMCL_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} is absent (set MMCL_SHARED_DATA to its location)")
    return SHARED_DATA


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item (``item.rep_call``) so fixtures can check a passed test."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(autouse=True)
def _fuzz_examples_really_ran(request):
    """In a module with a ``COUNTS`` dict (the fuzz tests count their examples there), every property test
    that passed must itself have run at least 10 examples, whatever order the tests run in."""
    counts = getattr(request.module, "COUNTS", None)
    before = sum(counts.values()) if counts is not None else 0
    yield
    call = getattr(request.node, "rep_call", None)
    if counts is not None and hasattr(request.node.function, "hypothesis") and call is not None and call.passed:
        ran = sum(counts.values()) - before
        assert ran >= 10, f"{request.node.name} ran {ran} fuzz example(s)"
