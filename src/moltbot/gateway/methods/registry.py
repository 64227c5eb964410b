"""The method table: every WebSocket method, its params model and its scope.

Handlers are declared with :func:`method` in one module per family
(``moltbot.gateway.methods.<family>``), imported at the first call of one of its
methods; :data:`DECLARED` names every method up front for ``features.methods`` in
``hello-ok``. Authorization uses the scope declared with the handler.

A handler is ``async def handler(call: MethodCall, params: Model) -> payload``, or a
plain ``def`` for quick in-memory answers (run inline, without a task switch).
It answers with an error frame by raising any :class:`moltbot.errors.MoltbotError`
(the class carries the protocol code: ``UsageError`` → ``INVALID_REQUEST``, ...);
the server converts it, in one place. Handlers never catch the project's own errors
to re-wrap them; anything else raised becomes ``UNAVAILABLE`` and is logged.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from moltbot.errors import MoltbotError
from moltbot.lazy import load
from moltbot.validation import BaseModel, ConfigDict

if TYPE_CHECKING:
    from moltbot.gateway.connection import Connection
    from moltbot.gateway.runtime import GatewayRuntime

log = logging.getLogger("moltbot.gateway.methods")

Scope = Literal["read", "write", "admin", "node", "pairing", "approvals"]

# Every method, by the family (``moltbot.gateway.methods.<family>``) that declares it.
# ``features.methods`` in ``hello-ok`` is built from this table, so no family is
# imported until one of its methods is first called (``tests/gateway/test_methods_table``
# checks it against what the families declare).
DECLARED: dict[str, tuple[str, ...]] = {
    "system": (
        "health",
        "status",
        "system-presence",
        "system-event",
        "logs.tail",
        "gateway.ping",
        "update.run",
    ),
    "config": ("config.get", "config.set", "config.patch", "config.apply", "config.schema"),
    "agents": ("agent", "agent.wait", "agents.list", "agent.identity.get", "models.list"),
    "chat": ("chat.send", "chat.history", "chat.abort", "chat.inject"),
    "sessions": (
        "sessions.list",
        "sessions.preview",
        "sessions.patch",
        "sessions.reset",
        "sessions.delete",
        "sessions.resolve",
        "sessions.compact",
    ),
    "channels": ("send", "channels.logout", "channels.status"),
    "browser": ("browser.request",),
    "devices": (
        "device.pair.list",
        "device.pair.approve",
        "device.pair.reject",
        "device.token.rotate",
        "device.token.revoke",
    ),
    "nodes": (
        "node.list",
        "node.describe",
        "node.rename",
        "node.invoke",
        "node.invoke.result",
        "node.event",
        "node.pair.request",
        "node.pair.list",
        "node.pair.approve",
        "node.pair.reject",
        "node.pair.verify",
    ),
    "approvals": (
        "exec.approvals.get",
        "exec.approvals.set",
        "exec.approvals.node.get",
        "exec.approvals.node.set",
        "exec.approval.request",
        "exec.approval.resolve",
        "exec.approval.list",
    ),
    "wizard": ("wizard.start", "wizard.next", "wizard.cancel", "wizard.status"),
    "media": (
        "talk.mode",
        "voicewake.get",
        "voicewake.set",
        "tts.status",
        "tts.providers",
        "tts.enable",
        "tts.disable",
        "tts.setProvider",
        "tts.convert",
    ),
    "cron": (
        "cron.list",
        "cron.status",
        "cron.add",
        "cron.update",
        "cron.remove",
        "cron.run",
        "cron.runs",
    ),
    "wake": ("wake", "set-heartbeats", "last-heartbeat"),
    "usage": ("usage.cost", "usage.status"),
    "skills": ("skills.status", "skills.bins", "skills.install", "skills.update"),
    "rescue": (
        "rescue.status",
        "rescue.audit",
        "rescue.logs",
        "rescue.doctor",
        "rescue.config",
        "rescue.restart",
    ),
    "host": ("host.status",),
    "pairing": (
        "channels.pairing.list",
        "channels.pairing.approve",
        "channels.pairing.reject",
        "channels.pairing.revoke",
    ),
    "config_history": ("config.history", "config.history.get"),
}
# Declared with ``advertise=False``: answered, but not listed in ``hello-ok``.
UNADVERTISED = frozenset(
    {"gateway.ping", "update.run", "chat.inject", "sessions.resolve", "exec.approval.list"}
)
FAMILIES = tuple(f"moltbot.gateway.methods.{family}" for family in DECLARED)


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
    bulky: bool = False
    """Its answer can run to megabytes: one client's are built one at a time."""


_TABLE: dict[str, MethodSpec] = {}


def error_for(method: str, exc: BaseException) -> dict[str, Any]:
    """The one place where a failed request becomes an error frame's ``error``: a
    :class:`~moltbot.errors.MoltbotError` answers with its own code (``error_shape()``);
    anything else is a bug, logged, and answered ``UNAVAILABLE`` (upstream's code for
    thrown errors)."""
    if isinstance(exc, MoltbotError):
        return exc.error_shape()
    log.error("method %s failed", method, exc_info=exc)
    return MoltbotError(f"{method} failed: {exc}").error_shape()


def method(
    name: str,
    *,
    params: type[BaseModel] = NoParams,
    scope: Scope = "admin",
    advertise: bool = True,
    bulky: bool = False,
) -> Callable[[Handler], Handler]:
    """Declare a WebSocket method. ``scope`` follows upstream: read < write < admin.
    ``bulky``: its answer can run to megabytes (history, logs), so a client's requests
    of such methods are run one at a time, each only while the client reads its answers."""

    def register(handler: Handler) -> Handler:
        if name in _TABLE:
            raise RuntimeError(f"method {name} declared twice")
        is_async = inspect.iscoroutinefunction(handler)
        try:
            default = params.model_validate({})
        except ValueError:
            default = None
        _TABLE[name] = MethodSpec(name, handler, params, scope, advertise, is_async, default, bulky)
        return handler

    return register


class MethodTable:
    """The gateway's methods. Their names and families are known up front
    (:data:`DECLARED`); a family's module is imported at the first call of one of its
    methods (:meth:`load`), in a thread, so an idle gateway holds none it was not asked for.

    One import per family: the calls that arrive while it runs wait for it together and
    go on in the order they came, and none of them runs before it is over, even where
    the thread has already registered the family's methods.
    """

    def __init__(self, declared: dict[str, tuple[str, ...]] = DECLARED) -> None:
        self._family = {name: family for family, names in declared.items() for name in names}
        self.advertised = sorted(name for name in self._family if name not in UNADVERTISED)
        """``features.methods`` of ``hello-ok``."""
        self._loaded: set[str] = set()
        self._loading: dict[str, asyncio.Future[Any]] = {}

    def get(self, name: str) -> MethodSpec | None:
        """The method, if this table declares it and its family is imported."""
        return _TABLE.get(name) if self._family.get(name) in self._loaded else None

    def declares(self, name: str) -> bool:
        return name in self._family

    async def load(self, name: str) -> MethodSpec:
        """Import the family declaring ``name`` and return the method. Raises
        :class:`~moltbot.errors.MoltbotError` when the family cannot be imported or
        does not declare it (the caller's request is answered with that error; the next
        call tries the import again)."""
        family = self._family[name]
        if family not in self._loaded:
            loading = self._loading.get(family)
            if loading is None:
                module = f"moltbot.gateway.methods.{family}"
                loading = asyncio.ensure_future(asyncio.to_thread(load, module, "method family"))
                loading.add_done_callback(lambda done: self._imported(family, done))
                self._loading[family] = loading
            await asyncio.shield(loading)  # a caller that goes away does not cancel it
        spec = _TABLE.get(name)
        if spec is None:
            raise MoltbotError(f"method family {family} does not declare {name}")
        return spec

    def _imported(self, family: str, done: asyncio.Future[Any]) -> None:
        del self._loading[family]
        if not done.cancelled() and done.exception() is None:
            self._loaded.add(family)


def load_families(families: tuple[str, ...] = FAMILIES) -> dict[str, MethodSpec]:
    """Import every family module and return the table (the gateway imports them one
    at a time instead: :class:`MethodTable`).

    Raises :class:`moltbot.errors.MoltbotError` naming the family when one cannot be
    imported: a gateway missing a family of methods does not start.
    """
    for module in families:
        load(module, "method family")
    return dict(_TABLE)
