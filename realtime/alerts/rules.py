"""Alert rule files (``mmcl monitor --alerts rules.yaml``): config dataclasses, loaded strictly.

A rule file holds ``rules`` (what to watch) and ``actions`` (where alerts go)::

    rules:
      - name: driver_distress
        severity: warning                 # info | warning | critical
        message: sustained negative sentiment
        when:                             # fire when this holds ...
          all:
            - {signal: valence, below: -0.5, for_s: 5}
            - {signal: confidence, above: 0.5}
        clear: {signal: valence, above: -0.2, for_s: 3}   # ... clear when this holds (hysteresis)
        cooldown_s: 60                    # no new alert of this rule sooner than this after a clear
    actions:
      log: {path: alerts.jsonl}           # the event log always gets an ``alert`` line; this is a 2nd file
      banner: {bell: true}
      command: {argv: [notify-send, mmcl], timeout_s: 5}
      webhook: {url: "http://127.0.0.1:9000/alerts", timeout_s: 2, retries: 3}

A condition is exactly one of:

==========================================  =====================================================================
``{signal: S, below: X}`` / ``above: X``    S ∈ ``valence`` (the sentiment score), ``arousal`` (when the model
                                            gives one), ``confidence`` (calibrated: top class probability, or the
                                            model's own confidence), ``trend`` (smoothed score)
``{absent: M}``                             modality M ∈ ``vision`` (face lost: looking away, camera blocked),
                                            ``audio`` (no voice), ``text`` (no words)
``{present: M}``                            modality M is live (e.g. a clear condition: the face is back)
``{degraded: D}``                           a device or worker D (``camera``, ``audio``, ``asr``, ``face`` …, or
                                            ``any``) is not running (reconnecting, failed, behind, stopped)
``{asr_behind_s: X}``                       the speech recogniser has more than X s of audio waiting
``{drop_rate_per_s: X}``                    drops of any kind (frames, audio, queues) above X per second
``{all: [...]}`` / ``{any: [...]}``         every / at least one sub-condition holds
==========================================  =====================================================================

``for_s`` on any condition: it must have held without a break for that long (sustain). A signal that is
missing (no prediction yet, no arousal output, no calibrated confidence) makes its condition false.
Without ``clear``, a rule clears when ``when`` no longer holds. Unknown keys and bad values are
ConfigErrors that name the key (``rules[0].when.all[1].below``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from model.configlib import from_dict, read_yaml
from model.errors import ConfigError

SIGNALS = ("valence", "arousal", "confidence", "trend")
MODALITIES = ("vision", "audio", "text")
SEVERITIES = ("info", "warning", "critical")
KINDS = ("signal", "absent", "present", "degraded", "asr_behind_s", "drop_rate_per_s", "all", "any")
ACTION_NAMES = ("log", "headless", "banner", "command", "webhook")


@dataclass
class Condition:
    """One condition (see the module docstring); exactly one kind per mapping."""

    signal: Literal["valence", "arousal", "confidence", "trend"] | None = None
    below: float | None = None
    above: float | None = None
    absent: Literal["vision", "audio", "text"] | None = None
    present: Literal["vision", "audio", "text"] | None = None
    degraded: str | None = None
    asr_behind_s: float | None = None
    drop_rate_per_s: float | None = None
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    for_s: float = 0.0

    def __post_init__(self) -> None:
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = f"found {', '.join(kinds)}" if kinds else "found none"
            raise ConfigError(
                f"a condition needs exactly one of {', '.join(KINDS)} ({found})"
            )
        if self.signal is not None and (self.below is None) == (self.above is None):
            raise ConfigError(f"signal '{self.signal}' needs exactly one of 'below' or 'above'")
        if self.signal is None and (self.below is not None or self.above is not None):
            raise ConfigError("'below'/'above' belong to a 'signal' condition")
        for key in ("all", "any"):
            sub = getattr(self, key)
            if sub is not None and not sub:
                raise ConfigError(f"'{key}' needs at least one condition")
        if self.for_s < 0:
            raise ConfigError(f"'for_s' must be >= 0 seconds, got {self.for_s}")
        for key in ("asr_behind_s", "drop_rate_per_s"):
            v = getattr(self, key)
            if v is not None and v < 0:
                raise ConfigError(f"'{key}' must be >= 0, got {v}")

    @property
    def kind(self) -> str:
        for k in KINDS:
            if getattr(self, k) is not None:
                return k
        raise AssertionError("unreachable: validated in __post_init__")

    def span_s(self) -> float:
        """The longest stretch of history this condition can look at (sustains, nested)."""
        subs = self.all or self.any or []
        return self.for_s + max((c.span_s() for c in subs), default=0.0)


@dataclass
class AlertRule:
    name: str
    when: Condition
    clear: Condition | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    message: str = ""
    cooldown_s: float = 30.0
    actions: list[str] | None = None  # None = every configured action; else a subset of ACTION_NAMES

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("a rule needs a non-empty 'name'")
        if self.cooldown_s < 0:
            raise ConfigError(f"'cooldown_s' must be >= 0 seconds, got {self.cooldown_s}")
        for a in self.actions or []:
            if a not in ACTION_NAMES:
                raise ConfigError(f"'actions': {a!r} is not one of {', '.join(ACTION_NAMES)}")


@dataclass
class LogAction:
    path: str = ""  # "" = only the event log's ``alert`` lines (when --log is given)


@dataclass
class BannerAction:
    enabled: bool = True
    bell: bool = False  # ring the terminal bell when an alert fires
    hold_s: float = 10.0  # a cleared alert stays on the banner (dimmed) this long

    def __post_init__(self) -> None:
        if self.hold_s < 0:
            raise ConfigError(f"'hold_s' must be >= 0, got {self.hold_s}")


@dataclass
class CommandAction:
    """Run ``argv`` (no shell) with the alert as one JSON object on stdin; killed after ``timeout_s``."""

    argv: list[str] = field(default_factory=list)
    timeout_s: float = 5.0
    queue_size: int = 16  # alerts waiting for the runner; the oldest is dropped (counted) when full

    def __post_init__(self) -> None:
        if not self.argv:
            raise ConfigError("'argv' needs the command and its arguments, e.g. [notify-send, mmcl]")
        if not 0 < self.timeout_s <= 600:
            raise ConfigError(f"'timeout_s' must be in (0, 600] seconds, got {self.timeout_s}")
        if self.queue_size < 1:
            raise ConfigError("'queue_size' must be >= 1")


@dataclass
class WebhookAction:
    """HTTP POST of the alert JSON to ``url``; retried with exponential backoff; failures counted."""

    url: str = ""
    timeout_s: float = 2.0
    retries: int = 3  # extra attempts after the first
    backoff_s: float = 0.5  # wait before retry k: backoff_s · 2^(k−1)
    queue_size: int = 64
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"'url' must be an http:// or https:// URL, got {self.url!r}")
        if not 0 < self.timeout_s <= 60:
            raise ConfigError(f"'timeout_s' must be in (0, 60] seconds, got {self.timeout_s}")
        if self.retries < 0 or self.backoff_s < 0:
            raise ConfigError("'retries' and 'backoff_s' must be >= 0")
        if self.queue_size < 1:
            raise ConfigError("'queue_size' must be >= 1")


@dataclass
class ActionsConfig:
    log: LogAction = field(default_factory=LogAction)
    headless: bool = True  # a line in --headless output per alert event
    banner: BannerAction = field(default_factory=BannerAction)
    command: CommandAction | None = None
    webhook: WebhookAction | None = None


@dataclass
class AlertsConfig:
    rules: list[AlertRule] = field(default_factory=list)
    actions: ActionsConfig = field(default_factory=ActionsConfig)

    def __post_init__(self) -> None:
        if not self.rules:
            raise ConfigError("an alert file needs at least one entry under 'rules'")
        names = [r.name for r in self.rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"rule names must be unique; repeated: {', '.join(dup)}")


def load_alerts(path: str | Path) -> AlertsConfig:
    """Read and validate a rule file; any problem is one ConfigError naming the file and the key."""
    data = read_yaml(path)
    try:
        return from_dict(AlertsConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"alert rules {path}: {exc}") from None
