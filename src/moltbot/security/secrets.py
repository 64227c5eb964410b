"""Comparing secrets, and what counts as a strong one.

:func:`secret_equals` is the one comparison used for every shared secret (gateway
token and password, device tokens, capability strings): constant time over the
UTF-8 bytes, so it never raises on non-ASCII input (``hmac.compare_digest`` does
for ``str``) and never matches a prefix or an extension of the secret.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Iterable

MIN_STRONG_LENGTH = 24
MIN_STRONG_BITS = 120
MIN_DISTINCT_CHARS = 10


def secret_equals(given: str | bytes | None, expected: str | bytes | None) -> bool:
    """Whether ``given`` is exactly ``expected`` (constant time; empty never matches)."""
    if not given or not expected:
        return False
    a = given.encode("utf-8", "surrogatepass") if isinstance(given, str) else given
    b = expected.encode("utf-8", "surrogatepass") if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)


def matches_any(given: str | None, accepted: Iterable[str | None]) -> bool:
    """Whether ``given`` equals one of ``accepted``; compares against every one."""
    hit = False
    for secret in accepted:
        if secret_equals(given, secret):
            hit = True
    return hit


def estimated_bits(secret: str) -> float:
    """A pessimistic entropy estimate: length times log2 of the character classes used."""
    classes = 0
    if any(c.islower() for c in secret):
        classes += 26
    if any(c.isupper() for c in secret):
        classes += 26
    if any(c.isdigit() for c in secret):
        classes += 10
    if any(not c.isalnum() for c in secret):
        classes += 33
    return len(secret) * math.log2(classes) if classes else 0.0


def weakness(secret: str | None) -> str | None:
    """Why ``secret`` is too weak to guard a non-loopback bind, or ``None`` when strong.

    Strong means at least 24 characters, at least 10 distinct ones, and an estimated
    120 bits (``moltbot setup`` generates 43 URL-safe characters, about 256 bits).
    """
    if not secret:
        return "it is empty"
    if len(secret) < MIN_STRONG_LENGTH:
        return f"it has {len(secret)} characters (at least {MIN_STRONG_LENGTH} needed)"
    if len(set(secret)) < MIN_DISTINCT_CHARS:
        return f"it uses only {len(set(secret))} distinct characters"
    if estimated_bits(secret) < MIN_STRONG_BITS:
        return f"it is too predictable (about {estimated_bits(secret):.0f} bits)"
    return None
