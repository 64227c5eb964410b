"""Hostile clients for a real gateway: raw sockets, so nothing reads on their behalf.

Used by tests/security (bounded outcomes) and bench/security.py (figures). Every
client binds a source address of its own in 127.0.0.0/8 (default ``127.0.0.2``),
so per-address limits hit the attacker and not the well-behaved client on
127.0.0.1 that measures the gateway meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil

from gateway_harness import connect_params

ATTACKER = "127.0.0.2"


def rss(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes."""
    return int(psutil.Process(pid).memory_info().rss)


def frame(payload: bytes, opcode: int = 0x1, *, length: int | None = None) -> bytes:
    """A masked client frame; ``length`` may announce more than ``payload`` holds."""
    size = len(payload) if length is None else length
    head = bytes([0x80 | opcode])
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    mask = os.urandom(4)
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big"
    )
    return head + mask + body


def request_frame(request_id: str, method: str, params: Any = None) -> bytes:
    req: dict[str, Any] = {"type": "req", "id": request_id, "method": method}
    if params is not None:
        req["params"] = params
    return frame(json.dumps(req).encode())


def connect_socket(
    port: int, *, source: str = ATTACKER, rcvbuf: int | None = None
) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def upgrade_request(port: int, *, host: str | None = None, origin: str | None = None) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET / HTTP/1.1",
        f"Host: {host or f'127.0.0.1:{port}'}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin:
        lines.append(f"Origin: {origin}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One unmasked server frame: (opcode, payload)."""

    def exact(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    first, second = exact(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", exact(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", exact(8))[0]
    return first & 0x0F, exact(size)


def open_ws(
    port: int, token: str, *, source: str = ATTACKER, rcvbuf: int | None = None
) -> socket.socket:
    """A raw, authenticated WebSocket (challenge read, ``connect`` answered ok)."""
    sock = connect_socket(port, source=source, rcvbuf=rcvbuf)
    sock.sendall(upgrade_request(port))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("closed during upgrade")
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    read_frame(sock)  # connect.challenge
    sock.sendall(request_frame("connect", "connect", connect_params(token)))
    _, payload = read_frame(sock)
    hello = json.loads(payload)
    assert hello.get("ok"), hello
    return sock


def guess(port: int, token: str, *, source: str) -> dict[str, Any]:
    """One connect attempt with ``token`` on a fresh socket; the connect reply."""
    sock = connect_socket(port, source=source)
    try:
        sock.sendall(upgrade_request(port))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during upgrade")
            head += chunk
        read_frame(sock)  # connect.challenge
        sock.sendall(request_frame("c", "connect", connect_params(token)))
        reply: dict[str, Any] = json.loads(read_frame(sock)[1])
        return reply
    finally:
        sock.close()


@dataclass
class Probe:
    """A well-behaved client on 127.0.0.1 calling ``health`` over its own WebSocket."""

    url: str
    token: str
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0

    async def run(self, stop: asyncio.Event, interval: float = 0.02) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.url) as ws:
                await ws.receive_json(timeout=10)
                params = connect_params(self.token)
                await ws.send_json(
                    {"type": "req", "id": "c", "method": "connect", "params": params}
                )
                assert (await ws.receive_json(timeout=10))["ok"]
                n = 0
                while not stop.is_set():
                    n += 1
                    started = time.perf_counter()
                    await ws.send_json({"type": "req", "id": f"h{n}", "method": "health"})
                    try:
                        while True:
                            reply = await ws.receive_json(timeout=10)
                            if reply.get("id") == f"h{n}":
                                break
                    except (TimeoutError, TypeError):
                        self.failures += 1
                        continue
                    self.latencies_ms.append((time.perf_counter() - started) * 1000)
                    await asyncio.sleep(interval)

    def p99(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


@dataclass
class RssSampler:
    pid: int
    samples: list[int] = field(default_factory=list)

    async def run(self, stop: asyncio.Event, interval: float = 0.05) -> None:
        while not stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.samples.append(rss(self.pid))
            await asyncio.sleep(interval)

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)


async def quiescent(
    pid: int, *, window: float = 0.5, busy: float = 0.25, timeout: float = 120.0
) -> None:
    """Wait until process ``pid`` is idle again: it used less than ``busy`` of a core
    over the last ``window`` seconds. The barrier after an attack whose effect cannot be
    asked for (a client that never reads gets no answer): whatever the attack provoked,
    the gateway has finished doing it, however slow the machine."""
    process = psutil.Process(pid)

    def cpu() -> float:
        times = process.cpu_times()
        return float(times.user + times.system)

    deadline = time.monotonic() + timeout
    before, at = cpu(), time.monotonic()
    while True:
        await asyncio.sleep(window)
        now_cpu, now = cpu(), time.monotonic()
        if (now_cpu - before) / (now - at) < busy:
            return
        if now > deadline:
            raise AssertionError(f"pid {pid} still busy after {timeout:.0f}s")
        before, at = now_cpu, now


@contextlib.contextmanager
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for sock in opened:
            with contextlib.suppress(OSError):
                sock.close()


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closed ``sock`` within ``timeout`` (reads and discards)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False
