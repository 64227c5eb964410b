"""The protocol client (v3): the one way moltbot's CLI talks to a gateway.

:class:`GatewayClient` is asynchronous; :class:`SyncGatewayClient` is a thin
facade that runs it on a private event loop for commands that make a call or two::

    async with GatewayClient(url, token=token) as client:
        health = await client.call("health")
        stream = client.stream("agent", {"message": "hi", "idempotencyKey": key})
        async for event in stream:        # the events that arrive until the answer
            print(event.name, event.payload)
        result = stream.result            # the final answer (an ``accepted`` one is skipped)

    with SyncGatewayClient(url, token=token) as client:
        status = client.call("status")

It speaks through ``websockets``' asyncio client rather than aiohttp, so that
``moltbot status`` does not pay for importing aiohttp. One client is one
connection: the handshake (challenge, ``connect`` with token or password) runs in
:meth:`GatewayClient.connect`, then a reader task routes answers to their requests
and events to the streams and iterators waiting for them.

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
import itertools
import json
import platform
import socket
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from moltbot import __version__
from moltbot.errors import (
    NOT_PAIRED,
    AuthError,
    GatewayUnreachableError,
    MethodError,
    MoltbotError,
    PairingRequired,
)

if TYPE_CHECKING:
    from moltbot.gateway.target import Target

T = TypeVar("T")

PROTOCOL_VERSION = 3
MAX_FRAME_BYTES = 25 * 1024 * 1024
_CLOSED = object()


class DeviceSigner(Protocol):
    """Signs a connect (:class:`moltbot.devices.identity.DeviceIdentity`)."""

    def sign(self, proof_fields: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Event:
    """One ``event`` frame: its name, payload and sequence number."""

    name: str
    payload: Any
    seq: int | None = None
    state_version: dict[str, int] | None = None


class GatewayClient:
    """One connection to a gateway. Use ``async with``, or :meth:`connect` and
    :meth:`close`. ``timeout`` bounds the connection, the handshake and every
    :meth:`call` (a call may pass its own; ``None`` waits as long as it takes)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        password: str | None = None,
        timeout: float | None = 5.0,
        client_id: str = "cli",
        mode: str = "cli",
        scopes: list[str] | None = None,
        role: str | None = None,
        identity: DeviceSigner | None = None,
        display_name: str | None = None,
        instance_id: str | None = None,
        caps: list[str] | None = None,
        commands: list[str] | None = None,
        path_env: str | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.password = password
        self.timeout = timeout
        self.client_id = client_id
        self.mode = mode
        self.scopes = scopes
        self.role = role
        self.identity = identity
        """Signs the connect with this device's key (the node host); else no device."""
        self.display_name = display_name or socket.gethostname()
        self.instance_id = instance_id
        self.caps = caps
        self.commands = commands
        self.path_env = path_env
        self.hello: dict[str, Any] = {}
        """The ``hello-ok`` payload (server, features, snapshot, policy)."""
        self.connect_latency_ms = 0.0
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Queue[Any]] = {}
        self._listeners: set[asyncio.Queue[Any]] = set()
        self._lost: MoltbotError | None = None

    @classmethod
    def for_target(cls, target: Target, timeout: float | None = 5.0) -> GatewayClient:
        """A client for a resolved target (its URL, token and password)."""
        return cls(target.url, token=target.token, password=target.password, timeout=timeout)

    async def __aenter__(self) -> GatewayClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # connection ---------------------------------------------------------------

    async def connect(self) -> dict[str, Any]:
        """Open the socket and run the handshake; returns the ``hello-ok`` payload."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, WebSocketException

        started = time.perf_counter()
        try:
            self._ws = await connect(
                self.url,
                open_timeout=self.timeout,
                close_timeout=0.5,
                max_size=MAX_FRAME_BYTES,
                compression=None,
            )
        except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
            raise GatewayUnreachableError(f"no gateway at {self.url}: {_reason(exc)}") from None
        try:
            challenge = await self._handshake_frame()
            if challenge.get("event") != "connect.challenge":
                raise MoltbotError(f"{self.url} does not speak the gateway protocol")
            nonce = (challenge.get("payload") or {}).get("nonce")
            await self._send(self._frame("connect", "connect", self._params(nonce)))
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

    def _params(self, nonce: str | None = None) -> dict[str, Any]:
        client: dict[str, Any] = {
            "id": self.client_id,
            "version": __version__,
            "platform": platform.system().lower() or "unknown",
            "mode": self.mode,
            "displayName": self.display_name,
        }
        if self.instance_id:
            client["instanceId"] = self.instance_id
        params: dict[str, Any] = {
            "minProtocol": PROTOCOL_VERSION,
            "maxProtocol": PROTOCOL_VERSION,
            "client": client,
            "auth": {k: v for k, v in (("token", self.token), ("password", self.password)) if v},
        }
        if self.scopes is not None:
            params["scopes"] = self.scopes
        for key, value in (
            ("role", self.role),
            ("caps", self.caps),
            ("commands", self.commands),
            ("pathEnv", self.path_env),
        ):
            if value is not None:
                params[key] = value
        if self.identity is not None:
            params["device"] = self.identity.sign(
                {
                    "client_id": self.client_id,
                    "client_mode": self.mode,
                    "role": self.role or "operator",
                    "scopes": self.scopes or [],
                    "token": self.token,
                    "nonce": nonce if isinstance(nonce, str) else None,
                }
            )
        return params

    def _refusal(self, error: Any) -> MoltbotError:
        refused = MethodError.from_shape(error)
        where = f"gateway at {self.url}"
        if refused.code == NOT_PAIRED and not (self.token or self.password):
            return AuthError(
                f"{where} refused the connection: no token or password was given",
                hint="pass --token (or --password), or set MOLTBOT_GATEWAY_TOKEN",
            )
        if refused.code == NOT_PAIRED:
            return PairingRequired(
                f"{where} requires pairing: {refused.reason}", details=refused.details
            )
        if refused.reason.startswith("unauthorized"):
            return AuthError(f"{where} refused the credentials: {refused.reason}")
        return MethodError(
            refused.code,
            f"{where} refused the connection: {refused.reason}",
            details=refused.details,
        )

    async def _handshake_frame(self) -> dict[str, Any]:
        from websockets.exceptions import ConnectionClosed, WebSocketException

        try:
            async with asyncio.timeout(self.timeout):
                text = await self._ws.recv()
        except TimeoutError:
            raise GatewayUnreachableError(f"gateway at {self.url} did not answer in time") from None
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from None
        except (OSError, WebSocketException) as exc:
            raise GatewayUnreachableError(
                f"connection to {self.url} lost: {_reason(exc)}"
            ) from None
        frame = _decode(text)
        if frame is None:
            raise MoltbotError(f"{self.url} does not speak the gateway protocol")
        return frame

    def _closed_error(self, exc: Any) -> MoltbotError:
        reason = exc.rcvd.reason if exc.rcvd else "connection closed"
        code = exc.rcvd.code if exc.rcvd else None
        if code == 1008 and "unauthorized" in reason:
            return AuthError(f"gateway at {self.url} refused the credentials: {reason}")
        return GatewayUnreachableError(
            f"gateway at {self.url} closed the connection ({code}: {reason})"
        )

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
            await self._send(self._frame(f"n{next(self._ids)}", method, params))

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
            await self._send(self._frame(request_id, method, params))
        except BaseException:
            self._pending.pop(request_id, None)
            self._listeners.discard(queue)
            raise
        return request_id, queue

    @staticmethod
    def _frame(request_id: str, method: str, params: Any) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "req", "id": request_id, "method": method}
        if params is not None:
            frame["params"] = params
        return frame

    async def _send(self, frame: dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed, WebSocketException

        try:
            await self._ws.send(json.dumps(frame))
        except ConnectionClosed as exc:
            raise self._lost or self._closed_error(exc) from None
        except (OSError, WebSocketException) as exc:
            raise GatewayUnreachableError(
                f"connection to {self.url} lost: {_reason(exc)}"
            ) from None

    def _deadline(self, timeout: float | None) -> float | None:
        limit = timeout if timeout is not None else self.timeout
        return None if limit is None else asyncio.get_running_loop().time() + limit

    async def _wait(self, queue: asyncio.Queue[Any], deadline: float | None) -> Any:
        try:
            async with asyncio.timeout_at(deadline):
                item = await queue.get()
        except TimeoutError:
            raise GatewayUnreachableError(f"gateway at {self.url} did not answer in time") from None
        if isinstance(item, MoltbotError):
            raise item
        return item

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed, WebSocketException

        lost: MoltbotError
        try:
            async for text in self._ws:
                frame = _decode(text)
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
            lost = self._closed_error(exc)
        except (OSError, WebSocketException) as exc:
            lost = GatewayUnreachableError(f"connection to {self.url} lost: {_reason(exc)}")
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


class SyncGatewayClient:
    """:class:`GatewayClient` for code without an event loop: every method runs the
    async one to completion on this client's private loop. Use ``with``."""

    def __init__(self, url: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = GatewayClient(url, **options)

    @classmethod
    def for_target(cls, target: Target, timeout: float | None = 5.0) -> SyncGatewayClient:
        return cls(target.url, token=target.token, password=target.password, timeout=timeout)

    def __enter__(self) -> SyncGatewayClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def hello(self) -> dict[str, Any]:
        return self._client.hello

    @property
    def connect_latency_ms(self) -> float:
        return self._client.connect_latency_ms

    def connect(self) -> dict[str, Any]:
        """Connect (see :meth:`GatewayClient.connect`); a client that fails to is closed."""
        try:
            return self._run(self._client.connect())
        except BaseException:
            self.close()
            raise

    def call(self, method: str, params: Any = None, **options: Any) -> Any:
        return self._run(self._client.call(method, params, **options))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.close())
        finally:
            self._loop.close()

    def _run(self, work: Awaitable[T]) -> T:
        return self._loop.run_until_complete(work)


def _decode(text: Any) -> dict[str, Any] | None:
    try:
        frame = json.loads(text)
    except (TypeError, ValueError):
        return None
    return frame if isinstance(frame, dict) else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """A fast TCP check so a down gateway is reported at once, not after a timeout."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


__all__ = ["CallStream", "Event", "GatewayClient", "SyncGatewayClient", "port_open"]
