"""The one place where times are read and written as text: ``--since 7d``, ``--until yesterday``, ISO dates,
and the few UTC formats the CLI, the console, reports and error messages print.

Formats written (every one UTC; tests and consumers pin them, so each has one function here):

- ``iso_utc``: ``2026-12-01T10:30:00Z`` (whole seconds), the JSON form of the CLI, console and state errors;
- ``iso_utc_micro``: ``2026-12-01T10:30:00.250000+00:00``, what ``datetime.isoformat`` writes (reports);
- ``human_utc``: ``2026-12-01 10:30:00 UTC`` (the HTML report); ``human_utc_minutes``: ``2026-12-01 10:30 UTC``
  (notifications); ``table_utc``: ``2026-12-01 10:30:00`` (a table whose header says UTC);
- ``compact_utc``: ``20261201T103000`` (file names).

Audit entries carry Unix seconds (a float), never text, so nothing here is on the decision path.

Accepted forms read (all UTC):

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


def day_range(start: str | date | datetime, end: str | date | datetime) -> tuple[float, float]:
    """Unix seconds [start of ``start`` day, end of ``end`` day) for ``--from``/``--to``: a day (ISO or any
    form of ``parse_when``, taken as the UTC day it falls on) or an ISO timestamp (taken as given)."""

    def parse(value: str | date | datetime, *, is_end: bool) -> float:
        if isinstance(value, str):
            text = value
            try:
                value = (
                    datetime.fromisoformat(value.replace("Z", "+00:00"))
                    if "T" in value or " " in value.strip()
                    else date.fromisoformat(value.strip())
                )
            except ValueError:  # "yesterday", "7d": the day that time falls on
                value = datetime.fromtimestamp(parse_when(text), UTC).date()
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
        day = value + timedelta(days=1) if is_end else value
        return _midnight(day)

    try:
        lo, hi = parse(start, is_end=False), parse(end, is_end=True)
    except (OverflowError, OSError) as exc:  # 9999-12-31 + 1 day, "1e400": a usage error, not a crash
        raise ConfigError(f"--from/--to out of range ({start} .. {end}): {exc}") from None
    if hi <= lo:
        raise ConfigError("the report's end is before its start")
    return lo, hi


_ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"


def iso_utc(ts: float | None = None) -> str:
    """``2026-12-01T10:30:00Z`` for Unix seconds ``ts`` (now when None); fractions of a second are dropped."""
    return _time.strftime(_ISO_SECONDS, _time.gmtime(ts))


def iso_utc_or_none(ts: float | None) -> str | None:
    """``iso_utc(ts)``, or None for a time that is not set (a JSON field that is null)."""
    return None if ts is None else _time.strftime(_ISO_SECONDS, _time.gmtime(ts))


def iso_utc_micro(ts: float) -> str:
    """``2026-12-01T10:30:00.250000+00:00`` (``datetime.isoformat``: microseconds when there are any)."""
    return datetime.fromtimestamp(ts, UTC).isoformat()


def human_utc(ts: float | None) -> str:
    """``2026-12-01 10:30:00 UTC``; the empty string for None (a blank table cell)."""
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def human_utc_minutes(ts: float) -> str:
    """``2026-12-01 10:30 UTC``: to the minute, for messages people read (notifications)."""
    return _time.strftime("%Y-%m-%d %H:%M UTC", _time.gmtime(ts))


def table_utc(ts: float) -> str:
    """``2026-12-01 10:30:00``: for a column whose header already says UTC."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def compact_utc(ts: float | None = None) -> str:
    """``20261201T103000`` (now when None): a time in a file name, sorting as it reads."""
    return _time.strftime("%Y%m%dT%H%M%S", _time.gmtime(ts))


def utc_day(ts: float) -> str:
    """``2026-12-01``: the UTC day Unix seconds ``ts`` fall on."""
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


__all__ = [
    "ACCEPTED",
    "compact_utc",
    "day_range",
    "human_utc",
    "human_utc_minutes",
    "iso_utc",
    "iso_utc_micro",
    "iso_utc_or_none",
    "parse_when",
    "table_utc",
    "utc_day",
]
