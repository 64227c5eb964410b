"""The toy channel: inbound through its webhook, outbound into a JSONL file."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from moltbot.channels.base import Channel
from moltbot.channels.errors import ChannelAuthFailed, ChannelNotReady
from moltbot.channels.types import InboundMessage, OutboundMessage, Sender, SendResult
from toy_channel.manifest import MANIFEST


class ToyChannel(Channel):
    manifest = MANIFEST

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.started = False

    async def start(self) -> None:
        if not (self.context.config.token or "").startswith("toy-"):
            raise ChannelAuthFailed("the toy platform refused the token")
        self.started = True
        self.status.bot_id = "toy-bot"
        self.status.bot_username = "toy_bot"

    async def serve(self) -> None:
        self.status.connected = True
        self.status.last_connected_at = time.time()
        await asyncio.Event().wait()

    async def stop(self) -> None:
        self.started = False

    async def probe(self) -> dict[str, Any]:
        return {"ok": True, "bot": {"id": "toy-bot", "username": "toy_bot"}}

    async def send(self, target: str, message: OutboundMessage) -> SendResult:
        if not self.started:
            raise ChannelNotReady("the toy account is not started")
        outbox = self.context.state_dir / "outbox.jsonl"
        outbox.parent.mkdir(parents=True, exist_ok=True)
        with outbox.open("a", encoding="utf-8") as file:
            line = {"account": self.account_id, "to": target, "text": message.text}
            file.write(json.dumps(line) + "\n")
        return SendResult("toy", self.account_id, target, (str(time.time_ns()),))

    async def receive(self, payload: dict[str, Any]) -> None:
        sender = str(payload["sender"])
        await self.context.on_inbound(
            InboundMessage(
                channel="toy",
                account_id=self.account_id,
                message_id=str(payload["id"]),
                chat_type="direct",
                chat_id=sender,
                sender=Sender(id=sender, name=payload.get("name")),
                text=str(payload["text"]),
                raw=payload,
            )
        )
