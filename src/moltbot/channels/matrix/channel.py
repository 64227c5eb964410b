"""The Matrix channel: matrix-nio's ``AsyncClient`` against any homeserver.

Login: an ``accessToken`` is checked with ``/account/whoami``; a ``password`` logs
in once (device ``deviceName``) and the access token it gives is kept in
``<state>/matrix/<account>/session.json`` (0600) and reused. Refused credentials
(``M_UNKNOWN_TOKEN``, ``M_FORBIDDEN``) are
:class:`~moltbot.channels.errors.ChannelAuthFailed`.

Inbound by ``/sync`` long polling. The ``next_batch`` token is saved after each
batch is handled or durably queued, so a restart neither replays nor loses
messages; the very first sync of an account only takes the token (the room's
history is not answered). Invites are joined per ``autoJoin``. A room with two
members is a DM, any other a group (mention-gated: the bot's user id, display
name or localpart in the text, ``m.mentions``, or a reply to the bot). Threads
(``m.thread``) get their own session; replies follow ``threadReplies``.

Outbound: Markdown rendered to ``org.matrix.custom.html`` with the Markdown as
``body``; media uploaded to the media repository (encrypted in encrypted rooms).
End-to-end encryption with ``encryption: true`` (matrix-nio's e2e extra: device
keys in ``<state>/matrix/<account>/store/``; unverified devices are trusted, as a
bot cannot verify interactively). Without it, a message in an encrypted room gets
a notice to the sender and the status says so.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from moltbot.channels.base import Channel, ChannelContext
from moltbot.channels.chunking import chunk_text
from moltbot.channels.errors import (
    ChannelAuthFailed,
    ChannelNotReady,
    TargetError,
)
from moltbot.channels.matrix.config import MatrixAccountConfig
from moltbot.channels.matrix.manifest import MANIFEST
from moltbot.channels.matrix.normalize import (
    markdown_html,
    normalize_event,
)
from moltbot.channels.types import InboundMessage, Media, OutboundMessage, SendResult
from moltbot.fsutil import write_json_atomic
from moltbot.sessions.media import MediaTooLarge

AUTH_ERRORS = {"M_UNKNOWN_TOKEN", "M_FORBIDDEN", "M_MISSING_TOKEN", "M_USER_DEACTIVATED"}
ENCRYPTED_NOTICE = (
    "⚠️ This room is end-to-end encrypted and this bot cannot read encrypted messages "
    "(encrypted room not supported: channels.matrix.encryption is off)."
)


class MatrixChannel(Channel):
    manifest = MANIFEST
    text_limit = 16000
    default_reply_to_mode = "off"

    def __init__(self, context: ChannelContext) -> None:
        super().__init__(context)
        self.config: MatrixAccountConfig = context.config
        self.client: Any = None
        self.user_id: str | None = None
        self.display_name: str | None = None
        self._encrypted_files: dict[str, dict[str, Any]] = {}
        self._sent_events: set[str] = set()
        self._notified_rooms: set[str] = set()
        self._stopping = False

    def text_chunk_limit(self) -> int:
        return min(self.config.text_chunk_limit or 4000, self.text_limit)

    # -- files ----------------------------------------------------------------

    @property
    def _dir(self) -> Path:
        return self.context.state_dir / self.account_id

    @property
    def _session_path(self) -> Path:
        return self._dir / "session.json"

    def _load_session(self) -> dict[str, Any]:
        try:
            data = json.loads(self._session_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("homeserver") != self.config.homeserver:
            return {}
        return data

    def _save_session(self, **changes: Any) -> None:
        data = {**self._load_session(), "homeserver": self.config.homeserver, **changes}
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_json_atomic(self._session_path, data)

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        import nio
        from nio.crypto import ENCRYPTION_ENABLED

        config = self.config
        encryption = config.encryption and ENCRYPTION_ENABLED
        if config.encryption and not ENCRYPTION_ENABLED:
            self.log.warning("encryption is on but matrix-nio's e2e extra is missing")
        saved = self._load_session()
        store = self._dir / "store"
        store.mkdir(parents=True, exist_ok=True, mode=0o700)
        client = nio.AsyncClient(
            config.homeserver or "",
            user=config.user_id or saved.get("userId") or "",
            device_id=saved.get("deviceId"),
            store_path=str(store),
            config=nio.AsyncClientConfig(
                encryption_enabled=encryption,
                store_sync_tokens=False,
                request_timeout=60,
                max_limit_exceeded=3,
                max_timeouts=2,
            ),
        )
        self.client = client  # stop() closes it, also when the login is refused below
        token = config.access_token or (
            saved.get("accessToken") if saved.get("userId") == config.user_id else None
        )
        if token:
            client.access_token = token
            who = await self._call(client.whoami())
            if isinstance(who, nio.WhoamiError):
                if config.access_token or who.status_code not in AUTH_ERRORS:
                    self._raise(who, "whoami")
                token = None  # a kept token that stopped working: log in again
            else:
                client.user_id = who.user_id
                client.device_id = who.device_id or saved.get("deviceId")
        if not token:
            if not config.password:
                raise ChannelAuthFailed("matrix: no access token and no password")
            login = await self._call(client.login(config.password, device_name=config.device_name))
            if isinstance(login, nio.LoginError):
                self._raise(login, "login")
            self._save_session(
                userId=login.user_id,
                deviceId=login.device_id,
                accessToken=login.access_token,
                since=None,
            )
        if encryption and client.device_id:
            client.load_store()
        self.user_id = client.user_id
        self.status.bot_id = client.user_id
        profile = await self._call(client.get_displayname(client.user_id))
        self.display_name = getattr(profile, "displayname", None)
        self.status.bot_username = self.display_name or client.user_id

    async def stop(self) -> None:
        self._stopping = True
        client, self.client = self.client, None
        if client is not None:
            try:
                await client.close()
            except Exception:
                self.log.debug("closing the matrix client failed", exc_info=True)

    async def probe(self) -> dict[str, Any]:
        import nio

        who = await self._call(self._client().whoami())
        if isinstance(who, nio.WhoamiError):
            self._raise(who, "whoami")
        return {"ok": True, "bot": {"id": who.user_id, "deviceId": who.device_id}}

    async def logout(self) -> dict[str, Any]:
        """``/logout`` (the access token and device stop working), then forget the
        kept session and the device keys."""
        import shutil

        import nio

        saved = self._load_session()
        token = self.config.access_token or saved.get("accessToken")
        logged_out = False
        if token and self.config.homeserver:
            client = nio.AsyncClient(self.config.homeserver, user=saved.get("userId") or "")
            client.access_token = token
            try:
                answer = await client.logout()
                logged_out = not isinstance(answer, nio.LogoutError) or (
                    answer.status_code in AUTH_ERRORS
                )
            except Exception as exc:
                self.log.warning("matrix logout failed: %s", exc)
            finally:
                await client.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        return {"loggedOut": logged_out}

    async def serve(self) -> None:
        import nio

        client = self._client()
        since = self._load_session().get("since")
        if since is None:  # first start: take the position, do not answer the history
            first = await self._call(client.sync(timeout=0, full_state=True))
            if isinstance(first, nio.SyncError):
                self._raise(first, "sync")
            since = first.next_batch
            await self._after_sync(first, dispatch=False)
            await asyncio.to_thread(self._save_session, since=since)
        timeout_ms = self.config.sync_timeout_seconds * 1000
        while not self._stopping:
            response = await self._call(client.sync(timeout=timeout_ms, since=since))
            if isinstance(response, nio.SyncError):
                self._raise(response, "sync")
            if not self.status.connected:
                self.status.connected = True
                self.status.last_connected_at = time.time()
            # Saved only once every message of the batch is handled or durably queued:
            # a batch not taken (restart) raises here and is fetched again.
            await self._after_sync(response, dispatch=True)
            since = response.next_batch
            await asyncio.to_thread(self._save_session, since=since)

    async def _after_sync(self, response: Any, *, dispatch: bool) -> None:
        import nio

        client = self._client()
        if client.olm:
            if client.should_upload_keys:
                await self._call(client.keys_upload())
            if client.should_query_keys:
                await self._call(client.keys_query())
            if client.should_claim_keys:
                await self._call(client.keys_claim(client.get_users_for_key_claiming()))
            await self._call(client.send_to_device_messages())
        for room_id, invite in response.rooms.invite.items():
            await self._on_invite(room_id, invite)
        if not dispatch:
            return
        for room_id, joined in response.rooms.join.items():
            room = client.rooms.get(room_id)
            if room is None:
                continue
            for event in joined.timeline.events:
                if isinstance(event, nio.MegolmEvent):  # could not be decrypted
                    await self._encrypted_notice(room, event)
                    continue
                await self._on_event(room, event)

    async def _on_invite(self, room_id: str, invite: Any) -> None:
        import nio

        policy = self.config.auto_join
        inviter = next(
            (
                e.sender
                for e in invite.invite_state
                if isinstance(e, nio.InviteMemberEvent) and e.state_key == self.user_id
            ),
            None,
        )
        allowed = policy == "always" or (
            policy == "allowlist"
            and bool({room_id, inviter} & set(self.config.auto_join_allowlist))
        )
        if not allowed:
            self.log.info("invite to %s from %s not joined (autoJoin %s)", room_id, inviter, policy)
            return
        joined = await self._call(self._client().join(room_id))
        if isinstance(joined, nio.JoinError):
            self.log.warning("could not join %s: %s", room_id, joined.message)

    async def _on_event(self, room: Any, event: Any) -> None:
        if getattr(event, "sender", None) == self.user_id:
            return
        message = normalize_event(
            room,
            event,
            account_id=self.account_id,
            bot_id=self.user_id or "",
            bot_name=self.display_name,
            sent_by_bot=self._sent_events,
        )
        if message is None:
            return
        for media in message.media:
            file = (event.source.get("content") or {}).get("file")
            if isinstance(file, dict) and media.remote_id:
                self._encrypted_files[media.remote_id] = file
        await self.context.on_inbound(message)

    async def _encrypted_notice(self, room: Any, event: Any) -> None:
        if self.client is not None and self.client.olm:
            self.log.warning("could not decrypt %s in %s", event.event_id, room.room_id)
            return
        self.status.error(f"encrypted room not supported: {room.room_id} (encryption is off)")
        if room.room_id in self._notified_rooms:
            return
        self._notified_rooms.add(room.room_id)
        content = {"msgtype": "m.notice", "body": ENCRYPTED_NOTICE}
        try:
            await self._send_content(room.room_id, content)
        except Exception as exc:
            self.log.warning("could not tell %s about encryption: %s", room.room_id, exc)

    # -- outbound -------------------------------------------------------------

    async def resolve_target(self, target: str) -> str:
        """``room:!id:server``, ``!id:server``, ``#alias:server`` (resolved),
        ``user:@user:server`` / ``@user:server`` (the DM room with them, created when
        missing), with an optional ``matrix:`` prefix."""
        import nio

        text = target.strip()
        if text.lower().startswith("matrix:"):
            text = text[len("matrix:") :]
        for prefix in ("room:", "channel:", "user:"):
            if text.lower().startswith(prefix):
                text = text[len(prefix) :]
        client = self._client()
        if text.startswith("!") and len(text) > 1:  # room v12 ids have no ":server"
            return text
        if text.startswith("#") and ":" in text:
            found = await self._call(client.room_resolve_alias(text))
            if isinstance(found, nio.RoomResolveAliasError):
                raise TargetError(f"matrix room alias {text} not found")
            return str(found.room_id)
        if text.startswith("@") and ":" in text:
            for room in client.rooms.values():
                if room.member_count <= 2 and text in room.users:
                    return str(room.room_id)
            created = await self._call(client.room_create(invite=[text], is_direct=True))
            if isinstance(created, nio.RoomCreateError):
                raise TargetError(f"could not open a DM with {text}: {created.message}")
            return str(created.room_id)
        raise TargetError(
            f"invalid matrix target {target!r}",
            hint="use room:!id:server, #alias:server or user:@user:server",
        )

    def reply_target(self, message: InboundMessage) -> str:
        return f"room:{message.chat_id}"

    async def send(self, target: str, message: OutboundMessage) -> SendResult:
        room_id = await self.resolve_target(target)
        relates = self._relation(message)
        ids: list[str] = []
        for chunk in chunk_text(message.text, self.text_chunk_limit()):
            content = _text_content(chunk, message.plain)
            if relates and (not ids or "rel_type" in relates):
                content["m.relates_to"] = relates
            ids.append(await self._send_content(room_id, content))
        for item in message.media:
            content = await self._media_content(room_id, item)
            if relates:
                content["m.relates_to"] = relates
            ids.append(await self._send_content(room_id, content))
        if not ids:
            raise TargetError("nothing to send: the message has no text and no media")
        return SendResult("matrix", self.account_id, room_id, tuple(ids))

    def streams_replies(self) -> bool:
        return bool(self.config.streaming)

    async def edit(self, target: str, message_id: str, message: OutboundMessage) -> None:
        """An ``m.replace`` of ``message_id`` with ``message.text`` (one chunk)."""
        room_id = await self.resolve_target(target)
        new = _text_content(message.text, message.plain)
        content = {
            **new,
            "body": f"* {new['body']}",
            "m.new_content": new,
            "m.relates_to": {"rel_type": "m.replace", "event_id": message_id},
        }
        if "formatted_body" in new:
            content["formatted_body"] = f"* {new['formatted_body']}"
        await self._send_content(room_id, content)

    def _relation(self, message: OutboundMessage) -> dict[str, Any] | None:
        thread = message.thread_id if self.config.thread_replies != "off" else None
        if thread:
            relation: dict[str, Any] = {
                "rel_type": "m.thread",
                "event_id": thread,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": message.reply_to_id or thread},
            }
            return relation
        if self.config.thread_replies == "always" and message.reply_to_id:
            return {
                "rel_type": "m.thread",
                "event_id": message.reply_to_id,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": message.reply_to_id},
            }
        if message.reply_to_id and message.reply_to_id.startswith("$"):
            return {"m.in_reply_to": {"event_id": message.reply_to_id}}
        return None

    async def _send_content(self, room_id: str, content: dict[str, Any]) -> str:
        import nio

        client = self._client()
        try:
            sent = await self._call(
                client.room_send(room_id, "m.room.message", content, ignore_unverified_devices=True)
            )
        except nio.LocalProtocolError as exc:
            raise TargetError(f"matrix: {exc}") from None
        if isinstance(sent, nio.RoomSendError):
            self._raise(sent, "send")
        self._sent_events.add(sent.event_id)
        if len(self._sent_events) > 5000:
            self._sent_events.pop()
        return str(sent.event_id)

    async def _media_content(self, room_id: str, item: Media) -> dict[str, Any]:
        import io

        import nio

        from moltbot.channels.media import fetch_url

        if item.url:
            data = await fetch_url(item.url, self.media_max_bytes(), what="media")
        else:
            path = Path(item.path or "")
            if not path.is_file():
                raise TargetError(f"media file not found: {item.path}")
            data = await asyncio.to_thread(path.read_bytes)
        client = self._client()
        room = client.rooms.get(room_id)
        encrypt = bool(client.olm and room is not None and room.encrypted)
        mime = item.mime_type or "application/octet-stream"
        uploaded, keys = await self._call(
            client.upload(
                io.BytesIO(data),
                content_type="application/octet-stream" if encrypt else mime,
                filename=item.file_name,
                encrypt=encrypt,
                filesize=len(data),
            )
        )
        if isinstance(uploaded, nio.UploadError):
            self._raise(uploaded, "upload")
        msgtype = {"image": "m.image", "sticker": "m.image", "audio": "m.audio"}.get(
            item.kind, "m.video" if item.kind == "video" else "m.file"
        )
        content: dict[str, Any] = {
            "msgtype": msgtype,
            "body": item.caption or item.file_name or "file",
            "filename": item.file_name or "file",
            "info": {"mimetype": mime, "size": len(data)},
        }
        if encrypt and keys:
            content["file"] = {**keys, "url": uploaded.content_uri}
        else:
            content["url"] = uploaded.content_uri
        return content

    async def download_media(self, media: Media, max_bytes: int) -> bytes:
        """From the media repository; an encrypted file is decrypted with the key its
        event carried."""
        import nio

        if not media.remote_id:
            raise TargetError("the attachment has no mxc:// URI")
        if media.size and media.size > max_bytes:
            raise MediaTooLarge(f"the {media.kind} is over mediaMaxMb")
        answer = await self._call(self._client().download(mxc=media.remote_id))
        if isinstance(answer, nio.DownloadError):
            raise TargetError(f"matrix download failed: {answer.message}")
        body = answer.body
        if len(body) > max_bytes:
            raise MediaTooLarge(f"the {media.kind} is over mediaMaxMb")
        file = self._encrypted_files.pop(media.remote_id, None)
        if file:
            from nio.crypto.attachments import decrypt_attachment

            body = decrypt_attachment(body, file["key"]["k"], file["hashes"]["sha256"], file["iv"])
        return bytes(body)

    async def typing(self, chat_id: str, thread_id: str | None = None) -> None:
        client = self.client
        if client is not None:
            await self._call(client.room_typing(chat_id, True, timeout=10_000))

    # -- identity -------------------------------------------------------------

    @classmethod
    def normalize_allow_entry(cls, entry: str) -> str:
        text = str(entry).strip()
        for prefix in ("matrix:", "user:"):
            if text.lower().startswith(prefix):
                text = text[len(prefix) :]
        return text.lower()

    def sender_keys(self, message: InboundMessage) -> Collection[str]:
        return {message.sender.id.lower()}

    def group_aliases(self, message: InboundMessage) -> Collection[str]:
        alias = message.raw.get("room_alias")
        return (alias,) if alias else ()

    # -- plumbing -------------------------------------------------------------

    def _client(self) -> Any:
        if self.client is None:
            raise ChannelNotReady(f"matrix account {self.account_id} is not started")
        return self.client

    async def _call(self, awaitable: Any) -> Any:
        """A matrix-nio call; network failures become ChannelNotReady."""
        import aiohttp

        try:
            return await awaitable
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            reason = exc or type(exc).__name__
            raise ChannelNotReady(f"matrix homeserver unreachable: {reason}") from None

    def _raise(self, error: Any, what: str) -> None:
        code = getattr(error, "status_code", None)
        message = getattr(error, "message", None) or str(error)
        if code in AUTH_ERRORS:
            raise ChannelAuthFailed(
                f"matrix refused the credentials ({what}: {code} {message})",
                hint="check channels.matrix.accessToken / password",
            )
        if code in ("M_LIMIT_EXCEEDED",):
            retry = getattr(error, "retry_after_ms", None)
            raise ChannelNotReady(
                f"matrix rate limit on {what}",
                retry_after=(retry / 1000) if retry else None,
            )
        if code in ("M_NOT_FOUND", "M_FORBIDDEN_ROOM", "M_BAD_JSON", "M_TOO_LARGE"):
            raise TargetError(f"matrix refused the {what}: {code} {message}")
        raise ChannelNotReady(f"matrix {what} failed: {code or ''} {message}".strip())


def _text_content(text: str, plain: bool) -> dict[str, Any]:
    """An ``m.text`` message: ``text`` as is, plus its HTML unless ``plain``."""
    content: dict[str, Any] = {"msgtype": "m.text", "body": text}
    if not plain:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = markdown_html(text)
    return content
