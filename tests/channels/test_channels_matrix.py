"""The Matrix channel against a real Synapse homeserver; a second matrix-nio client is
the human."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nio
import pytest
from tests.channels.channel_helpers import (
    EchoDispatcher,
    channels_status,
    wait_for,
)
from tests.channels.synapse import Synapse

from moltbot.channels.pairing import PairingStore


class Human:
    """A person on the homeserver, with matrix-nio."""

    def __init__(self, synapse: Synapse, localpart: str) -> None:
        self.synapse = synapse
        self.password = secrets.token_hex(8)
        login = synapse.register(localpart, self.password)
        self.user_id = login["user_id"]
        self.client = nio.AsyncClient(synapse.url, self.user_id)
        self.client.access_token = login["access_token"]
        self.client.device_id = login["device_id"]
        self.client.user_id = self.user_id
        self.since: str | None = None
        self.received: list[Any] = []

    async def sync(self) -> None:
        answer = await self.client.sync(timeout=0, since=self.since)
        assert isinstance(answer, nio.SyncResponse), answer
        self.since = answer.next_batch
        for room_id, room in answer.rooms.join.items():
            for event in room.timeline.events:
                if event.sender != self.user_id and event.source.get("type") == "m.room.message":
                    self.received.append((room_id, event))
        for room_id in answer.rooms.invite:
            await self.client.join(room_id)

    async def wait_messages(self, count: int, timeout: float = 30.0) -> list[Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.received) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"got {len(self.received)} of {count} messages")
            answer = await self.client.sync(timeout=1000, since=self.since)
            assert isinstance(answer, nio.SyncResponse), answer
            self.since = answer.next_batch
            for room_id, room in answer.rooms.join.items():
                for event in room.timeline.events:
                    if (
                        event.sender != self.user_id
                        and event.source.get("type") == "m.room.message"
                    ):
                        self.received.append((room_id, event))
            for room_id in answer.rooms.invite:
                await self.client.join(room_id)
        return self.received[:count]

    async def dm(self, bot_id: str) -> str:
        created = await self.client.room_create(invite=[bot_id], is_direct=True)
        assert isinstance(created, nio.RoomCreateResponse), created
        return created.room_id

    async def group(self, *invite: str, name: str = "crew") -> str:
        created = await self.client.room_create(name=name, invite=list(invite))
        assert isinstance(created, nio.RoomCreateResponse), created
        return created.room_id

    async def say(self, room_id: str, body: str, **extra: Any) -> str:
        sent = await self.client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": body, **extra}
        )
        assert isinstance(sent, nio.RoomSendResponse), sent
        return sent.event_id


@pytest.fixture
async def people(synapse: Synapse) -> AsyncIterator[Any]:
    made: list[Human] = []

    def make(prefix: str) -> Human:
        human = Human(synapse, f"{prefix}{secrets.token_hex(3)}")
        made.append(human)
        return human

    yield make
    for human in made:
        await human.client.close()


def bot_account(synapse: Synapse) -> tuple[str, str]:
    localpart = f"bot{secrets.token_hex(3)}"
    password = secrets.token_hex(8)
    synapse.register(localpart, password)
    return f"@{localpart}:moltbot.test", password


def mx_config(synapse: Synapse, user_id: str, password: str, **matrix: Any) -> dict[str, Any]:
    channel = {
        "homeserver": synapse.url,
        "userId": user_id,
        "password": password,
        "syncTimeoutSeconds": 1,
        **matrix,
    }
    return {"channels": {"matrix": channel}}


async def joined(manager: Any, room_id: str, timeout: float = 30.0) -> None:
    channel = manager.running_channel("matrix")
    await wait_for(lambda: room_id in channel.client.rooms, timeout)


async def test_dm_pairing_then_reply_with_html(
    synapse: Synapse, people: Any, start_manager: Any, home: Path
) -> None:
    ann = people("ann")
    await ann.sync()
    bot_id, password = bot_account(synapse)
    agent = EchoDispatcher(reply=lambda text: f"**echo**: {text}")
    manager = await start_manager(mx_config(synapse, bot_id, password), dispatcher=agent)
    room = await ann.dm(bot_id)
    await joined(manager, room)
    await ann.say(room, "hello")
    [(_, pairing)] = await ann.wait_messages(1)
    assert f"Your Matrix user id: {ann.user_id}" in pairing.body
    code = pairing.body.split("Pairing code: ")[1].split()[0]
    PairingStore(home / ".clawdbot" / "credentials", "matrix").approve(code)
    await ann.say(room, "hi again")
    [_, (where, reply)] = await ann.wait_messages(2)
    assert where == room and reply.body == "**echo**: hi again"
    assert reply.formatted_body == "<p><strong>echo</strong>: hi again</p>"
    assert agent.calls[0]["session_key"] == "agent:main:main"
    status = channels_status(manager)["channelAccounts"]["matrix"][0]
    assert status["state"] == "running" and status["bot"]["id"] == bot_id
