"""The chat-command registry: parsing, declaring, owner checks, plugins by entry point."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from moltbot.commands import (
    REGISTRY,
    CommandContext,
    CommandRegistry,
    CommandReply,
    execute,
)
from moltbot.errors import UsageError

PLUGIN = Path(__file__).parent / "plugin"


def context(registry: CommandRegistry, text: str, *, owner: bool = True) -> Any:
    invocation = registry.parse(text)
    assert invocation is not None
    sent: list[str] = []

    async def reply(message: str) -> None:
        sent.append(message)

    ctx = CommandContext(
        name=invocation.command.name,
        args=invocation.args,
        text=text,
        surface="test",
        sender="test:1",
        agent_id="main",
        session_key="agent:main:main",
        is_owner=owner,
        reply=reply,
        registry=registry,
    )
    return invocation, ctx


def test_parse_names_aliases_and_arguments() -> None:
    parse = REGISTRY.parse
    assert parse("/status").command.name == "status"  # type: ignore[union-attr]
    assert parse("  /STATUS  ").command.name == "status"  # type: ignore[union-attr]
    think = parse("/think: high")
    assert think is not None and think.command.name == "think" and think.args == "high"
    assert parse("/t low").command.name == "think"  # type: ignore[union-attr]
    addressed = parse("/status@MoltyBot")
    assert addressed is not None and addressed.addressed_to == "MoltyBot"
    model = parse("/model openai/gpt-4o")
    assert model is not None and model.args == "openai/gpt-4o"
    for text in ("hello /status", "/statusx", "/unknown thing", "status", "/", "//status", ""):
        assert parse(text) is None, text


def test_builtins_are_declared_with_owner_rules() -> None:
    names = {c.name: c for c in REGISTRY.all()}
    for name in ("help", "new", "reset", "stop", "status", "model", "think", "verbose", "compact"):
        assert name in names
    assert {n for n, c in names.items() if c.owner_only} >= {
        "new",
        "reset",
        "stop",
        "think",
        "verbose",
        "compact",
    }
    assert not names["status"].owner_only and not names["help"].owner_only
    menu = dict(REGISTRY.menu())
    assert "status" in menu and all(len(d) <= 256 for d in menu.values())
    assert "new" not in dict(REGISTRY.menu(owner=False))


async def test_declare_refuse_duplicates_and_run() -> None:
    registry = CommandRegistry()

    @registry.command("echo", help="Say it back", aliases=("e",))
    async def echo(ctx: CommandContext) -> str:
        return ctx.args

    @registry.command("wipe", help="Change state", owner_only=True)
    async def wipe(ctx: CommandContext) -> CommandReply:
        return CommandReply("wiped", data={"done": True})

    @registry.command("boom", help="Fails")
    async def boom(ctx: CommandContext) -> str:
        raise UsageError("no such thing")

    @registry.command("bug", help="Has a bug")
    async def bug(ctx: CommandContext) -> str:
        raise KeyError("x")

    with pytest.raises(ValueError, match="already registered"):
        registry.command("e", help="clash")(echo)
    with pytest.raises(ValueError, match="invalid command name"):
        registry.command("Bad Name", help="x")(echo)
    with pytest.raises(TypeError, match="async"):
        registry.command("sync", help="x")(lambda ctx: "x")  # type: ignore[arg-type,return-value]

    assert (await execute(*context(registry, "/e  hi there"))).text == "hi there"
    refused = await execute(*context(registry, "/wipe", owner=False))
    assert refused.text is not None and refused.text.startswith("⛔ /wipe")
    assert refused.record is False
    done = await execute(*context(registry, "/wipe"))
    assert done.text == "wiped" and done.data == {"done": True}
    assert (await execute(*context(registry, "/boom"))).text == "⚠️ no such thing"
    failed = await execute(*context(registry, "/bug"))
    assert failed.text is not None and failed.text.startswith("⚠️ /bug failed: KeyError")

    @registry.command("echo", help="Replaced", replace=True)
    async def echo2(ctx: CommandContext) -> str:
        return "new"

    assert registry.get("e") is None  # the old aliases went with it
    assert (await execute(*context(registry, "/echo x"))).text == "new"


async def test_status_without_agents_says_so() -> None:
    invocation, ctx = context(REGISTRY, "/status")
    reply = await execute(invocation, ctx)
    assert reply.text == "⚠️ the assistant is not running right now; try again shortly"


async def test_help_shows_owner_commands_to_owners_only() -> None:
    owner = (await execute(*context(REGISTRY, "/help"))).text or ""
    guest = (await execute(*context(REGISTRY, "/help", owner=False))).text or ""
    assert "/new" in owner and "🔒" in owner
    assert "/status" in guest and "/new" not in guest and "🔒" not in guest


async def test_a_plugin_registers_through_its_entry_point(monkeypatch: Any) -> None:
    """Another distribution adds commands without touching moltbot: both entry-point
    forms (a module that uses ``@command``, a ``register(registry)`` function)."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    registry = CommandRegistry(entry_points=True)
    try:
        registry.load()
        assert not registry.load_errors
        rescue = registry.get("rescuetest")
        assert rescue is not None and rescue.owner_only
        assert (await execute(*context(registry, "/rescuetest db"))).text == "rescued db"
        ping = REGISTRY.get("pingtest")  # the module form declares into the global registry
        assert ping is not None
        reply = await execute(*context(REGISTRY, "/pingtest hi", owner=False))
        assert reply.text == "pong hi (test, guest, agent:main:main)"
    finally:
        REGISTRY._forget("pingtest")
        sys.modules.pop("pingcmd", None)


async def test_a_broken_plugin_is_reported_not_fatal(tmp_path: Path, monkeypatch: Any) -> None:
    dist = tmp_path / "broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[moltbot.commands]\nbroken = no_such_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = CommandRegistry(["moltbot.commands.builtin"], entry_points=True)
    registry.load()
    assert "broken" in registry.load_errors
    assert "no_such_module_xyz" in registry.load_errors["broken"]


async def test_a_command_waits_for_its_askers_plain_answer(monkeypatch: Any) -> None:
    registry = CommandRegistry()

    @registry.command("ask", help="Asks a question")
    async def ask(ctx: CommandContext) -> str:
        if ctx.answer:
            return f"answered {ctx.args}"
        registry.expect(ctx.conversation, "ask", {"yes", "4821"}, ttl=60)
        return "Sure? Reply yes or 4821"

    here, there = "telegram:default:42:42", "telegram:default:43:43"
    assert registry.answer(here, "yes") is None  # nothing asked yet
    invocation = registry.parse("/ask")
    assert invocation is not None
    _, ctx = context(registry, "/ask")
    asked = await execute(invocation, dataclasses.replace(ctx, conversation=here))
    assert asked.text == "Sure? Reply yes or 4821"
    assert registry.answer(there, "yes") is None  # another conversation
    assert registry.answer(here, "yes please") is None  # not one of the answers
    answer = registry.answer(here, "  YES ")
    assert answer is not None and answer.answer and answer.command.name == "ask"
    assert answer.args == "YES"
    reply = await execute(answer, dataclasses.replace(ctx, args=answer.args, answer=True))
    assert reply.text == "answered YES"
    assert registry.answer(here, "yes") is None  # the wait ended with the answer

    registry.expect(here, "ask", {"4821"}, ttl=60)
    registry.forget_answer(here, "other")  # only the asking command's own wait
    registry.forget_answer(here, "ask")
    assert registry.answer(here, "4821") is None

    clock = [1000.0]
    monkeypatch.setattr("moltbot.commands.registry.time.monotonic", lambda: clock[0])
    registry.expect(here, "ask", {"yes"}, ttl=5)
    clock[0] += 5
    assert registry.answer(here, "yes") is None  # expired
    with pytest.raises(ValueError, match="no command"):
        registry.expect(here, "nothing", {"yes"}, ttl=5)


def test_awaited_answers_are_bounded() -> None:
    from moltbot.commands.registry import MAX_AWAITED

    registry = CommandRegistry()

    @registry.command("ask", help="Asks")
    async def ask(ctx: CommandContext) -> str:
        return ""

    for n in range(MAX_AWAITED + 5):
        registry.expect(f"c{n}", "ask", {"yes"}, ttl=60)
    assert registry.answer("c0", "yes") is None  # the oldest were dropped
    assert registry.answer(f"c{MAX_AWAITED + 4}", "yes") is not None
