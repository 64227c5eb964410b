"""The pure parts of rescue: the chat grammar, confirmations, owners, requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from moltbot.errors import UsageError
from moltbot.rescue.commands import is_command, parse
from moltbot.rescue.confirm import Confirmations
from moltbot.rescue.errors import NotOwner
from moltbot.rescue.operations import Change, Request
from moltbot.rescue.targets import check_owner


@pytest.mark.parametrize(
    ("text", "request_"),
    [
        ("/rescue status main", Request("main", "status")),
        ("/rescue@rescue_bot status main", Request("main", "status")),
        ("/rescue main status", Request("main", "status")),
        ("/rescue config restore main", Request("main", "config restore")),
        ("/rescue config restore main 2", Request("main", "config restore", number=2)),
        ("/rescue main config diff", Request("main", "config diff")),
        ("/rescue config get main gateway.port", Request("main", "config get", key="gateway.port")),
        (
            "/rescue config set main agents.defaults.model {primary: 'a/b'}",
            Request("main", "config set", key="agents.defaults.model", value="{primary: 'a/b'}"),
        ),
        ("/rescue logs main 5 failed to", Request("main", "logs", lines=5, grep="failed to")),
        ("/rescue logs main error", Request("main", "logs", grep="error")),
        ("/rescue config history main 3", Request("main", "config history", lines=3)),
        ("  /RESCUE   restart   main ", Request("main", "restart")),
    ],
)
def test_grammar(text: str, request_: Request) -> None:
    assert is_command(text)
    assert parse(text).request == request_


def test_words_that_are_not_commands() -> None:
    for text in ("rescue status main", "/rescuer x", "", "please /rescue status main"):
        assert not is_command(text)
    assert parse("/rescue").word == "help"
    assert parse("/rescue confirm 123456").code == "123456"
    assert parse("/rescue status", default_target="main").request == Request("main", "status")
    for bad in ("/rescue reboot main", "/rescue config main", "/rescue config set main k"):
        with pytest.raises(UsageError):
            parse(bad)
    audit = parse("/rescue audit main 5")
    assert (audit.word, audit.target, audit.count) == ("audit", "main", 5)
    assert (parse("/rescue audit").target, parse("/rescue audit 3").count) == (None, 3)
    assert parse("/rescue status").word == "overview"  # several (or no) targets: each
    with pytest.raises(UsageError, match="which instance"):
        parse("/rescue restart")
    with pytest.raises(UsageError, match="N is a number"):
        parse("/rescue config restore main latest")


def test_request_arguments_hide_secrets() -> None:
    secret = Request("main", "config set", key="gateway.auth.token", value="s3cret")
    assert secret.args() == {"key": "gateway.auth.token", "value": "__MOLTBOT_REDACTED__"}
    reference = Request("main", "config set", key="gateway.auth.token", value="${TOKEN}")
    assert reference.args()["value"] == "${TOKEN}"
    with pytest.raises(UsageError):
        Request("main", "format disk")
    with pytest.raises(UsageError):
        Request("main", "config restore", number=0)


def test_confirmations() -> None:
    now = [0.0]
    store = Confirmations(ttl=60, clock=lambda: now[0])
    change = Change(Request("main", "restart"), "restart main")
    pending = store.ask("telegram:a", change)
    assert len(pending.code) == 6 and pending.code.isdigit()
    assert store.take("telegram:b", "yes") is None  # another sender confirms nothing
    assert store.take("telegram:a", "no") is None
    assert store.take("telegram:a", "  YES ") is pending
    assert store.take("telegram:a", "yes") is None  # used once

    pending = store.ask("telegram:a", change)
    assert store.take("telegram:a", pending.code) is pending
    first = store.ask("telegram:a", change)
    second = store.ask("telegram:a", Change(Request("main", "stop"), "stop main"))
    assert store.take("telegram:a", first.code) is None  # replaced by the newer request
    assert store.waiting("telegram:a") is second
    now[0] = 61.0
    assert store.take("telegram:a", "yes") is None  # expired


def test_owners_are_matched_as_the_channel_normalises_them() -> None:
    owners = {"telegram": ["4242", "@Ann"]}
    normalize = str.lower
    check_owner(owners, "telegram", {"4242"}, normalize, "x")
    check_owner(owners, "telegram", {"9", "@ann"}, normalize, "x")
    with pytest.raises(NotOwner):
        check_owner(owners, "telegram", {"5555", "@bob"}, normalize, "x")
    with pytest.raises(NotOwner):  # owners of another channel are not owners here
        check_owner(owners, "slack", {"4242"}, normalize, "x")
    with pytest.raises(NotOwner):  # an empty key never matches
        check_owner({"telegram": ["*"]}, "telegram", {"", "*"}, normalize, "x")


def test_huge_or_deep_values_are_refused_before_any_parsing() -> None:
    with pytest.raises(UsageError, match="at most"):
        Request("main", "config set", key="a", value="x" * 20_000)
    with pytest.raises(UsageError, match="at most"):
        Request("main", "logs", grep="x" * 300)


def test_a_deep_value_is_refused(tmp_path: Path) -> None:
    from moltbot.config.schema import Config
    from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance
    from moltbot.rescue.configops import plan_set

    identity = resolve_identity(Invocation(profile="main"), {}, tmp_path)
    instance = resolve_instance(identity, Config(), {})
    with pytest.raises(UsageError, match="nested"):
        plan_set(instance, "agents.defaults.model", "[" * 5000 + "]" * 5000, {})
