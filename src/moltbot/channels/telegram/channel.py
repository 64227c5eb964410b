"""The Telegram channel: python-telegram-bot's ``ExtBot`` against ``apiRoot``.

Inbound by long polling (``getUpdates``; the offset is kept in
``<state>/telegram/update-offset-<account>.json`` and advances past an update
only once it is handled or durably queued for the agent, so a restart neither
loses nor repeats updates) or by webhook (``setWebhook``; updates arrive through the
gateway's ``/telegram-webhook`` route, see :mod:`.webhook`).

Outbound: Markdown is sent as Telegram HTML and resent as plain text when
Telegram rejects the markup; text longer than the limit (4096 UTF-16 units,
``textChunkLimit`` default 4000) is split without cutting code blocks. With
``streamMode`` a reply is shown while it is written: one message, edited
(``editMessageText``) as the text grows (see :mod:`moltbot.channels.streaming`).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

from moltbot.channels.base import Channel, ChannelContext, CommandOwners
from moltbot.channels.chunking import chunk_text, utf16_len
from moltbot.channels.errors import (
    ChannelAuthFailed,
    ChannelError,
    ChannelNotReady,
    TargetError,
    UnsupportedMessage,
)
from moltbot.channels.markdown import to_telegram_html
from moltbot.channels.telegram.config import TelegramAccountConfig
from moltbot.channels.telegram.manifest import MANIFEST
from moltbot.channels.telegram.normalize import GENERAL_TOPIC, normalize_update
from moltbot.channels.types import InboundMessage, Media, OutboundMessage, SendResult
from moltbot.fsutil import write_json_atomic
from moltbot.sessions.media import MediaTooLarge

T = TypeVar("T")

ALLOWED_UPDATES = ["message"]
_PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp"}
_AUDIO_TYPES = {"audio/mpeg", "audio/mp4", "audio/x-m4a"}
_PARSE_ERROR = re.compile(r"can't parse|parse entities|unsupported start tag|can't find end", re.I)
_NOT_MODIFIED = re.compile(r"message is not modified", re.I)


class TelegramChannel(Channel):
    manifest = MANIFEST
    text_limit = 4096
    default_reply_to_mode = "first"
    native_commands_default = True

    def __init__(self, context: ChannelContext) -> None:
        super().__init__(context)
        self.config: TelegramAccountConfig = context.config
        self.bot: Any = None
        self.bot_id: str | None = None
        self.bot_username: str | None = None
        self._stopped = False
        self._scoping = False
        """Whether owners get their own menu (not when everyone is an owner)."""
        self._scoped: set[int] = set()
        """The private chats that have the owners' menu."""
        self._owner_menu: tuple[tuple[str, str], ...] = ()

    def text_chunk_limit(self) -> int:
        return min(self.config.text_chunk_limit or 4000, self.text_limit)

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        import httpx
        from telegram.ext import AIORateLimiter, ExtBot
        from telegram.request import HTTPXRequest

        token = self.config.token()
        if not token:
            raise ChannelAuthFailed(
                "telegram bot token is empty or unreadable",
                hint="set channels.telegram.botToken or TELEGRAM_BOT_TOKEN",
            )
        root = self.config.api_root
        timeout = float(self.config.poll_timeout_seconds)
        retries = self.config.retry.attempts - 1

        def transport(connections: int) -> dict[str, Any]:
            # httpx retries a connection that could not be opened (refused, timed out)
            return {
                "transport": httpx.AsyncHTTPTransport(
                    retries=retries, limits=httpx.Limits(max_connections=connections)
                )
            }

        bot = ExtBot(
            token,
            base_url=f"{root}/bot",
            base_file_url=f"{root}/file/bot",
            request=HTTPXRequest(
                connection_pool_size=8,
                read_timeout=20.0,
                connect_timeout=10.0,
                media_write_timeout=60.0,
                httpx_kwargs=transport(8),
            ),
            get_updates_request=HTTPXRequest(
                connection_pool_size=1,
                read_timeout=timeout + 10,
                connect_timeout=10.0,
                httpx_kwargs=transport(1),
            ),
            # Telegram's flood limits (30 messages/s, 20/min per group) are kept, and a
            # RetryAfter answer is waited out and retried (getUpdates is never throttled).
            rate_limiter=AIORateLimiter(max_retries=retries),
        )
        self.bot = bot  # stop() closes it, also when the token is refused below
        await self._call(bot.initialize)  # opens the HTTP clients and asks getMe
        me = bot.bot
        self.bot_id = str(me.id)
        self.bot_username = me.username
        self.status.bot_id = self.bot_id
        self.status.bot_username = self.bot_username
        await self._register_commands()

    async def _register_commands(self) -> None:
        """The chat commands as the bot's command menu (``setMyCommands``), or none
        (``deleteMyCommands``) when ``commands.native`` is false.

        The default scope gets the commands anyone may run; each owner known by a
        numeric user id gets the whole menu in their private chat (scope ``chat``).
        Owners come from the same place the inbound pipeline asks, so the menu
        shows an owner-only command exactly to those it answers. The chats given a
        menu are kept in ``command-scopes-<account>.json`` so that one of a removed
        owner is deleted at the next start. Best effort: a refusal (``chat not
        found``: the owner never wrote to the bot) is logged, the rest still
        registered, the bot keeps working (text commands do not need the menu)."""
        native = self.native_menu()
        if native is None:
            return
        owners = self.context.owners(self)
        if owners.everyone or not native:
            self._scoping = False
            await self._set_menu(None, native)
            wanted: set[int] = set()
        else:
            self._scoping = True
            await self._set_menu(None, self.context.native_commands.public_menu())
            wanted = _owner_chats(owners)
        self._owner_menu = native
        recorded = await asyncio.to_thread(self._load_scopes)
        self._scoped = set(recorded)
        for chat in sorted(recorded | wanted):  # a menu that changed is set again
            await self._scope(chat, chat in wanted)
        if self._scoped != recorded:
            await asyncio.to_thread(self._save_scopes, self._scoped)

    async def _scope(self, chat: int, owner: bool) -> None:
        """Give ``chat`` the owners' menu, or delete its menu; ``_scoped`` follows."""
        if await self._set_menu(chat, self._owner_menu if owner else ()):
            if owner:
                self._scoped.add(chat)
            else:
                self._scoped.discard(chat)

    async def _follow_owner(self, sender_id: str) -> None:
        """A direct message: when its sender became an owner (approved by pairing, or
        refused a menu before they ever wrote: ``chat not found``) or stopped being
        one since the menus were registered, give or delete their private menu."""
        if not (self._scoping and sender_id.isdigit()):
            return
        chat = int(sender_id)
        owner = chat in _owner_chats(self.context.owners(self))
        if owner != (chat in self._scoped):
            await self._scope(chat, owner)
            await asyncio.to_thread(self._save_scopes, self._scoped)

    async def _set_menu(self, chat: int | None, menu: tuple[tuple[str, str], ...]) -> bool:
        """``setMyCommands`` (``deleteMyCommands`` for an empty menu) in the default
        scope or ``chat``'s; False (logged) when Telegram refused."""
        from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault

        scope = BotCommandScopeDefault() if chat is None else BotCommandScopeChat(chat)
        try:
            bot = self._bot()
            if menu:
                commands = [BotCommand(name, description) for name, description in menu[:100]]
                await self._call(lambda: bot.set_my_commands(commands, scope=scope))
            else:
                await self._call(lambda: bot.delete_my_commands(scope=scope))
        except ChannelError as exc:
            where = "" if chat is None else f" of chat {chat}"
            self.log.warning("could not register the command menu%s: %s", where, exc.message)
            return False
        return True

    @property
    def _scopes_path(self) -> Path:
        return self.context.state_dir / f"command-scopes-{self.account_id}.json"

    def _load_scopes(self) -> set[int]:
        if not self._scopes_path.is_file():  # missing, or a FIFO that would never answer
            return set()
        try:
            data = json.loads(self._scopes_path.read_text(encoding="utf-8"))
            chats = data.get("chats", [])
            return {c for c in chats if isinstance(c, int) and not isinstance(c, bool) and c > 0}
        except (OSError, ValueError, AttributeError):
            return set()

    def _save_scopes(self, chats: set[int]) -> None:
        write_json_atomic(self._scopes_path, {"version": 1, "chats": sorted(chats)}, sync=False)

    async def stop(self) -> None:
        self._stopped = True
        bot, self.bot = self.bot, None
        if bot is not None:
            try:
                await bot.shutdown()
            except Exception:
                self.log.debug("shutdown of the Bot client failed", exc_info=True)

    async def probe(self) -> dict[str, Any]:
        me = await self._call(self._bot().get_me)
        return {"ok": True, "bot": {"id": str(me.id), "username": me.username}}

    async def serve(self) -> None:
        if self.config.mode == "webhook":
            await self._serve_webhook()
        else:
            await self._serve_polling()

    # -- inbound: polling -----------------------------------------------------

    @property
    def _offset_path(self) -> Path:
        return self.context.state_dir / f"update-offset-{self.account_id}.json"

    def _load_offset(self) -> int | None:
        try:
            data = json.loads(self._offset_path.read_text(encoding="utf-8"))
            last = data.get("lastUpdateId")
            bot = data.get("botId")
            if isinstance(last, int) and (bot is None or str(bot) == self.bot_id):
                return last + 1
        except (OSError, ValueError, AttributeError):
            pass
        return None

    def _save_offset(self, last_update_id: int) -> None:
        write_json_atomic(
            self._offset_path,
            {"version": 1, "lastUpdateId": last_update_id, "botId": self.bot_id},
            sync=False,
        )

    async def _serve_polling(self) -> None:
        bot = self._bot()
        # A webhook left from webhook mode makes getUpdates fail with 409.
        await self._call(lambda: bot.delete_webhook(drop_pending_updates=False))
        offset = self._load_offset()
        timeout = self.config.poll_timeout_seconds
        while not self._stopped:
            updates = await self._call(
                lambda offset=offset: bot.get_updates(
                    offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES
                )
            )
            if not self.status.connected:
                self.status.connected = True
                self.status.last_connected_at = time.time()
            for update in updates:
                # Confirmed (offset past it) only once handled or durably queued: an
                # update not taken (restart) raises here and is fetched again.
                await self.handle_update(update.to_dict())
                offset = update.update_id + 1
                await asyncio.to_thread(self._save_offset, update.update_id)

    # -- inbound: webhook -----------------------------------------------------

    async def _serve_webhook(self) -> None:
        bot = self._bot()
        await self._call(
            lambda: bot.set_webhook(
                url=self.config.webhook_url,
                secret_token=self.config.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        )
        self.status.connected = True
        self.status.last_connected_at = time.time()
        await asyncio.Event().wait()

    def check_webhook_secret(self, presented: str | None) -> bool:
        from moltbot.security.secrets import secret_equals

        return secret_equals(presented, self.config.webhook_secret)

    async def handle_update(self, update: Mapping[str, Any]) -> None:
        """Normalise one raw Update and hand it on; unsupported kinds are skipped."""
        try:
            message = normalize_update(
                update,
                account_id=self.account_id,
                bot_id=self.bot_id,
                bot_username=self.bot_username,
            )
        except UnsupportedMessage as exc:
            self.log.debug("skipped update %s: %s", update.get("update_id"), exc.message)
            return
        if message.sender.id == self.bot_id:
            return
        if message.chat_type == "direct":
            await self._follow_owner(message.sender.id)
        await self.context.on_inbound(message)

    async def download_media(self, media: Media, max_bytes: int) -> bytes:
        """``getFile``, then the file from ``<apiRoot>/file/bot<token>/<path>``."""
        if not media.remote_id:
            raise TargetError("the attachment has no file id")
        remote = await self._call(lambda: self._bot().get_file(media.remote_id))
        if remote.file_size and remote.file_size > max_bytes:
            raise MediaTooLarge(f"the {media.kind} is over mediaMaxMb")
        data = await self._call(remote.download_as_bytearray)
        if len(data) > max_bytes:
            raise MediaTooLarge(f"the {media.kind} is over mediaMaxMb")
        return bytes(data)

    # -- outbound -------------------------------------------------------------

    @staticmethod
    def parse_target(target: str) -> tuple[str, str | None]:
        """``123``, ``-100123``, ``@channel``, ``telegram:123``, ``-100123:topic:42``."""
        text = target.strip()
        for prefix in ("telegram:", "tg:"):
            if text.lower().startswith(prefix):
                text = text[len(prefix) :]
        text = re.sub(r"^(group|user|chat):", "", text)
        thread = None
        if ":topic:" in text:
            text, thread = text.split(":topic:", 1)
        if not re.fullmatch(r"-?\d+|@[A-Za-z0-9_]{4,}", text):
            raise TargetError(
                f"invalid telegram target {target!r}",
                hint="use a numeric chat id, @channelname or <chat>:topic:<id>",
            )
        return text, thread

    def native_command(self, message: InboundMessage, name: str) -> bool:
        """A tap in the bot's command menu arrives as the text ``/name``: an entry of the
        menu is a command even with ``commands.text: false``."""
        return message.native_command or any(entry == name for entry, _ in self.native_menu() or ())

    def reply_target(self, message: InboundMessage) -> str:
        if message.thread_id and message.thread_id != GENERAL_TOPIC:
            return f"{message.chat_id}:topic:{message.thread_id}"
        return message.chat_id

    async def send(self, target: str, message: OutboundMessage) -> SendResult:
        from telegram import ReplyParameters

        self._bot()
        chat_id, thread = self.parse_target(target)
        thread = message.thread_id if thread is None else thread
        thread_kw = (
            {"message_thread_id": int(thread)}
            if thread and thread != GENERAL_TOPIC and thread.isdigit()
            else {}
        )
        reply_all = self.config.reply_to_mode == "all"
        ids: list[str] = []

        def reply_kw() -> dict[str, Any]:
            if message.reply_to_id and message.reply_to_id.isdigit() and (reply_all or not ids):
                return {
                    "reply_parameters": ReplyParameters(
                        message_id=int(message.reply_to_id), allow_sending_without_reply=True
                    )
                }
            return {}

        for chunk in chunk_text(message.text, self.text_chunk_limit(), measure=self.text_measure()):
            sent = await self._send_text(chat_id, chunk, message.plain, {**thread_kw, **reply_kw()})
            ids.append(str(sent.message_id))
        for item in message.media:
            sent = await self._send_media(chat_id, item, {**thread_kw, **reply_kw()})
            ids.append(str(sent.message_id))
        if not ids:
            raise TargetError("nothing to send: the message has no text and no media")
        return SendResult("telegram", self.account_id, chat_id, tuple(ids))

    async def _send_text(self, chat_id: str, chunk: str, plain: bool, extra: dict[str, Any]) -> Any:
        bot = self._bot()
        return await self._formatted(
            chunk, plain, lambda text: bot.send_message(chat_id=chat_id, **text, **extra)
        )

    async def _formatted(
        self, chunk: str, plain: bool, call: Callable[[dict[str, Any]], Awaitable[T]]
    ) -> T:
        """``call`` with the chunk as Telegram HTML (``text`` and ``parse_mode``), again
        with the plain text when Telegram refuses the markup."""
        from telegram.error import BadRequest

        if not plain:
            html = {"text": to_telegram_html(chunk), "parse_mode": "HTML"}
            try:
                return await self._call(lambda: call(html), wrap_bad_request=False)
            except BadRequest as exc:
                if not _PARSE_ERROR.search(str(exc)):
                    raise _target_error(exc) from None
                self.log.info("telegram rejected the formatting (%s); sending plain text", exc)
        return await self._call(lambda: call({"text": chunk}))

    def streams_replies(self) -> bool:
        return self.config.stream_mode != "off"

    def streams_blocks(self) -> bool:
        return self.config.stream_mode == "block"

    def text_measure(self) -> Callable[[str], int]:
        return utf16_len

    async def edit(self, target: str, message_id: str, message: OutboundMessage) -> None:
        """``editMessageText`` of ``message_id`` with ``message.text`` (one chunk),
        formatted as :meth:`send` formats it. An edit that changes nothing ("message is
        not modified") is done; a message that is gone or too old to edit raises
        TargetError."""
        bot = self._bot()
        chat_id, _ = self.parse_target(target)
        if not message_id.isdigit():
            raise TargetError(f"invalid telegram message id {message_id!r}")
        try:
            await self._formatted(
                message.text,
                message.plain,
                lambda text: bot.edit_message_text(
                    chat_id=chat_id, message_id=int(message_id), **text
                ),
            )
        except TargetError as exc:
            if not _NOT_MODIFIED.search(exc.message):
                raise

    async def _send_media(self, chat_id: str, item: Media, extra: dict[str, Any]) -> Any:
        """A photo as ``sendPhoto`` (Telegram recompresses it), audio as ``sendAudio``,
        anything else (GIFs included) as ``sendDocument``."""
        bot = self._bot()
        if item.url:
            payload: Any = item.url
        else:
            path = Path(item.path or "")
            if not path.is_file():
                raise TargetError(f"media file not found: {item.path}")
            payload = await asyncio.to_thread(path.read_bytes)
        caption = {"caption": item.caption} if item.caption else {}

        async def upload() -> Any:
            if item.is_image and item.mime_type in _PHOTO_TYPES:
                return await bot.send_photo(chat_id=chat_id, photo=payload, **caption, **extra)
            if item.kind in ("audio", "voice") and item.mime_type in _AUDIO_TYPES:
                return await bot.send_audio(
                    chat_id=chat_id, audio=payload, filename=item.file_name, **caption, **extra
                )
            return await bot.send_document(
                chat_id=chat_id, document=payload, filename=item.file_name, **caption, **extra
            )

        return await self._call(upload)

    async def typing(self, chat_id: str, thread_id: str | None = None) -> None:
        bot = self.bot
        if bot is None:
            return
        extra = (
            {"message_thread_id": int(thread_id)}
            if thread_id and thread_id.isdigit() and thread_id != GENERAL_TOPIC
            else {}
        )
        await self._call(lambda: bot.send_chat_action(chat_id=chat_id, action="typing", **extra))

    # -- identity -------------------------------------------------------------

    @classmethod
    def normalize_allow_entry(cls, entry: str) -> str:
        text = str(entry).strip()
        for prefix in ("telegram:", "tg:"):
            if text.lower().startswith(prefix):
                text = text[len(prefix) :]
        return text.lower()

    def sender_keys(self, message: InboundMessage) -> Collection[str]:
        keys = {message.sender.id}
        if message.sender.username:
            keys |= {f"@{message.sender.username.lower()}", message.sender.username.lower()}
        return keys

    # -- forum topics ----------------------------------------------------------
    # A topic of a forum group is its own conversation: its own session (the peer
    # is ``<chat>:topic:<id>``, not a thread suffix) and its own settings
    # (``groups.<chat>.topics.<id>``).

    def peer_id(self, message: InboundMessage) -> str:
        if message.chat_type != "direct" and message.thread_id:
            return f"{message.chat_id}:topic:{message.thread_id}"
        return super().peer_id(message)

    def session_thread(self, message: InboundMessage) -> str | None:
        return None

    def group_topic(self, message: InboundMessage) -> str | None:
        return message.thread_id

    # -- plumbing -------------------------------------------------------------

    def _bot(self) -> Any:
        if self.bot is None:
            raise ChannelNotReady(f"telegram account {self.account_id} is not started")
        return self.bot

    async def _call(
        self, factory: Callable[[], Awaitable[T]], *, wrap_bad_request: bool = True
    ) -> T:
        """Call the Bot API; library errors become channel errors (the token never
        appears in them). Retries happen below: the rate limiter waits out and
        retries RetryAfter answers, the HTTP transport retries failed connections."""
        try:
            return await self._call_once(factory, wrap_bad_request=wrap_bad_request)
        except ChannelError as exc:
            token = self.config.token()
            if token and token in exc.message:  # never let the token reach logs or status
                exc.message = exc.message.replace(token, "<token>")
                exc.args = (exc.message,)
            raise

    async def _call_once(self, factory: Callable[[], Awaitable[T]], *, wrap_bad_request: bool) -> T:
        from telegram.error import (
            BadRequest,
            ChatMigrated,
            Conflict,
            Forbidden,
            InvalidToken,
            NetworkError,
            RetryAfter,
            TelegramError,
        )

        try:
            return await factory()
        except InvalidToken as exc:
            raise ChannelAuthFailed(
                f"telegram refused the bot token ({exc})",
                hint="check channels.telegram.botToken with @BotFather",
            ) from None
        except RetryAfter as exc:
            wait = _retry_after(exc)
            raise ChannelNotReady(
                f"telegram rate limit: retry after {wait:.0f}s", retry_after=wait
            ) from None
        except Conflict as exc:
            raise ChannelNotReady(
                f"telegram conflict: {exc} (is another gateway polling this bot token?)",
                hint="each instance needs its own bot token",
            ) from None
        except ChatMigrated as exc:
            raise TargetError(f"the group moved to chat {exc.new_chat_id}; use that id") from None
        except Forbidden as exc:
            raise TargetError(f"telegram refused: {exc}") from None
        except BadRequest as exc:
            if not wrap_bad_request:
                raise
            raise _target_error(exc) from None
        except NetworkError as exc:  # includes TimedOut and 5xx answers
            raise ChannelNotReady(f"telegram API unreachable: {exc}") from None
        except TelegramError as exc:
            raise ChannelNotReady(f"telegram error: {exc}") from None


def _retry_after(exc: Any) -> float:
    """Seconds a RetryAfter asks for (an int now, a timedelta in a future version)."""
    import warnings

    from telegram.warnings import PTBDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


def _owner_chats(owners: CommandOwners) -> set[int]:
    """The owners known by a numeric user id (a username cannot name a scope)."""
    return {int(key) for key in owners.keys if re.fullmatch(r"[1-9]\d{0,19}", key)}


def _target_error(exc: Exception) -> TargetError:
    return TargetError(f"telegram rejected the request: {exc}")
