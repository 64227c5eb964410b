"""Which requests come from where: ``Host``, ``Origin`` and proxy headers.

Used by the gateway port and by the loopback side servers (browser control,
canvas host):

- ``Host`` must name loopback (``localhost``, ``127.x``, ``[::1]``) on a loopback
  service: a page on an attacker's domain that re-resolves to 127.0.0.1 (DNS
  rebinding) still sends its own host name, and is refused.
- ``Origin``, when a browser sends one, must be the server's own origin or one the
  operator allowed (``gateway.controlUi.allowedOrigins``). A malformed ``Origin``
  (bad port, no host, ``null``) is simply not allowed; it never raises.
- Proxy headers (``Forwarded``, ``X-Forwarded-For``, ``X-Real-IP``, ``X-Forwarded-Host``) are
  believed only from a peer listed in ``gateway.trustedProxies``; from anyone else
  they only make a request *not local*.
- A request is **local** (device auto-approval) when its client address is
  loopback, its host is a loopback name, no untrusted proxy headers are present,
  and it carries no ``Origin`` other than a loopback one of this very server.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from moltbot.security.secrets import matches_any

PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host")


def split_host(header: str | None) -> tuple[str, int | None]:
    """``"[::1]:80"`` -> ``("::1", 80)``; ``"Localhost"`` -> ``("localhost", None)``;
    anything malformed -> ``("", None)``."""
    text = (header or "").strip().lower()
    if text.startswith("["):
        name, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        name, _, port_text = text.partition(":")
    else:
        name, port_text = text, ""
    if port_text and not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5):
        return "", None
    port = int(port_text) if port_text else None
    if port is not None and not 0 < port < 65536:
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


def _ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``address`` as an IP (an IPv4-mapped IPv6 address as IPv4), or ``None``."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback_addr(address: str | None) -> bool:
    ip = _ip(address)
    return ip is not None and ip.is_loopback


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_origin(value: str | None) -> Origin | None:
    """An ``Origin`` header (or an allowed-origin entry) as scheme/host/port, or ``None``
    when it is not a usable http(s) origin (``null``, no host, a bad port)."""
    if not value:
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 443 if parts.scheme == "https" else 80
    return Origin(parts.scheme, parts.hostname.lower().rstrip("."), port or default)


def same_origin(origin: str | None, host_header: str | None) -> bool:
    """Whether ``Origin`` names the host and port the request was sent to.

    An absent Origin is fine (not a cross-site browser request); ``null`` and
    malformed values are not. The scheme is not compared, so a TLS-terminating
    proxy in front still works.
    """
    if origin is None:
        return True
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    mine_name, mine_port = split_host(host_header)
    if not mine_name:
        return False
    default = 443 if parsed.scheme == "https" else 80
    return parsed.host == mine_name and parsed.port == (mine_port or default)


def origin_allowed(origin: str | None, host_header: str | None, allowed: Iterable[str]) -> bool:
    """Same origin as the request's host, or listed in ``allowed`` (exact origins)."""
    if origin is None or same_origin(origin, host_header):
        return True
    parsed = parse_origin(origin)
    return parsed is not None and any(parse_origin(entry) == parsed for entry in allowed)


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization") or headers.get("authorization") or ""
    scheme, _, credential = value.partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


def secret_matches(given: str | None, accepted: Iterable[str | None]) -> bool:
    """Constant-time match of ``given`` against any of ``accepted`` (see
    :func:`moltbot.security.secrets.secret_equals`)."""
    return matches_any(given, accepted)


def in_networks(address: str | None, networks: Sequence[str]) -> bool:
    ip = _ip(address) if networks else None
    if ip is None:
        return False
    for entry in networks:
        try:
            if ip in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


@dataclass(frozen=True)
class Peer:
    """Who sent a request, after proxy headers were believed or not."""

    address: str | None
    """The client's address: the socket peer, or the forwarded client behind a trusted proxy."""
    host: str
    """The host the client asked for (``X-Forwarded-Host`` behind a trusted proxy)."""
    proxied: bool
    """Proxy headers were present."""
    trusted_proxy: bool
    """The socket peer is in ``gateway.trustedProxies``."""


def resolve_peer(
    remote: str | None, headers: Mapping[str, str], trusted_proxies: Sequence[str] = ()
) -> Peer:
    """The client behind ``remote``: proxy headers count only from a trusted proxy,
    and then the rightmost ``X-Forwarded-For`` hop that is not itself a trusted proxy
    is the client."""
    named = {key.lower(): value for key, value in headers.items()}
    proxied = any(name in named for name in PROXY_HEADERS)
    host = named.get("host", "")
    if not (proxied and in_networks(remote, trusted_proxies)):
        return Peer(remote, host, proxied, False)
    address = remote
    hops = [h.strip() for h in named.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        address = hop
        if not in_networks(hop, trusted_proxies):
            break
    if not hops and named.get("x-real-ip"):
        address = named["x-real-ip"].strip()
    forwarded_host = named.get("x-forwarded-host", "").split(",")[0].strip()
    return Peer(address, forwarded_host or host, True, True)


def is_local(peer: Peer, origin: str | None) -> bool:
    """Loopback client, loopback host, no untrusted proxy headers, and no ``Origin``
    but a loopback one of this server (see the module docstring)."""
    if peer.proxied and not peer.trusted_proxy:
        return False
    if not is_loopback_addr(peer.address) or not is_loopback_host(peer.host):
        return False
    if origin is None:
        return True
    parsed = parse_origin(origin)
    return parsed is not None and is_loopback_name(parsed.host) and same_origin(origin, peer.host)
