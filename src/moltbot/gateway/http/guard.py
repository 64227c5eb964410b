"""Checks every request to the gateway's WebSocket and HTTP APIs goes through first."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from moltbot.security.origin import (
    Peer,
    is_loopback_host,
    is_loopback_name,
    origin_allowed,
    resolve_peer,
)

if TYPE_CHECKING:
    from moltbot.gateway.runtime import GatewayRuntime

log = logging.getLogger("moltbot.gateway.http")


def refuse_foreign(
    request: web.Request, runtime: GatewayRuntime
) -> tuple[Peer, web.Response | None]:
    """Who sent ``request``, and the refusal when it must not be served: a ``Host``
    that is not loopback on a loopback bind (DNS rebinding, 421), or an ``Origin``
    that is neither the gateway's own nor in ``gateway.controlUi.allowedOrigins`` (403).
    Used by the WebSocket and the HTTP APIs."""
    gateway = runtime.config.gateway
    peer = resolve_peer(request.remote, request.headers, gateway.trusted_proxies)
    if (
        is_loopback_name(runtime.bind_host)
        and not peer.trusted_proxy
        and not is_loopback_host(request.host)
    ):
        log.warning("refused %s: Host %r on a loopback bind", peer.address, request.host)
        return peer, web.Response(
            status=421,
            text="misdirected request: this gateway only answers to loopback names "
            "(127.0.0.1, localhost); behind a proxy, list it in gateway.trustedProxies\n",
        )
    origin = request.headers.get("Origin")
    if not origin_allowed(origin, peer.host, gateway.control_ui.allowed_origins):
        log.warning("refused %s: Origin %r is not allowed", peer.address, origin)
        return peer, web.Response(
            status=403,
            text="origin not allowed: add it to gateway.controlUi.allowedOrigins\n",
        )
    return peer, None


def throttled(runtime: GatewayRuntime, address: str | None) -> float | None:
    """Seconds until ``address`` may try a credential again (``None``: now)."""
    return runtime.shield.throttle.retry_after(address)
