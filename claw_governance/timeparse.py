"""The one place where command-line times are read: ``--since 7d``, ``--until yesterday``, ISO dates.

Accepted forms (all UTC):

- an ISO date ``2026-12-01`` (its midnight) or timestamp ``2026-12-01T10:30:00Z`` / ``2026-12-01 10:30``;
- Unix seconds ``1796155962`` (or ``1796155962.5``);
- a relative age, counted back from now: ``90s``, ``30m``, ``12h``, ``7d``, ``2w`` (optionally ``7d ago``);
- ``now``, ``today`` (midnight today), ``yesterday`` (midnight yesterday).

Anything else is a ConfigError whose one line lists these forms.
"""

from __future__ import annotations

import re
import time as _time
from datetime import UTC, date, datetime, timedelta

from claw_governance.errors import ConfigError

ACCEPTED = (
    "an ISO date (2026-12-01), an ISO timestamp (2026-12-01T10:30Z), Unix seconds, an age "
    "(90s, 30m, 12h, 7d, 2w) or now / today / yesterday"
)

_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w|wk|wks|weeks?)(?:\s+ago)?$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def parse_when(text: str, *, now: float | None = None, what: str = "time") -> float:
    """Unix seconds for ``text`` in one of the accepted forms; ConfigError naming them otherwise."""
    value = text.strip().lower()
    current = _time.time() if now is None else now
    if not value:
        raise ConfigError(f"empty {what}: use {ACCEPTED}")
    if value == "now":
        return current
    today = datetime.fromtimestamp(current, UTC).date()
    if value == "today":
        return _midnight(today)
    if value == "yesterday":
        return _midnight(today - timedelta(days=1))
    age = _AGE.match(value)
    if age:
        unit = age.group(2)[0]
        return current - float(age.group(1)) * _UNIT_SECONDS[unit]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        if "t" in value or " " in value or ":" in value:
            parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
        return _midnight(date.fromisoformat(value))
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not understood: use {ACCEPTED}") from None


__all__ = ["ACCEPTED", "parse_when"]
