"""Fuzzing the config loader (YAML files and ``key=value`` overrides) with hypothesis.

Property: whatever the text, ``load_app_config`` returns a valid AppConfig or raises ConfigError with a
message — never another exception, never a hang (every example has a deadline). A config it accepts
round-trips through ``to_dict``/``from_dict`` and holds only finite numbers.

Inputs: arbitrary text; YAML dumped from nested mappings whose keys are (mostly) the real config keys and
whose values are anything YAML can hold (huge ints, NaN/inf, lists, nested mappings, null); valid YAML with
random characters spliced in; deeply nested YAML; and overrides built from real and made-up keys.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mmcl.app_config import AppConfig, load_app_config
from model.configlib import from_dict, to_dict
from model.errors import ConfigError

COUNTS: dict[str, int] = {}
FUZZ = settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.too_slow])


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1



def _key_paths(cls: type, prefix: str = "") -> list[str]:
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += _key_paths(tp, path + ".")
        else:
            out.append(path)
    return out


KEYS = _key_paths(AppConfig)
SECTIONS = sorted({k.split(".")[0] for k in KEYS})

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["auto", "eager", "paper", "reference", "silero", "energy", "realtime", "fast", "0", ""]),
)  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8), inner, max_size=3), max_leaves=8)  # fmt: skip
key_names = st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=12))


def _nest(path: str, value: object) -> dict:
    node: object = value
    for part in reversed(path.split(".")):
        node = {part: node}
    return node  # type: ignore[return-value]


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@st.composite
def config_mappings(draw: st.DrawFn) -> object:
    data: dict = {}
    for path, value in draw(st.lists(st.tuples(key_names, values), max_size=6)):
        data = _merge(data, _nest(path, value))
    if draw(st.booleans()):
        return data
    return draw(st.one_of(st.just(data), values))  # sometimes not a mapping at the top at all


def _check(load: typing.Callable[[], AppConfig]) -> None:
    try:
        cfg = load()
    except ConfigError as exc:
        assert str(exc).strip(), "a ConfigError must say what is wrong"
        return
    assert isinstance(cfg, AppConfig)
    flat = to_dict(cfg)
    assert from_dict(AppConfig, flat) == cfg  # what was accepted is a valid config again

    def finite(x: object) -> bool:
        if isinstance(x, float):
            return math.isfinite(x)
        if isinstance(x, dict):
            return all(finite(v) for v in x.values())
        if isinstance(x, list):
            return all(finite(v) for v in x)
        return True

    assert finite(flat), "a non-finite number was accepted"


@FUZZ
@given(text=st.text(max_size=300))
@example(text="model:\n  d_model: 1" + "0" * 400 + "\n")  # an int no float can hold
@example(text="[" * 1100)  # deeper than the YAML parser's recursion
@example(text="monitor:\n  hop_s: .nan\n")
@example(text="\x00\xff")
def test_yaml_text(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    _count("yaml text")
    f = tmp_path_factory.mktemp("cfg", numbered=True) / "c.yaml"
    f.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check(lambda: load_app_config([f]))


@FUZZ
@given(data=config_mappings())
def test_yaml_of_fuzzed_mappings(tmp_path_factory: pytest.TempPathFactory, data: object) -> None:
    _count("yaml mappings")
    f = tmp_path_factory.mktemp("cfg", numbered=True) / "c.yaml"
    f.write_text(yaml.safe_dump(data), encoding="utf-8")
    _check(lambda: load_app_config([f]))


@FUZZ
@given(cut=st.integers(0, 10**6), junk=st.text(max_size=5))
def test_valid_yaml_with_junk_spliced_in(tmp_path_factory: pytest.TempPathFactory, cut: int, junk: str) -> None:
    _count("yaml splice")
    text = yaml.safe_dump(AppConfig().to_dict())
    cut %= len(text)
    f = tmp_path_factory.mktemp("cfg", numbered=True) / "c.yaml"
    f.write_text(text[:cut] + junk + text[cut:], encoding="utf-8", errors="surrogatepass")
    _check(lambda: load_app_config([f]))


@FUZZ
@given(
    overrides=st.lists(
        st.one_of(
            st.tuples(key_names, st.text(max_size=30)).map(lambda kv: f"{kv[0]}={kv[1]}"),
            st.tuples(st.sampled_from(KEYS), values).map(lambda kv: f"{kv[0]}={yaml.safe_dump(kv[1])}"),
            st.text(max_size=30),
        ),
        max_size=4,
    )
)
@example(overrides=["monitor.hop_s=.inf"])
@example(overrides=["model.dropout=" + "9" * 400])
@example(overrides=["asr.interval_s=" + "[" * 1100])
@example(overrides=["monitor=3", "monitor.hop_s=0.5"])
def test_overrides(overrides: list[str]) -> None:
    _count("overrides")
    _check(lambda: load_app_config(overrides=overrides))
