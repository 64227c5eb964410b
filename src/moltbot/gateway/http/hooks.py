"""``POST <hooks.path>/wake`` and ``POST <hooks.path>/agent``: other systems wake the agent.

Served while ``hooks.enabled`` (read per request); otherwise every hook path is
404. Checks, in order:

1. a foreign ``Origin`` or a rebinding ``Host`` is refused (403/421), as for
   every API of the gateway;
2. an address that failed too often is throttled: ``429`` with ``Retry-After``
   (the gateway's shared auth throttle);
3. the hook token (``hooks.token``, compared in constant time) from
   ``Authorization: Bearer <token>`` or ``X-Moltbot-Token``/``X-Openclaw-Token``;
   a token in the query string is never accepted. Missing or wrong: ``401
   Unauthorized`` (text), counted by the throttle;
4. ``POST`` only (``405``); ``<path>/wake`` or ``<path>/agent`` (else ``404``);
5. a body over ``hooks.maxBodyBytes``: ``413 {ok: false, error: "payload too
   large"}``; not JSON: ``400``;
6. ``Idempotency-Key`` (header) or ``idempotencyKey`` (body): the same key on
   the same hook within five minutes gets the first answer again, and nothing
   runs twice.

Errors are ``{ok: false, error}``; ``503`` while the agent runtime is not
running (retry).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from moltbot.errors import RetryLaterError
from moltbot.gateway.http.guard import refuse_foreign, throttled
from moltbot.security.connguard import BODY_TOO_LARGE, mark_authenticated
from moltbot.security.origin import bearer
from moltbot.security.secrets import secret_equals

if TYPE_CHECKING:
    from moltbot.gateway.runtime import GatewayRuntime

log = logging.getLogger("moltbot.gateway.hooks")

TOKEN_HEADERS = ("X-Moltbot-Token", "X-Openclaw-Token")
IDEMPOTENCY_HEADER = "Idempotency-Key"


def setup_routes(app: web.Application, runtime: GatewayRuntime) -> None:
    base = runtime.config.hooks.path.rstrip("/")

    async def route(request: web.Request) -> web.StreamResponse:
        return await hook_request(request, runtime, base)

    app.router.add_route("*", base, route)
    app.router.add_route("*", base + "/{hook:.*}", route)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status, headers=headers)


async def hook_request(request: web.Request, runtime: GatewayRuntime, base: str) -> web.Response:
    from moltbot.automation.hooks import HOOKS, HookRefused, handle

    hooks = runtime.config.hooks
    peer, refusal = refuse_foreign(request, runtime)
    if refusal is not None:
        return refusal
    if not hooks.enabled or base != hooks.path.rstrip("/"):
        return web.Response(status=404, text="Not Found")
    wait = throttled(runtime, peer.address)
    if wait is not None:
        return _error(
            429,
            f"too many failed attempts; retry in {math.ceil(wait)} s",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )
    if not secret_equals(_token(request), hooks.token):
        runtime.shield.throttle.failed(peer.address)
        if "token" in request.query:
            log.warning("hook from %s sent its token in the URL: refused", peer.address)
        return web.Response(status=401, text="Unauthorized")
    mark_authenticated(request)
    if request.method != "POST":
        return web.Response(status=405, text="Method Not Allowed", headers={"Allow": "POST"})
    name = request.match_info.get("hook", "").strip("/")
    if name not in HOOKS:
        return _error(404, f"unknown hook {name!r}: use {base}/wake or {base}/agent")
    if request.get(BODY_TOO_LARGE) or (request.content_length or 0) > hooks.max_body_bytes:
        return _error(413, "payload too large")
    raw = await request.read()
    if len(raw) > hooks.max_body_bytes:
        return _error(413, "payload too large")
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return _error(400, "the body is not valid JSON")
    key = request.headers.get(IDEMPOTENCY_HEADER) or (
        body.get("idempotencyKey") if isinstance(body, dict) else None
    )
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 200):
        return _error(400, "idempotency key must be a string of 1 to 200 characters")
    if key:
        cached = runtime.dedupe.get("hook", f"{name}:{key}")
        if cached is not None:
            return web.json_response(cached.payload["body"], status=cached.payload["status"])
    if isinstance(body, dict):
        body.pop("idempotencyKey", None)
    if not runtime.subsystems_started.is_set():  # sent as the port opened: wait for them
        await runtime.subsystems_started.wait()
    try:
        status, answer = await handle(name, body, runtime.subsystem)
    except HookRefused as exc:
        return _error(exc.status, exc.message)
    except RetryLaterError as exc:
        return _error(503, exc.message, {"Retry-After": str(max(1, math.ceil(exc.retry_after)))})
    if key:
        runtime.dedupe.put("hook", f"{name}:{key}", True, {"status": status, "body": answer})
    return web.json_response(answer, status=status)


def _token(request: web.Request) -> str | None:
    found = bearer(request.headers)
    if found:
        return found
    for header in TOKEN_HEADERS:
        value = request.headers.get(header, "").strip()
        if value:
            return value
    return None


__all__ = ["setup_routes"]
