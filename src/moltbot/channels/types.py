"""The values that cross the channel boundary: one inbound message type for
every platform (keeping the raw payload), outbound messages, send results and
account status snapshots."""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ChatType = Literal["direct", "group", "channel"]


class AccountState(enum.StrEnum):
    """Lifecycle of one channel account, reported verbatim by ``channels.status``."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    RETRYING = "retrying"  # failed transiently; waiting for the next attempt
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"  # will not retry until the config changes (e.g. bad token)
    DISABLED = "disabled"


@dataclass(frozen=True)
class Sender:
    id: str
    name: str | None = None
    username: str | None = None
    is_bot: bool = False

    @property
    def label(self) -> str:
        return self.name or (f"@{self.username}" if self.username else self.id)


MediaKind = Literal["image", "document", "audio", "video", "sticker", "voice", "other"]


@dataclass(frozen=True)
class Media:
    """The one media type of the channel contract, both directions.

    Inbound, a channel fills ``remote_id`` (what :meth:`Channel.download_media
    <moltbot.channels.base.Channel.download_media>` needs to fetch it: a Telegram
    ``file_id``, a Slack ``url_private``, a Matrix ``mxc://`` URI, a Discord CDN URL)
    and what the platform says about it; the pipeline downloads it only for
    messages that reach the agent, into the session's media dir (then ``path`` is
    set). Outbound, ``path`` is a local file or ``url`` an http(s) URL, with the
    kind and type sniffed from the content (:meth:`source`).
    """

    kind: MediaKind
    path: str | None = None
    mime_type: str | None = None
    file_name: str | None = None
    size: int | None = None
    remote_id: str | None = None
    caption: str | None = None
    url: str | None = None

    @property
    def is_image(self) -> bool:
        return self.kind in ("image", "sticker") and (self.mime_type or "image/").startswith(
            "image/"
        )

    @classmethod
    def source(cls, item: str | Media) -> Media:
        """An outbound file from a local path or an http(s) URL. A local file's kind
        and type come from its content; a URL's from its extension."""
        if isinstance(item, Media):
            return item
        import mimetypes
        from pathlib import Path

        from moltbot.sessions.media import kind_for, sniff

        if item.startswith(("http://", "https://")):
            name = item.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or None
            mime = mimetypes.guess_type(name or "")[0] or "application/octet-stream"
            return cls(kind_for(mime), url=item, mime_type=mime, file_name=name)
        path = Path(item).expanduser()
        try:
            with path.open("rb") as handle:
                head = handle.read(8192)
            size = path.stat().st_size
        except OSError:  # the channel refuses it when sending: "media file not found"
            return cls("document", path=str(path), file_name=path.name)
        mime = sniff(head, None, path.name)
        return cls(kind_for(mime), path=str(path), mime_type=mime, file_name=path.name, size=size)


@dataclass(frozen=True)
class ReplyContext:
    message_id: str
    sender: Sender | None = None
    text: str | None = None
    to_bot: bool = False


@dataclass(frozen=True)
class InboundMessage:
    """A message received on a channel, normalised.

    ``chat_id`` identifies the conversation on the platform (a Telegram chat
    id, a Slack channel id); ``thread_id`` a topic or thread inside it.
    ``text`` is the user's text with the bot mention kept; ``raw`` is the
    platform payload as received.
    """

    channel: str
    account_id: str
    message_id: str
    chat_type: ChatType
    chat_id: str
    sender: Sender
    text: str
    raw: Mapping[str, Any] = field(repr=False)
    timestamp: float = field(default_factory=time.time)
    thread_id: str | None = None
    chat_title: str | None = None
    was_mentioned: bool = False
    can_detect_mention: bool = True
    reply_to: ReplyContext | None = None
    media: tuple[Media, ...] = ()
    native_command: bool = False
    """A platform's native command (a Discord slash command): ``text`` is that chat
    command, handled as one also when ``commands.text`` is off."""

    @property
    def conversation_key(self) -> str:
        thread = f":{self.thread_id}" if self.thread_id else ""
        return f"{self.channel}:{self.account_id}:{self.chat_id}{thread}"


@dataclass(frozen=True)
class OutboundMessage:
    """What to send. ``text`` is Markdown unless ``plain``; the channel chunks
    it to the platform limit and converts it to the platform's formatting."""

    text: str = ""
    media: tuple[Media, ...] = ()
    """Files to send; local paths and http(s) URLs given as strings are turned into
    :class:`Media` (see :meth:`Media.source`)."""
    reply_to_id: str | None = None
    thread_id: str | None = None
    plain: bool = False

    def __post_init__(self) -> None:
        if any(not isinstance(item, Media) for item in self.media):
            object.__setattr__(self, "media", tuple(Media.source(m) for m in self.media))


@dataclass(frozen=True)
class SendResult:
    channel: str
    account_id: str
    chat_id: str
    message_ids: tuple[str, ...]

    @property
    def message_id(self) -> str | None:
        return self.message_ids[-1] if self.message_ids else None


@dataclass
class AccountStatus:
    """Mutable status of one account, owned by the manager; channels update the
    connection fields. :meth:`snapshot` is the ``channels.status`` shape."""

    channel: str
    account_id: str
    name: str | None = None
    enabled: bool = True
    configured: bool = False
    state: AccountState = AccountState.CREATED
    mode: str | None = None
    token_source: str | None = None
    dm_policy: str | None = None
    connected: bool = False
    reconnect_attempts: int = 0
    restarts: int = 0
    bot_id: str | None = None
    bot_username: str | None = None
    last_start_at: float | None = None
    last_stop_at: float | None = None
    last_connected_at: float | None = None
    last_inbound_at: float | None = None
    last_outbound_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    next_retry_at: float | None = None
    probe: dict[str, Any] | None = None
    last_probe_at: float | None = None

    def error(self, message: str) -> None:
        self.last_error = message
        self.last_error_at = time.time()

    def snapshot(self) -> dict[str, Any]:
        def ms(value: float | None) -> int | None:
            return int(value * 1000) if value is not None else None

        out: dict[str, Any] = {
            "accountId": self.account_id,
            "name": self.name,
            "enabled": self.enabled,
            "configured": self.configured,
            "state": self.state.value,
            "running": self.state is AccountState.RUNNING,
            "connected": self.connected,
            "mode": self.mode,
            "tokenSource": self.token_source,
            "dmPolicy": self.dm_policy,
            "reconnectAttempts": self.reconnect_attempts,
            "restarts": self.restarts,
            "bot": (
                {"id": self.bot_id, "username": self.bot_username}
                if self.bot_id or self.bot_username
                else None
            ),
            "lastStartAt": ms(self.last_start_at),
            "lastStopAt": ms(self.last_stop_at),
            "lastConnectedAt": ms(self.last_connected_at),
            "lastInboundAt": ms(self.last_inbound_at),
            "lastOutboundAt": ms(self.last_outbound_at),
            "lastError": self.last_error,
            "lastErrorAt": ms(self.last_error_at),
            "nextRetryAt": ms(self.next_retry_at),
        }
        if self.probe is not None:
            out["probe"] = self.probe
            out["lastProbeAt"] = ms(self.last_probe_at)
        return out


@dataclass(frozen=True)
class ChannelReport:
    """One channel's part of ``channels.status``: its accounts' statuses and, when
    the channel could not be set up (invalid or unknown config section), why."""

    channel: str
    accounts: tuple[AccountStatus, ...] = ()
    error: str | None = None
