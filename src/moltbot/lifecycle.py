"""The contract between the gateway and the subsystems it starts.

A subsystem (agents, browser control, canvas host, channels) is a class built
with a :class:`SubsystemContext` and driven through ``start()`` / ``stop()``.
It owns every socket, task and process it opens, reports an explicit
:class:`State`, and never takes the gateway down: a subsystem whose ``start``
raises is marked ``FAILED`` with the reason and the rest keeps serving.

A subsystem with a port of its own (browser control, canvas host) derives from
:class:`HttpSubsystem`, which owns that lifecycle once: skip → prepare → bind
(:func:`serve_http`) behind its guard → running; stop frees the port.

Subsystems are listed lazily (``name -> "module:Class"``) in
:data:`moltbot.gateway.runtime.SUBSYSTEMS`, so importing the gateway imports none
of them.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload, runtime_checkable

from moltbot.config.schema import Config
from moltbot.errors import MoltbotError, PortInUseError
from moltbot.instance.resolve import Instance
from moltbot.security.connguard import RUNNER_KWARGS, ConnectionGuard, GuardedSite, body_deadline
from moltbot.security.shield import Shield

if TYPE_CHECKING:
    from aiohttp import web


class State(enum.StrEnum):
    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    DISABLED = "disabled"


Broadcast = Callable[..., None]
"""``broadcast(event, payload, *, drop_if_slow=False)``: send an event to every client."""

S = TypeVar("S")


class SubsystemKey(str, Generic[S]):
    """The typed name of a subsystem (aiohttp's ``AppKey`` style): ``lookup(AGENTS)`` is an
    ``AgentRuntime | None`` to the type checker where ``lookup("agents")`` is ``Any``.
    The key is its name (a ``str``), so code and payloads naming subsystems by string
    agree with it. The gateway's own subsystems have their keys in
    :mod:`moltbot.subsystems`."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return str(self)


class Lookup(Protocol):
    """``lookup(KEY)``: that subsystem if it is running, else ``None``."""

    @overload
    def __call__(self, key: SubsystemKey[S], /) -> S | None: ...

    @overload
    def __call__(self, key: str, /) -> Any: ...


def no_subsystems(key: object, /) -> None:
    """The :class:`Lookup` of code that runs outside a gateway: nothing else runs."""
    return None


@dataclass
class SubsystemContext:
    """What a subsystem may use. Nothing else of the gateway is reachable from it."""

    instance: Instance
    config: Config
    env: Mapping[str, str]
    token: str | None
    password: str | None
    broadcast: Broadcast
    logger: logging.Logger
    lookup: Lookup = field(default=no_subsystems)  # type: ignore[assignment]
    """``lookup(AGENTS)``: another running subsystem, or ``None``."""
    shield: Shield = field(default_factory=Shield)
    """The gateway's failed-auth throttle and connection guard (shared by every port)."""
    bind_host: str = "127.0.0.1"
    """The address the gateway listens on (``gateway.bind`` or ``--bind``, resolved once
    by :func:`moltbot.instance.bind.listen_host`); the canvas host binds the same."""


class Subsystem(Protocol):
    name: str
    state: State

    def __init__(self, context: SubsystemContext) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict[str, Any]: ...

    async def reconfigure(self, config: Config) -> bool:
        """Apply a changed config live. Return False when a restart is needed."""
        ...


@runtime_checkable
class Drains(Protocol):
    """A subsystem that can finish its work in flight before a restart."""

    async def drain(self, grace: float) -> None:
        """Stop taking work; finish what is in flight within ``grace`` seconds."""
        ...


async def serve_http(
    app: web.Application,
    host: str,
    port: int,
    *,
    in_use: Callable[[], str],
    hint: str,
    guard: ConnectionGuard | None = None,
) -> web.AppRunner:
    """Serve ``app`` on a subsystem's own port; the runner to ``cleanup()`` on stop.

    With ``guard`` (pass ``context.shield.connections``), connections are admitted
    and time-limited by it (see :mod:`moltbot.security.connguard`).
    A taken port raises :class:`PortInUseError` with the message ``in_use()`` and
    ``hint``; any other bind failure :class:`MoltbotError`. Nothing stays open then.
    """
    from aiohttp import web

    if guard is not None:
        app.middlewares.insert(0, body_deadline(guard))
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=0.5, **RUNNER_KWARGS
    )
    await runner.setup()
    try:
        await GuardedSite(runner, host, port, reuse_address=True, guard=guard).start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUseError(in_use(), hint=hint) from None
        raise MoltbotError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return runner


class HttpSubsystem:
    """Base of a subsystem that serves HTTP on a port of its own.

    ``start()``: :meth:`skipped` gives a reason → ``DISABLED``; else ``STARTING``,
    :meth:`prepare`, then the port is bound with :meth:`refusal` as the first
    middleware (a response refuses the request before any handler) and
    :meth:`handle` answering every path; then ``RUNNING`` and :meth:`started`.
    A port that cannot be bound leaves it ``FAILED`` with the reason, after
    :meth:`release`, and raises (:class:`PortInUseError` naming :meth:`in_use`).

    ``stop()`` is safe in any state and idempotent: :meth:`closing` runs while the
    port is freed (the gateway gives every subsystem about a second), then
    :meth:`release`, then ``STOPPED``.
    """

    name: str = "http"
    port_hint: str = "stop the other process, or choose another port"
    client_max_size: int = 1 << 20

    def __init__(self, context: SubsystemContext) -> None:
        self.context = context
        self.config: Config = context.config
        self.state = State.CREATED
        self.reason: str | None = None
        self.log = context.logger or logging.getLogger(type(self).__module__)
        self._runner: web.AppRunner | None = None

    # -- what a subclass provides ----------------------------------------------------

    def skipped(self) -> str | None:
        """Why this subsystem is off (config or environment), or ``None``."""
        return None

    def address(self) -> tuple[str, int]:
        """The (host, port) to listen on."""
        raise NotImplementedError

    def in_use(self) -> str:
        """The message when the port is taken."""
        host, port = self.address()
        return f"{self.name} port {port} on {host} is already in use"

    def refusal(self, request: web.Request) -> web.StreamResponse | None:
        """A response that refuses ``request`` (Host, Origin, credentials), or ``None``."""
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer an admitted request (every method and path comes here)."""
        raise NotImplementedError

    async def prepare(self) -> None:
        """Before binding: open what the handlers need."""

    async def started(self) -> None:
        """After binding (state ``RUNNING``): background work, log lines."""

    async def closing(self) -> None:
        """On stop, while the port is being freed: end clients and children."""

    async def release(self) -> None:
        """Last step of stop (and of a failed start): close what :meth:`prepare` opened."""

    # -- the lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        skipped = self.skipped()
        if skipped:
            self.state, self.reason = State.DISABLED, skipped
            return
        from aiohttp import web

        self.state, self.reason = State.STARTING, None
        await self.prepare()

        @web.middleware
        async def guard(request: web.Request, handler: Callable[..., Any]) -> Any:
            refused = self.refusal(request)
            return refused if refused is not None else await handler(request)

        app = web.Application(middlewares=[guard], client_max_size=self.client_max_size)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        host, port = self.address()
        try:
            self._runner = await serve_http(
                app,
                host,
                port,
                in_use=self.in_use,
                hint=self.port_hint,
                guard=self.context.shield.connections,
            )
        except MoltbotError as exc:
            await self.release()
            self.state, self.reason = State.FAILED, exc.message
            raise
        self.state = State.RUNNING
        await self.started()

    async def stop(self) -> None:
        if self.state in (State.CREATED, State.DISABLED, State.STOPPED):
            if self.state == State.CREATED:
                self.state = State.STOPPED
            return
        self.state = State.STOPPING
        runner, self._runner = self._runner, None
        results = await asyncio.gather(
            self.closing(),
            *([runner.cleanup()] if runner is not None else []),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, Exception):
                self.log.warning("%s did not stop cleanly: %s", self.name, result)
        await self.release()
        self.state = State.STOPPED
