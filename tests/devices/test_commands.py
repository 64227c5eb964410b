"""The grammar of ``/approve`` and ``/deny``, and their place in the command registry."""

from __future__ import annotations

import pytest

from moltbot.commands import CommandRegistry
from moltbot.devices.commands import APPROVE_USAGE, DENY_USAGE, parse, register
from moltbot.errors import UsageError


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("", (None, "allow-once")),
        ("3f2a", ("3f2a", "allow-once")),
        ("3f2a always", ("3f2a", "allow-always")),
        ("allow-always 3f2a", ("3f2a", "allow-always")),
        ("3F2A Allow-Once", ("3F2A", "allow-once")),
        ("3f2a deny", ("3f2a", "deny")),
        ("always", (None, "allow-always")),
    ],
)
def test_approve_words(args: str, expected: tuple[str | None, str]) -> None:
    assert parse(args, "allow-once", APPROVE_USAGE) == expected


@pytest.mark.parametrize("args", ["3f2a 9b1c", "3f2a once always", "3f2a once x"])
def test_approve_refuses_extra_words(args: str) -> None:
    with pytest.raises(UsageError, match=r"usage: /approve \[id\]"):
        parse(args, "allow-once", APPROVE_USAGE)


def test_deny_takes_an_id_and_no_other_decision() -> None:
    assert parse("3f2a", "deny", DENY_USAGE) == ("3f2a", "deny")
    assert parse("3f2a deny", "deny", DENY_USAGE) == ("3f2a", "deny")
    with pytest.raises(UsageError, match=r"usage: /deny \[id\]"):
        parse("3f2a always", "deny", DENY_USAGE)


def test_registered_with_their_aliases_once() -> None:
    registry = CommandRegistry()
    register(registry)
    register(registry)  # a second load changes nothing
    approve, deny = registry.get("allow"), registry.get("reject")
    assert approve is not None and approve.name == "approve" and approve.owner_only
    assert deny is not None and deny.name == "deny" and deny.usage == DENY_USAGE
    assert ("approve", approve.help) in registry.menu(owner=True)
    assert registry.menu(owner=False) == []  # owners only
