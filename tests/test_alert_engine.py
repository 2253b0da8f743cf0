"""The alert rule engine as a pure function of (observation history, clock): sustain, all/any, hysteresis,
cooldown and clear events, on hand-made histories with an injected clock (no threads, no wall time)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from model.configlib import from_dict
from realtime.alerts.engine import DeviceState, Observation, RuleEngine, RuleState, evaluate, holds
from realtime.alerts.rules import AlertRule, Condition

HOP = 0.5


def cond(**kw) -> Condition:
    return from_dict(Condition, kw)


def rule(**kw) -> AlertRule:
    return from_dict(AlertRule, {"name": "r", **kw})


def run(r: AlertRule, observations: list[Observation]) -> list[tuple[str, float]]:
    """Feed the observations one by one (clock = each observation's time); (kind, t) of every event."""
    eng = RuleEngine([r])
    out = []
    for obs in observations:
        eng.observe(obs)
        out += [(e.kind, e.t) for e in eng.step(obs.t)]
    return out


def series(values: list[float | None], **fixed) -> list[Observation]:
    return [Observation(t=HOP * (k + 1), valence=v, **fixed) for k, v in enumerate(values)]


def test_sustain_needs_the_condition_for_the_whole_span() -> None:
    c = cond(signal="valence", below=-1.0, for_s=2.0)
    hist = series([-2.0] * 4)  # t = 0.5 … 2.0: true for 1.5 s only
    assert not holds(c, hist)
    assert holds(c, series([-2.0] * 5))  # 0.5 … 2.5: 2.0 s
    broken = series([-2.0, -2.0, 0.0, -2.0, -2.0, -2.0])  # a break at 1.5 s resets the sustain
    assert not holds(c, broken)
    assert not holds(c, broken, now=broken[-1].t + 0.5)  # true since t=2.0: 1.5 s at now=3.5
    assert holds(c, broken, now=broken[-1].t + 1.0)  # the clock, not the sample count, measures it


def test_missing_signal_is_false_and_breaks_a_sustain() -> None:
    c = cond(signal="arousal", above=0.5)
    assert not holds(c, series([1.0]))  # no arousal output: never fires
    v = cond(signal="valence", below=-1.0, for_s=1.0)
    assert not holds(v, series([-2.0, None, -2.0, -2.0]))


def test_all_and_any_with_their_own_sustains() -> None:
    sad = {"signal": "valence", "below": -1.0, "for_s": 1.0}
    hist = [Observation(t=HOP * (k + 1), valence=-2.0, present=frozenset({"vision"}) if k >= 2 else frozenset())
            for k in range(5)]  # fmt: skip
    assert holds(cond(all=[sad, {"present": "vision"}]), hist)
    assert not holds(cond(all=[sad, {"present": "vision", "for_s": 2.0}]), hist)
    assert holds(cond(any=[{"absent": "text"}, {"present": "vision", "for_s": 2.0}]), hist)
    assert not holds(cond(any=[{"present": "text"}, {"signal": "valence", "above": 0}]), hist)
    # a sustain on the combination itself
    assert holds(cond(all=[{"signal": "valence", "below": -1.0}], for_s=2.0), hist)
    assert not holds(cond(all=[{"signal": "valence", "below": -1.0}], for_s=2.5), hist)


def test_one_episode_gives_one_fire_and_one_clear_with_hysteresis() -> None:
    r = rule(when={"signal": "valence", "below": -1.0, "for_s": 1.0},
             clear={"signal": "valence", "above": -0.2, "for_s": 1.0}, cooldown_s=0)  # fmt: skip
    # dips below -1 (fires after 1 s), hovers between -1 and -0.2 (stays active: hysteresis), recovers
    values = [0.0, -1.5, -1.5, -1.5, -0.5, -1.2, -0.5, -0.5, 0.1, 0.1, 0.1, 0.1]
    events = run(r, series(values))
    assert events == [("fire", 2.0), ("clear", 5.5)]


def test_without_clear_condition_it_clears_when_when_stops_holding() -> None:
    r = rule(when={"absent": "vision", "for_s": 1.0}, cooldown_s=0)
    seen = [set(), set(), set(), {"vision"}, {"vision"}]
    obs = [Observation(t=HOP * (k + 1), present=frozenset(s)) for k, s in enumerate(seen)]
    assert run(r, obs) == [("fire", 1.5), ("clear", 2.0)]


def test_cooldown_keeps_a_flapping_signal_to_one_alert() -> None:
    r = rule(when={"absent": "vision"}, cooldown_s=3.0)
    pattern = [set(), {"vision"}] * 5 + [set()] * 3  # face lost every other window for 5 s, then lost
    obs = [Observation(t=HOP * (k + 1), present=frozenset(s)) for k, s in enumerate(pattern)]
    events = run(r, obs)
    fires = [t for kind, t in events if kind == "fire"]
    assert fires[0] == 0.5
    assert all(b - a >= 3.0 + HOP for a, b in itertools.pairwise(fires))  # clear→fire >= cooldown
    assert len(fires) == 2
    no_cooldown = run(dataclasses.replace(r, cooldown_s=0.0), obs)
    assert sum(kind == "fire" for kind, _ in no_cooldown) == 6  # every flap is an alert without the cooldown


def test_evaluate_is_pure() -> None:
    r = rule(when={"signal": "valence", "below": -1.0})
    hist = tuple(series([-2.0, -2.0]))
    st = RuleState()
    a = evaluate(r, st, hist, 1.0)
    b = evaluate(r, st, hist, 1.0)
    assert a == b and st == RuleState()  # same inputs, same outputs; the state passed in is unchanged
    new_state, events = a
    assert new_state.active and new_state.episodes == 1 and events[0].kind == "fire"
    assert events[0].values["valence"] == -2.0
    assert evaluate(r, new_state, hist, 1.5) == (new_state, [])  # already active: no second fire


def test_degraded_devices_asr_backlog_and_drop_rate() -> None:
    cam_lost = (DeviceState("camera", "camera", "reconnecting"), DeviceState("asr", "worker", "running"))
    ok = (DeviceState("camera", "camera", "running"), DeviceState("asr", "worker", "running"))
    assert holds(cond(degraded="camera"), [Observation(1.0, devices=cam_lost)])
    assert holds(cond(degraded="any"), [Observation(1.0, devices=cam_lost)])
    assert not holds(cond(degraded="asr"), [Observation(1.0, devices=cam_lost)])
    assert not holds(cond(degraded="camera"), [Observation(1.0, devices=ok)])
    assert holds(cond(asr_behind_s=2.0), [Observation(1.0, asr_behind_s=2.5)])
    assert not holds(cond(asr_behind_s=2.0), [Observation(1.0, asr_behind_s=1.5)])
    drops = [Observation(HOP * k, drops_total=d) for k, d in enumerate([0, 0, 10, 20])]  # 20 drops/s at the end
    assert holds(cond(drop_rate_per_s=15.0), drops)
    assert not holds(cond(drop_rate_per_s=15.0), drops[:2])
    assert not holds(cond(drop_rate_per_s=25.0), drops)


def test_engine_history_is_bounded_by_the_longest_rule() -> None:
    eng = RuleEngine([rule(when={"signal": "valence", "below": 0, "for_s": 3.0})])
    for k in range(1000):
        eng.observe(Observation(t=HOP * k, valence=-1.0))
        eng.step(HOP * k)
    span = eng.history[-1].t - eng.history[0].t
    assert 3.0 <= span <= 3.0 + 2.0 + HOP
    assert eng.active() == ["r"] and eng.states["r"].episodes == 1


@pytest.mark.parametrize("value", [float("nan")])
def test_nan_signal_counts_as_missing(value: float) -> None:
    assert not holds(cond(signal="valence", below=0.0), [Observation(1.0, valence=value)])
