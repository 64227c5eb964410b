"""The protocol client (v3): the one way moltbot talks to a gateway.

:class:`GatewayClient` is asynchronous (streams, events);
:class:`~moltbot.gateway.sync_client.SyncGatewayClient` is its blocking sibling for
commands that make a call or two (no asyncio to import). Both derive from
:class:`~moltbot.gateway.client_base.ClientBase`: the same handshake, the same errors::

    async with GatewayClient(url, token=token) as client:
        health = await client.call("health")
        stream = client.stream("agent", {"message": "hi", "idempotencyKey": key})
        async for event in stream:        # the events that arrive until the answer
            print(event.name, event.payload)
        result = stream.result            # the final answer (an ``accepted`` one is skipped)

    with SyncGatewayClient(url, token=token) as client:
        status = client.call("status")

It speaks through ``websockets``' asyncio client rather than aiohttp, so that a CLI
command does not pay for importing aiohttp. One client is one connection, made
directly (proxy variables are not used): the handshake (challenge, ``connect`` with
token or password) runs in :meth:`GatewayClient.connect`, then a reader task routes
answers to their requests and events to the streams and iterators waiting for them.

Errors, all from :mod:`moltbot.errors`:

- :class:`GatewayUnreachableError`: nothing answered at the URL, the connection was
  lost, or an answer did not come within ``timeout`` seconds;
- :class:`AuthError`: the gateway refused the credentials
  (:class:`PairingRequired`: this device must be approved first);
- :class:`MethodError`: a request was answered with an error frame (``code``,
  ``details``, ``retryable``, ``retry_after_ms``; the CLI prints
  ``<method> failed: <code>: <message>``);
- :class:`MoltbotError`: the peer does not speak the gateway protocol.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from moltbot.errors import GatewayUnreachableError, MethodError, MoltbotError
from moltbot.gateway.client_base import (
    MAX_FRAME_BYTES,
    ClientBase,
    Event,
    decode,
    request_frame,
)

_CLOSED = object()


class GatewayClient(ClientBase):
    """One connection to a gateway. Use ``async with``, or :meth:`connect` and
    :meth:`close`. ``timeout`` bounds the connection, the handshake and every
    :meth:`call` (a call may pass its own; ``None`` waits as long as it takes)."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Queue[Any]] = {}
        self._listeners: set[asyncio.Queue[Any]] = set()
        self._lost: MoltbotError | None = None

    async def __aenter__(self) -> GatewayClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # connection ---------------------------------------------------------------

    async def connect(self) -> dict[str, Any]:
        """Open the socket and run the handshake; returns the ``hello-ok`` payload."""
        from websockets.exceptions import InvalidHandshake, WebSocketException

        started = time.perf_counter()
        try:
            self._ws = await _direct_connect()(
                self.url,
                open_timeout=self.timeout,
                close_timeout=0.5,
                max_size=MAX_FRAME_BYTES,
                compression=None,
                proxy=None,  # direct, as the blocking client: a token never reaches a proxy
            )
        except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
            raise self._unreachable(exc) from None
        try:
            challenge = await self._handshake_frame()
            await self._send(self._connect_frame(challenge))
            answer = await self._handshake_frame()
        except BaseException:
            await self.close()
            raise
        if not answer.get("ok"):
            await self.close()
            raise self._refusal(answer.get("error"))
        self.hello = answer.get("payload") or {}
        self.connect_latency_ms = (time.perf_counter() - started) * 1000
        self._reader = asyncio.create_task(self._read(), name="gateway-client-reader")
        return self.hello

    async def _handshake_frame(self) -> dict[str, Any]:
        from websockets.exceptions import ConnectionClosed, WebSocketException

        try:
            async with asyncio.timeout(self.timeout):
                text = await self._ws.recv()
        except TimeoutError:
            raise self._late() from None
        except ConnectionClosed as exc:
            raise self._closed(exc) from None
        except (OSError, WebSocketException) as exc:
            raise self._connection_lost(exc) from None
        frame = decode(text)
        if frame is None:
            raise self._not_a_gateway()
        return frame

    def _closed(self, exc: Any) -> MoltbotError:
        """The error for websockets' ``ConnectionClosed``."""
        if exc.rcvd is None:
            return self._closed_error(None, None)
        return self._closed_error(exc.rcvd.code, exc.rcvd.reason)

    async def close(self) -> None:
        """Close the connection (idempotent); requests still waiting fail."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                await ws.close()
            except Exception:  # closing a dead socket: nothing left to do
                pass
        self._fail_all(GatewayUnreachableError(f"connection to {self.url} closed"))

    # requests -----------------------------------------------------------------

    async def request(
        self, method: str, params: Any = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send one request and return its first answer as the raw ``res`` frame."""
        request_id, queue = await self._start(method, params, events=False)
        try:
            return await self._wait(queue, self._deadline(timeout))  # type: ignore[no-any-return]
        finally:
            self._pending.pop(request_id, None)

    async def call(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        expect_final: bool = False,
    ) -> Any:
        """The payload of ``method``'s answer; :class:`MethodError` for an error frame.
        ``expect_final`` skips an interim ``{"status": "accepted"}`` answer (``agent``)."""
        stream = self.stream(method, params, timeout=timeout, expect_final=expect_final)
        async for _event in stream:
            pass
        return stream.result

    def stream(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        expect_final: bool = True,
    ) -> CallStream:
        """Send ``method`` when iterated; yields every :class:`Event` that arrives until
        its final answer, whose payload is then :attr:`CallStream.result`."""
        return CallStream(self, method, params, timeout, expect_final)

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a request without waiting for its answer (e.g. an abort while exiting)."""
        if self._ws is not None and self._lost is None:
            await self._send(request_frame(f"n{next(self._ids)}", method, params))

    def events(self) -> AsyncIterator[Event]:
        """Every event from this call on (call it before :meth:`connect` to see the events
        sent right after ``hello-ok``), until the connection closes."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._listeners.add(queue)
        return self._drain(queue)

    async def _drain(self, queue: asyncio.Queue[Any]) -> AsyncIterator[Event]:
        try:
            while True:
                item = await queue.get()
                if item is _CLOSED:
                    return
                yield item
        finally:
            self._listeners.discard(queue)

    async def _start(
        self, method: str, params: Any, *, events: bool
    ) -> tuple[str, asyncio.Queue[Any]]:
        if self._lost is not None:
            raise self._lost
        if self._ws is None:
            raise MoltbotError("the gateway client is not connected (call connect() first)")
        request_id = str(next(self._ids))
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._pending[request_id] = queue
        if events:
            self._listeners.add(queue)
        try:
            await self._send(request_frame(request_id, method, params))
        except BaseException:
            self._pending.pop(request_id, None)
            self._listeners.discard(queue)
            raise
        return request_id, queue

    async def _send(self, frame: dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed, WebSocketException

        try:
            await self._ws.send(json.dumps(frame))
        except ConnectionClosed as exc:
            raise self._lost or self._closed(exc) from None
        except (OSError, WebSocketException) as exc:
            raise self._connection_lost(exc) from None

    def _deadline(self, timeout: float | None) -> float | None:
        limit = timeout if timeout is not None else self.timeout
        return None if limit is None else asyncio.get_running_loop().time() + limit

    async def _wait(self, queue: asyncio.Queue[Any], deadline: float | None) -> Any:
        try:
            async with asyncio.timeout_at(deadline):
                item = await queue.get()
        except TimeoutError:
            raise self._late() from None
        if isinstance(item, MoltbotError):
            raise item
        return item

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed, WebSocketException

        lost: MoltbotError
        try:
            async for text in self._ws:
                frame = decode(text)
                if frame is None:
                    continue
                if frame.get("type") == "res":
                    queue = self._pending.get(str(frame.get("id")))
                    if queue is not None:
                        queue.put_nowait(frame)
                elif frame.get("type") == "event" and isinstance(frame.get("event"), str):
                    event = Event(
                        frame["event"],
                        frame.get("payload"),
                        frame.get("seq"),
                        frame.get("stateVersion"),
                    )
                    for listener in list(self._listeners):
                        listener.put_nowait(event)
            code, reason = self._ws.close_code, self._ws.close_reason
            lost = GatewayUnreachableError(
                f"gateway at {self.url} closed the connection ({code}: {reason or 'closed'})"
            )
        except ConnectionClosed as exc:
            lost = self._closed(exc)
        except (OSError, WebSocketException) as exc:
            lost = self._connection_lost(exc)
        self._fail_all(lost)

    def _fail_all(self, error: MoltbotError) -> None:
        if self._lost is None:
            self._lost = error
        for queue in self._pending.values():
            queue.put_nowait(error)
        for listener in self._listeners:
            listener.put_nowait(_CLOSED)


class CallStream:
    """One request and the events that arrive until its final answer (see
    :meth:`GatewayClient.stream`). Iterate it once; then read :attr:`result`."""

    def __init__(
        self,
        client: GatewayClient,
        method: str,
        params: Any,
        timeout: float | None,
        expect_final: bool,
    ) -> None:
        self.client = client
        self.method = method
        self.params = params
        self.timeout = timeout
        self.expect_final = expect_final
        self.request_id: str | None = None
        self._result: Any = None
        self._done = False

    @property
    def result(self) -> Any:
        """The final answer's payload (after iterating to the end)."""
        if not self._done:
            raise MoltbotError(f"{self.method}: iterate the stream before reading its result")
        return self._result

    async def __aiter__(self) -> AsyncIterator[Event]:
        client = self.client
        self.request_id, queue = await client._start(self.method, self.params, events=True)
        deadline = client._deadline(self.timeout)
        try:
            while True:
                item = await client._wait(queue, deadline)
                if isinstance(item, Event):
                    yield item
                    continue
                if item is _CLOSED:
                    continue  # the pending queue gets the error itself
                payload = item.get("payload")
                if not item.get("ok"):
                    raise MethodError.from_shape(item.get("error"), method=self.method)
                if (
                    self.expect_final
                    and isinstance(payload, dict)
                    and payload.get("status") == "accepted"
                ):
                    continue
                self._result, self._done = payload, True
                return
        finally:
            client._pending.pop(self.request_id, None)
            client._listeners.discard(queue)


@functools.cache
def _direct_connect() -> Any:
    """websockets' ``connect`` refusing redirects, as the blocking client does: the
    connect frame carries the token, so it goes only to the URL the user gave (a
    redirect is reported as the HTTP status it is)."""
    from websockets.asyncio.client import connect

    class DirectConnect(connect):
        def process_redirect(self, exc: Exception) -> Exception | str:
            return exc

    return DirectConnect


__all__ = ["CallStream", "Event", "GatewayClient"]
