"""Gateway credentials and local-request detection, as plain functions.

The same rules are exercised over real sockets in test_auth_gateway.py; these run
in milliseconds, so ``make mutate`` tries them first.
"""

from __future__ import annotations

import pytest

from gateway_harness import near_misses
from moltbot.config.schema import Config
from moltbot.gateway.auth import AuthSettings, check_shared, resolve_auth
from moltbot.security.origin import is_local, resolve_peer
from moltbot.security.origin import is_loopback_addr as is_loopback


def is_local_request(remote: str | None, headers) -> bool:  # noqa: ANN001
    """What the gateway decides for a connect without an ``Origin`` (no trusted proxies)."""
    return is_local(resolve_peer(remote, headers), None)


TOKEN = "tok-0123456789abcdef0123456789abcdef"
PASSWORD = "correct horse battery staple"


def config(**auth: str) -> Config:
    return Config.model_validate({"gateway": {"auth": auth}})


def test_token_matches_only_itself() -> None:
    settings = AuthSettings("token", TOKEN, None)
    assert check_shared(settings, TOKEN, None) is None
    for wrong in near_misses(TOKEN):
        assert check_shared(settings, wrong, None) == "gateway token mismatch", wrong
    assert check_shared(settings, None, TOKEN) == "gateway token missing"
    assert check_shared(settings, "", None) == "gateway token missing"


def test_password_matches_only_itself() -> None:
    settings = AuthSettings("password", TOKEN, PASSWORD)
    assert check_shared(settings, None, PASSWORD) is None
    for wrong in near_misses(PASSWORD):
        assert check_shared(settings, None, wrong) == "gateway password mismatch", wrong
    # In password mode the token is not a way in.
    assert check_shared(settings, TOKEN, None) == "gateway password missing"
    assert check_shared(settings, TOKEN, TOKEN) == "gateway password mismatch"


def test_nothing_configured_lets_nobody_in() -> None:
    assert check_shared(AuthSettings("token", None, None), "", None) == (
        "gateway token not configured"
    )
    assert check_shared(AuthSettings("token", None, PASSWORD), None, PASSWORD) == (
        "gateway token not configured"
    )
    assert check_shared(AuthSettings("password", TOKEN, None), TOKEN, "") == (
        "gateway password not configured"
    )
    assert not AuthSettings("token", None, PASSWORD).configured
    assert not AuthSettings("password", TOKEN, None).configured
    assert AuthSettings("token", TOKEN, None).configured
    assert AuthSettings("password", None, PASSWORD).configured


def test_resolve_auth_precedence_and_mode() -> None:
    cfg = config(token="from-config", password="pw-config")
    assert resolve_auth(cfg, {}) == AuthSettings("token", "from-config", "pw-config")
    env = {"CLAWDBOT_GATEWAY_TOKEN": "from-env", "CLAWDBOT_GATEWAY_PASSWORD": "pw-env"}
    assert resolve_auth(cfg, env) == AuthSettings("token", "from-env", "pw-env")
    assert resolve_auth(cfg, env, token="flag", password="pw-flag") == AuthSettings(
        "token", "flag", "pw-flag"
    )
    # A password alone means password mode; an explicit mode wins.
    assert resolve_auth(config(password="pw"), {}).mode == "password"
    assert resolve_auth(config(), {"CLAWDBOT_GATEWAY_PASSWORD": "pw"}).mode == "password"
    assert resolve_auth(config(), {}) == AuthSettings("token", None, None)
    assert resolve_auth(config(mode="token", password="pw"), {}).mode == "token"
    assert resolve_auth(config(mode="password", token="t"), {}).mode == "password"
    assert resolve_auth(config(token="", password=""), {}) == AuthSettings("token", None, None)


@pytest.mark.parametrize(
    "address,loopback",
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::1%lo", True),
        (None, False),
        ("", False),
        ("10.1.2.3", False),
        ("192.0.2.1", False),
        ("not an address", False),
    ],
)
def test_is_loopback(address: str | None, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.mark.parametrize(
    "host,local",
    [
        ("127.0.0.1:18789", True),
        ("localhost:18789", True),
        ("LOCALHOST:18789", True),
        ("localhost", True),
        ("[::1]:18789", True),
        ("[::1]", True),
        ("", False),
        ("evil.example:18789", False),
        ("evil.example", False),
        ("127.0.0.1.evil.example:18789", False),
        ("localhost.evil.example", False),
        ("[::2]:18789", False),
        ("192.0.2.1:18789", False),
    ],
)
def test_local_request_needs_a_local_host(host: str, local: bool) -> None:
    headers = {"Host": host} if host else {}
    assert is_local_request("127.0.0.1", headers) is local


@pytest.mark.parametrize(
    "header", ["X-Forwarded-For", "X-Real-IP", "X-Forwarded-Host", "Forwarded"]
)
def test_proxied_request_is_not_local(header: str) -> None:
    from multidict import CIMultiDict

    headers = CIMultiDict({"Host": "127.0.0.1:18789", header: "for=192.0.2.1"})
    assert not is_local_request("127.0.0.1", headers)
    lower = CIMultiDict({"host": "127.0.0.1:18789", header.lower(): "192.0.2.1"})
    assert not is_local_request("127.0.0.1", lower)


def test_remote_peer_is_not_local() -> None:
    assert not is_local_request("192.0.2.1", {"Host": "127.0.0.1:18789"})
    assert not is_local_request(None, {"Host": "127.0.0.1:18789"})
    assert is_local_request("::1", {"Host": "[::1]:18789"})
