"""What every HTTP API of the gateway shares: bearer auth, errors, bodies, and the
rule that an API path never falls through to the Control UI.

An API handler is wrapped by :func:`api_route`: the ``Authorization: Bearer
<gateway token or password>`` header is checked *before* anything else (an
unauthenticated client learns nothing, not even whether a path exists), then
the handler runs; an :class:`ApiError` it raises, or one of the project's own
errors, becomes a JSON error in OpenAI's shape::

    {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}

with the status client libraries map to their exception classes (400, 401,
404, 405, 413, 429, 500, 502, 503, 504). Unexpected exceptions are logged and
answered 500 without their details.

This module's own :func:`setup_routes` registers the fallback for
:data:`API_PREFIXES` (unknown paths: 401 without credentials, else 404), so it
must be loaded after every module that adds API routes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from moltbot.errors import (
    INVALID_REQUEST,
    UNAVAILABLE,
    MoltbotError,
    NotFoundError,
    RetryLaterError,
    UsageError,
)
from moltbot.gateway.auth import check_shared
from moltbot.gateway.http.guard import refuse_foreign, throttled
from moltbot.security.connguard import BODY_TOO_LARGE, mark_authenticated
from moltbot.security.origin import bearer

if TYPE_CHECKING:
    from moltbot.gateway.runtime import GatewayRuntime

log = logging.getLogger("moltbot.gateway.http")

API_PREFIXES = ("/v1", "/tools")
"""Path prefixes that belong to APIs: never the Control UI, always JSON."""

Handler = Callable[[web.Request, "GatewayRuntime"], Awaitable[web.StreamResponse]]

_TYPES = {
    429: "rate_limit_error",
    500: "server_error",
    502: "server_error",
    503: "server_error",
    504: "server_error",
}


class ApiError(MoltbotError):
    """An HTTP API error: ``status`` and OpenAI's ``type``/``code``/``param``.

    ``retry_after`` (seconds) becomes a ``Retry-After`` header, rounded up.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        kind: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status
        self.protocol_code = INVALID_REQUEST if status < 500 else UNAVAILABLE
        self.code = code
        self.param = param
        self.kind = kind or _TYPES.get(status, "invalid_request_error")
        self.headers = dict(headers or {})
        if retry_after is not None:
            self.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> web.Response:
        return web.json_response(
            self.body(), status=self.status, headers=self.headers or None, dumps=_dumps
        )


def _dumps(data: Any) -> str:
    return orjson.dumps(data).decode()


def json_response(data: Any) -> web.Response:
    return web.json_response(data, dumps=_dumps)


def authorize(request: web.Request, runtime: GatewayRuntime) -> None:
    """Raise unless the request may use the API: a foreign ``Origin`` or a rebinding
    ``Host`` (403/421), an address throttled after failed attempts (429 with
    ``Retry-After``), or a missing/wrong ``Authorization: Bearer <gateway token>`` (401;
    in password mode the password). A failed attempt counts towards the throttle."""
    peer, refusal = refuse_foreign(request, runtime)
    if refusal is not None:
        raise _Refused(refusal)
    wait = throttled(runtime, peer.address)
    if wait is not None:
        raise ApiError(
            429,
            f"Too many failed authentication attempts; retry in {math.ceil(wait)} s.",
            code="rate_limited",
            retry_after=wait,
        )
    secret = bearer(request.headers) or ""
    if not secret or check_shared(runtime.auth, secret, secret):
        runtime.shield.throttle.failed(peer.address)
        raise ApiError(
            401,
            "Invalid or missing gateway token: send `Authorization: Bearer <gateway token>`.",
            code="invalid_api_key",
            headers={"WWW-Authenticate": 'Bearer realm="moltbot"'},
        )
    mark_authenticated(request)


class _Refused(Exception):
    """A request refused before auth (foreign Origin, rebinding Host): its response."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.text)
        self.response = response


def require_method(request: web.Request, *allowed: str) -> None:
    if request.method not in allowed:
        raise ApiError(
            405,
            f"{request.method} is not allowed on {request.path}; use {' or '.join(allowed)}.",
            code="method_not_allowed",
            headers={"Allow": ", ".join(allowed)},
        )


async def read_json(
    request: web.Request,
    limit: int,
    setting: str = "gateway.http.endpoints.chatCompletions.maxBodyBytes",
) -> Any:
    """The request body parsed as JSON: 413 over ``limit`` bytes (naming the config key
    ``setting``), 400 if it is not JSON.

    The declared length is checked before reading; a chunked body is bounded by the
    app's ``client_max_size`` while it is read, then checked against ``limit``.
    """
    too_large = ApiError(
        413,
        f"Request body too large: the limit is {limit} bytes ({setting}).",
        code="request_too_large",
    )
    if request.get(BODY_TOO_LARGE) or (
        request.content_length is not None and request.content_length > limit
    ):
        raise too_large
    try:
        raw = await request.read()  # already buffered by the server's body deadline
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    if len(raw) > limit:
        raise too_large
    if not raw.strip():
        raise ApiError(400, "The request body is empty; send a JSON object.", code="invalid_json")
    try:
        return orjson.loads(raw)  # orjson refuses nesting deeper than 1024 levels itself
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            400, f"The request body is not valid JSON: {exc}", code="invalid_json"
        ) from None


def api_route(runtime: GatewayRuntime, handler: Handler) -> Callable[..., Any]:
    """``handler`` behind the bearer check, its errors answered as JSON (module docstring)."""

    async def route(request: web.Request) -> web.StreamResponse:
        try:
            authorize(request, runtime)
            if not runtime.subsystems_started.is_set():  # as a WebSocket request does: the
                await runtime.subsystems_started.wait()  # handler may need a starting sidecar
            return await handler(request, runtime)
        except _Refused as refused:
            return refused.response
        except ApiError as exc:
            return exc.response()
        except RetryLaterError as exc:  # restarting: nothing was recorded, retry shortly
            return ApiError(
                503, exc.message, code="gateway_restarting", retry_after=exc.retry_after
            ).response()
        except UsageError as exc:
            return ApiError(400, exc.message).response()
        except NotFoundError as exc:
            return ApiError(404, exc.message, code="not_found").response()
        except MoltbotError as exc:
            return ApiError(503, exc.message, code="unavailable").response()
        except web.HTTPException:
            raise
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return ApiError(500, "Internal error in the gateway (see its log).").response()

    return route


async def unknown_path(request: web.Request, runtime: GatewayRuntime) -> web.StreamResponse:
    raise ApiError(
        404,
        f"Unknown API path: {request.method} {request.path}.",
        code="unknown_url",
    )


def setup_routes(app: web.Application, runtime: GatewayRuntime) -> None:
    """The fallback for :data:`API_PREFIXES`: load after the modules adding API routes."""
    fallback = api_route(runtime, unknown_path)
    for prefix in API_PREFIXES:
        app.router.add_route("*", prefix, fallback)
        app.router.add_route("*", prefix + "/{tail:.*}", fallback)
