"""Bind modes → listen addresses (the one function the gateway and canvas share)."""

from __future__ import annotations

from moltbot.instance.bind import listen_host, tailnet_address


def test_modes() -> None:
    assert listen_host("loopback", None) == "127.0.0.1"
    assert listen_host("auto", "10.0.0.1") == "127.0.0.1"
    assert listen_host("lan", None) == "0.0.0.0"
    assert listen_host("custom", "10.1.2.3") == "10.1.2.3"
    assert listen_host("custom", None) == "0.0.0.0"
    assert listen_host("tailnet", None) == (tailnet_address() or "127.0.0.1")
