"""The one network guard of the agent tools that reach URLs (``web_fetch``, ``browser``).

A URL is refused when its host is, or resolves to, a non-public address
(loopback, private, link-local, CGNAT, multicast, unspecified, ...), unless

- ``tools.web.allowPrivateNetwork`` is true (``tools.web.fetch.allowPrivate``
  too, for ``web_fetch`` only), or
- its host is listed in ``tools.web.allowHosts`` (``tools.web.fetch.allowHosts``
  for ``web_fetch`` only), or
- it is this instance's own canvas host (``127.0.0.1``/``localhost`` on
  base + 4), for the browser tool, which is how the agent looks at its pages.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from moltbot.agents.tools.base import ToolError

if TYPE_CHECKING:
    from moltbot.config.schema import Config

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def blocked_address(address: str) -> bool:
    """Whether ``address`` (an IP literal) is not a public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


@dataclass(frozen=True)
class NetPolicy:
    allow_private: bool = False
    allow_hosts: frozenset[str] = frozenset()
    allow_origins: frozenset[tuple[str, int]] = frozenset()
    """``(host, port)`` pairs allowed even on loopback (the canvas host)."""

    @classmethod
    def for_fetch(cls, config: Config) -> NetPolicy:
        web = config.tools.web
        return cls(
            allow_private=web.allow_private_network or web.fetch.allow_private,
            allow_hosts=frozenset(h.lower() for h in (*web.allow_hosts, *web.fetch.allow_hosts)),
        )

    @classmethod
    def for_browser(cls, config: Config, canvas_port: int | None) -> NetPolicy:
        web = config.tools.web
        origins = (
            frozenset((name, canvas_port) for name in LOOPBACK_NAMES)
            if canvas_port
            else frozenset()
        )
        return cls(
            allow_private=web.allow_private_network,
            allow_hosts=frozenset(h.lower() for h in web.allow_hosts),
            allow_origins=origins,
        )

    def trusts(self, host: str, port: int | None) -> bool:
        host = host.lower().strip("[]")
        return (
            self.allow_private
            or host in self.allow_hosts
            or (port is not None and (host, port) in self.allow_origins)
        )


def _split(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolError(f"{url}: only http(s) URLs with a host can be reached")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ToolError(f"{url}: bad port") from None
    return parts.scheme, parts.hostname.lower(), port


def refusal(url: str) -> str:
    return (
        f"{url}: private or local address refused (tools.web.allowPrivateNetwork, "
        "tools.web.allowHosts)"
    )


def check_literal(url: str, policy: NetPolicy) -> tuple[str, bool]:
    """``(host, trusted)`` for ``url``; refuses an IP-literal host that is not public.

    A host name is not resolved here: the caller resolves it at connect time
    (``web_fetch``) or with :func:`check_url`.
    """
    _scheme, host, port = _split(url)
    trusted = policy.trusts(host, port)
    if not trusted:
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return host, False
        if blocked_address(host.strip("[]")):
            raise ToolError(refusal(url))
    return host, trusted


async def check_url(url: str, policy: NetPolicy) -> None:
    """Refuse ``url`` if its host is, or resolves to, a non-public address (see module)."""
    host, trusted = check_literal(url, policy)
    if trusted:
        return
    try:
        ipaddress.ip_address(host.strip("[]"))
        return  # a public literal (check_literal refused the others)
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost"):
        raise ToolError(refusal(url))
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ToolError(f"{url}: cannot resolve {host} ({exc.strerror or exc})") from None
    if any(blocked_address(str(info[4][0])) for info in infos):
        raise ToolError(refusal(url))


async def page_refusal(url: str, policy: NetPolicy) -> str | None:
    """Why the page the browser ended up on (after redirects or clicks) is off limits,
    or None. Pages that are not http(s) (``about:blank``, error pages) are fine."""
    if not url.lower().startswith(("http://", "https://")):
        return None
    try:
        await check_url(url, policy)
    except ToolError as exc:
        return exc.message
    return None
