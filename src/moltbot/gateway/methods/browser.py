"""``browser.request``: the browser control service's routes over the gateway WebSocket.

Params ``{method: GET|POST|DELETE, path, query?, body?, timeoutMs?}`` run one
route of :mod:`moltbot.browser.routes` in-process (same table as the HTTP
service on base+2). The route's JSON is the payload; a 4xx answer becomes
``INVALID_REQUEST`` and a 5xx (or a disabled/stopped service) ``UNAVAILABLE``,
both with the route's body as ``details``. Scope ``operator.write``.
"""

from __future__ import annotations

from typing import Any, Literal

from moltbot.errors import INVALID_REQUEST, UNAVAILABLE, MethodError, MoltbotError
from moltbot.gateway.methods.registry import MethodCall, Params, method
from moltbot.subsystems import BROWSER
from moltbot.validation import Field


class BrowserRequestParams(Params):
    method: Literal["GET", "POST", "DELETE"]
    path: str = Field(min_length=1, max_length=2048)
    query: dict[str, Any] | None = None
    body: Any = None
    timeout_ms: int | None = Field(default=None, alias="timeoutMs", ge=1, le=600_000)


@method("browser.request", params=BrowserRequestParams, scope="write")
async def browser_request(call: MethodCall, params: BrowserRequestParams) -> Any:
    service = call.runtime.subsystem(BROWSER)
    if service is None:
        error = call.runtime.subsystem_errors.get("browser")
        raise MoltbotError(
            "browser control is disabled"
            if error is None
            else f"browser control is not running: {error}"
        )
    reply = await service.request(
        params.method, params.path, params.query, params.body, params.timeout_ms
    )
    if reply.ok:
        return reply.body
    message = reply.body.get("error") if isinstance(reply.body, dict) else None
    code = UNAVAILABLE if reply.status >= 500 else INVALID_REQUEST
    raise MethodError(
        code,
        str(message or f"browser control answered {reply.status}"),
        details={
            "status": reply.status,
            **(reply.body if isinstance(reply.body, dict) else {"body": reply.body}),
        },
    )
