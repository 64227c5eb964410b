"""The registry of chat commands: declare, parse, run.

A command is declared once, anywhere::

    from moltbot.commands import CommandContext, command

    @command("ping", help="Answer pong", usage="/ping [text]")
    async def ping(ctx: CommandContext) -> str:
        return f"pong {ctx.args}".strip()

and then answers ``/ping`` in every channel and in WebChat, before any model is
asked. ``owner_only=True`` commands run only for owners (an operator, or a channel
sender on the allowlist); anyone else gets a refusal in a direct chat and nothing in a
group. A handler returns the reply as plain text (short: it must read well on a
phone), a :class:`CommandReply`, or None for no reply. Raising a
:class:`~moltbot.errors.MoltbotError` answers ``⚠️ <message>``.

Registration from another package needs no change here: import ``command`` and
decorate at import time, and make sure the module is imported — by listing it under
the ``moltbot.commands`` entry-point group of its distribution
(``[project.entry-points."moltbot.commands"] rescue = "moltbot.rescue.commands"``),
which :meth:`CommandRegistry.load` imports, or by importing it yourself before the
first message. The built-ins (:mod:`moltbot.commands.builtin`) load the same way.
A name or alias that is already taken is refused (``replace=True`` overrides on
purpose).

A command that asks a question (``Confirm: restart main? Reply yes or 4821``) may
wait for the sender's plain answer: :meth:`CommandRegistry.expect` names the
conversation, the answers and how long; that sender's next message in that
conversation which is one of those answers is handed to the command (as
``ctx.answer``, the answer in ``args``) before any model sees it. Anything else goes
on as usual.
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from moltbot.commands.context import CommandContext
from moltbot.errors import MoltbotError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "moltbot.commands"
BUILTIN_MODULES = ("moltbot.commands.builtin",)
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_INVOCATION = re.compile(r"^/([A-Za-z][A-Za-z0-9_-]{0,31})(?:@([A-Za-z0-9_.]+))?(?::|(?=\s)|$)")


@dataclass(frozen=True)
class CommandReply:
    """A reply with more than text: ``data`` goes into the ``chat.send`` answer (WebChat),
    ``record=False`` keeps the exchange out of the transcript."""

    text: str | None
    data: dict[str, Any] = field(default_factory=dict)
    record: bool = True


Handler = Callable[[CommandContext], Awaitable["CommandReply | str | None"]]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    help: str
    """One line, shown by ``/help`` and in native command menus."""
    usage: str | None = None
    aliases: tuple[str, ...] = ()
    owner_only: bool = False
    """Only owners may run it (it changes state)."""
    native: bool = True
    """Listed in native command menus (Telegram ``setMyCommands``)."""


@dataclass(frozen=True)
class Invocation:
    """A parsed ``/name args`` message."""

    command: Command
    args: str
    addressed_to: str | None = None
    """``/status@OtherBot``: the bot named after ``@`` (Telegram groups)."""
    answer: bool = False
    """A plain answer to the command's question (:meth:`CommandRegistry.expect`)."""


@dataclass(frozen=True)
class _Awaited:
    command: str
    answers: frozenset[str]
    expires: float


MAX_AWAITED = 1000
"""Conversations with an awaited answer at once (the oldest is dropped past that)."""


class CommandRegistry:
    """Commands by name and alias. Thread-safe to register into; lookups are plain dicts."""

    def __init__(self, modules: Iterable[str] = (), *, entry_points: bool = False) -> None:
        self._commands: dict[str, Command] = {}
        self._names: dict[str, str] = {}
        """name or alias -> command name"""
        self._modules = tuple(modules)
        self._entry_points = entry_points
        self._loaded = False
        self._lock = threading.Lock()
        self._awaited: dict[str, _Awaited] = {}
        """conversation -> the answer a command waits for there"""
        self.load_errors: dict[str, str] = {}
        """Plugin modules that could not be imported: entry -> why (logged, never fatal)."""

    # ---- declaring -------------------------------------------------------------

    def add(self, cmd: Command, *, replace: bool = False) -> Command:
        """Register ``cmd``; :class:`ValueError` when a name or alias is taken."""
        for name in (cmd.name, *cmd.aliases):
            if not _NAME.match(name):
                raise ValueError(f"invalid command name {name!r} (a-z, 0-9, _ or -, ≤ 32)")
        with self._lock:
            taken = [n for n in (cmd.name, *cmd.aliases) if n in self._names]
            if taken and not replace:
                owner = self._names[taken[0]]
                raise ValueError(f"command /{taken[0]} is already registered (by /{owner})")
            for name in taken:
                owner = self._names.get(name)
                if owner is not None:
                    self._forget(owner)
            self._commands[cmd.name] = cmd
            for name in (cmd.name, *cmd.aliases):
                self._names[name] = cmd.name
        return cmd

    def _forget(self, name: str) -> None:
        old = self._commands.pop(name, None)
        if old is not None:
            for alias in (old.name, *old.aliases):
                if self._names.get(alias) == name:
                    del self._names[alias]

    def command(
        self,
        name: str,
        *,
        help: str,
        usage: str | None = None,
        aliases: Iterable[str] = (),
        owner_only: bool = False,
        native: bool = True,
        replace: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`add` (see the module docstring)."""

        def register(handler: Handler) -> Handler:
            if not inspect.iscoroutinefunction(handler):
                raise TypeError(f"/{name}: the handler must be an async function")
            self.add(
                Command(
                    name=name,
                    handler=handler,
                    help=help,
                    usage=usage,
                    aliases=tuple(aliases),
                    owner_only=owner_only,
                    native=native,
                ),
                replace=replace,
            )
            return handler

        return register

    def load(self) -> CommandRegistry:
        """Import the built-in modules and the ``moltbot.commands`` entry points (once).
        A plugin that fails to import is logged and skipped; the built-ins must load."""
        if self._loaded:
            return self
        with self._lock:
            if self._loaded:
                return self
            self._loaded = True
        from moltbot.lazy import load

        for module in self._modules:
            load(module, "chat commands")
        if self._entry_points:
            self._load_entry_points()
        return self

    def _load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        for entry in entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = entry.load()
                if callable(loaded) and not inspect.ismodule(loaded):
                    loaded(self)  # a register(registry) function
            except Exception as exc:
                self.load_errors[entry.name] = f"{type(exc).__name__}: {exc}"
                log.error("chat commands %s (%s) not loaded: %s", entry.name, entry.value, exc)

    # ---- reading ---------------------------------------------------------------

    def get(self, name: str) -> Command | None:
        self.load()
        found = self._names.get(name.lower())
        return self._commands.get(found) if found else None

    def all(self) -> list[Command]:
        """Every command, sorted by name."""
        self.load()
        return sorted(self._commands.values(), key=lambda c: c.name)

    def taken(self) -> set[str]:
        """Every name and alias in use."""
        self.load()
        return set(self._names)

    def menu(self, *, owner: bool = True) -> list[tuple[str, str]]:
        """``(name, description)`` for native command menus: Telegram's rules (names
        ``a-z0-9_``, descriptions 1–256 characters)."""
        out = []
        for cmd in self.all():
            if not cmd.native or (cmd.owner_only and not owner):
                continue
            if not re.fullmatch(r"[a-z0-9_]{1,32}", cmd.name):
                continue
            out.append((cmd.name, (cmd.help or cmd.name)[:256]))
        return out

    def parse(self, text: str) -> Invocation | None:
        """The command ``text`` invokes, or None (not a ``/command``, or not a known one:
        unknown ``/words`` go to the model as ordinary text)."""
        stripped = text.strip()
        match = _INVOCATION.match(stripped)
        if match is None:
            return None
        cmd = self.get(match.group(1))
        if cmd is None:
            return None
        return Invocation(cmd, stripped[match.end() :].strip(), match.group(2))

    # ---- awaited answers -------------------------------------------------------

    def expect(self, conversation: str, name: str, answers: Iterable[str], ttl: float) -> None:
        """Hand the next message in ``conversation`` (a :attr:`CommandContext.conversation`)
        that is one of ``answers`` (case-insensitive, whole message) to ``/name`` during
        ``ttl`` seconds. A later call for the same conversation replaces this one."""
        if self.get(name) is None:
            raise ValueError(f"no command /{name} to hand answers to")
        awaited = _Awaited(
            name, frozenset(a.strip().lower() for a in answers), time.monotonic() + ttl
        )
        with self._lock:
            self._awaited.pop(conversation, None)
            self._awaited[conversation] = awaited
            while len(self._awaited) > MAX_AWAITED:
                del self._awaited[next(iter(self._awaited))]

    def forget_answer(self, conversation: str, name: str) -> None:
        """``/name`` no longer waits for an answer in ``conversation``."""
        with self._lock:
            awaited = self._awaited.get(conversation)
            if awaited is not None and awaited.command == name:
                del self._awaited[conversation]

    def answer(self, conversation: str, text: str) -> Invocation | None:
        """The invocation ``text`` is when it answers what a command waits for in
        ``conversation`` (see :meth:`expect`), else None. The wait ends with it."""
        if not self._awaited or not conversation:
            return None
        word = text.strip().lower()
        with self._lock:
            awaited = self._awaited.get(conversation)
            if awaited is None:
                return None
            if awaited.expires <= time.monotonic():
                del self._awaited[conversation]
                return None
            if word not in awaited.answers:
                return None
            del self._awaited[conversation]
        cmd = self.get(awaited.command)
        return Invocation(cmd, text.strip(), answer=True) if cmd is not None else None


def refusal(name: str) -> str:
    """The reply to a sender who may not run ``/name``."""
    return f"⛔ /{name} is only for the owners of this assistant."


async def execute(invocation: Invocation, ctx: CommandContext) -> CommandReply:
    """Run one command for ``ctx`` (already built for ``invocation``): the reply to send.

    Never raises for the command's own failures: a refusal (not an owner), a
    :class:`MoltbotError` (``⚠️ <message>``) or a bug (logged; ``⚠️ /x failed``) is
    the reply."""
    cmd = invocation.command
    if cmd.owner_only and not ctx.is_owner:
        return CommandReply(refusal(cmd.name), record=False)
    try:
        result = await cmd.handler(ctx)
    except MoltbotError as exc:
        return CommandReply(f"⚠️ {exc.message}")
    except Exception as exc:
        log.exception("chat command /%s failed", cmd.name)
        return CommandReply(f"⚠️ /{cmd.name} failed: {type(exc).__name__}: {exc}")
    if isinstance(result, CommandReply):
        return result
    return CommandReply(result)


async def handle(
    invocation: Invocation, ctx: CommandContext, *, run_id: str | None = None
) -> CommandReply:
    """:func:`execute`, then record the exchange in the session (when the agents run):
    in the transcript unless the reply says ``record=False``, and as a ``chat`` event
    (``runId`` = ``run_id``) for the session's WebChat viewers. A recording failure is
    logged; the reply still goes out."""
    reply = await execute(invocation, ctx)
    if ctx.agents is not None:
        try:
            await ctx.agents.record_command(
                ctx.session_key, ctx.text, reply.text, run_id=run_id, transcript=reply.record
            )
        except Exception:
            log.exception("recording /%s in %s failed", invocation.command.name, ctx.session_key)
    return reply


REGISTRY = CommandRegistry(BUILTIN_MODULES, entry_points=True)
"""The process's commands: the built-ins plus every ``moltbot.commands`` entry point."""


command = REGISTRY.command
"""Declare a chat command in :data:`REGISTRY` (see the module docstring)."""
