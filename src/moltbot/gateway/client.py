"""A small synchronous gateway client for the CLI (protocol v3, token or password).

Uses the ``websockets`` sync client so that `moltbot status` and friends do not
pay for importing aiohttp. Errors are mapped to the moltbot error tree:
:class:`GatewayUnreachableError` (nothing answered), :class:`AuthError`
(credentials refused), :class:`MoltbotError` for a method's error frame.
"""

from __future__ import annotations

import itertools
import json
import platform
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from moltbot import __version__
from moltbot.errors import AuthError, GatewayUnreachableError, MoltbotError


class MethodFailed(MoltbotError):
    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method} failed: {error.get('code')}: {error.get('message')}")
        self.error = error


@dataclass
class GatewayClient:
    url: str
    token: str | None = None
    password: str | None = None
    timeout: float = 5.0
    client_id: str = "cli"
    mode: str = "cli"
    hello: dict[str, Any] = field(default_factory=dict)
    connect_latency_ms: float = 0.0
    _ws: Any = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def __enter__(self) -> GatewayClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> dict[str, Any]:
        from websockets.exceptions import InvalidHandshake, WebSocketException
        from websockets.sync.client import connect

        started = time.perf_counter()
        try:
            self._ws = connect(
                self.url,
                open_timeout=self.timeout,
                close_timeout=0.5,
                max_size=25 * 1024 * 1024,
                compression=None,
            )
        except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
            raise GatewayUnreachableError(f"no gateway at {self.url}: {_reason(exc)}") from None
        challenge = self._receive_until(lambda f: f.get("event") == "connect.challenge")
        del challenge
        auth = {k: v for k, v in (("token", self.token), ("password", self.password)) if v}
        params = {
            "minProtocol": 3,
            "maxProtocol": 3,
            "client": {
                "id": self.client_id,
                "version": __version__,
                "platform": platform.system().lower(),
                "mode": self.mode,
                "displayName": socket.gethostname(),
            },
            "auth": auth,
        }
        response = self._request("connect", params)
        if not response.get("ok"):
            error = response.get("error") or {}
            self.close()
            message = error.get("message", "connect refused")
            if "unauthorized" in message or error.get("code") == "NOT_PAIRED":
                raise AuthError(f"gateway at {self.url} refused the credentials: {message}")
            raise MoltbotError(f"gateway at {self.url} refused the connection: {message}")
        self.hello = response.get("payload") or {}
        self.connect_latency_ms = (time.perf_counter() - started) * 1000
        return self.hello

    def call(self, method: str, params: Any = None) -> Any:
        response = self._request(method, params)
        if not response.get("ok"):
            raise MethodFailed(method, response.get("error") or {})
        return response.get("payload")

    def _request(self, method: str, params: Any) -> dict[str, Any]:
        request_id = str(next(self._ids))
        frame: dict[str, Any] = {"type": "req", "id": request_id, "method": method}
        if params is not None:
            frame["params"] = params
        self._send(frame)
        return self._receive_until(lambda f: f.get("type") == "res" and f.get("id") == request_id)

    def _send(self, frame: dict[str, Any]) -> None:
        from websockets.exceptions import WebSocketException

        try:
            self._ws.send(json.dumps(frame))
        except (OSError, WebSocketException) as exc:
            raise GatewayUnreachableError(
                f"connection to {self.url} lost: {_reason(exc)}"
            ) from None

    def _receive_until(self, match: Any) -> dict[str, Any]:
        from websockets.exceptions import ConnectionClosed, WebSocketException

        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GatewayUnreachableError(f"gateway at {self.url} did not answer in time")
            try:
                text = self._ws.recv(timeout=remaining)
            except TimeoutError:
                raise GatewayUnreachableError(
                    f"gateway at {self.url} did not answer in time"
                ) from None
            except ConnectionClosed as exc:
                reason = exc.rcvd.reason if exc.rcvd else "connection closed"
                code = exc.rcvd.code if exc.rcvd else None
                if code == 1008 and "unauthorized" in reason:
                    raise AuthError(
                        f"gateway at {self.url} refused the credentials: {reason}"
                    ) from None
                raise GatewayUnreachableError(
                    f"gateway at {self.url} closed the connection ({code}: {reason})"
                ) from None
            except (OSError, WebSocketException) as exc:
                raise GatewayUnreachableError(
                    f"connection to {self.url} lost: {_reason(exc)}"
                ) from None
            frame = json.loads(text)
            if isinstance(frame, dict) and match(frame):
                return frame

    def events(self, timeout: float) -> Any:
        """Yield event frames until ``timeout`` seconds pass without one."""
        while True:
            try:
                text = self._ws.recv(timeout=timeout)
            except TimeoutError:
                return
            frame = json.loads(text)
            if frame.get("type") == "event":
                yield frame

    def close(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:
                pass
            self._ws = None


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
