"""The method table: every WebSocket method, its params model and its scope.

Handlers are declared with :func:`method` in one module per family
(``moltbot.gateway.methods.<family>``). ``features.methods`` in ``hello-ok`` is
generated from this table, and authorization uses the scope declared here.

A handler is ``async def handler(call: MethodCall, params: Model) -> payload``, or a
plain ``def`` for quick in-memory answers (run inline, without a task switch).
It raises :class:`MethodError` (or any :class:`moltbot.errors.MoltbotError`) to
answer with an error frame; anything else becomes ``UNAVAILABLE``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
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
    "moltbot.gateway.methods.cron",
    "moltbot.gateway.methods.wake",
)


class Params(BaseModel):
    """Base for params models: unknown fields are errors, as upstream's schemas."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NoParams(Params):
    pass


class MethodError(Exception):
    """An error answered to the client as ``{code, message, details?, retryable?}``."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        details: Any = None,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms

    def shape(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            out["details"] = self.details
        if self.retryable is not None:
            out["retryable"] = self.retryable
        if self.retry_after_ms is not None:
            out["retryAfterMs"] = self.retry_after_ms
        return out


@dataclass
class MethodCall:
    """One request being handled."""

    runtime: GatewayRuntime
    connection: Connection
    request_id: str
    method: str
    _slot_held: bool = True

    async def respond_again(self, payload: Any = None, error: MethodError | None = None) -> None:
        """Send a second ``res`` on the same id (two-stage methods such as ``agent``).
        The first answer frees the request's in-flight slot of the connection."""
        self.release_slot()
        await self.connection.send_response(self.request_id, payload, error)

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
    """Import every family module (skipping ones not built yet) and return the table."""
    for module in families:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                log.exception("method family %s failed to import; its methods are missing", module)
        except Exception:  # one broken family must not take the gateway down
            log.exception("method family %s failed to import; its methods are missing", module)
    return dict(_TABLE)
