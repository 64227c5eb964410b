"""The control port's HTTP side: who may call it, and requests to route calls.

Every request needs a loopback ``Host`` (else 421: DNS rebinding), a loopback
peer and no foreign ``Origin`` (else 403), and the gateway token as
``Authorization: Bearer`` (else 401; wrong tokens count towards the shared
per-address throttle, 429 with ``Retry-After``). An admitted request becomes a
:class:`~moltbot.browser.routes.BrowserRequest` run in-process by
:meth:`BrowserService.request`; ``POST /screenshot`` with ``Accept: image/*``
answers the image bytes instead of JSON.
"""

from __future__ import annotations

import base64
import math
from typing import TYPE_CHECKING, Any

from moltbot.security.connguard import mark_authenticated
from moltbot.security.origin import (
    bearer,
    is_loopback_addr,
    is_loopback_host,
    same_origin,
    secret_matches,
)

if TYPE_CHECKING:
    from aiohttp import web

    from moltbot.browser.service import BrowserService


def refusal(service: BrowserService, request: web.Request) -> web.Response | None:
    """421 for a non-loopback Host, 403 for a foreign peer or Origin, 401 without the token."""
    port = service.settings.control_port
    if not is_loopback_host(request.host, port):
        return json_response(
            421,
            {
                "error": f"misdirected request: Host {request.host!r} is not this loopback service",
                "hint": f"use {service.control_url}",
            },
        )
    if not is_loopback_addr(request.remote):
        return json_response(403, {"error": "the browser control service only serves loopback"})
    if not same_origin(request.headers.get("Origin"), request.host):
        return json_response(403, {"error": "cross-origin requests are refused"})
    secrets = (service.context.token, service.context.password)
    if not any(secrets):
        return json_response(
            401,
            {
                "error": "the gateway has no token configured",
                "hint": "run `moltbot setup` (it creates gateway.auth.token)",
            },
        )
    throttle = service.context.shield.throttle
    wait = throttle.retry_after(request.remote)
    if wait is not None:
        return _too_many(wait)
    if not secret_matches(bearer(request.headers), secrets):
        throttle.failed(request.remote)
        response = json_response(
            401,
            {"error": "unauthorized: send the gateway token as Authorization: Bearer <token>"},
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="moltbot-browser"'
        return response
    mark_authenticated(request)
    return None


async def handle(service: BrowserService, request: web.Request) -> web.StreamResponse:
    from aiohttp import web

    if request.method not in ("GET", "POST", "DELETE"):
        return json_response(405, {"error": f"method {request.method} not allowed"})
    body: Any = None
    if request.body_exists:
        try:
            body = await request.json(loads=_loads)
        except ValueError:
            return json_response(400, {"error": "the request body is not valid JSON"})
    reply = await service.request(request.method, request.path, dict(request.query), body)
    accept = request.headers.get("Accept", "")
    if (
        reply.ok
        and request.path.rstrip("/") == "/screenshot"
        and "image/" in accept
        and isinstance(reply.body, dict)
    ):
        return web.Response(
            body=base64.b64decode(reply.body["data"]),
            content_type=reply.body["mimeType"],
            headers={"X-Target-Id": str(reply.body["targetId"])},
        )
    return json_response(reply.status, reply.body)


def json_response(status: int, body: Any) -> web.Response:
    import orjson
    from aiohttp import web

    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _loads(text: str) -> Any:
    import orjson

    return orjson.loads(text)


def _too_many(wait: float) -> web.Response:
    seconds = max(1, math.ceil(wait))
    response = json_response(
        429,
        {
            "error": f"too many failed authentication attempts; retry in {seconds} s",
            "retryAfterMs": int(wait * 1000),
        },
    )
    response.headers["Retry-After"] = str(seconds)
    return response
