"""Alert rules for the monitor (``mmcl monitor --alerts rules.yaml``): rules → engine → actions."""

from realtime.alerts.engine import AlertEvent, Observation, RuleEngine, evaluate, holds
from realtime.alerts.rules import AlertRule, AlertsConfig, Condition, load_alerts
from realtime.alerts.runtime import AlertRuntime

__all__ = [
    "AlertEvent", "AlertRule", "AlertRuntime", "AlertsConfig", "Condition", "Observation", "RuleEngine",
    "evaluate", "holds", "load_alerts",
]
