"""The method table: every WebSocket method, its params model and its scope.

Handlers are declared with :func:`method` in one module per family
(``moltbot.gateway.methods.<family>``). ``features.methods`` in ``hello-ok`` is
generated from this table, and authorization uses the scope declared here.

A handler is ``async def handler(call: MethodCall, params: Model) -> payload``, or a
plain ``def`` for quick in-memory answers (run inline, without a task switch).
It answers with an error frame by raising any :class:`moltbot.errors.MoltbotError`
(the class carries the protocol code: ``UsageError`` → ``INVALID_REQUEST``, ...);
the server converts it, in one place. Handlers never catch the project's own errors
to re-wrap them; anything else raised becomes ``UNAVAILABLE`` and is logged.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from moltbot.lazy import load

if TYPE_CHECKING:
    from moltbot.errors import MoltbotError
    from moltbot.gateway.connection import Connection
    from moltbot.gateway.runtime import GatewayRuntime

log = logging.getLogger("moltbot.gateway.methods")

Scope = Literal["read", "write", "admin", "node", "pairing", "approvals"]

# Families loaded into the table when the gateway starts, in this order.
FAMILIES = (
    "moltbot.gateway.methods.system",
    "moltbot.gateway.methods.config",
    "moltbot.gateway.methods.agents",
    "moltbot.gateway.methods.chat",
    "moltbot.gateway.methods.sessions",
    "moltbot.gateway.methods.channels",
    "moltbot.gateway.methods.browser",
    "moltbot.gateway.methods.devices",
    "moltbot.gateway.methods.nodes",
    "moltbot.gateway.methods.approvals",
    "moltbot.gateway.methods.wizard",
    "moltbot.gateway.methods.media",
    "moltbot.gateway.methods.cron",
    "moltbot.gateway.methods.wake",
    "moltbot.gateway.methods.usage",
    "moltbot.gateway.methods.skills",
    "moltbot.gateway.methods.rescue",
)


class Params(BaseModel):
    """Base for params models: unknown fields are errors, as upstream's schemas."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NoParams(Params):
    pass


@dataclass
class MethodCall:
    """One request being handled."""

    runtime: GatewayRuntime
    connection: Connection
    request_id: str
    method: str
    _slot_held: bool = True

    async def respond_again(self, payload: Any = None, error: MoltbotError | None = None) -> None:
        """Send a second ``res`` on the same id (two-stage methods such as ``agent``).
        The first answer frees the request's in-flight slot of the connection."""
        self.release_slot()
        await self.connection.send_response(self.request_id, payload, error)

    @property
    def writer(self) -> str:
        """Who writes the config when this request does, for its history: the method and
        the client (``config.patch over the protocol (client cli, device 3f2a…)``)."""
        connection = self.connection
        who = f"client {connection.client_id or 'unknown'}"
        if connection.device_id:
            who += f", device {connection.device_id[:12]}"
        return f"{self.method} over the protocol ({who})"

    def release_slot(self) -> None:
        if self._slot_held:
            self._slot_held = False
            self.connection.answered()


Handler = Callable[[MethodCall, Any], Awaitable[Any] | Any]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    handler: Handler
    params: type[BaseModel]
    scope: Scope
    advertise: bool
    is_async: bool
    default_params: BaseModel | None  # the params of a request that sends none (cached)


_TABLE: dict[str, MethodSpec] = {}


def error_for(method: str, exc: BaseException) -> dict[str, Any]:
    """The one place where a failed request becomes an error frame's ``error``: a
    :class:`~moltbot.errors.MoltbotError` answers with its own code (``error_shape()``);
    anything else is a bug, logged, and answered ``UNAVAILABLE`` (upstream's code for
    thrown errors)."""
    from moltbot.errors import MoltbotError

    if isinstance(exc, MoltbotError):
        return exc.error_shape()
    log.error("method %s failed", method, exc_info=exc)
    return MoltbotError(f"{method} failed: {exc}").error_shape()


def method(
    name: str, *, params: type[BaseModel] = NoParams, scope: Scope = "admin", advertise: bool = True
) -> Callable[[Handler], Handler]:
    """Declare a WebSocket method. ``scope`` follows upstream: read < write < admin."""

    def register(handler: Handler) -> Handler:
        if name in _TABLE:
            raise RuntimeError(f"method {name} declared twice")
        is_async = inspect.iscoroutinefunction(handler)
        try:
            default = params.model_validate({})
        except ValueError:
            default = None
        _TABLE[name] = MethodSpec(name, handler, params, scope, advertise, is_async, default)
        return handler

    return register


def load_families(families: tuple[str, ...] = FAMILIES) -> dict[str, MethodSpec]:
    """Import every family module and return the table.

    Raises :class:`moltbot.errors.MoltbotError` naming the family when one cannot be
    imported: a gateway missing a family of methods does not start.
    """
    for module in families:
        load(module, "method family")
    return dict(_TABLE)
