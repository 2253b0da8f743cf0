"""The alert rule engine: a pure function of (observation history, clock) → alert events.

``Observation`` is what the monitor saw at one moment (one per window: the sentiment signals, which
modalities are present, device statuses, ASR backlog, cumulative drops). ``evaluate(rule, state, history,
now)`` returns the rule's next ``RuleState`` and the events (``fire`` / ``clear``) at time ``now``; it
reads nothing else (no wall clock, no globals), so tests drive it with hand-made histories and times.
``RuleEngine`` keeps the bounded history and the per-rule states for the monitor.

Episode semantics:

* **fire** — the rule is idle, ``when`` holds at ``now`` (with its sustains), and at least ``cooldown_s``
  have passed since this rule last cleared. One episode gives exactly one ``fire``.
* **clear** — the rule is active and ``clear`` holds (hysteresis: e.g. fire below −0.5, clear above −0.2);
  without a ``clear`` condition, as soon as ``when`` no longer holds. The event carries the episode's
  duration.

Sustain (``for_s``): a condition holds at ``now`` when it was true in every observation from some
observation at least ``for_s`` before ``now`` up to the newest one (no gap, no missing signal).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from realtime.alerts.rules import AlertRule, Condition

DEGRADED_STATUSES = frozenset({"reconnecting", "failed", "behind", "stopped"})
EPS = 1e-9


@dataclass(frozen=True)
class DeviceState:
    name: str  # e.g. "camera", "audio-file", "face", "asr"
    kind: str  # source kind, or "worker"
    status: str


@dataclass(frozen=True)
class Observation:
    """One look at the monitor (session clock ``t``). Missing signals are None."""

    t: float
    valence: float | None = None
    arousal: float | None = None
    confidence: float | None = None
    trend: float | None = None
    present: frozenset[str] = frozenset()  # modalities live right now
    devices: tuple[DeviceState, ...] = ()
    asr_behind_s: float = 0.0
    drops_total: float = 0.0  # cumulative drops of every kind (rates come from differences)

    def values(self) -> dict[str, Any]:
        """The figures an alert carries (JSON-ready)."""
        return {
            "valence": self.valence, "arousal": self.arousal, "confidence": self.confidence, "trend": self.trend,
            "present": sorted(self.present),
            "degraded": sorted(d.name for d in self.devices if d.status in DEGRADED_STATUSES),
            "asr_behind_s": round(self.asr_behind_s, 3),
        }  # fmt: skip


@dataclass(frozen=True)
class AlertEvent:
    kind: str  # "fire" | "clear"
    rule: str
    severity: str
    message: str
    t: float  # session clock
    episode: int  # 1, 2, … per rule
    fired_at: float
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.t - self.fired_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "rule": self.rule, "severity": self.severity, "message": self.message,
            "t": self.t, "episode": self.episode, "fired_at": self.fired_at,
            **({"duration_s": round(self.duration_s, 3)} if self.kind == "clear" else {}),
            "values": self.values,
        }  # fmt: skip


@dataclass(frozen=True)
class RuleState:
    active: bool = False
    fired_at: float | None = None
    last_clear: float | None = None
    episodes: int = 0
    suppressed: int = 0  # evaluations where `when` held but the cooldown kept the rule quiet


# ---- conditions ---------------------------------------------------------------------------------------------
def _signal(obs: Observation, name: str) -> float | None:
    v = getattr(obs, name)
    return None if v is None or v != v else float(v)


def _device_matches(dev: DeviceState, target: str) -> bool:
    if target == "any":
        return True
    return dev.name == target or dev.name.startswith(target + ":") or dev.kind == target


def _instant(cond: Condition, hist: Sequence[Observation], i: int, now: float) -> bool:
    """Does ``cond`` (its own sustain aside) hold at observation ``i``?"""
    obs = hist[i]
    kind = cond.kind
    if kind == "signal":
        v = _signal(obs, cond.signal or "")
        if v is None:
            return False
        return v < cond.below if cond.below is not None else v > (cond.above or 0.0)
    if kind == "absent":
        return cond.absent not in obs.present
    if kind == "present":
        return cond.present in obs.present
    if kind == "degraded":
        return any(d.status in DEGRADED_STATUSES and _device_matches(d, cond.degraded or "") for d in obs.devices)
    if kind == "asr_behind_s":
        return obs.asr_behind_s > (cond.asr_behind_s or 0.0)
    if kind == "drop_rate_per_s":
        if i == 0:
            return False
        prev = hist[i - 1]
        dt = obs.t - prev.t
        return dt > 0 and (obs.drops_total - prev.drops_total) / dt > (cond.drop_rate_per_s or 0.0)
    subs = cond.all if kind == "all" else cond.any
    results = (holds(c, hist, i, now) for c in subs or ())
    return all(results) if kind == "all" else any(results)


def holds(cond: Condition, hist: Sequence[Observation], i: int | None = None, now: float | None = None) -> bool:
    """``cond`` with its sustain at observation ``i`` (default: the newest), judged at time ``now``
    (default: that observation's time; only the newest observation is judged at the caller's ``now``)."""
    if not hist:
        return False
    i = len(hist) - 1 if i is None else i
    t_i = hist[i].t if now is None or i != len(hist) - 1 else now
    if not _instant(cond, hist, i, t_i):
        return False
    if cond.for_s <= 0:
        return True
    j = i
    while j > 0 and hist[j - 1].t >= t_i - cond.for_s - 1.0 and _instant(cond, hist, j - 1, hist[j - 1].t):
        j -= 1
        if t_i - hist[j].t >= cond.for_s - EPS:
            return True
    return t_i - hist[j].t >= cond.for_s - EPS


# ---- rules --------------------------------------------------------------------------------------------------
def evaluate(
    rule: AlertRule, state: RuleState, hist: Sequence[Observation], now: float
) -> tuple[RuleState, list[AlertEvent]]:
    """The rule's next state and its events at ``now`` (pure)."""
    if not hist:
        return state, []
    values = hist[-1].values()
    if not state.active:
        if not holds(rule.when, hist, now=now):
            return state, []
        if state.last_clear is not None and now - state.last_clear < rule.cooldown_s - EPS:
            return dataclasses.replace(state, suppressed=state.suppressed + 1), []
        episode = state.episodes + 1
        ev = AlertEvent("fire", rule.name, rule.severity, rule.message or rule.name, now, episode, now, values)
        return dataclasses.replace(state, active=True, fired_at=now, episodes=episode), [ev]
    cleared = holds(rule.clear, hist, now=now) if rule.clear is not None else not holds(rule.when, hist, now=now)
    if not cleared:
        return state, []
    fired = state.fired_at if state.fired_at is not None else now
    ev = AlertEvent("clear", rule.name, rule.severity, rule.message or rule.name, now, state.episodes, fired, values)
    return dataclasses.replace(state, active=False, fired_at=None, last_clear=now), [ev]


class RuleEngine:
    """The rules, their states and the observation history (bounded to what the longest rule reads)."""

    def __init__(self, rules: Sequence[AlertRule], max_history: int = 4096) -> None:
        self.rules = list(rules)
        self.states: dict[str, RuleState] = {r.name: RuleState() for r in self.rules}
        spans = [c.span_s() for r in self.rules for c in (r.when, r.clear) if c is not None]
        self.keep_s = max(spans, default=0.0) + 2.0
        self.history: collections.deque[Observation] = collections.deque(maxlen=max_history)

    def observe(self, obs: Observation) -> None:
        self.history.append(obs)
        while len(self.history) > 2 and self.history[1].t < obs.t - self.keep_s:
            self.history.popleft()

    def step(self, now: float) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        hist = tuple(self.history)
        for rule in self.rules:
            self.states[rule.name], evs = evaluate(rule, self.states[rule.name], hist, now)
            events.extend(evs)
        return events

    def active(self) -> list[str]:
        return [name for name, st in self.states.items() if st.active]
