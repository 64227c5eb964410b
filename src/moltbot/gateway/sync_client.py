"""The blocking protocol client: a call or two for a command, without asyncio.

:class:`SyncGatewayClient` sends the same handshake and raises the same errors as
:class:`~moltbot.gateway.client.GatewayClient` (both derive from
:class:`~moltbot.gateway.client_base.ClientBase`), over
:class:`~moltbot.gateway.blocking_ws.BlockingWebSocket`. It neither imports asyncio
nor the ``websockets`` library, which made up most of ``moltbot status``'s time::

    with SyncGatewayClient(url, token=token, timeout=5) as client:
        status = client.call("status")

Calls are made one at a time; events that arrive meanwhile are skipped (use the
asyncio client to watch them). Errors, all from :mod:`moltbot.errors`:
:class:`GatewayUnreachableError` (nothing answers, the connection was lost or closed,
no answer within ``timeout``), :class:`AuthError` / :class:`PairingRequired` (the
credentials were refused), :class:`MethodError` (an error frame),
:class:`MoltbotError` (the peer does not speak the gateway protocol).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from moltbot.errors import MethodError, MoltbotError
from moltbot.gateway.blocking_ws import BlockingWebSocket, ConnectionClosed
from moltbot.gateway.client_base import MAX_FRAME_BYTES, ClientBase, decode, request_frame


class SyncGatewayClient(ClientBase):
    """One connection to a gateway, used from code without an event loop. Use ``with``,
    or :meth:`connect` and :meth:`close`."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._ws: BlockingWebSocket | None = None
        self._ids = itertools.count(1)
        self._lost: MoltbotError | None = None

    def __enter__(self) -> SyncGatewayClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> dict[str, Any]:
        """Open the socket and run the handshake; returns the ``hello-ok`` payload. A
        client that fails to connect is closed."""
        started = time.perf_counter()
        deadline = self._deadline(None)
        try:
            self._ws = BlockingWebSocket.open(self.url, deadline=deadline, max_size=MAX_FRAME_BYTES)
        except OSError as exc:  # refused, TLS, not a WebSocket server (HandshakeError)
            raise self._unreachable(exc) from None
        try:
            challenge = self._next_frame(self._deadline(None), handshake=True)
            self._send(self._connect_frame(challenge), self._deadline(None))
            answer = self._next_frame(self._deadline(None), handshake=True)
            if answer.get("type") != "res" or answer.get("id") != "connect":
                raise self._not_a_gateway()
            if not answer.get("ok"):
                raise self._refusal(answer.get("error"))
        except BaseException:
            self.close()
            raise
        self.hello = answer.get("payload") or {}
        self.connect_latency_ms = (time.perf_counter() - started) * 1000
        return self.hello

    def call(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        expect_final: bool = False,
    ) -> Any:
        """The payload of ``method``'s answer; :class:`MethodError` for an error frame.
        ``expect_final`` skips an interim ``{"status": "accepted"}`` answer (``agent``)."""
        if self._lost is not None:
            raise self._lost
        if self._ws is None:
            raise MoltbotError("the gateway client is not connected (call connect() first)")
        request_id = str(next(self._ids))
        deadline = self._deadline(timeout)
        self._send(request_frame(request_id, method, params), deadline)
        while True:
            frame = self._next_frame(deadline)
            if frame.get("type") != "res" or str(frame.get("id")) != request_id:
                continue  # an event, or the late answer of an earlier call that timed out
            payload = frame.get("payload")
            if not frame.get("ok"):
                raise MethodError.from_shape(frame.get("error"), method=method)
            if expect_final and isinstance(payload, dict) and payload.get("status") == "accepted":
                continue
            return payload

    def close(self) -> None:
        """Close the connection (idempotent)."""
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()

    def _deadline(self, timeout: float | None) -> float | None:
        limit = timeout if timeout is not None else self.timeout
        return None if limit is None else time.monotonic() + limit

    def _send(self, frame: dict[str, Any], deadline: float | None) -> None:
        assert self._ws is not None
        try:
            self._ws.send_text(json.dumps(frame), deadline)
        except TimeoutError:
            raise self._fail(self._late()) from None
        except OSError as exc:
            raise self._fail(self._connection_lost(exc)) from None

    def _next_frame(self, deadline: float | None, *, handshake: bool = False) -> dict[str, Any]:
        """The next frame that is a JSON object (others are skipped, as the asyncio
        client does); a frame that is not one during the ``handshake`` means the peer is
        no gateway."""
        assert self._ws is not None
        while True:
            try:
                text = self._ws.recv(deadline)
            except TimeoutError:
                raise self._late() from None
            except ConnectionClosed as exc:
                raise self._fail(self._closed_error(exc.code, exc.reason)) from None
            except OSError as exc:  # reset, or a frame no server may send (ProtocolError)
                raise self._fail(self._connection_lost(exc)) from None
            frame = decode(text)
            if frame is not None:
                return frame
            if handshake:
                raise self._not_a_gateway()

    def _fail(self, error: MoltbotError) -> MoltbotError:
        """Remember why the connection is gone: later calls fail with the same error."""
        self._lost = self._lost or error
        return error


__all__ = ["SyncGatewayClient"]
