"""From an inbound message to the agent's reply: access control, pairing,
routing, the agent turn, and the reply back to the same conversation.

The agent side is one small protocol, :class:`AgentDispatcher`; the gateway's
``agents`` subsystem implements it, tests may pass anything with the same shape.

A message is *accepted* once it is durably queued for the agent (its text is in
the transcript); :meth:`InboundPipeline.handle` tells the caller through
``accepted`` so a channel can confirm it to the platform (advance Telegram's
update offset, acknowledge a Slack envelope) before the reply is ready. When the
agents cannot take it (the gateway is restarting) ``handle`` raises
:class:`~moltbot.errors.RetryLaterError` and the channel must not confirm it:
the platform delivers it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from moltbot.channels import access, registry, routing
from moltbot.channels.base import Channel, CommandOwners
from moltbot.channels.errors import ChannelError
from moltbot.channels.media import split_media_lines
from moltbot.channels.pairing import PairingStore
from moltbot.channels.streaming import ReplyStream
from moltbot.channels.types import InboundMessage, Media, OutboundMessage
from moltbot.commands import REGISTRY, AgentControl, CommandContext, CommandRegistry, Invocation
from moltbot.commands import handle as handle_command
from moltbot.config.schema import PeerKind
from moltbot.errors import MoltbotError, RetryLaterError
from moltbot.lifecycle import Lookup, no_subsystems
from moltbot.sessions.media import MediaStore, StoredMedia
from moltbot.sessions.origin import Origin, OriginMedia

log = logging.getLogger(__name__)

SILENT_REPLY = "NO_REPLY"
TYPING_INTERVAL_S = 5.0
_REPLY_TAG = re.compile(r"\[\[\s*(reply_to_current|reply_to\s*:\s*([^\]\s]+))\s*\]\]")


@runtime_checkable
class AgentDispatcher(Protocol):
    """What channels need from the agents: run one turn, name the agent."""

    async def respond(
        self,
        agent_id: str,
        session_key: str,
        text: str,
        *,
        origin: Origin | None = None,
        on_accepted: Callable[[], None] | None = None,
        media: Sequence[StoredMedia] = (),
        on_text: Callable[[str], None] | None = None,
    ) -> str:
        """Run one turn in ``session_key`` and return the final reply text; call
        ``on_accepted`` once the message is durably queued. ``media`` are the
        message's attachments, stored in the session's media dir; ``on_text`` (passed
        only to stream a reply) gets the reply so far as the model writes it. Raises
        :class:`RetryLaterError` when it cannot be queued now."""
        ...

    def resolve_agent(self, agent_id: str | None) -> str:
        """The id of an existing agent for ``agent_id`` (the default one for None/unknown)."""
        ...


class TtlCache:
    """Keys seen recently (inbound dedupe): at most ``size`` keys, each for ``ttl`` seconds."""

    def __init__(self, ttl: float = 1200.0, size: int = 5000) -> None:
        self.ttl = ttl
        self.size = size
        self._items: OrderedDict[str, float] = OrderedDict()

    def seen(self, key: str) -> bool:
        """True when ``key`` was seen within the TTL; records it otherwise."""
        now = time.monotonic()
        while self._items:
            oldest, at = next(iter(self._items.items()))
            if now - at < self.ttl and len(self._items) <= self.size:
                break
            self._items.pop(oldest)
        if key in self._items:
            return True
        self._items[key] = now
        return False

    def forget(self, key: str) -> None:
        """Let ``key`` be seen again (its message was not handled after all)."""
        self._items.pop(key, None)


class GroupHistory:
    """Group messages that did not trigger a reply, kept as context for the next one."""

    def __init__(self, max_keys: int = 1000) -> None:
        self.max_keys = max_keys
        self._entries: OrderedDict[str, list[str]] = OrderedDict()

    def add(self, key: str, line: str, limit: int) -> None:
        if limit <= 0:
            return
        entries = self._entries.setdefault(key, [])
        self._entries.move_to_end(key)
        entries.append(line)
        del entries[:-limit]
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)

    def take(self, key: str) -> list[str]:
        return self._entries.pop(key, [])


@dataclass(frozen=True)
class PipelineSettings:
    profile: str = "default"
    mention_patterns: tuple[str, ...] = ()
    command: str = "moltbot"
    text_commands: bool = True
    """``commands.text``: parse ``/commands`` in messages."""
    use_access_groups: bool = True
    """``commands.useAccessGroups``: owner-only commands need an owner."""
    owner_allow_from: tuple[str, ...] = ()
    """``commands.ownerAllowFrom``: when set, the only owners."""


class InboundPipeline:
    """Handles every inbound message of every channel account."""

    def __init__(
        self,
        *,
        routing_table: Callable[[], routing.RoutingTable],
        dispatcher: Callable[[], AgentDispatcher | None],
        pairing_store: Callable[[str], PairingStore],
        settings: PipelineSettings | None = None,
        media_store: Callable[[str], MediaStore] | None = None,
        commands: CommandRegistry = REGISTRY,
        lookup: Lookup = no_subsystems,
    ) -> None:
        self._routing_table = routing_table
        self._lookup = lookup
        self._dispatcher = dispatcher
        self._pairing_store = pairing_store
        self._media_store = media_store
        """agent id -> where its sessions' attachments go (None: attachments are
        only described, never downloaded)."""
        self.settings = settings or PipelineSettings()
        self.commands = commands
        self.dedupe = TtlCache()
        self.history = GroupHistory()
        self._locks: OrderedDict[str, asyncio.Lock] = OrderedDict()

    async def handle(
        self,
        channel: Channel,
        message: InboundMessage,
        accepted: Callable[[], None] | None = None,
    ) -> str:
        """Process one message; returns what happened (for logs and tests):
        ``duplicate``, ``dropped:<reason>``, ``paired``, ``history``, ``silent``,
        ``replied``, ``failed``. ``accepted()`` is called once the agent has queued
        the message durably. Raises :class:`RetryLaterError` (message not taken)."""
        key = (
            f"{message.channel}|{message.account_id}|{message.chat_id}|"
            f"{message.thread_id or ''}|{message.message_id}"
        )
        if self.dedupe.seen(key):
            return "duplicate"
        try:
            return await self._handle(channel, message, accepted)
        except RetryLaterError:
            self.dedupe.forget(key)
            raise

    async def _handle(
        self, channel: Channel, message: InboundMessage, accepted: Callable[[], None] | None
    ) -> str:
        channel.status.last_inbound_at = time.time()
        config = channel.context.config
        if message.sender.is_bot and not config.allow_bots:
            return "dropped:bot"
        sender_keys = channel.sender_keys(message)
        store = self._pairing_store(message.channel)
        allow_from = [channel.normalize_allow_entry(e) for e in config.allow_from]
        paired = [channel.normalize_allow_entry(e) for e in store.allowed()]
        history_lines: list[str] = []
        group_prompt: str | None = None
        invocation = self._parse_command(channel, message)
        owner = invocation is not None and self.owners(channel).include(sender_keys)
        if message.chat_type == "direct":
            decision = access.decide_dm(config.dm_policy, sender_keys, allow_from, paired)
            if decision.action == "pair":
                return await self._pair(channel, message, store)
            if decision.action == "drop":
                return f"dropped:{decision.reason}"
        else:
            group_allow = (
                [channel.normalize_allow_entry(e) for e in config.group_allow_from]
                if config.group_allow_from is not None
                else [*allow_from, *paired]
            )
            groups = config.group_entries()
            mentioned = (
                message.was_mentioned
                or access.matches_patterns(message.text, self.settings.mention_patterns)
                or owner  # an owner's command needs no mention
            )
            topic = channel.group_topic(message)
            decision = access.decide_group(
                policy=config.group_policy,
                groups=groups,
                group_id=message.chat_id,
                topic_id=topic,
                group_aliases=channel.group_aliases(message),
                sender_keys=sender_keys,
                group_allow_from=group_allow,
                mentioned=mentioned,
                can_detect_mention=message.can_detect_mention,
            )
            history_key = message.conversation_key
            if decision.action == "drop":
                return f"dropped:{decision.reason}"
            if decision.action == "history":
                self.history.add(history_key, _history_line(message), config.history_limit)
                return "history"
            if invocation is not None and invocation.command.owner_only and not owner:
                return "dropped:command not allowed"  # in a group: silently, as upstream
            if invocation is None:
                history_lines = self.history.take(history_key)
            group_prompt = decision.group.system_prompt if decision.group else None
        if invocation is not None:
            return await self._command(channel, message, invocation, owner, accepted)
        return await self._run(channel, message, history_lines, group_prompt, accepted)

    # -- chat commands ------------------------------------------------------------

    def _parse_command(self, channel: Channel, message: InboundMessage) -> Invocation | None:
        """The chat command ``message`` is, when text commands are on (or it is a native
        command: a Discord or Slack slash command, an entry of Telegram's menu) and it is
        addressed to this bot (``/status@OtherBot`` is not), or the sender's answer to a
        command's question (``yes`` after ``/rescue restart main``)."""
        if not message.text.startswith("/"):
            if not (self.settings.text_commands or message.native_command):
                return None
            return self.commands.answer(conversation_key(channel, message), message.text)
        invocation = self.commands.parse(message.text)
        if invocation is None:
            return None
        if not self.settings.text_commands and not channel.native_command(
            message, invocation.command.name
        ):
            return None
        if invocation.addressed_to is None:
            return invocation
        mine = channel.status.bot_username
        return invocation if mine and invocation.addressed_to.lower() == mine.lower() else None

    def _commands_on(self, channel: Channel, message: InboundMessage) -> bool:
        """Whether ``message`` may be a command: text commands are on, or its first word
        is in the platform's native menu."""
        if self.settings.text_commands:
            return True
        first = message.text[1:].split(maxsplit=1)[0] if message.text.startswith("/") else ""
        return bool(first) and channel.native_command(message, first.split("@")[0].lower())

    def owners(self, channel: Channel) -> CommandOwners:
        """Who may run owner-only commands in ``channel``'s account: anyone when
        ``useAccessGroups`` is off; else the senders in ``commands.ownerAllowFrom``
        when that is set (``"<channel>:<id>"`` entries of other channels left out),
        else the senders on the channel's allowlist (``allowFrom`` or approved by
        pairing; ``"*"`` does not make strangers owners). Native menus use this too."""
        settings = self.settings
        if not settings.use_access_groups:
            return CommandOwners(everyone=True)
        normalize = channel.normalize_allow_entry
        name = channel.manifest.id
        if settings.owner_allow_from:
            entries = []
            for entry in settings.owner_allow_from:
                scope, sep, rest = entry.partition(":")
                if sep and scope.lower() in registry.names():
                    if scope.lower() != name:
                        continue
                    entry = rest
                entries.append(normalize(entry))
            return CommandOwners(keys=frozenset(entries))
        allowed = [*channel.context.config.allow_from, *self._pairing_store(name).allowed()]
        return CommandOwners(keys=frozenset(normalize(e) for e in allowed) - {"*"})

    async def _command(
        self,
        channel: Channel,
        message: InboundMessage,
        invocation: Invocation,
        owner: bool,
        accepted: Callable[[], None] | None,
    ) -> str:
        """Run a chat command before any model and send its reply (plain text). The
        message is confirmed to the platform first: a command is never run twice (a
        restart it asked for, after a crash), and a long one (``/compact``, ``/rescue
        restart``) does not hold up the conversation's next messages."""
        if accepted is not None:
            accepted()
        dispatcher = self._dispatcher()
        route = self._route(channel, message, dispatcher)
        target = channel.reply_target(message)
        agents = dispatcher if isinstance(dispatcher, AgentControl) else None

        async def reply(text: str) -> None:
            await self._safe_send(
                channel, target, OutboundMessage(text=text, plain=True, thread_id=message.thread_id)
            )

        ctx = CommandContext(
            name=invocation.command.name,
            args=invocation.args,
            text=message.text.strip(),
            surface=message.channel,
            sender=f"{message.channel}:{message.sender.id}",
            sender_name=message.sender.label,
            agent_id=route.agent_id,
            session_key=route.session_key,
            is_owner=owner,
            chat_type=message.chat_type,
            reply=reply,
            registry=self.commands,
            origin=build_origin(channel, message, route, None),
            agents=agents,
            conversation=conversation_key(channel, message),
            sender_keys=frozenset(channel.sender_keys(message)),
            normalize=channel.normalize_allow_entry,
            lookup=self._lookup,
            answer=invocation.answer,
        )
        result = await handle_command(invocation, ctx)
        if result.text:
            await reply(result.text)
        return f"command:{invocation.command.name}"

    @staticmethod
    def _peer_kind(message: InboundMessage) -> PeerKind:
        return "dm" if message.chat_type == "direct" else message.chat_type

    def _route(
        self, channel: Channel, message: InboundMessage, dispatcher: AgentDispatcher | None
    ) -> routing.Route:
        """Agent and session of ``message``: the bindings, then the agent the runtime
        knows (a binding naming an unknown agent falls back to the default one)."""
        table = self._routing_table()
        peer = routing.Peer(self._peer_kind(message), channel.peer_id(message))
        thread = channel.session_thread(message)
        route = routing.resolve_route(
            table,
            channel=message.channel,
            account_id=message.account_id,
            peer=peer,
            team_id=channel.team_id,
            thread_id=thread,
        )
        if dispatcher is None:
            return route
        try:
            resolved = dispatcher.resolve_agent(route.agent_id)
        except Exception:  # a binding names an agent the runtime does not know
            channel.log.warning(
                "agent %s unknown to the runtime; using the default", route.agent_id
            )
            resolved = dispatcher.resolve_agent(None)
        return routing.with_agent(route, table.session, resolved, peer, thread)

    async def _pair(self, channel: Channel, message: InboundMessage, store: PairingStore) -> str:
        sender_id = channel.pairing_id(message)
        meta = {
            "accountId": message.account_id,
            "name": message.sender.name,
            "username": message.sender.username,
            "chatId": message.chat_id,
        }
        request, created = await asyncio.to_thread(
            store.request, sender_id, {k: v for k, v in meta.items() if v}
        )
        if request is None:
            return "dropped:too many pending pairing requests"
        if not created:
            return "dropped:pairing pending"
        text = pairing_message(
            channel.label,
            sender_id,
            request.code,
            message.channel,
            self.settings.profile,
            self.settings.command,
        )
        try:
            await channel.send(
                channel.reply_target(message), OutboundMessage(text=text, plain=True)
            )
        except ChannelError as exc:
            channel.log.warning("could not send the pairing code: %s", exc.message)
        return "paired"

    async def _run(
        self,
        channel: Channel,
        message: InboundMessage,
        history: list[str],
        group_prompt: str | None,
        accepted: Callable[[], None] | None = None,
    ) -> str:
        dispatcher = self._dispatcher()
        target = channel.reply_target(message)
        if dispatcher is None:
            channel.log.warning(
                "no agent runtime available; dropping message %s", message.message_id
            )
            await self._safe_send(
                channel,
                target,
                OutboundMessage(
                    text="⚠️ The assistant is not available right now. Try again later.",
                    plain=True,
                    thread_id=message.thread_id,
                ),
            )
            return "failed"
        route = self._route(channel, message, dispatcher)
        if isinstance(dispatcher, AgentControl) and self._commands_on(channel, message):
            prompt = dispatcher.skill_request(route.agent_id, message.text)
            if prompt is not None:  # /<skill> [input]: the agent is told to use the skill
                message = replace(message, text=prompt)
        stored, missing = await self._store_media(channel, message, route.agent_id, route)
        text = agent_text(replace(message, media=missing), history)
        origin = build_origin(channel, message, route, group_prompt, stored)
        extra: dict[str, Any] = {"media": stored} if stored else {}
        stream = self._stream(channel, message, target)
        if stream is not None:
            extra["on_text"] = stream.update
        async with self._lock(route.session_key):
            try:
                await channel.acknowledge(message)
            except Exception as exc:  # a missing reaction never stops the reply
                channel.log.debug("acknowledging %s failed: %s", message.message_id, exc)
            typing = asyncio.create_task(self._keep_typing(channel, message))
            try:
                reply = await dispatcher.respond(
                    route.agent_id,
                    route.session_key,
                    text,
                    origin=origin,
                    on_accepted=accepted,
                    **extra,
                )
            except (asyncio.CancelledError, RetryLaterError):
                if stream is not None:
                    await stream.stop()
                raise
            except Exception as exc:  # the agent failed: tell the user, keep serving
                if stream is not None:
                    await stream.stop()
                channel.log.exception("agent %s failed on %s", route.agent_id, route.session_key)
                reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                await self._safe_send(
                    channel,
                    target,
                    OutboundMessage(
                        text=f"⚠️ Agent error: {reason}", plain=True, thread_id=message.thread_id
                    ),
                )
                return "failed"
            finally:
                typing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await typing
            return await self._deliver(
                channel, message, target, reply or "", route.agent_id, stream
            )

    def _stream(self, channel: Channel, message: InboundMessage, target: str) -> ReplyStream | None:
        """The live preview of the reply, on a channel set to stream replies."""
        if not channel.streams_replies():
            return None

        def shape(text: str) -> OutboundMessage:
            reply_to = _reply_to(channel, message, None)
            return OutboundMessage(text=text, reply_to_id=reply_to, thread_id=message.thread_id)

        return ReplyStream(
            channel,
            target,
            shape,
            _preview_text,
            silent_prefix=SILENT_REPLY,
            blocks=channel.streams_blocks(),
        )

    async def _store_media(
        self, channel: Channel, message: InboundMessage, agent_id: str, route: routing.Route
    ) -> tuple[tuple[StoredMedia, ...], tuple[Media, ...]]:
        """Download the message's attachments into the session's media dir. Returns
        what was stored and what was not (those are described in the text)."""
        if not message.media or self._media_store is None:
            return (), message.media
        store = self._media_store(agent_id)
        cap = channel.media_max_bytes()
        stored: list[StoredMedia] = []
        missing: list[Media] = []
        for item in message.media:
            try:
                if item.size and item.size > cap:
                    raise MoltbotError(f"{item.size} bytes is over mediaMaxMb")
                if item.path:
                    data = await asyncio.to_thread(_read_file, item.path, cap)
                else:
                    data = await channel.download_media(item, cap)
                saved = await asyncio.to_thread(
                    store.save,
                    route.session_key,
                    data,
                    kind=item.kind,
                    mime_type=item.mime_type,
                    file_name=item.file_name,
                    caption=item.caption,
                    max_bytes=cap,
                )
            except (asyncio.CancelledError, RetryLaterError):
                raise
            except Exception as exc:  # the message still reaches the agent, described
                reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                channel.log.warning("attachment of %s not stored: %s", message.message_id, reason)
                missing.append(item)
                continue
            stored.append(saved)
        return tuple(stored), tuple(missing)

    async def _deliver(
        self,
        channel: Channel,
        message: InboundMessage,
        target: str,
        reply: str,
        agent_id: str | None = None,
        stream: ReplyStream | None = None,
    ) -> str:
        body, reply_to = extract_reply_tags(reply, message)
        if body.strip().startswith(SILENT_REPLY):
            if stream is not None:
                await stream.stop()
            return "silent"
        body, items = split_media_lines(body)
        media = await self._outbound_media(channel, agent_id, items)
        if stream is not None:
            shown = stream.message_id is not None
            body = await stream.finish(body)
            if shown and not body.strip() and not media:
                channel.status.last_outbound_at = time.time()
                return "replied"
        if not body.strip() and not media:
            return "silent"
        reply_to = _reply_to(channel, message, reply_to)
        outbound = OutboundMessage(
            text=body, media=tuple(media), reply_to_id=reply_to, thread_id=message.thread_id
        )
        if await self._safe_send(channel, target, outbound):
            return "replied"
        return "failed"

    async def _outbound_media(
        self, channel: Channel, agent_id: str | None, items: list[str]
    ) -> list[str]:
        """The files of a reply's ``MEDIA:`` lines the agent may send (its workspace or
        its stored media, see ``AgentRuntime.resolve_media``); others are logged and left out."""
        if not items:
            return []
        dispatcher = self._dispatcher()
        resolve = getattr(dispatcher, "resolve_media", None)
        out: list[str] = []
        for item in items:
            try:
                if resolve is None or agent_id is None:
                    if not item.startswith(("http://", "https://")):
                        raise MoltbotError("local files need the agent runtime")
                    out.append(item)
                else:
                    out.append(await resolve(agent_id, item))
            except MoltbotError as exc:
                channel.log.warning("MEDIA %s not sent: %s", item, exc.message)
        return out

    async def _safe_send(self, channel: Channel, target: str, outbound: OutboundMessage) -> bool:
        try:
            await channel.send(target, outbound)
            channel.status.last_outbound_at = time.time()
            return True
        except ChannelError as exc:
            channel.log.warning("reply to %s failed: %s", target, exc.message)
            channel.status.error(f"send failed: {exc.message}")
        except Exception as exc:
            channel.log.exception("reply to %s failed", target)
            channel.status.error(f"send failed: {exc}")
        return False

    async def _keep_typing(self, channel: Channel, message: InboundMessage) -> None:
        if not channel.capabilities.typing:
            return
        while True:
            with contextlib.suppress(Exception):
                await channel.typing(message.chat_id, message.thread_id)
            await asyncio.sleep(TYPING_INTERVAL_S)

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
            while len(self._locks) > 2000:
                oldest, candidate = next(iter(self._locks.items()))
                if candidate.locked():
                    break
                self._locks.pop(oldest)
        self._locks.move_to_end(key)
        return lock


def pairing_message(
    label: str, sender_id: str, code: str, channel: str, profile: str, command: str = "moltbot"
) -> str:
    flag = "" if profile == "default" else f"--profile {profile} "
    return (
        f"Moltbot: access not configured.\n\n"
        f"Your {label} user id: {sender_id}\n\n"
        f"Pairing code: {code}\n\n"
        f"Ask the bot owner to approve with:\n"
        f"{command} {flag}pairing approve {channel} {code}"
    )


def _history_line(message: InboundMessage) -> str:
    return f"{_sender_label(message)}: {_body(message)}"


def _sender_label(message: InboundMessage) -> str:
    sender = message.sender
    name = sender.name or (f"@{sender.username}" if sender.username else None)
    return f"{name} ({sender.id})" if name else sender.id


def _body(message: InboundMessage) -> str:
    parts = [message.text] if message.text else []
    for media in message.media:
        where = f" {media.path}" if media.path else ""
        parts.append(f"<media:{media.kind}>{where}")
    return "\n".join(parts)


def agent_text(message: InboundMessage, history: list[str]) -> str:
    """The prompt text for one inbound message (group sender label, reply context, history)."""
    body = _body(message)
    if message.reply_to and (message.reply_to.text or message.reply_to.sender):
        who = message.reply_to.sender.label if message.reply_to.sender else "unknown"
        quoted = message.reply_to.text or ""
        body = (
            f"[Replying to {who} id:{message.reply_to.message_id}]\n{quoted}\n[/Replying]\n{body}"
        )
    if message.chat_type != "direct":
        body = f"{_sender_label(message)}: {body}"
        if history:
            body = (
                "[Chat messages since your last reply - for context]\n"
                + "\n".join(history)
                + "\n\n[Current message - respond to this]\n"
                + body
            )
    return body


def conversation_key(channel: Channel, message: InboundMessage) -> str:
    """One sender in one conversation: ``<channel>:<account>:<reply target>:<sender id>``
    (a command's awaited answer is keyed by it; an :class:`Origin` names the same)."""
    return ":".join(
        (message.channel, message.account_id, channel.reply_target(message), message.sender.id)
    )


def _read_file(path: str, cap: int) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise MoltbotError("the file is over mediaMaxMb")
    return data


def build_origin(
    channel: Channel,
    message: InboundMessage,
    route: routing.Route,
    group_prompt: str | None,
    stored: Sequence[StoredMedia] = (),
) -> Origin:
    """Where ``message`` came from, recorded on its session (see :class:`Origin`)."""
    group = message.chat_type != "direct"
    return Origin(
        channel=message.channel,
        account_id=message.account_id,
        chat_type=message.chat_type,
        sender=f"{message.channel}:{message.sender.id}",
        to=channel.route_target(message),
        sender_id=message.sender.id,
        sender_name=message.sender.name,
        sender_username=message.sender.username,
        message_id=message.message_id,
        thread_id=message.thread_id,
        was_mentioned=message.was_mentioned,
        label=message.chat_title or message.sender.label,
        session_key=route.session_key,
        main_session_key=route.main_session_key,
        matched_by=route.matched_by,
        timestamp=int(message.timestamp * 1000),
        group_id=message.chat_id if group else None,
        group_subject=message.chat_title if group else None,
        group_system_prompt=group_prompt or None,
        media=tuple(
            OriginMedia(kind=m.kind, path=m.path, mime_type=m.mime_type)
            for m in (stored or message.media)
        )
        or None,
    )


def _reply_to(channel: Channel, message: InboundMessage, tagged: str | None) -> str | None:
    """The message a reply answers: none with ``replyToMode: off``, else the one a
    reply tag named, else (in groups) the message that asked."""
    mode = channel.context.config.reply_to_mode or channel.default_reply_to_mode
    if mode == "off":
        return None
    if tagged is None and message.chat_type != "direct":
        return message.message_id  # in groups, answer the message that asked
    return tagged


def _preview_text(text: str) -> str:
    """What may be shown of a reply still being written: no reply tags or ``MEDIA:``
    lines, nor the start of one not finished yet (``[[reply_to``, a last line ``MED``)."""
    body = _REPLY_TAG.sub("", text)
    opened = body.rfind("[[")
    if opened >= 0 and "]]" not in body[opened:]:
        body = body[:opened]
    head, _, last = body.rpartition("\n")
    start = last.lstrip(" \t")[:6]
    if start and "MEDIA:".startswith(start):
        body = head
    return split_media_lines(body)[0]


def extract_reply_tags(text: str, message: InboundMessage) -> tuple[str, str | None]:
    """Strip ``[[reply_to_current]]`` / ``[[reply_to:<id>]]`` and return the id asked for."""
    reply_to: str | None = None
    for match in _REPLY_TAG.finditer(text):
        reply_to = match.group(2) or message.message_id
    return _REPLY_TAG.sub("", text).strip(), reply_to
