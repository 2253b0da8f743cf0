"""Safe loading: checkpoints go through ``torch.load(weights_only=True)`` and dataset pickles through the
restricted Unpickler, so a file cannot run code when it is opened.

Complements tests/test_data_loaders.py (a truncated pickle, an ``os.system`` pickle) and
tests/test_fuzz_loaders.py (twelve forbidden globals, a canary that must never be called).
"""

from __future__ import annotations

import ast
import inspect
import itertools
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
KNOWN_LOCAL_CACHES: set[str] = set()  # local caches use model.data.safe_pickle.safe_load_cache too

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


def _features(path: str = "clip.mp4"):
    import numpy as np

    from realtime.features.extract import FileFeatures
    from realtime.types import Word

    rng = np.random.default_rng(0)
    return FileFeatures(
        path=path,
        duration=2.0,
        vision_t=np.arange(3) / 15,
        vision_x=rng.normal(size=(3, 56)).astype(np.float32),
        vision_valid=np.array([True, False, True]),
        audio_t=np.arange(4) / 10,
        audio_x=rng.normal(size=(4, 34)).astype(np.float32),
        audio_valid=np.ones(4, bool),
        words=[Word("hello", 0.1, 0.4, 0.9, meta={"k": 1})],
    )


def test_the_recipe_cache_round_trips_features_and_refuses_code(tmp_path: Path) -> None:
    import pickle

    import numpy as np

    from mmcl.recipes.items import ItemCache

    cache = ItemCache(tmp_path)
    ff = _features()
    key = cache.key("voice", "abc")
    cache.put("voice", key, ff)
    got = ItemCache(tmp_path).get("voice", key)
    assert got is not None and got.words == ff.words and got.words[0].meta == {"k": 1}
    np.testing.assert_array_equal(got.vision_x, ff.vision_x)
    np.testing.assert_array_equal(got.vision_valid, ff.vision_valid)

    # The same file with a code object inside (a shared or tampered cache folder): a miss, nothing runs.
    ff.words[0].meta["x"] = _Payload()
    path = next((tmp_path / "voice").rglob(f"{key}.pkl"))
    path.write_bytes(pickle.dumps({"key": key, "value": ff}))
    fresh = ItemCache(tmp_path)
    assert fresh.get("voice", key) is None and fresh.misses == 1
    assert RAN == []


def test_the_cache_unpickler_allows_only_plain_project_dataclasses(tmp_path: Path) -> None:
    import pickle

    from model.data.safe_pickle import safe_load_cache
    from model.errors import DataFormatError
    from realtime.clock import MonotonicClock

    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps({"samples": [_features()]}))
    assert safe_load_cache(good)["samples"][0].path == "clip.mp4"
    for name, obj in [("class", MonotonicClock()), ("payload", [_Payload()]), ("os", {"f": __import__("os").getcwd})]:
        bad = tmp_path / f"{name}.pkl"
        bad.write_bytes(pickle.dumps(obj))
        with pytest.raises(DataFormatError, match="is unusable"):
            safe_load_cache(bad)
    torn = tmp_path / "torn.pkl"
    torn.write_bytes(good.read_bytes()[:50])
    with pytest.raises(DataFormatError, match=r"torn\.pkl"):
        safe_load_cache(torn)
    assert RAN == []


def _patched_object_array_pickle(shape_n: int, obj_flags: int | None = None) -> bytes:
    """A protocol-4 pickle of a 1-element object array with the shape's length (and optionally the object
    dtype's flags) overwritten: what one damaged byte in a dataset file does."""
    import pickle
    import pickletools

    import numpy as np

    raw = bytearray(pickle.dumps({"id": np.array(["v0"], dtype=object)}, protocol=4))
    ops = list(pickletools.genops(bytes(raw)))
    for (op, arg, pos), (nxt, _, _) in itertools.pairwise(ops):
        if op.name == "BININT1" and arg == 1 and nxt.name == "TUPLE1":
            raw[pos + 1] = shape_n  # the shape (1,) → (shape_n,)
        if obj_flags is not None and op.name == "BININT1" and arg == 63:
            raw[pos + 1] = obj_flags  # the object dtype's flags
    return bytes(raw)


@pytest.mark.parametrize("case", ["shape", "dtype flags"])
def test_a_damaged_object_array_is_refused_not_a_crash(tmp_path: Path, case: str) -> None:
    """numpy reads past the element list of an object array whose shape was damaged (a segfault found by
    the fuzz test); the loader must refuse it with its own error. Run in a child: a regression crashes."""
    import subprocess
    import sys

    bad = tmp_path / "bad.pkl"
    bad.write_bytes(_patched_object_array_pickle(209) if case == "shape" else _patched_object_array_pickle(1, 0))
    good = tmp_path / "good.pkl"
    good.write_bytes(_patched_object_array_pickle(1))
    code = (
        "import sys\nfrom model.data.safe_pickle import safe_load_pickle\nfrom model.errors import DataFormatError\n"
        "print(safe_load_pickle(sys.argv[2])['id'].tolist())\n"
        "try:\n    safe_load_pickle(sys.argv[1])\nexcept DataFormatError as e:\n    print('REFUSED', e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(bad), str(good)], capture_output=True, text=True,
                         timeout=60, cwd=REPO)  # fmt: skip
    assert res.returncode == 0, (res.returncode, res.stderr[-2000:])
    assert "['v0']" in res.stdout and "REFUSED" in res.stdout and "bad.pkl" in res.stdout, res.stdout
