"""Connection admission and HTTP read deadlines for every port the gateway serves.

A :class:`ConnectionGuard` is shared by the gateway port, browser control (+2) and
the canvas host (+4). It wraps each accepted connection's aiohttp protocol in a
:class:`GuardedProtocol` (plain asyncio ``Protocol`` forwarding, no aiohttp
internals) and enforces:

- **caps on unauthenticated connections**: at most ``per_address`` connections
  per client address (IPv6 per /64) and ``total`` overall may be open without
  having authenticated; more are closed at once. A connection stops counting
  when it authenticates (:func:`mark_authenticated`), so a thousand operator
  clients from one host are fine as long as they do not all hang in the
  handshake at the same moment. Trusted proxies count only towards ``total``.
- **a header deadline**: a connection that has not delivered a complete first
  request within ``header_timeout_s`` is closed (slowloris). Later requests on a
  kept-alive connection are bounded by aiohttp's ``keepalive_timeout``, which the
  runners set to the same value (:data:`RUNNER_KWARGS`).
- **a body deadline**: :func:`body_deadline` (an aiohttp middleware) reads a
  request body within ``body_timeout_s`` or answers 408 and closes.

Refusals and timeouts are counted in :attr:`ConnectionGuard.stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moltbot.security.throttle import address_key

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
MAX_UNAUTHENTICATED_PER_ADDRESS = 128
MAX_UNAUTHENTICATED_TOTAL = 2048

RUNNER_KWARGS: dict[str, Any] = {"keepalive_timeout": HEADER_TIMEOUT_S}
"""Keyword arguments for every ``web.AppRunner`` behind a guard."""


@dataclass
class GuardStats:
    refused_per_address: int = 0
    refused_total: int = 0
    header_timeouts: int = 0
    body_timeouts: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class ConnectionGuard:
    """Shared admission state; see the module docstring. Event-loop only."""

    per_address: int = MAX_UNAUTHENTICATED_PER_ADDRESS
    total: int = MAX_UNAUTHENTICATED_TOTAL
    header_timeout_s: float = HEADER_TIMEOUT_S
    body_timeout_s: float = BODY_TIMEOUT_S
    trusted_proxies: Sequence[str] = ()
    stats: GuardStats = field(default_factory=GuardStats)
    _pending: dict[str, int] = field(default_factory=dict)
    _pending_total: int = 0

    @property
    def unauthenticated(self) -> int:
        return self._pending_total

    def admit(self, address: str | None) -> str | None:
        """Count a new unauthenticated connection; its key, or ``None`` when refused."""
        from moltbot.security.origin import in_networks

        key = address_key(address)
        if self._pending_total >= self.total:
            self.stats.refused_total += 1
            return None
        exempt = in_networks(address, self.trusted_proxies)
        if not exempt and self._pending.get(key, 0) >= self.per_address:
            self.stats.refused_per_address += 1
            return None
        self._pending[key] = self._pending.get(key, 0) + 1
        self._pending_total += 1
        return key

    def release(self, key: str) -> None:
        left = self._pending.get(key, 0) - 1
        if left > 0:
            self._pending[key] = left
        else:
            self._pending.pop(key, None)
        self._pending_total = max(0, self._pending_total - 1)

    def factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` wrapping ``inner``'s protocols."""
        return lambda: GuardedProtocol(self, inner)


class GuardedProtocol(asyncio.Protocol):
    """Forwards everything to the wrapped protocol once the connection is admitted."""

    def __init__(self, guard: ConnectionGuard, inner: Callable[[], asyncio.Protocol]) -> None:
        self.guard = guard
        self._make_inner = inner
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self._key: str | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) and peer else None
        self._key = self.guard.admit(address)
        if self._key is None:
            transport.abort()
            return
        self._deadline = asyncio.get_running_loop().call_later(
            self.guard.header_timeout_s, self._header_timeout
        )
        inner = self.inner = self._make_inner()
        # The hot paths go straight to the wrapped protocol from now on.
        self.data_received = inner.data_received  # type: ignore[method-assign]
        self.eof_received = inner.eof_received  # type: ignore[method-assign]
        self.pause_writing = inner.pause_writing  # type: ignore[method-assign]
        self.resume_writing = inner.resume_writing  # type: ignore[method-assign]
        inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:  # before admission only
        pass

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle()
        if self.inner is not None:
            self.inner.connection_lost(exc)
            self.inner = None

    def request_started(self) -> None:
        """A complete request arrived: the header deadline is met."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def authenticated(self) -> None:
        """The peer proved a credential: it no longer counts as unauthenticated."""
        self.request_started()
        self._settle()

    def _settle(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._key is not None:
            self.guard.release(self._key)
            self._key = None

    def _header_timeout(self) -> None:
        self._deadline = None
        self.guard.stats.header_timeouts += 1
        if self.transport is not None:
            self.transport.abort()


def guarded_protocol(request: web.BaseRequest) -> GuardedProtocol | None:
    transport = request.transport
    protocol = transport.get_protocol() if transport is not None else None
    return protocol if isinstance(protocol, GuardedProtocol) else None


def mark_authenticated(request: web.BaseRequest) -> None:
    """Call when ``request`` presented a valid credential (see the module docstring)."""
    protocol = guarded_protocol(request)
    if protocol is not None:
        protocol.authenticated()


def body_deadline(guard: ConnectionGuard) -> Any:
    """Middleware: the header deadline is met; a body must arrive within the guard's
    ``body_timeout_s`` (else 408 and the connection is closed)."""
    from aiohttp import web

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        protocol = guarded_protocol(request)
        if protocol is not None:
            protocol.request_started()
        if request.body_exists and not request.headers.get("Upgrade"):
            try:
                await asyncio.wait_for(request.read(), guard.body_timeout_s)
            except TimeoutError:
                guard.stats.body_timeouts += 1
                if request.transport is not None:
                    with contextlib.suppress(Exception):
                        request.transport.close()
                return web.Response(status=408, text="request body too slow\n")
        return await handler(request)

    return middleware


class GuardedSite:
    """Listen on ``host:port`` with ``runner``'s server behind ``guard``.

    Registers with the runner like aiohttp's own sites, so ``runner.cleanup()``
    stops it. Built on ``web.BaseSite``; falls back to a plain ``web.TCPSite``
    (unguarded, with a warning) if that base class ever changes shape.
    """

    def __new__(cls, runner: web.BaseRunner, host: str, port: int, **kwargs: Any) -> Any:
        from aiohttp import web

        guard: ConnectionGuard | None = kwargs.pop("guard", None)
        if guard is None:
            return web.TCPSite(runner, host, port, **kwargs)
        try:
            return _make_guarded_site(runner, host, port, guard, **kwargs)
        except (AttributeError, TypeError) as exc:  # aiohttp changed BaseSite
            log.warning("connection guard unavailable (%s); serving unguarded", exc)
            return web.TCPSite(runner, host, port, **kwargs)


def _make_guarded_site(
    runner: web.BaseRunner,
    host: str,
    port: int,
    guard: ConnectionGuard,
    *,
    backlog: int = 128,
    reuse_address: bool | None = None,
) -> Any:
    from aiohttp import web

    class _Site(web.BaseSite):
        __slots__ = ("_host", "_port", "_reuse_address", "_guard")

        def __init__(self) -> None:
            super().__init__(runner, backlog=backlog)
            self._host, self._port = host, port
            self._reuse_address = reuse_address
            self._guard = guard

        @property
        def name(self) -> str:
            shown = f"[{self._host}]" if ":" in self._host else self._host
            return f"http://{shown}:{self._port}"

        async def start(self) -> None:
            await super().start()
            server = runner.server
            assert server is not None
            self._server = await asyncio.get_running_loop().create_server(
                self._guard.factory(server),
                self._host,
                self._port,
                backlog=self._backlog,
                reuse_address=self._reuse_address,
            )

    site = _Site()
    if not hasattr(site, "_server") or not hasattr(site, "_backlog"):
        raise AttributeError("web.BaseSite has no _server/_backlog")
    return site
