"""The CLI's control-service client: a running gateway starts browser control right
after its own port answers, so a refused connection is tried again for a while; with
no gateway running it fails at once."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from gateway_harness import free_port_block
from moltbot.browser.client import ControlClient
from moltbot.errors import GatewayUnreachableError


class _Answers(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_port_that_starts_listening_late_is_waited_for() -> None:
    port = free_port_block(1)
    started: list[http.server.HTTPServer] = []

    def start_later() -> None:
        time.sleep(0.4)  # the sidecar starts after the gateway's own port answers
        server = http.server.HTTPServer(("127.0.0.1", port), _Answers)
        started.append(server)
        server.serve_forever(poll_interval=0.05)

    thread = threading.Thread(target=start_later, daemon=True)
    thread.start()
    try:
        client = ControlClient(port, "t", timeout=5, starting=10)
        assert client.request("GET", "/") == {"ok": True}
    finally:
        thread.join(2)  # started by then: the request was answered
        for server in started:
            server.shutdown()
            server.server_close()


def test_nothing_listening_fails_at_once_without_a_running_gateway() -> None:
    client = ControlClient(free_port_block(1), "t", timeout=5)
    with pytest.raises(GatewayUnreachableError, match="nothing answers") as caught:
        client.request("GET", "/")
    assert caught.value.hint == "start the gateway: moltbot [--profile NAME] gateway"


def test_a_running_gateway_without_browser_control_is_named() -> None:
    client = ControlClient(free_port_block(1), "t", timeout=5, starting=0.3)
    with pytest.raises(GatewayUnreachableError, match="although the gateway runs") as caught:
        client.request("GET", "/")
    assert "browser.enabled" in (caught.value.hint or "")
