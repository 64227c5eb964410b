"""When a schedule fires next: pure functions of the schedule and "now".

Three kinds, as upstream's ``CronSchedule``:

- ``at``: once, at ``atMs``.
- ``every``: every ``everyMs`` on a fixed grid ``anchorMs + k * everyMs`` (without
  ``anchorMs`` the grid starts when the job was created), so a slow run never
  shifts later runs.
- ``cron``: a 5-field expression (minute hour day-of-month month day-of-week; a
  6-field one has seconds first), in the IANA zone ``tz`` or the host's zone.

Cron expressions are matched against the **wall clock** of their zone
(``0 7 * * *`` is 07:00 local all year). On DST changes:

- a local time that does not exist (clocks jump 02:00 → 03:00, a job at 02:30)
  runs shifted by the gap (03:30 local), once;
- a local time that happens twice (clocks go back 02:00 → 01:00, a job at 01:30)
  runs once, at its first occurrence. A job of every 15 minutes therefore does not
  run again during the repeated hour.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moltbot.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SEARCH_LIMIT = 5_000
"""Candidates tried past "now" (skipping those a DST change moved into the past)."""


class ScheduleError(UsageError):
    """A schedule that cannot run: bad expression, unknown zone, bad duration."""


def parse_duration_ms(text: str, *, default_unit: str = "ms") -> int | None:
    """``"10m"`` → 600000; ``"1.5h"``, ``"500ms"``, ``"2d"``; a bare number has
    ``default_unit``. ``None`` for anything else (or zero)."""
    match = _DURATION.match(text or "")
    if not match:
        return None
    value = float(match.group(1)) * _UNITS[(match.group(2) or default_unit).lower()]
    return int(value) if value >= 1 else None


def parse_at_ms(text: str, now_ms: int) -> int | None:
    """A one-shot time: epoch milliseconds, an ISO 8601 time (zone-less means UTC),
    or a duration from now (``"20m"``, ``"+20m"``)."""
    raw = (text or "").strip()
    if not raw:
        return None
    if raw.isdigit():
        return int(raw)
    duration = parse_duration_ms(raw.removeprefix("+"))
    if duration is not None and not re.fullmatch(r"\d+(\.\d+)?", raw):
        return now_ms + duration
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


@lru_cache(maxsize=256)
def zone(name: str | None) -> tzinfo:
    """The IANA zone ``name``, or the host's zone for ``None``/empty."""
    if not name or not name.strip():
        return host_zone()
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r}", hint="use an IANA name such as Europe/Berlin"
        ) from None


@lru_cache(maxsize=1)
def host_zone() -> tzinfo:
    """``$TZ``, else ``/etc/localtime``, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    localtime = Path("/etc/localtime")
    try:
        with localtime.open("rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError):
        return UTC


@lru_cache(maxsize=1024)
def check_cron(expr: str, tz: str | None = None) -> None:
    """Raise :class:`ScheduleError` unless ``expr`` (5 or 6 fields) and ``tz`` are valid."""
    from croniter import croniter

    fields = expr.split()
    if len(fields) not in (5, 6):
        raise ScheduleError(
            f"invalid cron expression {expr!r}: expected 5 fields "
            "(minute hour day-of-month month day-of-week)",
            hint='e.g. "0 7 * * *" for every day at 07:00',
        )
    if not croniter.is_valid(expr, second_at_beginning=len(fields) == 6):
        raise ScheduleError(f"invalid cron expression {expr!r}")
    zone(tz)


def cron_next_ms(expr: str, tz: str | None, now_ms: int) -> int | None:
    """The first time after ``now_ms`` that ``expr`` matches in ``tz`` (module docstring)."""
    from croniter import croniter

    where = zone(tz)
    local = datetime.fromtimestamp(now_ms / 1000, where).replace(tzinfo=None)
    fields = expr.split()
    iterator = croniter(expr, local, second_at_beginning=len(fields) == 6)
    for _ in range(_SEARCH_LIMIT):
        candidate: datetime = iterator.get_next(datetime)
        at = int(candidate.replace(tzinfo=where, fold=0).timestamp() * 1000)
        if at > now_ms:
            return at
    return None


def every_next_ms(every_ms: int, anchor_ms: int, now_ms: int) -> int:
    """The first point of the grid ``anchor + k * every`` after ``now_ms``."""
    every_ms = max(1, every_ms)
    if now_ms < anchor_ms:
        return anchor_ms
    return anchor_ms + ((now_ms - anchor_ms) // every_ms + 1) * every_ms


def format_duration(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


__all__ = [
    "ScheduleError",
    "check_cron",
    "cron_next_ms",
    "every_next_ms",
    "format_duration",
    "host_zone",
    "parse_at_ms",
    "parse_duration_ms",
    "zone",
]
