"""Port arithmetic: derived ports, port blocks, and a named profile's default port.

Pure functions; nothing here touches the network.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

DEFAULT_PORT = 18789
DEV_PORT = 19001
CONTROL_OFFSET = 2
CANVAS_OFFSET = 4
CDP_FIRST_OFFSET = 9  # from the control port
CDP_LAST_OFFSET = 108  # from the control port
BLOCK_SIZE = CONTROL_OFFSET + CDP_LAST_OFFSET + 1  # base .. base + 110
MIN_BASE_SPACING = 20  # the seed's rule for ports a user picks

# Named profiles get a slot in [NAMED_FIRST, NAMED_LAST): whole blocks apart, above the
# default and dev blocks, below the usual ephemeral range (32768+).
NAMED_FIRST = 19200
NAMED_STEP = 120
NAMED_SLOTS = 100


def control_port(base: int) -> int:
    return base + CONTROL_OFFSET


def canvas_port(base: int) -> int:
    return base + CANVAS_OFFSET


def cdp_range(control: int) -> range:
    return range(control + CDP_FIRST_OFFSET, control + CDP_LAST_OFFSET + 1)


def profile_default_port(profile: str) -> int:
    """The port a profile gets when nothing else is known (no host registry)."""
    if profile == "default":
        return DEFAULT_PORT
    if profile == "dev":
        return DEV_PORT
    return NAMED_FIRST + NAMED_STEP * _slot(profile)


def _slot(profile: str) -> int:
    digest = hashlib.sha256(profile.encode()).digest()
    return int.from_bytes(digest[:4], "big") % NAMED_SLOTS


def blocks_overlap(a: int, b: int) -> bool:
    """Whether the port blocks starting at bases ``a`` and ``b`` share a port."""
    return abs(a - b) < BLOCK_SIZE


def choose_free_base(
    profile: str, taken_bases: Iterable[int], taken_ports: Iterable[int] = ()
) -> int:
    """A named profile's base: its own slot, else the next slot whose whole block is
    clear of every known instance's block and every used port."""
    bases = list(taken_bases)
    used = set(taken_ports)
    preferred = profile_default_port(profile)
    if profile in ("default", "dev"):
        candidates = [preferred]
    else:
        start = _slot(profile)
        candidates = [
            NAMED_FIRST + NAMED_STEP * ((start + i) % NAMED_SLOTS) for i in range(NAMED_SLOTS)
        ]
    for base in candidates:
        block = range(base, base + BLOCK_SIZE)
        if all(not blocks_overlap(base, other) for other in bases) and not used.intersection(block):
            return base
    return preferred


def spacing_violations(base: int, others: Iterable[int]) -> list[int]:
    """Other bases closer than the seed's minimum spacing."""
    return [other for other in others if abs(base - other) < MIN_BASE_SPACING]
