"""The contract between the gateway and the subsystems it starts.

A subsystem (agents, browser control, canvas host, channels) is a class built
with a :class:`SubsystemContext` and driven through ``start()`` / ``stop()``.
It owns every socket, task and process it opens, reports an explicit
:class:`State`, and never takes the gateway down: a subsystem whose ``start``
raises is marked ``FAILED`` with the reason and the rest keeps serving.

Subsystems are listed lazily (``name -> "module:Class"``) in
:data:`moltbot.gateway.server.SUBSYSTEMS`, so importing the gateway imports none
of them.
"""

from __future__ import annotations

import enum
import errno
import logging
from collections.abc import Awaitable, Callable, Mapping
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


AsyncCallback = Callable[..., Awaitable[Any]]


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
