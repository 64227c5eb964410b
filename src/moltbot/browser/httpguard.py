"""Request checks shared by the loopback side servers (browser control, canvas host).

- ``Host`` must name loopback (``localhost``, ``127.x``, ``[::1]``): a page on
  an attacker's domain that re-resolves to 127.0.0.1 (DNS rebinding) still
  sends its own host name, and is refused with 421.
- ``Origin``, when a browser sends one, must be the server's own origin (403).
- The credential is ``Authorization: Bearer <token>``, compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit


def split_host(header: str | None) -> tuple[str, int | None]:
    """``"[::1]:80"`` -> ``("::1", 80)``; ``"Localhost"`` -> ``("localhost", None)``."""
    text = (header or "").strip().lower()
    if text.startswith("["):
        name, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        name, _, port_text = text.partition(":")
    else:
        name, port_text = text, ""
    try:
        port = int(port_text) if port_text else None
    except ValueError:
        return "", None
    return name.rstrip("."), port


def is_loopback_name(name: str) -> bool:
    if name in ("localhost", "::1", "0:0:0:0:0:0:0:1") or name.endswith(".localhost"):
        return True
    parts = name.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() for p in parts)


def is_loopback_host(header: str | None, port: int | None = None) -> bool:
    """Whether a ``Host`` header names loopback (and ``port``, when both say one)."""
    name, given = split_host(header)
    if not name or not is_loopback_name(name):
        return False
    return port is None or given is None or given == port


def is_loopback_addr(address: str | None) -> bool:
    if not address:
        return False
    address = address.removeprefix("::ffff:")
    return address == "::1" or address.startswith("127.")


def same_origin(origin: str | None, host_header: str | None) -> bool:
    """Whether ``Origin`` names the host and port the request was sent to.

    An absent Origin is fine (not a cross-site browser request); ``null`` is not.
    The scheme is not compared, so a TLS-terminating proxy in front still works.
    """
    if origin is None:
        return True
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    mine_name, mine_port = split_host(host_header)
    default = 443 if parts.scheme == "https" else 80
    theirs_port = parts.port or default
    return parts.hostname.lower() == mine_name and theirs_port == (mine_port or default)


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization") or headers.get("authorization") or ""
    scheme, _, credential = value.partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


def secret_matches(given: str | None, accepted: Iterable[str | None]) -> bool:
    if not given:
        return False
    hit = False
    for secret in accepted:
        if secret and hmac.compare_digest(given.encode(), secret.encode()):
            hit = True
    return hit
