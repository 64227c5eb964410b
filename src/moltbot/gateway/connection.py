"""One WebSocket client: its identity after the handshake and its outbound queue.

Outbound frames go through a per-connection queue drained by one writer task,
so a broadcast never waits for a slow client. Memory per client is bounded in
both directions:

- **events**: when a client's backlog (queued bytes plus the socket's unsent
  bytes) exceeds the policy (1.5 MiB), droppable events (tick, presence, ...) are
  skipped for it; any other event cuts it off ("slow consumer") once it is not
  reading (its backlog has not shrunk for 2 s, or it passed the response ceiling);
- **responses** count against the same backlog: the reader stops reading a
  client's socket while its backlog is over the policy or while
  :data:`MAX_INFLIGHT` of its requests await their first answer; a response that
  would push the backlog past :data:`RESPONSE_CEILING` is replaced by a small
  retryable ``UNAVAILABLE`` error (the request is still answered exactly once),
  and a request that starts while half that ceiling is queued is not run at all
  but answered with the same error (no work done for a client that is not reading);
- a reply that cannot be encoded becomes an ``UNAVAILABLE`` error frame for the
  same id, so a request is never left unanswered.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from moltbot.errors import MoltbotError
from moltbot.gateway import protocol

if TYPE_CHECKING:
    from moltbot.gateway.protocol import ClientInfo

log = logging.getLogger(__name__)

MAX_INFLIGHT = 8
"""Requests of one client that may await their first answer before its socket is
no longer read (back-pressure, not an error)."""
RESPONSE_CEILING = 8 * 1024 * 1024
"""Backlog above which a further response is replaced by a retryable error."""
PROGRESS_GRACE_S = 2.0
"""A backlogged client whose backlog did not shrink for this long is not reading."""


class Connection:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        remote: str | None,
        local: bool,
        transport: asyncio.Transport | None = None,
        max_buffered: int = protocol.MAX_BUFFERED_BYTES,
        fast_write: bool = True,
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.fast_write = fast_write and fast_write_supported(ws)
        self.conn_id = str(uuid.uuid4())
        self.remote = remote
        self.local = local
        self.client: ClientInfo | None = None
        self.role = "operator"
        self.scopes: frozenset[str] = frozenset()
        self.device_id: str | None = None
        self.presence_key: str | None = None
        self.max_buffered = max_buffered
        self._queue: deque[bytes] = deque()
        self._buffered = 0
        self._wake = asyncio.Event()
        self._writable = asyncio.Event()
        self._closing = False
        self.inflight = 0
        self.bulky = asyncio.Lock()
        """Held while one of this client's bulky answers is built (see ``method(bulky=)``)."""
        self._progress_at = asyncio.get_running_loop().time()
        self._last_backlog = 0
        self.peak_backlog = 0
        self.replies_dropped = 0
        self._writer = asyncio.create_task(self._drain(), name=f"ws-writer-{self.conn_id[:8]}")

    @property
    def client_id(self) -> str | None:
        return self.client.id if self.client else None

    @property
    def mode(self) -> str | None:
        return self.client.mode if self.client else None

    @property
    def open(self) -> bool:
        return not self._closing and not self.ws.closed

    def has_scope(self, *scopes: str) -> bool:
        return "operator.admin" in self.scopes or any(s in self.scopes for s in scopes)

    @property
    def backlogged(self) -> bool:
        return self._buffered + self._transport_backlog() > self.max_buffered

    def enqueue_event(self, data: bytes, *, drop_if_slow: bool = False) -> bool:
        """Queue a broadcast event. Returns False when it was dropped or the client cut off.

        A client whose backlog exceeds the policy gets no droppable events. Any other
        event cuts it off when it is not reading: nothing of its queue was written for
        :data:`PROGRESS_GRACE_S`, or its backlog passed :data:`RESPONSE_CEILING`. (A client
        busy reading a big answer is not cut off for an event arriving meanwhile.)
        """
        if not self.open:
            return False
        if self.backlogged:
            if drop_if_slow:
                return False
            backlog = self._buffered + self._transport_backlog()
            now = asyncio.get_running_loop().time()
            if backlog < self._last_backlog:  # it is reading, just behind
                self._progress_at = now
            self._last_backlog = backlog
            stalled = now - self._progress_at > PROGRESS_GRACE_S
            if stalled or backlog + len(data) > RESPONSE_CEILING:
                log.warning("dropping slow consumer %s (%d bytes queued)", self.conn_id, backlog)
                self.abort()
                return False
        self._push(data)
        return True

    def send(self, frame: dict[str, Any]) -> bool:
        """Queue a response (or handshake frame). Never silently lost: a reply that cannot
        be encoded, or that would push the backlog past :data:`RESPONSE_CEILING`, is
        replaced by an ``UNAVAILABLE`` error for the same request id."""
        if not self.open:
            return False
        try:
            data = protocol.dumps(frame)
        except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
            if frame.get("type") != "res":
                raise
            log.error("reply to %s could not be encoded: %s", frame.get("id"), exc)
            data = _error_reply(frame, f"the reply could not be encoded: {exc}", retryable=False)
        if frame.get("type") == "res" and len(data) > 512:
            backlog = self._buffered + self._transport_backlog()
            if backlog and backlog + len(data) > RESPONSE_CEILING:
                self.replies_dropped += 1
                data = _error_reply(
                    frame,
                    f"reply of {len(data)} bytes dropped: {backlog} bytes are still queued "
                    "for this client (read your answers, then retry)",
                    retryable=True,
                )
        self._push(data)
        return True

    def _push(self, data: bytes) -> None:
        if not self._queue and self._write_now(data):
            self._progress_at = asyncio.get_running_loop().time()
            return
        self._queue.append(data)
        self._buffered += len(data)
        if self._buffered > self.peak_backlog:
            self.peak_backlog = self._buffered
        self._wake.set()

    def _write_now(self, data: bytes) -> bool:
        """Write a frame synchronously when nothing is queued and the socket has nothing
        unsent: saves the writer task's wake-up on the hot path (see the write-path A/B
        in ``bench/gateway.py``). Uses aiohttp's frame writer, private, so
        :func:`fast_write_supported` checks it once per connection; without it every
        frame takes the queue. A peer that is already gone (its socket closing before
        the reader noticed) is left to the queue too, whose writer stops quietly:
        sending never raises because of one dead client."""
        if not self.fast_write or self._transport_backlog():
            return False
        try:
            self.ws._writer._write_websocket_frame(data, WSMsgType.TEXT, 0)  # type: ignore[union-attr]  # noqa: SLF001
        except ConnectionResetError:
            return False
        return True

    @property
    def over_ceiling(self) -> bool:
        """Whether a further big reply would be dropped (see :meth:`send`): a request
        that starts now is answered at once with the retryable error instead of being run."""
        return self._buffered + self._transport_backlog() > RESPONSE_CEILING // 2

    @property
    def saturated(self) -> bool:
        """Whether the reader should pause: backlog over policy, or too many requests
        still waiting for their first answer."""
        return self.inflight >= MAX_INFLIGHT or self.backlogged

    def started(self) -> None:
        """A request began; call :meth:`answered` once its first answer is queued."""
        self.inflight += 1

    def answered(self) -> None:
        self.inflight -= 1
        if not self._writable.is_set() and not self.saturated:
            self._writable.set()

    async def wait_writable(self) -> None:
        """Back-pressure for the reader: wait while this client is :attr:`saturated`."""
        while self.open and self.saturated:
            self._writable.clear()
            await self._writable.wait()

    async def send_response(
        self, request_id: str, payload: Any = None, error: MoltbotError | None = None
    ) -> None:
        shape = None if error is None else error.error_shape()
        self.send(protocol.response(request_id, payload, shape))

    def _transport_backlog(self) -> int:
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    async def _drain(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    data = self._queue.popleft()
                    self._buffered -= len(data)
                    if self.ws.closed:
                        self._queue.clear()
                        return
                    await self.ws.send_frame(data, WSMsgType.TEXT)
                    self._progress_at = asyncio.get_running_loop().time()
                    if not self._writable.is_set() and not self.saturated:
                        self._writable.set()
        except asyncio.CancelledError:
            return
        except (ConnectionResetError, RuntimeError):  # the peer is gone: nothing more to write
            self._closing = True
            self._queue.clear()
            self._buffered = 0
            self._writable.set()
        except Exception:  # a dead socket must not kill the gateway
            log.debug("writer for %s stopped", self.conn_id, exc_info=True)

    async def flush(self, timeout: float = 1.0) -> None:
        """Wait until the queue is written (or ``timeout``)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._queue and asyncio.get_running_loop().time() < deadline and not self.ws.closed:
            await asyncio.sleep(0.01)

    def abort(self) -> None:
        """Cut the connection at once. For a peer that stopped reading: even a close
        frame (1008 "slow consumer") could not be written to its full socket."""
        if self._closing:
            return
        self._closing = True
        self._queue.clear()
        self._writer.cancel()
        self._writable.set()
        self.abort_transport()

    async def close(self, code: int, reason: str, *, timeout: float = 1.0) -> None:
        """Close with ``code``; a peer that does not complete the close within
        ``timeout`` is cut off."""
        self._closing = True
        self._queue.clear()
        self._writer.cancel()
        closing = asyncio.ensure_future(
            self.ws.close(code=code, message=protocol.truncate_reason(reason).encode())
        )
        done, _ = await asyncio.wait({closing}, timeout=timeout)
        if not done:  # asyncio.wait never blocks on a task that ignores cancellation
            closing.cancel()
            self.abort_transport()
        elif closing.exception() is not None:
            log.debug("close of %s failed: %s", self.conn_id, closing.exception())

    def abort_transport(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def finish(self) -> None:
        self._closing = True
        self._queue.clear()
        self._buffered = 0
        self._writer.cancel()
        self._writable.set()
        try:
            await self._writer
        except (asyncio.CancelledError, Exception):
            pass


def fast_write_supported(ws: web.WebSocketResponse) -> bool:
    """Whether this aiohttp exposes the synchronous frame writer the fast path uses,
    with the signature it expects (``(message, opcode, rsv)``), on a prepared,
    uncompressed WebSocket. Otherwise every frame goes through the queue."""
    writer = getattr(ws, "_writer", None)
    if writer is None or getattr(writer, "compress", 0):
        return False
    return _frame_writer_fits(type(writer))


@functools.cache
def _frame_writer_fits(writer_type: type) -> bool:
    write = getattr(writer_type, "_write_websocket_frame", None)
    if not callable(write):
        return False
    try:
        parameters = list(inspect.signature(write).parameters)
    except (TypeError, ValueError):
        return False
    return parameters == ["self", "message", "opcode", "rsv"]


def _error_reply(frame: dict[str, Any], message: str, *, retryable: bool) -> bytes:
    shape = MoltbotError(message, retryable=retryable).error_shape()
    return protocol.dumps(protocol.response(str(frame.get("id")), None, shape))
