"""Real gateway subprocesses and a protocol-v3 test client, for every test area.

    gw = start_gateway(home, "main")          # runs `python -m moltbot --profile main gateway`
    async with ws_client(gw.url, gw.token) as client:
        hello = client.hello
        payload = await client.call("health")
    gw.stop()                                  # SIGTERM, waits, returns the exit code

Gateways are always stopped by the fixtures that start them (see tests/gateway/conftest.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

# Env that starts a gateway without its sidecars (browser, canvas, channels).
CORE_ONLY = {
    "CLAWDBOT_SKIP_BROWSER_CONTROL_SERVER": "1",
    "CLAWDBOT_SKIP_CANVAS_HOST": "1",
    "CLAWDBOT_SKIP_CHANNELS": "1",
}


_RECENT_BASES: list[int] = []
BLOCK_APART = 120  # two instances of one test never share a port block (base .. base+110)


def free_port_block(span: int = 5, host: str = "127.0.0.1") -> int:
    """A base port whose base..base+span-1 are all free on ``host`` now (not a
    guarantee later), and a whole port block away from the bases handed out just
    before (a test starting two instances must not get bases 20 apart by chance).
    Bases near 65000 are skipped: ports derived from a gateway base must stay valid."""
    for _ in range(500):
        with socket.socket() as probe:
            probe.bind((host, 0))
            base = probe.getsockname()[1]
        if base + max(span, BLOCK_APART) >= 65000:
            continue
        if any(abs(base - recent) < BLOCK_APART for recent in _RECENT_BASES):
            continue
        if all(port_is_free(p, host) for p in range(base, base + span)):
            _RECENT_BASES.append(base)
            del _RECENT_BASES[:-8]
            return base
    raise RuntimeError(f"no {span} consecutive free ports found on {host}")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``port`` on ``host`` can be bound right now."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[str]
    home: Path
    profile: str | None
    state_dir: Path
    port: int
    token: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    async def wait_output(self, needle: str, timeout: float = 15.0, *, count: int = 1) -> None:
        """Wait until the gateway's output contains ``needle`` (``count`` times): a
        barrier, not a delay."""
        deadline = time.monotonic() + timeout
        while self.output().count(needle) < count:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never logged:\n{self.output()[-3000:]}")
            await asyncio.sleep(0.02)

    def runtime(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "gateway.json").read_text(encoding="utf-8"))

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def moltbot_env(home: Path, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MOLTBOT_", "CLAWDBOT_", "OPENCLAW_"))
    }
    env.update(HOME=str(home), NO_COLOR="1", PYTHONUNBUFFERED="1")
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def launch_gateway(
    home: Path,
    profile: str | None = None,
    *,
    port: int | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str | None] | None = None,
    log_name: str | None = None,
) -> tuple[subprocess.Popen[str], Path]:
    """Start `moltbot [--profile P] gateway ...` without waiting for it."""
    command = [sys.executable, "-m", "moltbot"]
    if profile:
        command += ["--profile", profile]
    command += ["gateway"]
    if port is not None:
        command += ["--port", str(port)]
    command += list(args)
    log_path = home / f"{log_name or 'gateway-' + (profile or 'default')}-{time.monotonic_ns()}.log"
    handle = log_path.open("w")
    proc = subprocess.Popen(
        command,
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
        env=moltbot_env(home, env),
        cwd=home,
        start_new_session=True,
    )
    handle.close()
    return proc, log_path


def state_dir_for(home: Path, profile: str | None, env: Mapping[str, str | None] | None) -> Path:
    for prefix in ("MOLTBOT_", "CLAWDBOT_", "OPENCLAW_"):
        value = (env or {}).get(prefix + "STATE_DIR")
        if value:
            return Path(value).expanduser()
    return home / (f".clawdbot-{profile}" if profile and profile != "default" else ".clawdbot")


def start_gateway(
    home: Path,
    profile: str | None = "main",
    *,
    port: int | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str | None] | None = None,
    timeout: float = 30.0,
    port_flag: bool = True,
) -> GatewayProcess:
    """Start a gateway and wait until it answers /health. Raises with its output on failure.

    With ``port_flag=False`` no ``--port`` is passed: the gateway uses its configured port,
    which ``port`` must then name (the one to wait for)."""
    port = port or free_port_block()
    flag = port if port_flag else None
    proc, log_path = launch_gateway(home, profile, port=flag, args=args, env=env)
    state_dir = state_dir_for(home, profile, env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited {proc.returncode}:\n{log_path.read_text()}")
        runtime = state_dir / "gateway.json"
        if runtime.exists() and _health_ok(port):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError(f"gateway did not come up:\n{log_path.read_text()}")
    config_path = Path(json.loads(runtime.read_text())["configPath"])
    token = json.loads(config_path.read_text())["gateway"]["auth"]["token"]
    return GatewayProcess(
        proc, home, profile, state_dir, port, token, log_path, dict(moltbot_env(home, env))
    )


def _health_ok(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5) as response:
            return response.status == 200
    except OSError:
        return False


def near_misses(secret: str) -> list[str]:
    """Wrong secrets that a broken comparison would accept: one character short, one
    too long, only the first 8 characters right, and a different case."""
    return [
        secret[:-1],
        secret + "x",
        secret[:8] + ("x" if secret[8:9] != "x" else "y") * max(len(secret) - 8, 1),
        secret.swapcase() if secret.swapcase() != secret else secret[:-1] + "!",
    ]


def connect_params(
    token: str | None = None, *, client_id: str = "test", mode: str = "test", **extra: Any
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "minProtocol": 3,
        "maxProtocol": 3,
        "client": {"id": client_id, "version": "1.0", "platform": "test", "mode": mode},
    }
    if token is not None:
        params["auth"] = {"token": token}
    params.update(extra)
    return params


def signed_connect_params(
    token: str,
    nonce: str | None,
    *,
    key: Any = None,
    tamper: bool = False,
    scopes: list[str] | None = None,
    role: str = "operator",
) -> dict[str, Any]:
    """Connect params with an Ed25519 device identity signed over ``nonce``
    (upstream's v2 payload; v1 without a nonce) for ``role``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = key or Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    device_id = hashlib.sha256(raw).hexdigest()
    signed_at = int(time.time() * 1000)
    scopes = scopes if scopes is not None else ["operator.read"]
    parts = [device_id, "test", "test", role, ",".join(scopes), str(signed_at), token]
    payload = "|".join(["v2", *parts, nonce] if nonce else ["v1", *parts])
    signature = key.sign(payload.encode())
    if tamper:
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    device = {
        "id": device_id,
        "publicKey": b64(raw),
        "signature": b64(signature),
        "signedAt": signed_at,
    }
    if nonce:
        device["nonce"] = nonce
    roles = {"role": role} if role != "operator" else {}  # operator: the server's default
    return connect_params(token, scopes=scopes, device=device, **roles)


class WsClient:
    """A protocol-v3 client on aiohttp, keeping every event it receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.hello: dict[str, Any] = {}
        self.challenge: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._extra: dict[str, list[dict[str, Any]]] = {}
        self._event_waiters: list[tuple[Any, asyncio.Future[dict[str, Any]]]] = []
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.last_request_id = ""

    async def handshake(self, params: dict[str, Any]) -> dict[str, Any]:
        message = await self._frame()
        assert message["event"] == "connect.challenge", message
        self.challenge = message["payload"]
        await self.ws.send_json(
            {"type": "req", "id": "connect", "method": "connect", "params": params}
        )
        response = await self._frame()
        if not response.get("ok"):
            raise ConnectRefused(response)
        self.hello = response["payload"]
        self._reader = asyncio.create_task(self._read())
        return self.hello

    async def _frame(self) -> dict[str, Any]:
        """The next handshake frame. A server that closes instead (a gateway stopping or
        restarting closes with 1012) raises ConnectionError, as a refused connect does."""
        message = await self.ws.receive(timeout=10)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(
                f"closed during the handshake: {message.type.name} {message.data}"
            )
        frame: dict[str, Any] = json.loads(message.data)
        return frame

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                if frame.get("type") == "res":
                    future = self._pending.pop(frame["id"], None)
                    if future and not future.done():
                        future.set_result(frame)
                    else:
                        self._extra.setdefault(frame["id"], []).append(frame)
                elif frame.get("type") == "event":
                    self.events.append(frame)
                    for match, waiter in list(self._event_waiters):
                        if not waiter.done() and match(frame):
                            waiter.set_result(frame)
        finally:
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("closed"))

    async def request(
        self, method: str, params: Any = None, *, timeout: float = 10
    ) -> dict[str, Any]:
        request_id = self.last_request_id = f"r{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        frame: dict[str, Any] = {"type": "req", "id": request_id, "method": method}
        if params is not None:
            frame["params"] = params
        await self.ws.send_json(frame)
        return await asyncio.wait_for(future, timeout)

    async def call(self, method: str, params: Any = None, *, timeout: float = 10) -> Any:
        frame = await self.request(method, params, timeout=timeout)
        if not frame["ok"]:
            raise MethodFailed(frame["error"])
        return frame.get("payload")

    async def wait_event(self, match: Any, timeout: float = 10) -> dict[str, Any]:
        for frame in self.events:
            if match(frame):
                return frame
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._event_waiters.append((match, future))
        return await asyncio.wait_for(future, timeout)

    def second_response(self, request_id: str) -> list[dict[str, Any]]:
        return self._extra.get(request_id, [])


class ConnectRefused(Exception):
    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__(response.get("error", {}).get("message"))
        self.response = response


class MethodFailed(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error


@contextlib.asynccontextmanager
async def ws_client(url: str, token: str | None, **params: Any) -> AsyncIterator[WsClient]:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, max_msg_size=0) as ws:
            client = WsClient(ws)
            await client.handshake(connect_params(token, **params))
            try:
                yield client
            finally:
                if client._reader:
                    client._reader.cancel()
