"""Small in-memory state of a running gateway: presence and idempotency cache."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from moltbot.gateway.protocol import DEDUPE_MAX, DEDUPE_TTL_S

PRESENCE_TTL_MS = 5 * 60 * 1000
PRESENCE_MAX = 200


def now_ms() -> int:
    return int(time.time() * 1000)


class Presence:
    """Who is connected (and who was, for 5 minutes). Keys are lower-cased."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}

    def upsert(self, key: str, entry: dict[str, Any]) -> None:
        entry = {k: v for k, v in entry.items() if v is not None}
        entry["ts"] = now_ms()
        self._entries[key.lower()] = {**self._entries.get(key.lower(), {}), **entry}
        self._prune()

    def entries(self) -> list[dict[str, Any]]:
        self._prune()
        return sorted(self._entries.values(), key=lambda e: -int(e.get("ts", 0)))

    def _prune(self) -> None:
        cutoff = now_ms() - PRESENCE_TTL_MS
        for key in [
            k
            for k, v in self._entries.items()
            if v.get("reason") != "self" and int(v.get("ts", 0)) < cutoff
        ]:
            del self._entries[key]
        while len(self._entries) > PRESENCE_MAX:
            oldest = min(self._entries, key=lambda k: int(self._entries[k].get("ts", 0)))
            del self._entries[oldest]


@dataclass
class CachedResult:
    ok: bool
    payload: Any
    error: Any
    ts: float


class DedupeCache:
    """Results of idempotent requests, by ``namespace:key``; 5 min TTL, 1000 entries."""

    def __init__(self, ttl_s: float = DEDUPE_TTL_S, max_entries: int = DEDUPE_MAX) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._items: OrderedDict[str, CachedResult] = OrderedDict()

    def get(self, namespace: str, key: str) -> CachedResult | None:
        item = self._items.get(f"{namespace}:{key}")
        if item is None or time.monotonic() - item.ts > self.ttl_s:
            return None
        return item

    def put(
        self, namespace: str, key: str, ok: bool, payload: Any = None, error: Any = None
    ) -> None:
        full = f"{namespace}:{key}"
        self._items[full] = CachedResult(ok, payload, error, time.monotonic())
        self._items.move_to_end(full)
        self.sweep()

    def sweep(self) -> None:
        cutoff = time.monotonic() - self.ttl_s
        while self._items:
            first_key = next(iter(self._items))
            if self._items[first_key].ts >= cutoff and len(self._items) <= self.max_entries:
                break
            del self._items[first_key]
