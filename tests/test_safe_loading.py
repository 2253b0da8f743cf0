"""Safe loading: checkpoints go through ``torch.load(weights_only=True)`` and dataset pickles through the
restricted Unpickler, so a file cannot run code when it is opened.

Complements tests/test_data_loaders.py (a truncated pickle, an ``os.system`` pickle) and
tests/test_fuzz_loaders.py (twelve forbidden globals, a canary that must never be called).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import torch
from helpers_monitor import make_checkpoint

from model.checkpoint import load_checkpoint, read_checkpoint
from model.errors import CheckpointError

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("model", "realtime", "mmcl", "calibration")
# Caches that the same user writes and reads back in their own folders (extract resume parts next to
# --out, the recipe's feature cache); listed so that any *new* unrestricted unpickling fails this test.
KNOWN_LOCAL_CACHES = {"realtime/features/dataset.py", "mmcl/recipes/items.py"}

RAN: list[str] = []


class _Payload:
    """Unpickling this runs ``_mark('ran')``: what a malicious checkpoint would do with os.system."""

    def __reduce__(self):
        return (_mark, ("ran",))


def _mark(what: str) -> str:
    RAN.append(what)
    return what


@pytest.mark.parametrize("where", ["top", "extra", "state_dict"])
def test_a_checkpoint_with_a_code_object_is_refused(tmp_path: Path, where: str) -> None:
    good = make_checkpoint(tmp_path / "good.pt")
    payload = torch.load(good, weights_only=True)
    if where == "top":
        payload = _Payload()
    elif where == "extra":
        payload["extra"] = {"note": _Payload()}
    else:
        payload["state_dict"]["evil"] = _Payload()
    evil = tmp_path / "evil.pt"
    torch.save(payload, evil)
    with pytest.raises(CheckpointError, match=r"evil\.pt is not a readable mmcl checkpoint"):
        load_checkpoint(evil)
    assert RAN == [], "unpickling ran code from the checkpoint"
    load_checkpoint(good)  # the same payload without the object loads


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            dotted = f"{getattr(f.value, 'id', '')}.{f.attr}" if isinstance(f, ast.Attribute) else ""
            if dotted == name:
                out.append(node)
    return out


def test_every_torch_load_is_weights_only_and_no_unrestricted_unpickling() -> None:
    files = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    assert len(files) > 30
    torch_loads, unpickles = [], []
    for p in files:
        tree = ast.parse(p.read_text(encoding="utf-8"))
        rel = p.relative_to(REPO).as_posix()
        for call in _calls(tree, "torch.load"):
            kw = {k.arg: k.value for k in call.keywords}
            ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
            torch_loads.append((rel, call.lineno, ok))
        for name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "np.load", "numpy.load"):
            for call in _calls(tree, name):
                kw = {k.arg: k.value for k in call.keywords}
                if name.endswith(".load") and name.startswith(("np", "numpy")):
                    pick = kw.get("allow_pickle")  # numpy's default (False) is safe
                    if pick is None or (isinstance(pick, ast.Constant) and pick.value is False):
                        continue
                unpickles.append((rel, call.lineno, name))
    assert torch_loads and all(ok for _, _, ok in torch_loads), torch_loads
    unexpected = [u for u in unpickles if u[0] not in KNOWN_LOCAL_CACHES]
    assert unexpected == [], f"unrestricted unpickling (use model.data.safe_pickle): {unexpected}"
    assert read_checkpoint.__doc__ and "weights_only=True" in read_checkpoint.__doc__


def test_loader_docstrings_say_dataset_pickles_are_untrusted() -> None:
    import model.data.loading
    import model.data.mmsa
    import model.data.mult
    import model.data.safe_pickle

    for mod in (model.data.safe_pickle, model.data.mmsa, model.data.mult, model.data.loading):
        doc = " ".join((inspect.getdoc(mod) or "").split())
        assert "untrusted" in doc and "restricted Unpickler" in doc, mod.__name__
