"""A stand-in Telegram Bot API server (aiohttp, loopback, free port).

It speaks the real wire format — ``/bot<token>/<method>`` with query, form,
JSON or multipart parameters, ``{"ok": true, "result": ...}`` answers,
``{"ok": false, "error_code", "description"}`` errors — so python-telegram-bot
runs against it unchanged. Several bots (tokens) may share one server.

Test controls (Python, not HTTP): :meth:`FakeTelegram.bot` registers a token;
``bot.push_*`` queue updates for getUpdates (or POST them to the webhook when
one is set via :meth:`FakeBot.deliver_webhook`); ``bot.sent`` records every
message the bot sent (``editMessageText`` changes it in place: ``Sent.edits``
keeps each edit's parameters); :meth:`FakeBot.delete` removes a message as a
user would; :meth:`FakeTelegram.fail` scripts outages (HTTP 5xx or dropped
connections) for given methods.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web
from tests.fakes.loopback import serve

LIMIT = 4096
ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
}


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


class _HtmlCheck(HTMLParser):
    """Telegram's HTML parse: known tags only, properly nested."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            raise ApiError(
                400,
                f"Bad Request: can't parse entities: Unsupported start tag "
                f'"{tag}" at byte offset {self.getpos()[1]}',
            )
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            opened = self.stack[-1] if self.stack else tag
            raise ApiError(
                400,
                f"Bad Request: can't parse entities: Can't find end tag "
                f'corresponding to start tag "{opened}"',
            )
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(text: str) -> str:
    if re.search(r"&(?!(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)", text):
        raise ApiError(400, "Bad Request: can't parse entities: Unsupported HTML entity")
    checker = _HtmlCheck()
    checker.feed(text)
    checker.close()
    if checker.stack:
        raise ApiError(
            400,
            "Bad Request: can't parse entities: Can't find end tag "
            f'corresponding to start tag "{checker.stack[-1]}"',
        )
    return "".join(checker.text)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply "
    "markup are exactly the same as a current content and reply markup of the message"
)


@dataclass
class Sent:
    method: str
    params: dict[str, Any]
    message: dict[str, Any]
    """The message as it is now (its text changed by edits)."""
    edits: list[dict[str, Any]] = field(default_factory=list)
    """The parameters of every ``editMessageText`` of it, in order."""
    deleted: bool = False

    @property
    def content(self) -> tuple[str, str | None]:
        """What Telegram compares to refuse an edit that changes nothing: the text and
        its formatting (here: the HTML it came from)."""
        params = self.edits[-1] if self.edits else self.params
        html = str(params.get("text")) if _is_html(params) else None
        return self.text, html

    @property
    def text(self) -> str:
        return self.message.get("text") or self.message.get("caption") or ""

    @property
    def chat_id(self) -> str:
        return str(self.params.get("chat_id"))


@dataclass
class FakeBot:
    server: FakeTelegram
    token: str
    id: int
    username: str
    first_name: str = "Molty"
    updates: list[dict[str, Any]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    webhook: dict[str, Any] | None = None
    commands: list[dict[str, Any]] | None = None
    """The command menu of the default scope (``setMyCommands``); None until set, []
    once deleted."""
    menus: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    """The command menus of scope ``chat``, by chat id (deleted ones removed)."""
    chats: set[int] = field(default_factory=set)
    """Private chats the bot has (users who wrote to it): a scope naming another
    chat is answered "chat not found", as Telegram does."""
    confirmed_offset: int = 0
    pollers: int = 0
    reject_html: int = 0
    """Answer the next N parse_mode=HTML messages with "can't parse entities"."""
    _next_update: itertools.count = field(default_factory=lambda: itertools.count(1))
    _next_message: itertools.count = field(default_factory=lambda: itertools.count(1000))
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def user(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    # -- building updates --------------------------------------------------

    def message(
        self, *, chat: dict[str, Any], sender: dict[str, Any], text: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        message = {
            "message_id": next(self._next_message),
            "from": sender,
            "chat": chat,
            "date": int(time.time()),
        }
        if text is not None:
            message["text"] = text
            mention = f"@{self.username}"
            if mention in text:
                offset = utf16_len(text[: text.index(mention)])
                message["entities"] = [
                    {"type": "mention", "offset": offset, "length": utf16_len(mention)}
                ]
        message.update(extra)
        return message

    async def push(self, update_body: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._next_update), **update_body}
        async with self._changed:
            self.updates.append(update)
            self._changed.notify_all()
        return update

    async def push_dm(
        self,
        user_id: int,
        text: str,
        *,
        first_name: str = "Ann",
        username: str | None = "ann",
        **extra: Any,
    ) -> dict[str, Any]:
        chat = {"id": user_id, "type": "private", "first_name": first_name}
        sender = _user(user_id, first_name, username)
        self.chats.add(user_id)
        return await self.push(
            {"message": self.message(chat=chat, sender=sender, text=text, **extra)}
        )

    async def push_group(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        title: str = "Team",
        first_name: str = "Ann",
        username: str | None = "ann",
        **extra: Any,
    ) -> dict[str, Any]:
        chat = {"id": chat_id, "type": "supergroup", "title": title}
        sender = _user(user_id, first_name, username)
        return await self.push(
            {"message": self.message(chat=chat, sender=sender, text=text, **extra)}
        )

    def delete(self, message_id: int) -> None:
        """The user deleted the bot's message ``message_id``: edits of it are refused."""
        for sent in self.sent:
            if sent.message["message_id"] == message_id:
                sent.deleted = True

    def add_file(self, file_id: str, path: str, content: bytes) -> None:
        self.files[file_id] = (path, content)

    async def wait_sent(
        self, count: int = 1, timeout: float = 10.0, chat_id: str | int | None = None
    ) -> list[Sent]:
        """Wait until at least ``count`` messages were sent (to ``chat_id``)."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [s for s in self.sent if chat_id is None or s.chat_id == str(chat_id)]
            if len(matching) >= count:
                return matching
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"expected {count} sent messages, got {len(matching)}: "
                    f"{[m.text[:60] for m in matching]}"
                )
            await asyncio.sleep(0.02)

    async def wait_confirmed(self, update: dict[str, Any], timeout: float = 10.0) -> None:
        """Wait until the bot confirmed ``update`` (a getUpdates with an offset past it,
        which the channel sends only once the update is handled or durably queued for
        the agent): a barrier for "nothing came of it"."""
        deadline = time.monotonic() + timeout
        while self.confirmed_offset <= update["update_id"]:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"update {update['update_id']} never confirmed (offset {self.confirmed_offset})"
                )
            await asyncio.sleep(0.02)

    async def wait_polling(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pollers == 0:
            if time.monotonic() > deadline:
                raise TimeoutError("nobody is polling")
            await asyncio.sleep(0.02)

    async def deliver_webhook(self, update: dict[str, Any]) -> int:
        """POST ``update`` to the registered webhook as Telegram would; returns the status."""
        import aiohttp

        assert self.webhook, "no webhook set"
        headers = {}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.webhook["url"], json=update, headers=headers) as response,
        ):
            return response.status


def _is_html(params: dict[str, Any]) -> bool:
    return str(params.get("parse_mode") or "").upper() == "HTML"


def _user(user_id: int, first_name: str, username: str | None) -> dict[str, Any]:
    """A Telegram ``User`` object of a human sender."""
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if username:
        user["username"] = username
    return user


class FakeTelegram:
    def __init__(self) -> None:
        self.bots: dict[str, FakeBot] = {}
        self.failures: dict[str, list[int | str]] = {}
        self.runner: web.AppRunner | None = None
        self.url = ""
        self._ids = itertools.count(7000001)

    def bot(self, token: str, username: str = "molty_bot") -> FakeBot:
        bot = FakeBot(self, token, next(self._ids), username)
        self.bots[token] = bot
        return bot

    def fail(self, method: str, status: int | str = 502, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` ("*" for all) fail with an HTTP
        ``status`` (429: flood control, "retry after 1"), or ``"drop"`` to close the
        connection without an answer."""
        self.failures.setdefault(method, []).extend([status] * times)

    def heal(self) -> None:
        self.failures.clear()

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self.runner, self.url = await serve(app)
        return self.url

    async def stop(self) -> None:
        for bot in self.bots.values():
            async with bot._changed:
                bot._changed.notify_all()
        if self.runner:
            await self.runner.cleanup()

    # -- HTTP --------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                params.update(await request.json())
            elif ctype == "multipart/form-data":
                reader = await request.multipart()
                while (part := await reader.next()) is not None:
                    if part.filename:  # type: ignore[union-attr]
                        params[part.name] = {
                            "filename": part.filename,  # type: ignore[union-attr]
                            "content": await part.read(),
                        }  # type: ignore[union-attr]
                    else:
                        params[part.name] = await part.text()  # type: ignore[union-attr]
            else:
                params.update(dict(await request.post()))
        for key, value in list(params.items()):
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    pass
        return params

    async def _api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        method = request.match_info["method"]
        for key in (method, "*"):
            queue = self.failures.get(key)
            if queue:
                status = queue.pop(0)
                if status == "drop":
                    assert request.transport is not None
                    request.transport.abort()
                    return web.Response(status=500)
                if status == 429:  # flood control, as Telegram answers it
                    return web.json_response(
                        {
                            "ok": False,
                            "error_code": 429,
                            "description": "Too Many Requests: retry after 1",
                            "parameters": {"retry_after": 1},
                        },
                        status=429,
                    )
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": status,
                        "description": "Bad Gateway" if status == 502 else "Internal Server Error",
                    },
                    status=int(status),
                )
        bot = self.bots.get(token)
        if bot is None:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        try:
            params = await self._params(request)
            bot.calls.append((method, params))
            handler = getattr(self, "m_" + method, None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = await handler(bot, params)
        except ApiError as exc:
            body: dict[str, Any] = {
                "ok": False,
                "error_code": exc.code,
                "description": exc.description,
            }
            if exc.parameters:
                body["parameters"] = exc.parameters
            return web.json_response(body, status=exc.code)
        return web.json_response({"ok": True, "result": result})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        bot = self.bots.get(request.match_info["token"])
        path = request.match_info["path"]
        if bot is None:
            return web.Response(status=401)
        for stored_path, content in bot.files.values():
            if stored_path == path:
                return web.Response(body=content)
        return web.Response(status=404)

    # -- methods -----------------------------------------------------------

    async def m_getMe(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        return {
            **bot.user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def m_getUpdates(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        if bot.webhook:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        if bot.pollers:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure "
                "that only one bot instance is running",
            )
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        if offset:
            bot.confirmed_offset = max(bot.confirmed_offset, offset)
            bot.updates = [u for u in bot.updates if u["update_id"] >= offset]
        bot.pollers += 1
        try:
            async with bot._changed:
                if not bot.updates and timeout > 0:
                    try:
                        await asyncio.wait_for(bot._changed.wait(), timeout)
                    except TimeoutError:
                        pass
                return list(bot.updates[:100])
        finally:
            bot.pollers -= 1

    async def m_deleteWebhook(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        bot.webhook = None
        return True

    async def m_setWebhook(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        url = params.get("url") or ""
        if not url:
            bot.webhook = None
        else:
            bot.webhook = {"url": url, "secret_token": params.get("secret_token")}
        return True

    async def m_getWebhookInfo(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        return {
            "url": (bot.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(bot.updates),
        }

    def _scope(self, bot: FakeBot, params: dict[str, Any]) -> int | None:
        """The ``scope`` of a ``*MyCommands`` call: None for the default scope, or the
        chat id of a ``chat`` scope (a JSON object on the wire, as BotCommandScope)."""
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict):
            raise ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        if scope.get("type") == "default":
            return None
        if scope.get("type") != "chat":
            raise ApiError(400, f"Bad Request: scope {scope.get('type')!r} not in the stand-in")
        chat = scope.get("chat_id")
        if not isinstance(chat, int) or chat not in bot.chats:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    async def m_setMyCommands(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be a list of at most 100")
        for item in commands:
            name, text = str(item.get("command", "")), str(item.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name) or not 1 <= len(text) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        chat = self._scope(bot, params)
        if chat is None:
            bot.commands = commands
        else:
            bot.menus[chat] = commands
        return True

    async def m_deleteMyCommands(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        chat = self._scope(bot, params)
        if chat is None:
            bot.commands = []
        else:
            bot.menus.pop(chat, None)
        return True

    async def m_getMyCommands(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        chat = self._scope(bot, params)
        return (bot.commands if chat is None else bot.menus.get(chat)) or []

    async def m_sendChatAction(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        self._chat(params)
        bot.actions.append(params)
        return True

    def _chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = str(params.get("chat_id") or "")
        if not chat_id:
            raise ApiError(400, "Bad Request: chat_id is empty")
        if chat_id == "404":
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id == "403":
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        numeric = int(chat_id) if re.fullmatch(r"-?\d+", chat_id) else 0
        kind = "private" if numeric > 0 else "supergroup"
        return {"id": numeric or -1, "type": kind}

    def _record(
        self, bot: FakeBot, method: str, params: dict[str, Any], content: dict[str, Any]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(bot._next_message),
            "from": bot.user,
            "chat": self._chat(params),
            "date": int(time.time()),
            **content,
        }
        if params.get("message_thread_id"):
            message["message_thread_id"] = int(params["message_thread_id"])
        reply = params.get("reply_parameters") or {}
        if isinstance(reply, dict) and reply.get("message_id"):
            message["reply_to_message"] = {
                "message_id": int(reply["message_id"]),
                "chat": message["chat"],
                "date": message["date"],
            }
        bot.sent.append(Sent(method, params, message))
        return message

    def _text(self, bot: FakeBot, params: dict[str, Any]) -> str:
        """The visible text of a ``sendMessage`` or ``editMessageText``."""
        text = str(params.get("text") or "")
        if _is_html(params) and bot.reject_html > 0:
            bot.reject_html -= 1
            raise ApiError(
                400, "Bad Request: can't parse entities: Unexpected end tag at byte offset 3"
            )
        visible = parse_html(text) if _is_html(params) else text
        if not visible.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(visible) > LIMIT:
            raise ApiError(400, "Bad Request: message is too long")
        return visible

    async def m_sendMessage(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        return self._record(bot, "sendMessage", params, {"text": self._text(bot, params)})

    async def m_editMessageText(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        """Edits a message of the bot in a chat (not inline messages): answers the
        edited Message, with ``edit_date``."""
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: inline messages are not in the stand-in")
        chat = self._chat(params)
        try:
            message_id = int(params.get("message_id") or 0)
        except (TypeError, ValueError):
            message_id = 0
        if message_id <= 0:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        visible = self._text(bot, params)
        found = [
            s
            for s in bot.sent
            if s.message["message_id"] == message_id and s.message["chat"]["id"] == chat["id"]
        ]
        if not found or found[0].deleted:
            raise ApiError(400, "Bad Request: message to edit not found")
        sent = found[0]
        if sent.method != "sendMessage":
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        if sent.content == (visible, str(params["text"]) if _is_html(params) else None):
            raise ApiError(400, NOT_MODIFIED)
        sent.edits.append(params)
        sent.message["text"] = visible
        sent.message["edit_date"] = int(time.time())
        return sent.message

    async def m_sendPhoto(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        photo = params.get("photo")
        if not photo:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        size = len(photo["content"]) if isinstance(photo, dict) else 0
        content: dict[str, Any] = {
            "photo": [
                {
                    "file_id": f"photo-{len(bot.sent)}",
                    "file_unique_id": "u",
                    "width": 1,
                    "height": 1,
                    "file_size": size,
                }
            ]
        }
        if params.get("caption"):
            content["caption"] = html.unescape(str(params["caption"]))
        return self._record(bot, "sendPhoto", params, content)

    async def m_sendDocument(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        document = params.get("document")
        if not document:
            raise ApiError(400, "Bad Request: there is no document in the request")
        name = document["filename"] if isinstance(document, dict) else "file"
        size = len(document["content"]) if isinstance(document, dict) else 0
        content: dict[str, Any] = {
            "document": {
                "file_id": f"doc-{len(bot.sent)}",
                "file_unique_id": "u",
                "file_name": name,
                "file_size": size,
            }
        }
        return self._record(bot, "sendDocument", params, content)

    async def m_getFile(self, bot: FakeBot, params: dict[str, Any]) -> Any:
        file_id = str(params.get("file_id") or "")
        if file_id not in bot.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        path, content = bot.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": file_id + "-u",
            "file_size": len(content),
            "file_path": path,
        }
