"""Token usage and its cost, as recorded in transcripts and added up by
``usage.status`` / ``usage.cost``.

Every assistant entry carries the ``usage`` of its model call
``{input, output, cacheRead, cacheWrite, totalTokens, cost}``; ``cost`` is in USD,
from ``models.providers.<id>.models[].cost`` (per million tokens), and absent when the
model has no price configured. Compaction entries carry the usage of their summary.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moltbot.agents.models import ModelRef, ResolvedProvider
from moltbot.agents.providers import Usage
from moltbot.config.schema import ModelCost
from moltbot.fsutil import open_regular

if TYPE_CHECKING:
    from moltbot.agents.model_pool import ModelPool

log = logging.getLogger(__name__)

PER = 1_000_000


def cost_of(usage: Usage, cost: ModelCost | None) -> dict[str, float] | None:
    """``{input, output, cacheRead, cacheWrite, total}`` in USD, or None without a price."""
    if cost is None:
        return None
    parts = {
        "input": usage.input * cost.input / PER,
        "output": usage.output * cost.output / PER,
        "cacheRead": usage.cache_read * cost.cache_read / PER,
        "cacheWrite": usage.cache_write * cost.cache_write / PER,
    }
    parts = {k: round(v, 8) for k, v in parts.items()}
    parts["total"] = round(sum(parts.values()), 8)
    return parts


def model_cost(models: ModelPool, ref: ModelRef) -> ModelCost | None:
    provider = models.provider(ref)
    definition = provider.models.get(ref.model) if provider else None
    return definition.cost if definition else None


def price_lookup(providers: Mapping[str, ResolvedProvider]) -> PriceLookup:
    """``provider/model`` -> its configured price (None when it has none)."""

    def lookup(ref: str) -> ModelCost | None:
        provider_id, _, model = ref.partition("/")
        provider = providers.get(provider_id)
        definition = provider.models.get(model) if provider else None
        return definition.cost if definition else None

    return lookup


def usage_record(models: ModelPool, ref: ModelRef, usage: Usage) -> dict[str, Any]:
    """The ``usage`` of a transcript entry for a call of ``ref``."""
    record: dict[str, Any] = usage.as_dict()
    cost = cost_of(usage, model_cost(models, ref))
    if cost is not None:
        record["cost"] = cost
    return record


# ---- adding it up -------------------------------------------------------------------

FIELDS = ("input", "output", "cacheRead", "cacheWrite", "totalTokens")


def empty_totals() -> dict[str, Any]:
    return {**dict.fromkeys(FIELDS, 0), "totalCost": 0.0, "missingCostEntries": 0, "calls": 0}


def _add(totals: dict[str, Any], other: dict[str, Any]) -> None:
    for name in (*FIELDS, "missingCostEntries", "calls"):
        totals[name] += other[name]
    totals["totalCost"] = round(totals["totalCost"] + other["totalCost"], 8)


@dataclass
class _FileScan:
    size: int = 0
    session_key: str | None = None
    buckets: dict[tuple[str, str, str | None], dict[str, Any]] = field(default_factory=dict)
    """(day, provider/model, session key of the line or None: the file's) -> totals"""


ARCHIVE_NAME = "usage-archive.jsonl"
"""Per agent, in its sessions directory: the usage of transcripts that were removed
(an isolated cron job's earlier runs), one line per model call."""


@dataclass(frozen=True)
class _Call:
    day: str
    model: str
    numbers: dict[str, int]
    cost: float | None
    session_key: str | None


def _call_of(item: Any, line_key: str | None = None) -> _Call | None:
    """The usage of one transcript (or archive) entry, or None when it has none."""
    if not isinstance(item, dict):
        return None
    message = item.get("message") if isinstance(item.get("message"), dict) else None
    usage = (message or item).get("usage")
    if not isinstance(usage, dict):
        return None
    if message is not None:
        provider, model = message.get("provider"), message.get("model")
        model = f"{provider}/{model}" if provider and model else None
    else:
        model = item.get("model")
    if not model or str(model).startswith("moltbot/"):
        return None
    try:
        numbers = {name: int(usage.get(name) or 0) for name in FIELDS}
    except (TypeError, ValueError):
        return None
    if not any(numbers.values()):
        return None
    cost = usage.get("cost")
    total = cost.get("total") if isinstance(cost, dict) else None
    key = item.get("sessionKey") if line_key is None else line_key
    return _Call(
        day=_day(item.get("timestamp")),
        model=str(model),
        numbers=numbers,
        cost=float(total) if isinstance(total, int | float) else None,
        session_key=key if isinstance(key, str) else None,
    )


class UsageLedger:
    """Token usage and cost added up from the transcripts of every agent, by day,
    agent, session and model. Transcripts only grow, so each file is read once and then
    only its new bytes (a file that shrank or was replaced is read again)."""

    def __init__(self) -> None:
        self._files: dict[Path, _FileScan] = {}

    def scan(self, directories: Mapping[str, Path], prices: PriceLookup | None = None) -> list[Row]:
        """Every (day, agent, session, model) row of usage under ``directories``
        (agent id -> sessions dir)."""
        rows: list[Row] = []
        seen: set[Path] = set()
        for agent, directory in directories.items():
            try:
                files = sorted(p for p in directory.iterdir() if ".jsonl" in p.name)
            except OSError:
                continue
            for path in files:
                seen.add(path)
                scan = self._scan(path, prices)
                for (day, model, key), totals in scan.buckets.items():
                    session = key or scan.session_key or path.stem
                    rows.append(Row(day, agent, session, model, totals))
        for gone in set(self._files) - seen:
            del self._files[gone]
        return rows

    def _scan(self, path: Path, prices: PriceLookup | None) -> _FileScan:
        try:
            size = path.stat().st_size
        except OSError:
            return _FileScan()
        scan = self._files.get(path)
        if scan is None or size < scan.size:
            scan = self._files[path] = _FileScan()
        if size == scan.size:
            return scan
        try:
            with path.open("rb") as handle:
                handle.seek(scan.size)
                raw = handle.read(size - scan.size)
        except OSError:
            return scan
        end = raw.rfind(b"\n") + 1  # a line still being written is read next time
        for line in raw[:end].split(b"\n"):
            self._line(scan, line, prices)
        scan.size += end
        return scan

    @staticmethod
    def _line(scan: _FileScan, line: bytes, prices: PriceLookup | None) -> None:
        if b'"usage"' not in line and b'"session"' not in line:
            return
        try:
            item = json.loads(line)
        except ValueError:
            return
        if isinstance(item, dict) and item.get("type") == "session":
            scan.session_key = item.get("sessionKey") or scan.session_key
            return
        call = _call_of(item)
        if call is None:
            return
        totals = scan.buckets.setdefault((call.day, call.model, call.session_key), empty_totals())
        for name in FIELDS:
            totals[name] += call.numbers[name]
        totals["calls"] += 1
        total = call.cost
        if total is None and prices is not None:
            price = prices(call.model)
            if price is not None:
                numbers = call.numbers
                total = (
                    numbers["input"] * price.input
                    + numbers["output"] * price.output
                    + numbers["cacheRead"] * price.cache_read
                    + numbers["cacheWrite"] * price.cache_write
                ) / PER
        if total is not None:
            totals["totalCost"] = round(totals["totalCost"] + total, 8)
        else:
            totals["missingCostEntries"] += 1


def archive_usage(transcript: Path, session_key: str) -> int:
    """Append the usage of ``transcript``'s model calls to its directory's
    :data:`ARCHIVE_NAME` (before the transcript is removed, so ``usage.cost`` still
    counts them); the number of calls kept. One ``write`` of whole lines with
    ``O_APPEND``, so concurrent archivers never interleave within a line."""
    try:
        fd = open_regular(transcript, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read()
    except OSError:
        return 0
    lines = []
    for line in raw.split(b"\n"):
        if b'"usage"' not in line:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        call = _call_of(item, session_key)
        if call is None:
            continue
        usage_out: dict[str, Any] = dict(call.numbers)
        if call.cost is not None:
            usage_out["cost"] = {"total": call.cost}
        record = {
            "type": "usage",
            "timestamp": item.get("timestamp"),
            "sessionKey": session_key,
            "model": call.model,
            "usage": usage_out,
        }
        lines.append(json.dumps(record, separators=(",", ":")))
    if not lines:
        return 0
    archive = transcript.with_name(ARCHIVE_NAME)
    try:
        fd = open_regular(archive, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW)
    except OSError as exc:  # a FIFO or a link where the archive should be: not followed
        log.warning("usage of %s not archived: %s", transcript.name, exc)
        return 0
    try:
        os.write(fd, ("\n".join(lines) + "\n").encode())
    finally:
        os.close(fd)
    return len(lines)


PriceLookup = Callable[[str], "ModelCost | None"]


@dataclass(frozen=True)
class Row:
    day: str
    agent: str
    session: str
    model: str
    totals: dict[str, Any]


def _day(stamp: Any) -> str:
    """The local calendar day of an ISO timestamp (``YYYY-MM-DD``)."""
    if isinstance(stamp, str):
        try:
            moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            return moment.astimezone().date().isoformat()
        except ValueError:
            pass
    return datetime.now().astimezone().date().isoformat()


def summary(rows: list[Row], days: int, today: date | None = None) -> dict[str, Any]:
    """``usage.cost``'s payload: ``{updatedAt, days, daily, totals}`` as upstream, plus
    ``byAgent``, ``byModel``, ``bySession`` (each sorted by cost, then tokens)."""
    today = today or datetime.now().astimezone().date()
    first = (today - timedelta(days=max(1, days) - 1)).isoformat()
    kept = [r for r in rows if r.day >= first]
    totals = empty_totals()
    groups: dict[str, dict[str, dict[str, Any]]] = {
        "daily": {},
        "byAgent": {},
        "byModel": {},
        "bySession": {},
    }
    for row in kept:
        _add(totals, row.totals)
        for group, key in (
            ("daily", row.day),
            ("byAgent", row.agent),
            ("byModel", row.model),
            ("bySession", row.session),
        ):
            _add(groups[group].setdefault(key, empty_totals()), row.totals)
    names = {"daily": "date", "byAgent": "agentId", "byModel": "model", "bySession": "key"}
    out: dict[str, Any] = {
        "updatedAt": int(datetime.now().timestamp() * 1000),
        "days": days,
        "totals": totals,
    }
    for group, buckets in groups.items():
        items = [{names[group]: key, **value} for key, value in buckets.items()]
        if group == "daily":
            items.sort(key=lambda item: item["date"])
        else:
            items.sort(key=lambda item: (-item["totalCost"], -item["totalTokens"]))
        out[group] = items
    return out


def status(rows: list[Row], today: date | None = None) -> dict[str, Any]:
    """``usage.status``'s payload: per provider, today's and the last 30 days' usage
    from the transcripts (``windows`` stays empty: no provider quota is queried)."""
    today = today or datetime.now().astimezone().date()
    month = (today - timedelta(days=29)).isoformat()
    day = today.isoformat()
    providers: dict[str, dict[str, Any]] = {}
    total_today = empty_totals()
    for row in rows:
        if row.day < month:
            continue
        provider = row.model.partition("/")[0]
        entry = providers.setdefault(
            provider,
            {
                "provider": provider,
                "displayName": provider,
                "windows": [],
                "today": empty_totals(),
                "last30Days": empty_totals(),
            },
        )
        _add(entry["last30Days"], row.totals)
        if row.day == day:
            _add(entry["today"], row.totals)
            _add(total_today, row.totals)
    return {
        "updatedAt": int(datetime.now().timestamp() * 1000),
        "providers": sorted(providers.values(), key=lambda p: p["provider"]),
        "today": total_today,
    }
