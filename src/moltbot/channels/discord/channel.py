"""The Discord channel: a discord.py ``Client`` against ``apiRoot``.

``start`` logs in (``GET /users/@me``: a refused token is
:class:`~moltbot.channels.errors.ChannelAuthFailed`) and asks the API for its
gateway URL (``GET /gateway/bot``); ``serve`` runs the gateway connection
(IDENTIFY, heartbeats, and RESUME after a dropped connection, all done by
discord.py) until it ends. A close with 4004 (token revoked) is an auth failure;
anything else a transient one the manager retries with backoff.

Inbound: DMs and guild channel messages (threads carry the parent channel as the
conversation and the thread as ``thread_id``); the bot's own ``<@id>`` mention
is stripped and counts as a mention, as does a reply to one of its messages.
The chat commands (``moltbot.commands``: ``/new``, ``/status``, ``/stop`` ...) are
registered as slash commands at startup (``commands.native``, on by default here),
a command with arguments getting an optional ``args`` field; a slash command is
acknowledged privately, then handled as that chat command from that user in that
channel (also with ``commands.text`` off). A message the agent takes on gets the
``ackReaction`` (👀). Outbound: Markdown as is (Discord renders it), split at
2000 characters and ``maxLinesPerMessage`` lines without cutting a code block;
files attached to the last chunk; rate limits are discord.py's (it waits out
429s per route bucket).

discord.py keeps one API base per process (``discord.http.Route.BASE``): every
Discord account of a gateway must use the same ``apiRoot``.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

from moltbot.channels.base import Channel, ChannelContext
from moltbot.channels.discord.config import DiscordAccountConfig
from moltbot.channels.discord.manifest import MANIFEST
from moltbot.channels.discord.normalize import chunk_reply, normalize_message, sender_of
from moltbot.channels.errors import (
    ChannelAuthFailed,
    ChannelNotReady,
    TargetError,
    UnsupportedMessage,
)
from moltbot.channels.types import InboundMessage, Media, OutboundMessage, SendResult

T = TypeVar("T")

API_VERSION = 10
MAX_SLASH_COMMANDS = 100
"""Discord's limit of global chat-input commands per application."""
_TARGET = re.compile(r"^(?:(user|channel|dm):)?<?[@#]?!?(\d{1,25})>?$", re.I)


class DiscordChannel(Channel):
    manifest = MANIFEST
    text_limit = 2000
    default_reply_to_mode = "off"
    native_commands_default = True

    def __init__(self, context: ChannelContext) -> None:
        super().__init__(context)
        self.config: DiscordAccountConfig = context.config
        self.client: Any = None
        self.bot_id: str | None = None
        self._dm_channels: dict[str, str] = {}

    def text_chunk_limit(self) -> int:
        return min(self.config.text_chunk_limit or self.text_limit, self.text_limit)

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        import discord
        import yarl
        from discord.gateway import DiscordWebSocket

        token = (self.config.token or "").strip()
        if not token:
            raise ChannelAuthFailed("discord bot token is empty", hint="set channels.discord.token")
        discord.http.Route.BASE = f"{self.config.api_root}/v{API_VERSION}"
        intents = discord.Intents.default()
        intents.message_content = True
        client = _Client(self, intents=intents)
        self.client = client  # stop() closes it, also when the token is refused below
        await self._call(lambda: client.login(token))
        _shards, url, _limit = await self._call(client.http.get_bot_gateway)
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        user = client.user
        self.bot_id = str(user.id)
        self.status.bot_id = self.bot_id
        self.status.bot_username = user.name

    async def serve(self) -> None:
        import discord

        client = self._client()
        try:
            await client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            raise ChannelAuthFailed(
                "discord refused the Message Content intent",
                hint="enable Message Content Intent for the bot in the Developer Portal",
            ) from None
        except discord.ConnectionClosed as exc:
            if exc.code == 4004:
                raise ChannelAuthFailed(
                    "discord closed the gateway: authentication failed (token revoked?)",
                    hint="set a new channels.discord.token",
                ) from None
            raise ChannelNotReady(f"discord gateway closed ({exc.code}: {exc.reason})") from None
        except (discord.GatewayNotFound, OSError) as exc:
            raise ChannelNotReady(f"discord gateway unreachable: {exc}") from None
        finally:
            self.status.connected = False

    async def stop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                await client.close()
            except Exception:
                self.log.debug("closing the discord client failed", exc_info=True)

    async def probe(self) -> dict[str, Any]:
        from discord.http import Route

        me = await self._call(lambda: self._client().http.request(Route("GET", "/users/@me")))
        return {"ok": True, "bot": {"id": str(me["id"]), "username": me.get("username")}}

    # -- events (called by _Client) ----------------------------------------------

    def connected(self) -> None:
        if not self.status.connected:
            self.status.connected = True
            self.status.last_connected_at = time.time()

    def disconnected(self) -> None:
        if self.status.connected:
            self.status.connected = False
            self.status.reconnect_attempts += 1

    async def on_message(self, message: Any) -> None:
        if self.bot_id is None or str(message.author.id) == self.bot_id:
            return
        try:
            inbound = normalize_message(message, account_id=self.account_id, bot_id=self.bot_id)
        except UnsupportedMessage as exc:
            self.log.debug("skipped message %s: %s", message.id, exc.message)
            return
        try:
            await self.context.on_inbound(inbound)
        except ChannelNotReady as exc:
            # The gateway cannot redeliver: the sender has to send it again.
            self.log.warning("message %s not taken: %s", message.id, exc.message)

    def slash_commands(self) -> list[tuple[str, str, str | None]] | None:
        """``(name, description, usage)`` of the slash commands to register (from the
        chat-command registry), ``[]`` to clear those registered before, or None to
        leave them alone (see :meth:`Channel.native_menu`)."""
        menu = self.native_menu()
        if menu is None:
            return None
        usages = dict(self.context.native_commands.usages)
        return [
            (name, description[:100], usages.get(name))
            for name, description in menu[:MAX_SLASH_COMMANDS]
        ]

    async def on_slash(self, interaction: Any, name: str, args: str | None = None) -> None:
        """``/name [args]``: acknowledged at once (only the user sees it), then handled
        as the chat command ``/name args`` from that user in that channel."""
        import discord

        text = f"/{name} {args.strip()}".strip() if args else f"/{name}"
        try:
            await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException as exc:  # expired (3 s) or refused: run it anyway
            self.log.warning("/%s not acknowledged: %s", name, exc)
        channel = interaction.channel
        guild = interaction.guild
        inbound = InboundMessage(
            channel="discord",
            account_id=self.account_id,
            message_id=str(interaction.id),
            chat_type="direct" if guild is None else "channel",
            chat_id=str(interaction.channel_id),
            sender=sender_of(interaction.user),
            text=text,
            raw={"interaction": str(interaction.id), "command": name},
            chat_title=getattr(channel, "name", None),
            was_mentioned=True,
            native_command=True,
        )
        try:
            await self.context.on_inbound(inbound)
        except ChannelNotReady as exc:
            self.log.warning("/%s not taken: %s", name, exc.message)

    # -- outbound -------------------------------------------------------------

    async def resolve_target(self, target: str) -> str:
        """``channel:<id>``, ``<#id>``, ``user:<id>``, ``<@id>`` (opens the DM),
        with an optional ``discord:`` prefix. A bare id is refused: Discord user and
        channel ids look alike."""
        text = target.strip()
        if text.lower().startswith("discord:"):
            text = text[len("discord:") :]
        match = _TARGET.match(text)
        if not match or (match.group(1) is None and not text.startswith("<")):
            raise TargetError(
                f"invalid discord target {target!r}",
                hint="use channel:<id> or user:<id> (a bare id is ambiguous)",
            )
        kind = (match.group(1) or ("user" if text.startswith("<@") else "channel")).lower()
        snowflake = match.group(2)
        if kind == "channel":
            return snowflake
        cached = self._dm_channels.get(snowflake)
        if cached:
            return cached
        opened = await self._call(lambda: self._client().http.start_private_message(snowflake))
        self._dm_channels[snowflake] = str(opened["id"])
        return self._dm_channels[snowflake]

    def reply_target(self, message: InboundMessage) -> str:
        return f"channel:{message.thread_id or message.chat_id}"

    async def send(self, target: str, message: OutboundMessage) -> SendResult:
        import discord

        client = self._client()
        channel_id = await self.resolve_target(target)
        if message.thread_id and target.startswith("channel:") and message.thread_id.isdigit():
            channel_id = message.thread_id
        destination = client.get_partial_messageable(int(channel_id))
        chunks = chunk_reply(
            message.text, self.text_chunk_limit(), self.config.max_lines_per_message
        )
        files = [await self._file(item) for item in message.media]
        reply_all = self.config.reply_to_mode == "all"
        ids: list[str] = []
        steps = max(len(chunks), 1 if files else 0)
        for index in range(steps):
            kwargs: dict[str, Any] = {}
            if index < len(chunks):
                kwargs["content"] = chunks[index]
            if index == steps - 1 and files:
                kwargs["files"] = files
            if message.reply_to_id and message.reply_to_id.isdigit() and (reply_all or not ids):
                kwargs["reference"] = discord.MessageReference(
                    message_id=int(message.reply_to_id),
                    channel_id=int(channel_id),
                    fail_if_not_exists=False,
                )
                kwargs["mention_author"] = False
            sent = await self._call(lambda kwargs=kwargs: destination.send(**kwargs))
            ids.append(str(sent.id))
        if not ids:
            raise TargetError("nothing to send: the message has no text and no media")
        return SendResult("discord", self.account_id, channel_id, tuple(ids))

    async def _file(self, item: Media) -> Any:
        import discord

        from moltbot.channels.media import fetch_url

        name = item.file_name or "file"
        if item.url:
            data = await fetch_url(item.url, self.media_max_bytes(), what="media")
            return discord.File(io.BytesIO(data), filename=name)
        path = Path(item.path or "")
        if not path.is_file():
            raise TargetError(f"media file not found: {item.path}")
        data = await asyncio.to_thread(path.read_bytes)
        return discord.File(io.BytesIO(data), filename=name)

    async def download_media(self, media: Media, max_bytes: int) -> bytes:
        from moltbot.channels.media import fetch_url

        if not media.remote_id:
            raise TargetError("the attachment has no URL")
        return await fetch_url(media.remote_id, max_bytes, what=f"discord {media.kind}")

    async def typing(self, chat_id: str, thread_id: str | None = None) -> None:
        client = self.client
        if client is not None:
            await self._call(lambda: client.http.send_typing(int(thread_id or chat_id)))

    async def acknowledge(self, message: InboundMessage) -> None:
        emoji = (self.config.ack_reaction or "").strip()
        client = self.client
        if not emoji or client is None or not message.message_id.isdigit():
            return
        channel_id = int(message.thread_id or message.chat_id)
        await self._call(
            lambda: client.http.add_reaction(channel_id, int(message.message_id), emoji)
        )

    # -- identity -------------------------------------------------------------

    @classmethod
    def normalize_allow_entry(cls, entry: str) -> str:
        text = str(entry).strip()
        text = re.sub(r"^(discord:|user:)", "", text, flags=re.I)
        return text.strip("<>@!").lower()

    def sender_keys(self, message: InboundMessage) -> Collection[str]:
        keys = {message.sender.id}
        if message.sender.username:
            keys.add(message.sender.username.lower())
        return keys

    def group_aliases(self, message: InboundMessage) -> Collection[str]:
        guild = message.raw.get("guild_id")
        return (f"guild:{guild}",) if guild else ()

    # -- plumbing -------------------------------------------------------------

    def _client(self) -> Any:
        if self.client is None:
            raise ChannelNotReady(f"discord account {self.account_id} is not started")
        return self.client

    async def _call(self, factory: Callable[[], Awaitable[T]]) -> T:
        """A discord.py call; its errors become channel errors (the token never
        appears in them). 429s are waited out by discord.py itself."""
        import aiohttp
        import discord

        try:
            return await factory()
        except discord.LoginFailure:
            raise ChannelAuthFailed(
                "discord refused the bot token", hint="check channels.discord.token"
            ) from None
        except discord.HTTPException as exc:
            if exc.status == 401:
                raise ChannelAuthFailed(
                    "discord refused the bot token (401)", hint="check channels.discord.token"
                ) from None
            if exc.status == 429 or exc.status >= 500:
                raise ChannelNotReady(f"discord API error: HTTP {exc.status} {exc.text}") from None
            raise TargetError(f"discord refused the request: {exc.status} {exc.text}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ChannelNotReady(f"discord API unreachable: {exc or type(exc).__name__}") from None


def _client_class() -> type:
    import discord
    from discord import app_commands

    class Client(discord.Client):
        """Hands events to its :class:`DiscordChannel`."""

        def __init__(self, channel: DiscordChannel, **options: Any) -> None:
            super().__init__(**options)
            self.moltbot = channel
            self.tree = app_commands.CommandTree(self)
            self._commands = channel.slash_commands()
            self._synced = False
            for name, description, usage in self._commands or ():
                self.tree.add_command(
                    app_commands.Command(
                        name=name,
                        description=description or name,
                        callback=_slash(channel, name, usage),
                    )
                )

        async def on_ready(self) -> None:
            self.moltbot.connected()
            if self._commands is not None and not self._synced:
                self._synced = True  # once per start: RESUMEs and reconnects do not redo it
                try:
                    await self.tree.sync()
                except discord.HTTPException as exc:
                    self.moltbot.log.warning("slash commands not registered: %s", exc)

        async def on_connect(self) -> None:
            self.moltbot.connected()

        async def on_resumed(self) -> None:
            self.moltbot.connected()

        async def on_disconnect(self) -> None:
            self.moltbot.disconnected()

        async def on_message(self, message: Any) -> None:
            await self.moltbot.on_message(message)

        async def on_error(self, event: str, *args: Any, **kwargs: Any) -> None:
            self.moltbot.log.exception("discord event %s failed", event)

    return Client


def _slash(channel: DiscordChannel, name: str, usage: str | None) -> Any:
    """The callback of ``/name``; with an optional ``args`` text option when the
    command takes arguments (its ``usage``)."""
    import discord
    from discord import app_commands

    if usage is None:

        async def bare(interaction: discord.Interaction) -> None:
            await channel.on_slash(interaction, name)

        bare.__annotations__ = {"interaction": discord.Interaction, "return": None}
        return bare

    async def with_args(interaction: discord.Interaction, args: str | None = None) -> None:
        await channel.on_slash(interaction, name, args)

    with_args.__annotations__ = {
        "interaction": discord.Interaction,
        "args": str | None,
        "return": None,
    }
    return app_commands.describe(args=usage[:100])(with_args)


def _Client(channel: DiscordChannel, **options: Any) -> Any:  # noqa: N802 - a class factory
    return _client_class()(channel, **options)
