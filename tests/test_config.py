from pathlib import Path

import pytest

from mmcl.app_config import AppConfig, load_app_config
from model.config import ModelConfig
from model.configlib import from_dict, parse_override, to_dict
from model.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_defaults_round_trip(tmp_path):
    import yaml

    cfg = AppConfig()
    again = from_dict(AppConfig, to_dict(cfg))
    assert again == cfg
    # and through a YAML file, as a user would save and reload it; one change survives the trip
    changed = to_dict(cfg)
    changed["model"]["d_model"] = 128
    f = tmp_path / "all.yaml"
    f.write_text(yaml.safe_dump(changed))
    loaded = load_app_config([f])
    assert loaded.model.d_model == 128 and to_dict(loaded) == changed


def test_unknown_key_names_key_and_suggests(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  d_modle: 128\n")
    with pytest.raises(ConfigError, match=r"model\.d_modle.*Did you mean 'd_model'"):
        load_app_config([f])


def test_unknown_section_is_error():
    with pytest.raises(ConfigError, match=r"unknown config key 'modle'"):
        load_app_config(overrides=["modle.d_model=3"])


def test_overrides_parse_yaml_values_and_apply_last(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  d_model: 128\n  n_heads: 4\ntrain:\n  lr: 0.001\n")
    cfg = load_app_config([f], ["model.d_model=64", "train.deterministic=false", "model.csd=paper"])
    assert cfg.model.d_model == 64 and cfg.train.lr == pytest.approx(1e-3)
    assert cfg.train.deterministic is False and cfg.model.csd == "paper"
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.d_model=abc", "expected an integer"),
        ("model.csd=other", "not one of 'paper', 'reference'"),
        ("model.d_model=102", "multiple of model.n_heads"),
        ("train.lr=-1", "must be positive"),
        ("model.dropout=true", "expected a number"),
        ("model.d_model", "not of the form key=value"),
    ],
)
def test_bad_values_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_app_config(overrides=[override])


def test_int_accepted_for_float_but_not_bool():
    assert from_dict(ModelConfig, {"dropout": 0}).dropout == 0.0
    with pytest.raises(ConfigError):
        from_dict(ModelConfig, {"positional": "yes"})


def test_malformed_yaml_names_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml"):
        load_app_config([f])
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_app_config([tmp_path / "missing.yaml"])


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    """Every value the file sets is the value the loaded config holds (none silently dropped)."""
    import yaml

    cfg = to_dict(load_app_config([path]))

    def leaves(node, prefix=()):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from leaves(v, (*prefix, k))
        else:
            yield prefix, node

    written = list(leaves(yaml.safe_load(path.read_text()) or {}))
    assert written, f"{path.name} sets nothing"
    for keys, value in written:
        got = cfg
        for k in keys:
            got = got[k]
        assert got == value or (isinstance(value, list) and list(got) == value), (".".join(keys), got, value)


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_config_loads(path):
    from mmcl.recipes.config import load_recipe_config

    cfg = load_recipe_config(path)
    assert cfg.seed >= 0


def test_monitor_backend_takes_the_registry_names_and_name_precision():
    from realtime.pipeline.config import MonitorConfig

    for spec in ("auto", "eager", "compile:bf16", "onnx", "onnx-int8", "tensorrt:int8"):
        assert MonitorConfig(backend=spec).backend == spec
    for bad in ("torchscript", "compile:fp64", "eager:"):
        with pytest.raises(ConfigError, match=r"monitor\.backend must be one of .*compile:bf16"):
            MonitorConfig(backend=bad)


def test_cli_help_and_config_list_exactly_the_backend_registry(monkeypatch):
    import re

    from typer.testing import CliRunner

    from mmcl.cli import app
    from model.backends import BACKENDS, BackendEntry, backend_choices
    from realtime.pipeline.config import MonitorConfig

    for cmd in ("monitor", "serve"):
        out = CliRunner().invoke(app, [cmd, "--help"], env={"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}).output
        found = re.search(r"--backend\s+<str>\s+([\w|\-]+)\[:precision\]", out)
        assert found, out
        assert sorted(found.group(1).split("|")) == sorted(BACKENDS), cmd
    # each name, alone and with each precision its entry lists, is accepted; any other precision is refused
    for name, entry in BACKENDS.items():
        assert MonitorConfig(backend=name).backend == name
        for precision in entry.precisions:
            assert MonitorConfig(backend=f"{name}:{precision}").backend == f"{name}:{precision}"
        for precision in {"fp32", "bf16", "fp16", "int8"} - set(entry.precisions):
            with pytest.raises(ConfigError, match=r"monitor\.backend .*supports"):
                MonitorConfig(backend=f"{name}:{precision}")
    # adding a backend is one registry entry: the config takes it and the help lists it
    monkeypatch.setitem(BACKENDS, "openvino", BackendEntry(lambda loaded, **options: None, ("fp32",)))
    assert MonitorConfig(backend="openvino:fp32").backend == "openvino:fp32"
    assert "openvino" in backend_choices().removesuffix("[:precision]").split("|")
