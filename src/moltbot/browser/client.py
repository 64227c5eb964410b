"""A small synchronous client for the control service, for the CLI (stdlib only).

Errors are translated to the moltbot error tree so the CLI's exit codes say
what happened: nothing listening -> :class:`GatewayUnreachableError` (6),
401 -> :class:`AuthError` (7), 404 -> :class:`NotFoundError` (9),
409/507 -> :class:`ConflictError` (3), 400 -> :class:`UsageError` (2),
anything else -> :class:`MoltbotError` (1). The service's ``hint`` is kept.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from moltbot.errors import (
    AuthError,
    ConflictError,
    GatewayUnreachableError,
    MoltbotError,
    NotFoundError,
    UsageError,
)

_BY_STATUS: dict[int, type[MoltbotError]] = {
    400: UsageError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    421: AuthError,
    507: ConflictError,
}


class ControlClient:
    def __init__(
        self,
        port: int,
        token: str | None,
        *,
        host: str = "127.0.0.1",
        timeout: float = 30.0,
        starting: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.timeout = timeout
        self.starting = starting
        """Seconds to keep trying a port that refuses connections: the gateway runs and
        starts its browser control right after its own port answers."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON body or raise (see module docstring)."""
        params = {k: v for k, v in (query or {}).items() if v is not None}
        target = path + ("?" + urlencode(params) if params else "")
        headers = {"Accept": "application/json", "Host": f"{self.host}:{self.port}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        give_up, pause = time.monotonic() + self.starting, 0.05
        while True:
            try:
                response, raw = self._send(method, target, payload, headers, timeout)
                break
            except ConnectionRefusedError as exc:  # nothing was sent: trying again is safe
                if time.monotonic() + pause > give_up:
                    raise self._nothing_answers(exc, running=bool(self.starting)) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"error": raw.decode("utf-8", "replace")[:500]}
        if response.status >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            hint = data.get("hint") if isinstance(data, dict) else None
            if response.status == 401 and hint is None:
                hint = (
                    "pass --token, set CLAWDBOT_GATEWAY_TOKEN, or check gateway.auth.token "
                    "of this profile"
                )
            kind = _BY_STATUS.get(response.status, MoltbotError)
            raise kind(
                f"browser control answered {response.status}: {message or response.reason}",
                hint=hint,
            )
        return data

    def _nothing_answers(self, exc: OSError, *, running: bool) -> GatewayUnreachableError:
        if running:
            return GatewayUnreachableError(
                f"nothing answers on {self.url} (browser control) although the gateway "
                f"runs: {exc.strerror or exc}",
                hint="see `moltbot status`: browser control may be disabled "
                "(browser.enabled) or have failed to start",
            )
        return GatewayUnreachableError(
            f"nothing answers on {self.url} (browser control): {exc.strerror or exc}",
            hint="start the gateway: moltbot [--profile NAME] gateway",
        )

    def _send(
        self,
        method: str,
        target: str,
        payload: bytes | None,
        headers: dict[str, str],
        timeout: float | None,
    ) -> tuple[http.client.HTTPResponse, bytes]:
        connection = http.client.HTTPConnection(
            self.host, self.port, timeout=timeout or self.timeout
        )
        try:
            connection.request(method, target, body=payload, headers=headers)
            response = connection.getresponse()
            return response, response.read()
        except ConnectionRefusedError:
            raise
        except ConnectionResetError as exc:
            raise self._nothing_answers(exc, running=False) from None
        except TimeoutError:
            raise MoltbotError(
                f"{method} {target.split('?')[0]} on {self.url} timed out after "
                f"{timeout or self.timeout:.0f}s"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise GatewayUnreachableError(f"cannot talk to {self.url}: {exc}") from None
        finally:
            connection.close()


def reachable(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
