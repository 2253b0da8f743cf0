"""Loading dataset pickles without running arbitrary code.

A pickle is a program: unpickling an untrusted file can execute anything, and dataset pickles downloaded
from the internet are untrusted code by nature. Dataset files (MMSA, MulT) only ever need numpy arrays,
lists, dicts, strings and numbers, so this restricted Unpickler allows exactly the numpy reconstruction
functions and refuses every other global with a DataFormatError (nothing from the file runs). numpy
itself trusts the array and dtype states in a pickle (a damaged object array crashes the interpreter), so
each is checked for consistency before numpy builds it.
"""

from __future__ import annotations

import dataclasses
import io
import math
import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from model.errors import DataFormatError

_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("collections", "OrderedDict"),
        ("builtins", "slice"),
        ("builtins", "complex"),
    }
)


def _refuse(what: str) -> None:
    raise pickle.UnpicklingError(f"inconsistent {what} (a damaged or crafted file)")


def _check_dtype_state(dt: np.dtype, state: Any) -> None:
    """A dtype's pickled state may only restate what its constructor arguments already say (plus the byte
    order): numpy trusts the flags and sizes in it, and inconsistent ones make it read wild memory."""
    canon = dt.__reduce__()[2]
    if not isinstance(state, tuple) or len(state) != len(canon) or state[0] != canon[0]:
        _refuse("dtype state")
    if state[1] not in ("<", ">", "|", "=") or state[2:8] != canon[2:8]:
        _refuse(f"dtype state for {dt}")
    if len(state) > 8 and not (isinstance(state[8], tuple) and len(state[8]) == 2):
        _refuse(f"dtype metadata for {dt}")


def _check_array_state(state: Any) -> None:
    """numpy does not check an object array's element list against its shape (it reads past the list's
    end and crashes the interpreter), so shape, dtype and data must agree before ``__setstate__``."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        _refuse("array state")
    shape, dtype, _fortran, data = state[-4:]
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        _refuse("array shape")
    if not isinstance(dtype, np.dtype):
        _refuse("array dtype")
    count = math.prod(shape)
    if dtype.hasobject:
        if dtype != np.dtype(object) or not isinstance(data, list) or len(data) != count:
            _refuse(f"object array of shape {shape}")
    elif not isinstance(data, (bytes, bytearray)) or len(data) != count * dtype.itemsize:
        _refuse(f"{dtype} array of shape {shape}")


class RestrictedUnpickler(pickle._Unpickler):
    """Allows only the globals in ``_ALLOWED`` and checks every numpy dtype/array state before numpy sees
    it. The pure-Python unpickler is used because its BUILD step can be checked (dataset pickles hold few,
    large objects, so the speed difference does not matter)."""

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")

    def load_build(self) -> None:
        if len(self.stack) < 2:
            _refuse("BUILD")
        inst, state = self.stack[-2], self.stack[-1]
        if isinstance(inst, np.dtype):
            _check_dtype_state(inst, state)
        elif isinstance(inst, np.ndarray):
            _check_array_state(state)
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


def safe_load_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` allowing only numpy arrays, lists, dicts, str and numbers.

    Raises DataFormatError naming the file when it is missing, truncated, not a pickle, or refers to
    anything else (which could run code).
    """
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"data file {p} does not exist")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"cannot read {p}: {exc}") from None
    try:
        return RestrictedUnpickler(io.BytesIO(raw)).load()
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "is not allowed" in msg:
            raise DataFormatError(
                f"{p} was refused: it contains {msg.split(' is not')[0]}, and dataset pickles may only hold "
                "numpy arrays, lists, dicts and strings (a pickle can run code; re-save the data as plain arrays)"
            ) from None
        raise DataFormatError(f"{p} is not a readable pickle ({msg or 'corrupt data'})") from None
    except Exception as exc:  # anything else a damaged file makes the unpickler or numpy raise
        raise DataFormatError(
            f"{p} is truncated or corrupt ({type(exc).__name__}: {exc}); re-download or re-create it"
        ) from None


_CACHE_MODULES = ("model.", "realtime.", "calibration.", "mmcl.")


def _is_plain_dataclass(obj: Any) -> bool:
    """A project dataclass whose unpickling only fills fields: no custom __reduce__/__setstate__ that
    could run code (the dataclass-generated __setstate__ of ``slots=True`` classes is allowed)."""
    if not isinstance(obj, type) or not dataclasses.is_dataclass(obj):
        return False
    setstate = getattr(obj, "__setstate__", None)
    if setstate is not None and getattr(setstate, "__qualname__", "") not in (
        "_dataclass_setstate",
        "object.__setstate__",
    ):
        return False
    return obj.__reduce__ is object.__reduce__ and obj.__reduce_ex__ is object.__reduce_ex__


class CacheUnpickler(RestrictedUnpickler):
    """Local caches written by mmcl-live itself: numpy data plus the project's own plain dataclasses."""

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith(_CACHE_MODULES) and "." not in name:
            obj = super(RestrictedUnpickler, self).find_class(module, name)
            if _is_plain_dataclass(obj):
                return obj
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")
        if (module, name) in {("builtins", "set"), ("builtins", "frozenset"), ("builtins", "tuple")}:
            return super(RestrictedUnpickler, self).find_class(module, name)
        return super().find_class(module, name)


def safe_load_cache(path: str | Path) -> Any:
    """Read a cache file mmcl-live wrote (``mmcl extract`` resume parts, the default-model recipe cache).

    Such files live in the user's own folders, but a folder can be shared or tampered with, so they are
    read with a restricted Unpickler too: numpy arrays, lists, dicts, str, numbers and the project's own
    plain dataclasses; anything else is refused. Raises DataFormatError like ``safe_load_pickle``; callers
    treat that as a cache miss and recompute.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
        return CacheUnpickler(io.BytesIO(raw)).load()
    except Exception as exc:  # any failure means "not a usable cache file"
        raise DataFormatError(f"cache file {p} is unusable ({type(exc).__name__}: {exc})") from None
