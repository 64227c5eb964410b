"""Deterministic ``/rescue`` chat commands: text in, a short plain-text reply out.

``/rescue`` is a command of the chat-command layer (:mod:`moltbot.commands`, loaded
through this package's ``moltbot.commands`` entry point, :func:`register`), which
answers it before any model runs in every channel and in WebChat, so it works when
the model's provider is down or its key expired. Grammar (words separated by spaces;
a Telegram ``/rescue@botname`` is the same)::

    /rescue help
    /rescue status TARGET             /rescue logs TARGET [N] [TEXT]
    /rescue doctor TARGET
    /rescue config validate|diff [N]|history|get [KEY] TARGET ...
    /rescue config restore TARGET [N]  /rescue config set TARGET KEY VALUE
    /rescue restart|stop|start TARGET
    /rescue confirm CODE   /rescue cancel   /rescue audit [TARGET] [N]

(``/rescue TARGET status`` works too, and TARGET may be left out when exactly one is
granted; ``/rescue status`` without one, with several granted, answers a line for
each.) Only owners may use them: in a channel, a sender listed in
``rescue.owners.<channel>``; in WebChat, an operator with ``operator.admin``. Changes
are confirmed by the same sender in the same conversation replying ``yes`` or the
code within ``rescue.confirmSeconds`` (the command layer hands that plain answer back
to ``/rescue``: :meth:`CommandRegistry.expect`). Replies never exceed
:data:`MAX_REPLY` characters.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from moltbot.commands import REGISTRY, CommandContext, CommandRegistry
from moltbot.errors import MoltbotError, RetryLaterError, UsageError
from moltbot.rescue.audit import Actor
from moltbot.rescue.confirm import YES, Confirmations, Pending
from moltbot.rescue.errors import NotOwner
from moltbot.rescue.operations import CONFIG_ACTIONS, Change, Outcome, Request, Rescuer
from moltbot.rescue.targets import check_owner
from moltbot.subsystems import RESCUE

NAME = "rescue"

MAX_REPLY = 3500
OP_WORDS = ("status", "logs", "doctor", "config", "restart", "stop", "start")


@dataclass(frozen=True)
class Sender:
    """Who wrote the message: ``channel`` (``telegram``, ..., ``webchat``), ``key`` (one
    sender in one conversation: confirmations are bound to it), the sender's allowlist
    ``keys`` and the channel's ``normalize`` for ``rescue.owners`` entries, a ``label``
    for replies and the audit log, and ``admin`` (WebChat: the operator's scope)."""

    channel: str
    key: str
    label: str
    keys: Collection[str] = field(default_factory=frozenset)
    normalize: Callable[[str], str] = str.lower
    admin: bool = False

    @property
    def actor(self) -> Actor:
        kind = "webchat" if self.channel == "webchat" else "chat"
        return Actor(kind, self.key, self.label)

    @classmethod
    def of(cls, ctx: CommandContext) -> Sender:
        """The sender of a chat command (a channel sender, or a WebChat operator)."""
        webchat = ctx.surface == "webchat"
        if webchat:
            admin = "operator.admin" in ctx.scopes
            label = f"webchat operator ({'admin' if admin else 'not admin'}, {ctx.session_key})"
        else:
            admin = False
            label = ctx.sender + (f" ({ctx.sender_name})" if ctx.sender_name else "")
        return cls(
            channel=ctx.surface,
            key=ctx.conversation or ctx.sender,
            label=label,
            keys=ctx.sender_keys,
            normalize=ctx.normalize,
            admin=admin,
        )


@dataclass(frozen=True)
class Parsed:
    """A ``/rescue`` message: ``word`` is ``help``, ``confirm``, ``cancel``,
    ``overview`` (``/rescue status`` without a target: every target), ``audit`` (the
    last ``count`` steps, on ``target`` or all) or ``op`` (then ``request`` is set)."""

    word: str
    request: Request | None = None
    code: str | None = None
    target: str | None = None
    count: int | None = None


def is_command(text: str) -> bool:
    first = text.strip().split(maxsplit=1)[0].lower() if text.strip() else ""
    return first.split("@", 1)[0] == "/rescue"


def parse(text: str, default_target: str | None = None) -> Parsed:
    """Parse a message for which :func:`is_command` is true. :class:`UsageError` with a
    short hint when it does not make sense."""
    words = text.strip().split()[1:]
    if not words or words[0].lower() in ("help", "?", "-h", "--help"):
        return Parsed("help")
    head = words[0].lower()
    if head in ("confirm", "yes"):
        return Parsed("confirm", code=words[1] if len(words) > 1 else "yes")
    if head == "cancel":
        return Parsed("cancel")
    if head == "audit":  # /rescue audit [TARGET] [N]
        rest = words[1:]
        count = int(rest.pop()) if rest and rest[-1].isdigit() else None
        return Parsed("audit", target=rest[0] if rest else None, count=count)
    if head not in OP_WORDS and len(words) > 1 and words[1].lower() in OP_WORDS:
        target, rest = words[0], words[1:]  # `/rescue main status`: the CLI's order
        split = 2 if rest[0].lower() == "config" else 1
        words = [*rest[:split], target, *rest[split:]]
        head = words[0].lower()
    if head not in OP_WORDS:
        raise UsageError(f"unknown /rescue command {words[0]!r}; see /rescue help")
    if head == "config":
        if len(words) < 2 or words[1].lower() not in CONFIG_ACTIONS:
            raise UsageError(f"/rescue config needs one of: {', '.join(CONFIG_ACTIONS)}")
        op, rest = f"config {words[1].lower()}", words[2:]
    else:
        op, rest = head, words[1:]
    target = rest[0] if rest else default_target
    if not target and op == "status":
        return Parsed("overview")  # every granted target, a line each
    if not target:
        raise UsageError(f"which instance? /rescue {op} TARGET")
    return Parsed("op", _request(op, target, rest[1:]))


def _request(op: str, target: str, args: list[str]) -> Request:
    if op == "logs":
        lines = int(args[0]) if args and args[0].isdigit() else None
        grep = " ".join(args[1:] if lines is not None else args) or None
        return Request(target, op, lines=lines, grep=grep)
    if op == "config get":
        return Request(target, op, key=args[0] if args else None)
    if op == "config set":
        if len(args) < 2:
            raise UsageError(f"/rescue config set {target} KEY VALUE")
        return Request(target, op, key=args[0], value=" ".join(args[1:]))
    if op in ("config diff", "config restore", "config history"):
        if args and not args[0].isdigit():
            raise UsageError(f"/rescue {op} {target} [N]: N is a number from the history")
        number = int(args[0]) if args else None
        if op == "config history":
            return Request(target, op, lines=number)
        return Request(target, op, number=number)
    return Request(target, op)


class ChatCommands:
    """Answers ``/rescue`` messages (and confirmations) for one rescue instance."""

    def __init__(
        self,
        rescuer: Rescuer,
        confirmations: Confirmations,
        registry: CommandRegistry = REGISTRY,
    ) -> None:
        self.rescuer = rescuer
        self.confirmations = confirmations
        self.registry = registry

    def wants(self, text: str, sender: Sender) -> bool:
        """Whether :meth:`handle` answers ``text``: a ``/rescue`` command, or the sender's
        answer to a change waiting for its confirmation."""
        if is_command(text):
            return True
        word = text.strip().lower()
        pending = self.confirmations.waiting(sender.key)
        return pending is not None and (word in YES or word == pending.code)

    def handle(self, text: str, sender: Sender) -> str | None:
        """The reply to ``text``, or ``None`` when it is not for us (see :meth:`wants`).
        Blocking (a restart waits for the target): call it in a worker thread."""
        if not self.wants(text, sender):
            return None
        try:
            return _fit(self._handle(text, sender))
        except MoltbotError as exc:
            hint = f"\n{exc.hint}" if exc.hint else ""
            return _fit(f"{_label(exc)}: {exc.message}{hint}")

    def _handle(self, text: str, sender: Sender) -> str:
        if not is_command(text):
            return self._confirm(text, sender)
        try:
            self._owner(sender)
        except NotOwner as exc:
            request = _quiet_parse(text)
            self.rescuer.audit.append(
                sender.actor,
                request.target if request else "-",
                request.op if request else "-",
                "refused",
                message=exc.message,
            )
            raise
        names = self.rescuer.grants.names()
        parsed = parse(text, names[0] if len(names) == 1 else None)
        if parsed.word == "help":
            return help_text(names)
        if parsed.word == "confirm":
            return self._confirm(parsed.code or "", sender)
        if parsed.word == "overview":
            return self.rescuer.overview(sender.actor).text
        if parsed.word == "audit":
            return self.rescuer.recent(parsed.count, parsed.target).text
        if parsed.word == "cancel":
            dropped = self.confirmations.cancel(sender.key)
            self.registry.forget_answer(sender.key, NAME)
            return f"Cancelled: {dropped.change.summary}" if dropped else "Nothing to cancel."
        assert parsed.request is not None
        result = self.rescuer.run(sender.actor, parsed.request)
        if isinstance(result, Outcome):
            return result.text
        return self.ask(sender.key, result)

    def ask(self, actor_key: str, change: Change) -> str:
        """Register ``change`` for confirmation by ``actor_key``; the question to show."""
        pending = self.confirmations.ask(actor_key, change)
        seconds = int(self.confirmations.ttl)
        self._await_answer(pending)
        return (
            f"Confirm: {change.summary}?\n"
            f"Reply yes or {pending.code} within {seconds} s (anything else: nothing happens)."
        )

    def _await_answer(self, pending: Pending) -> None:
        """Have the command layer hand the asker's plain ``yes`` or code back to us."""
        ttl = pending.expires_at - self.confirmations.clock()
        if ttl > 0 and self.registry.get(NAME) is not None:
            self.registry.expect(pending.actor_key, NAME, {*YES, pending.code}, ttl)

    def _confirm(self, answer: str, sender: Sender) -> str:
        try:
            self._owner(sender)
        except NotOwner as exc:  # someone else in that conversation: the asker still may
            waiting = self.confirmations.waiting(sender.key)
            request = waiting.change.request if waiting is not None else None
            self.rescuer.audit.append(
                sender.actor,
                request.target if request else "-",
                request.op if request else "-",
                "refused",
                message=f"confirmation: {exc.message}",
            )
            if waiting is not None:
                self._await_answer(waiting)
            raise
        pending = self.confirmations.take(sender.key, answer)
        self.registry.forget_answer(sender.key, NAME)
        if pending is None:
            return "Nothing is waiting for your confirmation (it may have expired): ask again."
        return self.rescuer.apply(sender.actor, pending.change).text

    def _owner(self, sender: Sender) -> None:
        if sender.channel == "webchat":
            if not sender.admin:
                raise NotOwner("/rescue needs an operator with operator.admin")
            return
        check_owner(
            self.rescuer.settings.owners,
            sender.channel,
            sender.keys,
            sender.normalize,
            sender.label,
        )


def help_text(targets: list[str]) -> str:
    example = targets[0] if targets else "main"
    return "\n".join(
        [
            "/rescue — repair another instance (owners only; no model needed)",
            f"/rescue status {example}",
            f"/rescue logs {example} [N] [TEXT]",
            f"/rescue doctor {example}",
            f"/rescue config validate|diff|history {example}",
            f"/rescue config get {example} [KEY]",
            f"/rescue config restore {example} [N]",
            f"/rescue config set {example} KEY VALUE",
            f"/rescue restart|stop|start {example}",
            "/rescue audit [TARGET] [N] — who did what",
            "Changes ask first: reply yes or the code to confirm.",
            f"Targets: {', '.join(targets) or 'none granted (rescue.targets)'}",
        ]
    )


def _quiet_parse(text: str) -> Request | None:
    try:
        return parse(text, "-").request
    except MoltbotError:
        return None


def _label(exc: MoltbotError) -> str:
    from moltbot.rescue.errors import StartFailed

    if isinstance(exc, NotOwner):
        return "Not allowed"
    if isinstance(exc, StartFailed):
        return "Failed"
    return "Refused" if exc.exit_code in (2, 3, 7, 9, 78) else "Failed"


def _fit(text: str) -> str:
    return text if len(text) <= MAX_REPLY else text[: MAX_REPLY - 12] + "\n… (cut)"


async def rescue_command(ctx: CommandContext) -> str:
    """``/rescue ...`` (or the sender's plain answer to its question), answered by this
    gateway's rescue subsystem."""
    service = ctx.lookup(RESCUE)
    if service is None:
        raise RetryLaterError("rescue is not running in this gateway")
    text = ctx.args if ctx.answer else f"/{NAME} {ctx.args}".strip()
    return await service.command(text, Sender.of(ctx))


def register(registry: CommandRegistry) -> None:
    """Declare ``/rescue`` in ``registry`` (the ``moltbot.commands`` entry point). Not
    owner-only in the command layer's sense: its owners are ``rescue.owners`` (and
    WebChat operators with ``operator.admin``), checked — and refusals audited — here."""
    if registry.get(NAME) is None:
        registry.command(
            NAME,
            help="Diagnose and repair another instance (owners; no model needed)",
            usage="/rescue help",
        )(rescue_command)


__all__ = [
    "ChatCommands",
    "Parsed",
    "Sender",
    "help_text",
    "is_command",
    "parse",
    "register",
    "rescue_command",
]
