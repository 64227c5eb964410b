"""The channel contract: what every messaging connection implements.

One :class:`Channel` object serves one account of one platform. The manager
drives it::

    channel = TelegramChannel(context)
    await channel.start()     # open clients, check the credentials (identity)
    await channel.serve()     # receive until cancelled (long poll, socket, or wait for webhooks)
    await channel.stop()      # close everything; idempotent

``start`` and ``serve`` raise :class:`~moltbot.channels.errors.ChannelAuthFailed`
(not retried) or :class:`~moltbot.channels.errors.ChannelNotReady` (retried with
backoff by the manager); any other exception is treated as transient too.
Outbound calls (``send``, ``typing``) work between ``start`` and ``stop``, also
while ``serve`` is not running (``moltbot message send`` uses that).

Inbound messages are normalised to :class:`~moltbot.channels.types.InboundMessage`
and handed to ``context.on_inbound``; access control, routing and the agent
run happen outside the channel. Channels never import the gateway or each other.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from moltbot.channels.config import ResolvedAccount
from moltbot.channels.manifest import Capabilities, ChannelManifest
from moltbot.channels.types import (
    AccountStatus,
    InboundMessage,
    Media,
    OutboundMessage,
    SendResult,
)

if TYPE_CHECKING:
    from moltbot.instance.resolve import Instance

InboundHandler = Callable[[InboundMessage], Awaitable[None]]


@dataclass(frozen=True)
class NativeCommands:
    """The chat commands as a platform's native menu: ``commands.native`` and the menu."""

    setting: bool | Literal["auto"] = "auto"
    menu: tuple[tuple[str, str], ...] = ()
    """``(name, description)`` of every command (see ``CommandRegistry.menu``)."""
    usages: tuple[tuple[str, str], ...] = ()
    """``(name, usage)`` of the commands of the menu that take arguments
    (``("model", "/model [name|number]")``): platforms with typed options (Discord)
    give those an argument field."""
    owner_only: frozenset[str] = frozenset()
    """Names of the menu's commands only owners may run (``owner_only=True``)."""

    def public_menu(self) -> tuple[tuple[str, str], ...]:
        """The entries of the menu anyone may run."""
        return tuple(entry for entry in self.menu if entry[0] not in self.owner_only)


@dataclass(frozen=True)
class CommandOwners:
    """Who may run owner-only commands in one channel account: everyone (when
    ``commands.useAccessGroups`` is off), or the senders with one of ``keys``
    (normalised allowlist entries, see ``InboundPipeline.owners``)."""

    everyone: bool = False
    keys: frozenset[str] = frozenset()

    def include(self, sender_keys: Collection[str]) -> bool:
        return self.everyone or any(key.lower() in self.keys for key in sender_keys)


def _no_owners(channel: Channel) -> CommandOwners:
    return CommandOwners()


@dataclass
class ChannelContext:
    """What a channel may use. Nothing else of the process is reachable from it."""

    account: ResolvedAccount[Any]
    status: AccountStatus
    on_inbound: InboundHandler
    state_dir: Path
    """The channel's own directory (``<state>/<channel>/``): offsets, downloaded media."""
    logger: logging.LoggerAdapter[logging.Logger]
    native_commands: NativeCommands = NativeCommands()
    owners: Callable[[Channel], CommandOwners] = _no_owners
    """The owners of this account now: the same answer the inbound pipeline gives
    when an owner-only command arrives (so a native menu never disagrees with it)."""

    @property
    def account_id(self) -> str:
        return self.account.account_id

    @property
    def config(self) -> Any:
        return self.account.config


class AccountLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every line with ``[<channel>:<account>]``."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['channel']}:{self.extra['account']}] {msg}", kwargs


def channel_context(
    instance: Instance,
    account: ResolvedAccount[Any],
    status: AccountStatus,
    on_inbound: InboundHandler,
    native_commands: NativeCommands | None = None,
    owners: Callable[[Channel], CommandOwners] | None = None,
) -> ChannelContext:
    """The context of one account of a channel of ``instance``."""
    logger = AccountLog(
        logging.getLogger(f"moltbot.channels.{account.channel}"),
        {"channel": account.channel, "account": account.account_id},
    )
    return ChannelContext(
        account=account,
        status=status,
        on_inbound=on_inbound,
        state_dir=instance.channel_dir(account.channel),
        logger=logger,
        native_commands=native_commands or NativeCommands(),
        owners=owners or _no_owners,
    )


class Channel(ABC):
    """Base class of every channel. Subclasses set ``manifest`` (their package's
    ``MANIFEST``) and may override the class attributes."""

    manifest: ClassVar[ChannelManifest]
    text_limit: ClassVar[int] = 4000
    """Hard platform limit of one text message; ``textChunkLimit`` may only lower it."""
    default_reply_to_mode: ClassVar[str] = "off"
    native_commands_default: ClassVar[bool] = False
    """Whether ``commands.native: "auto"`` registers a native command menu here."""

    team_id: str | None = None
    """Workspace/team id once known (Slack), for ``match.teamId`` bindings."""

    def __init__(self, context: ChannelContext) -> None:
        self.context = context
        self.log = context.logger

    @property
    def account_id(self) -> str:
        return self.context.account_id

    @property
    def label(self) -> str:
        return self.manifest.label

    @property
    def capabilities(self) -> Capabilities:
        return self.manifest.capabilities

    @property
    def status(self) -> AccountStatus:
        return self.context.status

    # -- lifecycle ----------------------------------------------------------

    @abstractmethod
    async def start(self) -> None:
        """Open clients and verify the credentials; fill ``status.bot_*``."""

    @abstractmethod
    async def serve(self) -> None:
        """Receive messages until cancelled. Raise ChannelNotReady when the
        connection is lost and cannot be recovered here."""

    @abstractmethod
    async def stop(self) -> None:
        """Release every client and task. Safe to call twice or after a failed start."""

    async def probe(self) -> dict[str, Any]:
        """Check the credentials against the platform now; return what it said."""
        return {"ok": True}

    # -- outbound -----------------------------------------------------------

    @abstractmethod
    async def send(self, target: str, message: OutboundMessage) -> SendResult:
        """Send to ``target`` (a platform chat id or a channel-specific target
        string), chunked and formatted. Raises TargetError / ChannelNotReady."""

    def streams_replies(self) -> bool:
        """Show replies while the model writes them: one message, then :meth:`edit`
        as the text grows (the channel's ``streaming`` setting, where it has one)."""
        return False

    def streams_blocks(self) -> bool:
        """While streaming, edit only when a paragraph of the reply is complete (a blank
        line), not as every word arrives (Telegram's ``streamMode: "block"``)."""
        return False

    async def edit(self, target: str, message_id: str, message: OutboundMessage) -> None:
        """Replace the text of a message this account sent (one chunk, no media).
        Raises TargetError / ChannelNotReady."""
        from moltbot.channels.errors import UnsupportedMessage

        raise UnsupportedMessage(f"{self.manifest.id} cannot edit messages")

    async def download_media(self, media: Media, max_bytes: int) -> bytes:
        """The bytes of an inbound attachment (``media.remote_id``), at most
        ``max_bytes`` (raise :class:`~moltbot.sessions.media.MediaTooLarge` beyond).
        Called by the pipeline only for messages that reach the agent."""
        from moltbot.channels.errors import UnsupportedMessage

        raise UnsupportedMessage(f"{self.manifest.id} cannot download attachments")

    def media_max_bytes(self) -> int:
        """The account's ``mediaMaxMb`` in bytes."""
        return int(float(getattr(self.context.config, "media_max_mb", 20)) * 1024 * 1024)

    async def logout(self) -> dict[str, Any]:
        """Invalidate this account's session on the platform where it has one (Matrix:
        the access token) and forget the channel's own state for it (sync tokens,
        device keys). Called on a stopped channel; the generic part (removing the
        credentials from the config) is the manager's. Returns what was done."""
        return {"loggedOut": False}

    async def acknowledge(self, message: InboundMessage) -> None:
        """Show the sender that the agent took the message on (Discord: a reaction);
        best effort, called before the agent runs."""
        return None

    async def typing(self, chat_id: str, thread_id: str | None = None) -> None:
        """Show a typing indicator, where the platform has one (best effort)."""
        return None

    def reply_target(self, message: InboundMessage) -> str:
        """The target string that answers ``message`` in its conversation."""
        return message.chat_id

    # -- identity and access ------------------------------------------------

    @classmethod
    def normalize_allow_entry(cls, entry: str) -> str:
        """An ``allowFrom`` entry in the form :meth:`sender_keys` produces."""
        entry = entry.strip()
        prefix = f"{cls.manifest.id}:"
        if entry.lower().startswith(prefix):
            entry = entry[len(prefix) :]
        return entry.lower()

    def sender_keys(self, message: InboundMessage) -> Collection[str]:
        """Every allowlist key that identifies the sender (id, handle...)."""
        return {message.sender.id.lower()}

    def group_aliases(self, message: InboundMessage) -> Collection[str]:
        """Other keys a group may be listed under in the config (e.g. ``#name``)."""
        return ()

    def pairing_id(self, message: InboundMessage) -> str:
        """The id recorded when the owner approves this sender."""
        return message.sender.id

    # -- conversations --------------------------------------------------------

    def peer_id(self, message: InboundMessage) -> str:
        """The peer a binding's ``match.peer.id`` and the session key name: the
        sender in a DM, else the chat."""
        return message.sender.id if message.chat_type == "direct" else message.chat_id

    def session_thread(self, message: InboundMessage) -> str | None:
        """A thread that gets its own session (``<key>:thread:<id>``), or None."""
        return message.thread_id

    def native_command(self, message: InboundMessage, name: str) -> bool:
        """Whether ``message`` invokes ``/name`` natively (a Discord or Slack slash
        command), so it is a command even with ``commands.text: false``."""
        return message.native_command

    def route_target(self, message: InboundMessage) -> str:
        """Where later messages to this conversation go (the session's recorded route,
        used by heartbeats, cron and the ``message`` tool): the reply target, unless that
        is short-lived."""
        return self.reply_target(message)

    def group_topic(self, message: InboundMessage) -> str | None:
        """The key of the group's per-topic settings (``groups.<id>.topics.<key>``), or None."""
        return None

    def text_measure(self) -> Callable[[str], int]:
        """How the platform counts the length of a text against its limits."""
        return len

    def text_chunk_limit(self) -> int:
        configured = getattr(self.context.config, "text_chunk_limit", None)
        return min(configured or self.text_limit, self.text_limit)

    def native_menu(self) -> tuple[tuple[str, str], ...] | None:
        """The command menu to register natively, ``()`` to clear one registered before
        (the setting is ``false``), or None to leave the platform alone (``auto`` on a
        platform where that means off). ``channels.<name>.commands.native`` overrides
        ``commands.native``."""
        native = self.context.native_commands
        setting = self.context.config.commands.native
        if setting is None:
            setting = native.setting
        if setting == "auto":
            return native.menu if self.native_commands_default else None
        return native.menu if setting else ()
