"""The blocking protocol client (gateway/sync_client.py over gateway/blocking_ws.py):
the same handshake and errors as the asyncio client, against a real gateway, peers
that misbehave on purpose, and a raw socket peer that sends the frames RFC 6455
allows (fragments, pings) and some it forbids."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from tests.gateway.test_client import handshake, peer

from gateway_harness import GatewayProcess, free_port_block
from moltbot.errors import (
    NOT_PAIRED,
    AuthError,
    GatewayUnreachableError,
    MethodError,
    MoltbotError,
    PairingRequired,
)
from moltbot.gateway.sync_client import SyncGatewayClient


def test_calls_and_errors_against_a_real_gateway(gateway: GatewayProcess) -> None:
    with SyncGatewayClient(gateway.url, token=gateway.token, timeout=10) as client:
        assert client.hello["type"] == "hello-ok" and client.connect_latency_ms > 0
        assert client.call("status")["instance"]["pid"] == gateway.pid
        with pytest.raises(MethodError, match="unknown method: nope") as unknown:
            client.call("nope")
        assert unknown.value.message.startswith("nope failed: INVALID_REQUEST")
        assert client.call("health")["ok"] is True  # the connection survives a refusal
        big = client.call("sessions.list", {"limit": 1})  # answers of any size
        assert "sessions" in big
    with pytest.raises(AuthError, match="refused the credentials: unauthorized") as refused:
        SyncGatewayClient(gateway.url, token=gateway.token + "x").connect()
    assert refused.value.exit_code == 7
    with pytest.raises(AuthError, match="no token or password was given"):
        SyncGatewayClient(gateway.url).connect()
    port = free_port_block(1)
    with pytest.raises(GatewayUnreachableError, match="connection refused") as down:
        SyncGatewayClient(f"ws://127.0.0.1:{port}", token="t").connect()
    assert down.value.exit_code == 6
    with pytest.raises(MoltbotError, match="not connected"):
        SyncGatewayClient(gateway.url).call("health")


def test_a_closing_gateway_fails_the_call_and_later_ones(gateway: GatewayProcess) -> None:
    import signal

    client = SyncGatewayClient(gateway.url, token=gateway.token, timeout=10)
    client.connect()
    try:
        assert client.call("health")["ok"] is True
        gateway.signal(signal.SIGTERM)
        with pytest.raises(GatewayUnreachableError, match="1012") as first:
            while True:  # events (shutdown) are skipped; the close ends the call
                client.call("health")
        with pytest.raises(GatewayUnreachableError) as later:
            client.call("health")
        assert later.value.message == first.value.message
    finally:
        client.close()
    assert gateway.proc.wait(10) == 0


# Peers that misbehave on purpose (aiohttp; the blocking client runs in a thread) -------


async def test_a_peer_that_never_answers_times_out_and_the_connection_stays_usable() -> None:
    async def answers_only_ping(ws: web.WebSocketResponse) -> None:
        await handshake(ws)
        received = []
        async for message in ws:
            request = json.loads(message.data)
            received.append(request["method"])
            if request["method"] == "ping":  # the barrier: what came before it
                await ws.send_json(
                    {"type": "res", "id": request["id"], "ok": True, "payload": received}
                )

    def use(url: str) -> list[str]:
        with SyncGatewayClient(url, timeout=0.2) as client:
            assert client.hello == {"p": 1}
            with pytest.raises(GatewayUnreachableError, match="did not answer in time"):
                client.call("health")
            return client.call("ping", timeout=10)  # type: ignore[no-any-return]

    async with peer(answers_only_ping) as url:
        assert await asyncio.to_thread(use, url) == ["health", "ping"]


async def test_interim_answers_and_events_are_skipped() -> None:
    async def two_stage(ws: web.WebSocketResponse) -> None:
        await handshake(ws)
        async for message in ws:
            request = json.loads(message.data)
            rid, run = request["id"], request["params"]["run"]
            accepted = {"runId": run, "status": "accepted"}
            await ws.send_json({"type": "res", "id": rid, "ok": True, "payload": accepted})
            await ws.send_json({"type": "event", "event": "agent", "payload": {"runId": run}})
            await ws.send_str("not json: skipped after the handshake")
            final = {"runId": run, "status": "ok"}
            await ws.send_json({"type": "res", "id": rid, "ok": True, "payload": final})

    def use(url: str) -> tuple[object, object]:
        with SyncGatewayClient(url, timeout=10) as client:
            first = client.call("agent", {"run": "a"})
            # run a's final answer arrives before run b's: it is not taken for b's
            return first, client.call("agent", {"run": "b"}, expect_final=True)

    async with peer(two_stage) as url:
        first, final = await asyncio.to_thread(use, url)
    assert first == {"runId": "a", "status": "accepted"}
    assert final == {"runId": "b", "status": "ok"}


async def test_a_peer_that_closes_mid_call_fails_the_call() -> None:
    async def closes(ws: web.WebSocketResponse) -> None:
        await handshake(ws)
        await ws.receive()
        await ws.close(code=1012, message=b"service restart")

    def use(url: str) -> None:
        with SyncGatewayClient(url, timeout=None) as client:
            client.call("health")

    async with peer(closes) as url:
        with pytest.raises(GatewayUnreachableError, match=r"1012: service restart"):
            await asyncio.to_thread(use, url)


async def test_a_peer_that_is_not_a_gateway_is_named() -> None:
    async def chatty(ws: web.WebSocketResponse) -> None:
        await ws.send_str("hello, I am an echo server")
        await ws.receive()

    async with peer(chatty) as url:
        with pytest.raises(MoltbotError, match="does not speak the gateway protocol"):
            await asyncio.to_thread(SyncGatewayClient(url).connect)


async def test_pairing_and_other_refusals_are_told_apart() -> None:
    async def refuses(ws: web.WebSocketResponse) -> None:
        await ws.send_json({"type": "event", "event": "connect.challenge", "payload": {}})
        connect = await ws.receive_json()
        error = {"code": NOT_PAIRED, "message": "pairing required", "details": {"requestId": "q"}}
        await ws.send_json({"type": "res", "id": connect["id"], "ok": False, "error": error})
        await ws.close(code=1008, message=b"pairing required")

    async with peer(refuses) as url:
        with pytest.raises(PairingRequired, match="requires pairing") as caught:
            await asyncio.to_thread(SyncGatewayClient(url, token="t").connect)
    assert caught.value.details == {"requestId": "q"} and caught.value.exit_code == 7


async def test_an_http_server_that_refuses_the_upgrade() -> None:
    async def forbidden(request: web.Request) -> web.Response:
        return web.Response(status=403, text="origin not allowed")

    app = web.Application()
    app.router.add_get("/", forbidden)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port_block(1)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        client = SyncGatewayClient(f"ws://127.0.0.1:{port}", token="t")
        with pytest.raises(
            GatewayUnreachableError,
            match="rejected WebSocket connection: HTTP 403",
        ):
            await asyncio.to_thread(client.connect)
    finally:
        await runner.cleanup()


# A raw socket peer: frames as RFC 6455 allows them, and as it does not ------------------

Script = Callable[[socket.socket], None]


@contextlib.contextmanager
def one_connection(handle: Script, *, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A server on a thread that accepts one connection (over TLS with ``tls``: a
    client that refuses the certificate ends it there) and hands it to ``handle``;
    what ``handle`` raises is raised in the test."""
    server = socket.create_server(("127.0.0.1", 0))
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            conn, _ = server.accept()
            if tls is not None:
                try:
                    conn = tls.wrap_socket(conn, server_side=True)
                except OSError:  # ssl.SSLError included: the client refused it
                    conn.close()
                    return
            with conn:
                conn.settimeout(10)
                handle(conn)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.getsockname()[1]}"
    finally:
        thread.join(10)
        server.close()
    if errors:
        raise errors[0]


def upgrade_request(conn: socket.socket) -> bytes:
    request = b""
    while b"\r\n\r\n" not in request:
        request += conn.recv(4096)
    return request


def raw_peer(
    script: Script, *, accept: str | None = None, tls: ssl.SSLContext | None = None
) -> contextlib.AbstractContextManager[str]:
    """A one-connection WebSocket server on a thread: the upgrade (with ``accept`` as
    Sec-WebSocket-Accept when given, else the right one), the gateway's challenge and
    hello-ok, then ``script(conn)``."""

    def gateway(conn: socket.socket) -> None:
        key = next(
            line.split(":", 1)[1].strip()
            for line in upgrade_request(conn).decode().split("\r\n")
            if line.lower().startswith("sec-websocket-key")
        )
        right = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        ).decode()
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + (accept or right).encode()
            + b"\r\n\r\n"
        )
        if accept is not None:
            return
        challenge = {"type": "event", "event": "connect.challenge", "payload": {}}
        conn.sendall(frame(0x1, json.dumps(challenge).encode()))
        connect = json.loads(read_frame(conn)[1])
        hello = {"type": "res", "id": connect["id"], "ok": True, "payload": {}}
        conn.sendall(frame(0x1, json.dumps(hello).encode()))
        script(conn)

    return one_connection(gateway, tls=tls)


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = False) -> bytes:
    """A server frame (never masked, unless a test wants a forbidden one)."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", first, size | (0x80 if masked else 0))
    else:
        head = struct.pack("!BBH", first, 126 | (0x80 if masked else 0), size)
    return head + (b"\0\0\0\0" if masked else b"") + payload


def read_frame(conn: socket.socket) -> tuple[int, bytes]:
    """One client frame, unmasked (every client frame must be masked)."""

    def take(count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = conn.recv(count - len(data))
            if not chunk:
                raise EOFError("the client closed")
            data += chunk
        return data

    first, second = take(2)
    assert second & 0x80, "a client frame must be masked"
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", take(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", take(8))[0]
    mask = take(4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(take(size)))
    return first & 0x0F, payload


def until_closed(conn: socket.socket) -> None:
    """Skip the client's frames until its close frame (or the connection's end)."""
    with contextlib.suppress(OSError, EOFError):
        while read_frame(conn)[0] != 0x8:
            pass


def answer(conn: socket.socket) -> dict[str, object]:
    """The next request the client sends."""
    opcode, payload = read_frame(conn)
    assert opcode == 0x1
    return json.loads(payload)  # type: ignore[no-any-return]


def test_fragmented_answers_and_pings_in_between() -> None:
    pongs: list[bytes] = []

    def script(conn: socket.socket) -> None:
        request = answer(conn)
        text = json.dumps({"type": "res", "id": request["id"], "ok": True, "payload": "é" * 200})
        data = text.encode()
        conn.sendall(frame(0x1, data[:50], fin=False))
        conn.sendall(frame(0x9, b"are you there"))  # a ping between two fragments
        conn.sendall(frame(0x0, data[50:301], fin=False))  # splits a UTF-8 character
        conn.sendall(frame(0x0, data[301:]))
        opcode, payload = read_frame(conn)
        assert opcode == 0xA
        pongs.append(payload)
        opcode, payload = read_frame(conn)  # the client's close
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1000
        conn.sendall(frame(0x8, payload[:2]))

    with raw_peer(script) as url, SyncGatewayClient(url, timeout=10) as client:
        assert client.call("health") == "é" * 200
    assert pongs == [b"are you there"]


@pytest.mark.parametrize(
    ("bad", "message", "code"),
    [
        (frame(0x1, b"{}", masked=True), "must not be masked", 1002),
        (frame(0x0, b"{}"), "continuation frame outside a message", 1002),
        (frame(0x9, b"x" * 126), "control frame over 125 bytes", 1002),
        (bytes([0xC1, 0x02]) + b"{}", "reserved bits", 1002),
        (bytes([0x83, 0x00]), "unknown opcode", 1002),
        (frame(0x1, b"\xff\xfe"), "not UTF-8", 1007),
        (struct.pack("!BBQ", 0x81, 127, 1 << 40), "frame over", 1009),
    ],
)
def test_frames_no_server_may_send_end_the_connection(bad: bytes, message: str, code: int) -> None:
    """The client fails the connection (RFC 6455 7.1.7) with the status code that
    names the fault, and reads nothing more from a stream it no longer trusts."""
    codes: list[int] = []

    def script(conn: socket.socket) -> None:
        answer(conn)
        conn.sendall(bad)
        opcode, payload = read_frame(conn)
        assert opcode == 0x8
        codes.append(struct.unpack("!H", payload[:2])[0])
        assert conn.recv(1) == b""  # then it closes the socket without waiting

    with raw_peer(script) as url, SyncGatewayClient(url, timeout=10) as client:
        with pytest.raises(GatewayUnreachableError, match=message):
            client.call("health")
    assert codes == [code]


def test_a_wrong_accept_key_is_not_a_websocket() -> None:
    with raw_peer(lambda conn: None, accept="d3Jvbmc=") as url:
        with pytest.raises(GatewayUnreachableError, match="not a valid WebSocket"):
            SyncGatewayClient(url, timeout=10).connect()


def test_a_frame_cut_by_the_timeout_is_kept_for_the_next_call() -> None:
    def script(conn: socket.socket) -> None:
        first = answer(conn)
        late = frame(0x1, json.dumps({"type": "res", "id": first["id"], "ok": True}).encode())
        conn.sendall(late[:3])  # the client times out inside this frame
        second = answer(conn)  # the barrier: the first call has given up
        conn.sendall(late[3:])
        reply = {"type": "res", "id": second["id"], "ok": True, "payload": "second"}
        conn.sendall(frame(0x1, json.dumps(reply).encode()))
        until_closed(conn)

    with raw_peer(script) as url, SyncGatewayClient(url, timeout=10) as client:
        with pytest.raises(GatewayUnreachableError, match="did not answer in time"):
            client.call("health", timeout=0.3)
        assert client.call("health") == "second"


def http_peer(reply: Script) -> contextlib.AbstractContextManager[str]:
    """A one-connection server that reads the upgrade request, then ``reply(conn)``."""

    def serve(conn: socket.socket) -> None:
        upgrade_request(conn)
        reply(conn)

    return one_connection(serve)


def test_a_status_code_of_other_digits_is_not_http() -> None:
    # "²³¹" are digits to str.isdigit() (and latin-1), not to int()
    status_line = "HTTP/1.1 ²³¹ Nope\r\n\r\n".encode("latin-1")
    with http_peer(lambda conn: conn.sendall(status_line)) as url:
        with pytest.raises(GatewayUnreachableError, match="did not answer in HTTP"):
            SyncGatewayClient(url, timeout=10).connect()


@pytest.mark.parametrize("url", ["ws://127.0.0.1:99999", "ws://[::1", "ws://a..b:1/"])
def test_a_url_that_is_not_one_is_named(url: str) -> None:
    with pytest.raises(GatewayUnreachableError, match="not a WebSocket URL"):
        SyncGatewayClient(url, timeout=10).connect()


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` (only), signed by its own key: (cert, key)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def tls_context(directory: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, ssl.SSLContext]:
    """A server context with a self-signed certificate, which clients trust only once
    ``SSL_CERT_FILE`` names it (neither it nor ``SSL_CERT_DIR`` is set on return)."""
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    cert, key = self_signed(directory)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    return cert, tls


def one_call(conn: socket.socket) -> None:
    request = answer(conn)
    reply = {"type": "res", "id": request["id"], "ok": True, "payload": "over tls"}
    conn.sendall(frame(0x1, json.dumps(reply).encode()))
    until_closed(conn)


def test_wss_verifies_the_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``wss://`` checks the server's certificate and name: a self-signed one is refused
    unless the system's trust store is told about it (``SSL_CERT_FILE``), and then only
    for the name it was made for."""
    cert, tls = tls_context(tmp_path, monkeypatch)
    with raw_peer(one_call, tls=tls) as url:
        secure = url.replace("ws://127.0.0.1", "wss://localhost")
        with pytest.raises(GatewayUnreachableError, match="CERTIFICATE_VERIFY_FAILED"):
            SyncGatewayClient(secure, token="secret", timeout=10).connect()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with raw_peer(one_call, tls=tls) as url:
        secure = url.replace("ws://", "wss://")  # trusted, but not for 127.0.0.1
        with pytest.raises(GatewayUnreachableError, match="CERTIFICATE_VERIFY_FAILED"):
            SyncGatewayClient(secure, token="secret", timeout=10).connect()
    with raw_peer(one_call, tls=tls) as url:
        secure = url.replace("ws://127.0.0.1", "wss://localhost")
        with SyncGatewayClient(secure, token="secret", timeout=10) as client:
            assert client.call("health") == "over tls"


def test_tiny_fragments_hold_no_more_memory_than_the_message() -> None:
    """A peer may split a message into as many empty or one-byte continuation frames as
    it likes (two or three bytes each on the wire): the client's memory stays bounded
    by the message's size, not by how many frames it came in."""
    import tracemalloc

    size, empty = 100_000, 300_000
    # built before memory is traced (the peer runs in this process)
    middle = frame(0x0, b"", fin=False) * empty + frame(0x0, b"x", fin=False) * size

    def script(conn: socket.socket) -> None:
        request = answer(conn)
        conn.sendall(frame(0x1, b'{"type": "res", "ok": true, "payload": "', fin=False))
        conn.sendall(middle)
        conn.sendall(frame(0x0, f'", "id": "{request["id"]}"}}'.encode()))
        until_closed(conn)

    with raw_peer(script) as url, SyncGatewayClient(url, timeout=60) as client:
        tracemalloc.start()
        try:
            assert client.call("health") == "x" * size
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 10 * size  # an object per fragment would be ~40 bytes per byte


async def test_the_asyncio_client_verifies_wss_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moltbot.gateway.client import GatewayClient

    cert, tls = tls_context(tmp_path, monkeypatch)
    with raw_peer(one_call, tls=tls) as url:
        secure = url.replace("ws://127.0.0.1", "wss://localhost")
        with pytest.raises(GatewayUnreachableError, match="CERTIFICATE_VERIFY_FAILED"):
            await GatewayClient(secure, token="secret", timeout=10).connect()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with raw_peer(one_call, tls=tls) as url:
        secure = url.replace("ws://127.0.0.1", "wss://localhost")
        async with GatewayClient(secure, token="secret", timeout=10) as client:
            assert await client.call("health") == "over tls"


def test_a_frame_nested_too_deep_to_parse_is_skipped() -> None:
    """JSON nested deeper than the parser's recursion limit is not a frame (skipped, as
    any other non-object), not a crash of the command."""

    def script(conn: socket.socket) -> None:
        request = answer(conn)
        conn.sendall(frame(0x1, b'{"type": "res", "payload": ' + b"[" * 60_000))
        reply = {"type": "res", "id": request["id"], "ok": True, "payload": "after"}
        conn.sendall(frame(0x1, json.dumps(reply).encode()))
        until_closed(conn)

    with raw_peer(script) as url, SyncGatewayClient(url, timeout=10) as client:
        assert client.call("health") == "after"


def drip(conn: socket.socket, data: bytes) -> None:
    """Send ``data`` a byte at a time, a little apart, until the client hangs up."""
    import time

    with contextlib.suppress(OSError):
        for byte in data:
            conn.sendall(bytes([byte]))
            time.sleep(0.02)


def test_a_peer_dripping_bytes_does_not_hold_the_deadline_off() -> None:
    """Every byte arriving in time does not restart the clock: the call gives up at its
    deadline while the peer is still sending (for ~20 s) a frame it never finishes."""

    def script(conn: socket.socket) -> None:
        answer(conn)
        drip(conn, struct.pack("!BBH", 0x81, 126, 1000) + b"x" * 999)

    with raw_peer(script) as url, SyncGatewayClient(url, timeout=10) as client:
        with pytest.raises(GatewayUnreachableError, match="did not answer in time"):
            client.call("health", timeout=0.5)


def test_a_peer_dripping_its_upgrade_answer_does_not_hold_the_deadline_off() -> None:
    upgrade = b"HTTP/1.1 101 Switching Protocols\r\n" + b"X-Slow: y\r\n" * 100
    with http_peer(lambda conn: drip(conn, upgrade)) as url:
        with pytest.raises(GatewayUnreachableError, match="deadline|timed out"):
            SyncGatewayClient(url, timeout=0.5).connect()


def test_a_frame_cut_by_a_send_timeout_ends_the_connection() -> None:
    """A send that times out may have written part of its frame: nothing can follow it
    (a later call's frame, a pong) without corrupting the stream, so the socket goes."""
    import time

    from moltbot.gateway.blocking_ws import BlockingWebSocket

    ours, theirs = socket.socketpair()
    with theirs:
        ws = BlockingWebSocket(ours, b"", 1 << 30)
        with pytest.raises(TimeoutError):  # the peer never reads
            ws.send_text("x" * (64 << 20), time.monotonic() + 0.3)
        with pytest.raises(OSError) as caught:
            ws.send_text("{}", time.monotonic() + 0.3)
        assert not isinstance(caught.value, TimeoutError)  # refused, not queued after the cut
