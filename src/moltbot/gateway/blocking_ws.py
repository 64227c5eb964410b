"""A blocking WebSocket client connection (RFC 6455): what a one-shot CLI call needs.

``moltbot status`` and the other commands that make a call or two would spend more
time importing asyncio and the ``websockets`` client than talking to the gateway
(docs/benchmarks.md, profiles). This is the client side of RFC 6455 on a plain
socket: the opening handshake (its accept key checked), masked frames out, frames in
(fragmented or not, up to ``max_size`` bytes a message), pings answered, the closing
handshake. No extension is offered, so frames are never compressed. ``wss://`` goes
through :mod:`ssl` with the system's trust store. The connection is direct: proxy
variables (``HTTPS_PROXY``...) are not used, so a gateway's token never reaches a proxy.

Errors are :class:`OSError` subclasses, as a socket's are (the caller wraps them, as it would a
library's): :class:`TimeoutError` (the deadline passed; the connection stays usable),
:class:`HandshakeError` (not a WebSocket server, or it refused the upgrade),
:class:`ProtocolError` (a frame no server may send), :class:`ConnectionClosed` (the
server closed, with its code and reason), and the socket's own (refused, reset, TLS).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import struct
import time
from urllib.parse import urlsplit

from moltbot import __version__

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HEADER_BYTES = 64 * 1024
_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(ConnectionError):
    """The server did not accept the WebSocket upgrade (``status`` is its HTTP status,
    0 when the answer was not HTTP at all)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class ProtocolError(ConnectionError):
    """The server sent something RFC 6455 does not allow. The client fails the
    connection with ``code`` (1002 a protocol error, 1007 text that is not UTF-8, 1009
    a message too big) and reads nothing more from it."""

    def __init__(self, message: str, code: int = 1002) -> None:
        super().__init__(message)
        self.code = code


class ConnectionClosed(ConnectionError):
    """The server closed the connection; ``code`` is ``None`` when it sent no close frame."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"{code}: {reason}" if code else reason)
        self.code = code
        self.reason = reason


class BlockingWebSocket:
    """One client connection. :meth:`open` connects; every call takes a ``deadline``
    (a :func:`time.monotonic` value, ``None`` for no limit)."""

    def __init__(self, sock: socket.socket, buffered: bytes, max_size: int) -> None:
        self._sock = sock
        self._buffer = bytearray(buffered)
        self._max_size = max_size
        self._closed = False
        self._message = bytearray()  # the message being received, frame by frame
        self._message_opcode: int | None = None

    @classmethod
    def open(cls, url: str, *, deadline: float | None, max_size: int) -> BlockingWebSocket:
        """Connect to ``ws://`` or ``wss://`` ``url`` and complete the opening handshake."""
        try:
            parts = urlsplit(url)
            port = parts.port  # ValueError when it is not a port number
            address = (parts.hostname or "").encode("idna")  # UnicodeError: no host name
        except ValueError:  # UnicodeError included
            raise HandshakeError(f"not a WebSocket URL: {url}") from None
        if parts.scheme not in ("ws", "wss") or not address:
            raise HandshakeError(f"not a WebSocket URL: {url}")
        secure = parts.scheme == "wss"
        port = port or (443 if secure else 80)
        sock = socket.create_connection((address.decode(), port), timeout=_remaining(deadline))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if secure:
                import ssl

                sock = ssl.create_default_context().wrap_socket(
                    sock, server_hostname=parts.hostname
                )
            connection = cls(sock, b"", max_size)
            connection._handshake(parts.netloc, parts.path or "/", parts.query, deadline)
        except BaseException:
            sock.close()
            raise
        return connection

    def _handshake(self, netloc: str, path: str, query: str, deadline: float | None) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        target = f"{path}?{query}" if query else path
        host = netloc.rpartition("@")[2]
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nUser-Agent: moltbot/{__version__}\r\n\r\n"
        )
        self._sock.settimeout(_remaining(deadline))
        self._sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > _MAX_HEADER_BYTES:
                raise HandshakeError("the server's HTTP answer is too long")
            self._fill(deadline, eof_message="the server closed the connection during the upgrade")
        head, _, rest = bytes(self._buffer).partition(b"\r\n\r\n")
        self._buffer = bytearray(rest)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        version, _, status_text = status_line.partition(" ")
        code = status_text[:3]
        if not version.startswith("HTTP/") or not (code.isascii() and code.isdigit()):
            raise HandshakeError("the server did not answer in HTTP")
        if code != "101":
            raise HandshakeError(
                f"server rejected WebSocket connection: HTTP {code}", status=int(code)
            )
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        expected = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        if (
            headers.get("upgrade", "").lower() != "websocket"
            or "upgrade" not in headers.get("connection", "").lower()
            or headers.get("sec-websocket-accept") != expected
        ):
            raise HandshakeError("the server's upgrade answer is not a valid WebSocket one")
        if headers.get("sec-websocket-extensions"):
            raise HandshakeError("the server accepted an extension that was not offered")

    # frames ---------------------------------------------------------------------

    def send_text(self, text: str, deadline: float | None = None) -> None:
        self._send_frame(_TEXT, text.encode(), deadline)

    def recv(self, deadline: float | None = None) -> str | bytes:
        """The next message (text as ``str``, binary as ``bytes``); pings are answered
        on the way. Raises :class:`ConnectionClosed` when the server closes. After a
        :class:`TimeoutError` the connection is still usable: what was read is kept."""
        try:
            return self._recv_message(deadline)
        except ProtocolError as exc:
            self._fail_connection(exc.code)
            raise

    def _recv_message(self, deadline: float | None) -> str | bytes:
        while True:
            fin, opcode, payload = self._recv_frame(deadline)
            if opcode >= _CLOSE:
                self._control(opcode, payload, deadline)
                continue
            if (opcode == _CONTINUATION) != (self._message_opcode is not None):
                raise ProtocolError(
                    "a continuation frame outside a message"
                    if opcode == _CONTINUATION
                    else "a new message inside a fragmented one"
                )
            if self._message_opcode is None:
                self._message_opcode = opcode
            if len(self._message) + len(payload) > self._max_size:
                raise ProtocolError(f"a message over {self._max_size} bytes", 1009)
            # one buffer, not a list of fragments: memory is the message's size however
            # many (empty or one-byte) fragments a peer splits it into
            self._message += payload
            if fin:
                data, binary = bytes(self._message), self._message_opcode == _BINARY
                self._message, self._message_opcode = bytearray(), None
                if binary:
                    return data
                try:
                    return data.decode()
                except UnicodeDecodeError:
                    raise ProtocolError("a text message that is not UTF-8", 1007) from None

    def _control(self, opcode: int, payload: bytes, deadline: float | None) -> None:
        if opcode == _PING:
            self._send_frame(_PONG, payload, deadline)
        elif opcode == _CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            reason = payload[2:].decode(errors="replace")
            if not self._closed:
                self._closed = True
                try:
                    self._send_frame(_CLOSE, payload[:2], deadline)
                except OSError:
                    pass
            raise ConnectionClosed(code, reason or "closed")

    def _recv_frame(self, deadline: float | None) -> tuple[bool, int, bytes]:
        """One whole frame, taken from the buffer only once all of it has arrived."""
        self._need(2, deadline)
        first, second = self._buffer[0], self._buffer[1]
        fin, opcode, length = bool(first & 0x80), first & 0x0F, second & 0x7F
        if first & 0x70:
            raise ProtocolError("reserved bits set (no extension was negotiated)")
        if second & 0x80:
            raise ProtocolError("a server frame must not be masked")
        if opcode not in (_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG):
            raise ProtocolError(f"unknown opcode {opcode:#x}")
        header = 2
        if length == 126:
            self._need(4, deadline)
            length, header = struct.unpack_from("!H", self._buffer, 2)[0], 4
        elif length == 127:
            self._need(10, deadline)
            length, header = struct.unpack_from("!Q", self._buffer, 2)[0], 10
        if opcode >= _CLOSE and (length > 125 or not fin):
            raise ProtocolError("a control frame over 125 bytes or fragmented")
        if length > self._max_size:
            raise ProtocolError(f"a frame over {self._max_size} bytes", 1009)
        self._need(header + length, deadline)
        payload = bytes(self._buffer[header : header + length])
        del self._buffer[: header + length]
        return fin, opcode, payload

    def _send_frame(self, opcode: int, payload: bytes, deadline: float | None) -> None:
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        mask = os.urandom(4)
        self._sock.settimeout(_remaining(deadline))
        try:
            self._sock.sendall(header + mask + _masked(payload, mask))
        except TimeoutError:
            # part of the frame may be out: nothing sent after it could be parsed
            self._closed = True
            self._sock.close()
            raise

    def _need(self, count: int, deadline: float | None) -> None:
        while len(self._buffer) < count:
            self._fill(deadline, eof_message="connection closed")

    def _fill(self, deadline: float | None, *, eof_message: str) -> None:
        self._sock.settimeout(_remaining(deadline))
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionClosed(None, eof_message)
        self._buffer += chunk

    # closing --------------------------------------------------------------------

    def _fail_connection(self, code: int) -> None:
        """Send a close frame with ``code`` (briefly, if the peer reads) and drop the
        socket without waiting for an answer: the stream can no longer be parsed."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):
                self._send_frame(_CLOSE, struct.pack("!H", code), time.monotonic() + 0.5)
        self._sock.close()

    def close(self, timeout: float = 0.5) -> None:
        """The closing handshake (code 1000), waiting at most ``timeout`` seconds for the
        server's close frame; then the socket is closed. Idempotent, never raises."""
        try:
            if not self._closed:
                self._closed = True
                deadline = time.monotonic() + timeout
                self._send_frame(_CLOSE, struct.pack("!H", 1000), deadline)
                while self._recv_frame(deadline)[1] != _CLOSE:
                    pass  # until its close frame, EOF or the deadline
        except OSError:
            pass
        finally:
            self._sock.close()


def _masked(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return payload
    key = int.from_bytes((mask * (len(payload) // 4 + 1))[: len(payload)], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(len(payload), "big")


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the deadline passed")
    return left


__all__ = ["BlockingWebSocket", "ConnectionClosed", "HandshakeError", "ProtocolError"]
