"""Host/Origin/token checks shared by the browser control service and the canvas host."""

from __future__ import annotations

import pytest

from gateway_harness import near_misses
from moltbot.security.origin import (
    bearer,
    is_loopback_addr,
    is_loopback_host,
    same_origin,
    secret_matches,
    split_host,
)


@pytest.mark.parametrize(
    "host,ok",
    [
        ("127.0.0.1:18791", True),
        ("localhost:18791", True),
        ("[::1]:18791", True),
        ("127.1.2.3", True),
        ("app.localhost:1", True),
        ("LOCALHOST.:18791", True),
        ("evil.example:18791", False),
        ("127.0.0.1.evil.example", False),
        ("", False),
        ("192.168.1.2:18791", False),
        ("0.0.0.0:18791", False),
        ("localhost:x", False),
    ],
)
def test_loopback_host(host: str, ok: bool) -> None:
    assert is_loopback_host(host) is ok


def test_loopback_host_port_must_match_when_given() -> None:
    assert is_loopback_host("127.0.0.1:18791", 18791)
    assert not is_loopback_host("127.0.0.1:18792", 18791)
    assert is_loopback_host("127.0.0.1", 18791)


def test_split_host() -> None:
    assert split_host("[::1]:80") == ("::1", 80)
    assert split_host("Example.COM") == ("example.com", None)


@pytest.mark.parametrize(
    "origin,ok",
    [
        (None, True),
        ("http://127.0.0.1:18793", True),
        ("http://localhost:18793", False),
        ("http://127.0.0.1:1", False),
        ("null", False),
        ("https://127.0.0.1:18793", True),
        ("http://evil.example", False),
        ("ftp://127.0.0.1:18793", False),
        ("http://:18793", False),
    ],
)
def test_same_origin(origin: str | None, ok: bool) -> None:
    assert same_origin(origin, "127.0.0.1:18793") is ok


def test_bearer_and_secret() -> None:
    assert bearer({"Authorization": "Bearer abc"}) == "abc"
    assert bearer({"Authorization": "Basic abc"}) is None
    assert bearer({}) is None
    assert secret_matches("abc", (None, "abc"))
    assert not secret_matches("abd", ("abc", None))
    assert not secret_matches(None, ("abc",))
    assert not secret_matches("", ("",))


def test_same_origin_default_ports() -> None:
    assert same_origin("https://example.test", "example.test:443")
    assert not same_origin("https://example.test", "example.test:80")
    assert same_origin("http://example.test", "example.test:80")
    assert not same_origin("http://example.test", "example.test:443")


@pytest.mark.parametrize(
    "address,ok",
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("", False),
        (None, False),
        ("10.0.0.1", False),
        ("::2", False),
        ("128.0.0.1", False),
    ],
)
def test_loopback_addr(address: str | None, ok: bool) -> None:
    assert is_loopback_addr(address) is ok


def test_secret_near_misses_are_refused() -> None:
    secret = "0123456789abcdef0123456789abcdef"
    assert secret_matches(secret, (secret,))
    for wrong in near_misses(secret):
        assert not secret_matches(wrong, (secret,)), wrong
        assert not secret_matches(wrong, (None, secret, "other")), wrong
