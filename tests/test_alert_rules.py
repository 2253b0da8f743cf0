"""Alert rule files: strict loading (one-line errors naming the key) and the shipped examples."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from model.errors import ConfigError
from realtime.alerts.rules import AlertsConfig, load_alerts

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "rules.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def rule(**changes) -> dict:
    base = {"name": "r", "when": {"signal": "valence", "below": -1.0, "for_s": 2}}
    base.update(changes)
    return base


@pytest.mark.parametrize("name", ["driver_distress.yaml", "looked_away.yaml"])
def test_example_rule_files_load(name: str) -> None:
    cfg = load_alerts(REPO / "configs" / "alerts" / name)
    assert isinstance(cfg, AlertsConfig) and cfg.rules
    assert all(r.name and r.when is not None for r in cfg.rules)


def test_looked_away_example_has_hysteresis_and_a_cooldown() -> None:
    r = load_alerts(REPO / "configs" / "alerts" / "looked_away.yaml").rules[0]
    assert r.name == "looked_away" and r.when.absent == "vision" and r.when.for_s == 2.0
    assert r.clear is not None and r.clear.present == "vision" and r.cooldown_s > 0


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"rules": [rule(whenn={"absent": "vision"})]}, "unknown config key 'rules[0].whenn'. Did you mean 'when'?"),
        ({"rules": [rule(when={"signal": "valence", "below": "low"})]}, "rules[0].when.below: expected a number"),
        ({"rules": [rule(when={"signal": "valense", "below": 1})]}, "rules[0].when.signal: 'valense' is not one of"),
        ({"rules": [rule(when={"absent": "face"})]}, "rules[0].when.absent: 'face' is not one of"),
        ({"rules": [rule(when={"signal": "valence"})]}, "needs exactly one of 'below' or 'above'"),
        ({"rules": [rule(when={"absent": "vision", "present": "audio"})]}, "found absent, present"),
        ({"rules": [rule(when={"all": []})]}, "'all' needs at least one condition"),
        ({"rules": [rule(when={"all": [{"absent": "vision"}, {"for_s": 1}]})]}, "rules[0].when.all[1]"),
        ({"rules": [rule(when={"absent": "vision", "for_s": -1})]}, "'for_s' must be >= 0"),
        ({"rules": [rule(cooldown_s=-5)]}, "'cooldown_s' must be >= 0"),
        ({"rules": [rule(severity="urgent")]}, "rules[0].severity: 'urgent' is not one of"),
        ({"rules": [rule(actions=["email"])]}, "'email' is not one of log, headless, banner, command, webhook"),
        ({"rules": [rule(), rule()]}, "repeated: r"),
        ({"rules": []}, "at least one entry under 'rules'"),
        ({"rules": [rule()], "actions": {"webhook": {"url": "ftp://x"}}}, "actions.webhook: 'url' must be an http://"),
        ({"rules": [rule()], "actions": {"command": {"argv": []}}}, "actions.command: 'argv' needs the command"),
        ({"rules": [rule()], "actions": {"command": {"argv": ["true"], "timeout_s": 0}}}, "'timeout_s' must be in"),
        ({"rules": [rule()], "actions": {"beep": True}}, "unknown config key 'actions.beep'"),
    ],
)
def test_bad_rule_files_are_one_line_errors_naming_the_key(tmp_path: Path, data: dict, needle: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_alerts(path)
    msg = str(info.value)
    assert needle in msg, msg
    assert "\n" not in msg and msg.startswith(f"alert rules {path}: ")


def test_missing_file_says_where_examples_are(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_alerts(tmp_path / "nope.yaml")


def test_condition_span_counts_nested_sustains(tmp_path: Path) -> None:
    cond = {"all": [{"signal": "valence", "below": -1, "for_s": 5}, {"absent": "vision", "for_s": 2}], "for_s": 1}
    cfg = load_alerts(write(tmp_path, {"rules": [rule(when=cond)]}))
    assert cfg.rules[0].when.span_s() == pytest.approx(6.0)
