"""Failed-authentication throttling per client address.

Each address has a bucket of :attr:`AuthThrottle.burst` attempts that refills at
one attempt every :attr:`AuthThrottle.refill_s` seconds. Every failed attempt
takes one; while the bucket is empty the address is refused *before* its
credential is looked at (so a locked-out guesser learns nothing), with the
seconds until the next attempt is allowed. A success does not refill the bucket:
on a shared address (loopback, a NAT) a guesser must not get fresh attempts each
time a legitimate client connects. IPv6 addresses are grouped by /64 (one host usually owns a whole
/64). The table is bounded: the oldest entries are evicted first.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_BURST = 10
DEFAULT_REFILL_S = 6.0  # 10 guesses a minute at most, sustained
MAX_ENTRIES = 10_000


def address_key(address: str | None) -> str:
    """The bucket an address belongs to: itself (IPv4), its /64 (IPv6), or ``?``."""
    if not address:
        return "?"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class AuthThrottle:
    """See the module docstring. Not thread-safe: use it from the event loop."""

    def __init__(
        self,
        *,
        burst: int = DEFAULT_BURST,
        refill_s: float = DEFAULT_REFILL_S,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.refill_s = refill_s
        self.max_entries = max_entries
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.refused = 0

    def _level(self, key: str) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is None:
            return None
        now = self._clock()
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) / self.refill_s)
        bucket.stamp = now
        if bucket.tokens >= self.burst:
            del self._buckets[key]
            return None
        return bucket

    def retry_after(self, address: str | None) -> float | None:
        """Seconds until ``address`` may try again, or ``None`` when it may try now."""
        bucket = self._level(address_key(address))
        if bucket is None or bucket.tokens >= 1:
            return None
        self.refused += 1
        return max(0.001, (1 - bucket.tokens) * self.refill_s)

    def failed(self, address: str | None) -> None:
        key = address_key(address)
        bucket = self._level(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), self._clock())
            while len(self._buckets) > self.max_entries:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        bucket.tokens = max(0.0, bucket.tokens - 1)

    def __len__(self) -> int:
        return len(self._buckets)
