"""The Matrix channel against a real Synapse homeserver; a second matrix-nio client is
the human."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nio
import pytest
from tests.channels.channel_helpers import (
    EchoDispatcher,
    channels_status,
    supervisor_ended,
    wait_for,
)
from tests.channels.synapse import Synapse
from tests.fakes.media import png

from moltbot.channels.pairing import PairingStore
from moltbot.channels.types import AccountState, OutboundMessage


class Human:
    """A person on the homeserver, with matrix-nio."""

    def __init__(self, synapse: Synapse, localpart: str, store: Path | None = None) -> None:
        self.synapse = synapse
        self.password = secrets.token_hex(8)
        login = synapse.register(localpart, self.password)
        self.user_id = login["user_id"]
        config = nio.AsyncClientConfig(
            encryption_enabled=store is not None, store_sync_tokens=False
        )
        self.client = nio.AsyncClient(
            synapse.url, self.user_id, store_path=str(store or ""), config=config
        )
        self.client.access_token = login["access_token"]
        self.client.device_id = login["device_id"]
        self.client.user_id = self.user_id
        if store is not None:
            self.client.load_store()
        self.since: str | None = None
        self.received: list[Any] = []
        self.typing: list[tuple[str, list[str]]] = []
        """``(room, users)`` of every typing notice seen."""

    async def keys(self) -> None:
        """What an E2EE client does after each sync: upload, query and claim keys."""
        client = self.client
        if not client.olm:
            return
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        await client.send_to_device_messages()

    async def sync(self, timeout_ms: int = 0) -> None:
        """One ``/sync``: keep the messages others sent, join the rooms invited to."""
        answer = await self.client.sync(timeout=timeout_ms, since=self.since)
        assert isinstance(answer, nio.SyncResponse), answer
        self.since = answer.next_batch
        await self.keys()
        for room_id, room in answer.rooms.join.items():
            for event in room.timeline.events:
                if event.sender != self.user_id and event.source.get("type") == "m.room.message":
                    self.received.append((room_id, event))
            for event in room.ephemeral:
                if isinstance(event, nio.TypingNoticeEvent):
                    self.typing.append((room_id, list(event.users)))
        for room_id in answer.rooms.invite:
            await self.client.join(room_id)

    async def wait_messages(self, count: int, timeout: float = 30.0) -> list[Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.received) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"got {len(self.received)} of {count} messages")
            await self.sync(1000)
        return self.received[:count]

    async def wait(self, predicate: Any, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("condition not met")
            await self.wait_messages(
                len(self.received) + 1, timeout=deadline - asyncio.get_running_loop().time()
            )

    async def dm(self, bot_id: str) -> str:
        created = await self.client.room_create(invite=[bot_id], is_direct=True)
        assert isinstance(created, nio.RoomCreateResponse), created
        return created.room_id

    async def encrypted_dm(self, bot_id: str) -> str:
        created = await self.client.room_create(
            invite=[bot_id],
            is_direct=True,
            initial_state=[
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ],
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        return created.room_id

    async def send_image(self, room_id: str, data: bytes, name: str = "cat.png") -> None:
        """Upload ``data`` to the media repository and post it as ``m.image``."""
        import io

        uploaded, _ = await self.client.upload(
            io.BytesIO(data), content_type="image/png", filename=name, filesize=len(data)
        )
        sent = await self.client.room_send(
            room_id,
            "m.room.message",
            {
                "msgtype": "m.image",
                "body": name,
                "url": uploaded.content_uri,
                "info": {"mimetype": "image/png", "size": len(data)},
            },
        )
        assert isinstance(sent, nio.RoomSendResponse), sent

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

    def make(prefix: str, store: Path | None = None) -> Human:
        human = Human(synapse, f"{prefix}{secrets.token_hex(3)}", store)
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


async def test_room_mention_gating_and_thread_reply(
    synapse: Synapse, people: Any, start_manager: Any
) -> None:
    ann = people("ann")
    bob = people("bob")
    await ann.sync()
    bot_id, password = bot_account(synapse)
    agent = EchoDispatcher()
    manager = await start_manager(
        mx_config(synapse, bot_id, password, groupPolicy="open"), dispatcher=agent
    )
    room = await ann.group(bot_id, bob.user_id)
    await joined(manager, room)
    await ann.say(room, "morning all")  # not for the bot: context only
    root = await ann.say(room, f"{bot_id}: status?", **{"m.mentions": {"user_ids": [bot_id]}})
    [(where, reply)] = await ann.wait_messages(1)
    assert where == room and reply.body.startswith("echo: ")
    [call] = agent.calls
    assert "morning all" in call["text"] and call["text"].endswith("status?")
    assert call["session_key"] == f"agent:main:matrix:group:{room.lower()}"
    await ann.say(
        room,
        "and in the thread?",
        **{
            "m.relates_to": {"rel_type": "m.thread", "event_id": root},
            "m.mentions": {"user_ids": [bot_id]},
        },
    )
    [_, (_, threaded)] = await ann.wait_messages(2)
    relation = threaded.source["content"]["m.relates_to"]
    assert relation["rel_type"] == "m.thread" and relation["event_id"] == root
    assert agent.calls[-1]["session_key"].endswith(f":thread:{root.lower()}")


async def test_long_reply_is_chunked(synapse: Synapse, people: Any, start_manager: Any) -> None:
    ann = people("ann")
    await ann.sync()
    bot_id, password = bot_account(synapse)
    long = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 60 for i in range(12))
    agent = EchoDispatcher(reply=lambda text: long)
    manager = await start_manager(
        mx_config(synapse, bot_id, password, allowFrom=[ann.user_id], textChunkLimit=2000),
        dispatcher=agent,
    )
    room = await ann.dm(bot_id)
    await joined(manager, room)
    await ann.say(room, "tell me everything")
    await ann.wait(lambda: sum(e.body.count("Paragraph ") for _, e in ann.received) == 12)
    bodies = [event.body for _, event in ann.received]
    assert len(bodies) >= 4 and all(len(b) <= 2000 for b in bodies)


async def test_image_in_and_file_out(
    synapse: Synapse, people: Any, start_manager: Any, tmp_path: Path
) -> None:
    ann = people("ann")
    await ann.sync()
    bot_id, password = bot_account(synapse)
    picture = png(5, 5, (10, 20, 30))
    report = tmp_path / "report.png"
    report.write_bytes(png(9, 9))
    agent = EchoDispatcher(reply=lambda text: f"done\nMEDIA: {report}")

    async def resolve_media(agent_id: str, item: str) -> str:
        return item

    agent.resolve_media = resolve_media  # type: ignore[attr-defined]
    manager = await start_manager(
        mx_config(synapse, bot_id, password, allowFrom=[ann.user_id]), dispatcher=agent
    )
    room = await ann.dm(bot_id)
    await joined(manager, room)
    await ann.send_image(room, picture)
    [_, (_, image)] = await ann.wait_messages(2)
    [stored] = agent.calls[0]["media"]
    assert stored.mime_type == "image/png" and Path(stored.path).read_bytes() == picture
    assert ann.received[0][1].body == "done"
    assert image.source["content"]["msgtype"] == "m.image"
    got = await ann.client.download(mxc=image.source["content"]["url"])
    assert got.body == report.read_bytes()


async def test_restart_does_not_replay_and_revoked_token_fails(
    synapse: Synapse, people: Any, start_manager: Any, home: Path
) -> None:
    ann = people("ann")
    await ann.sync()
    bot_id, password = bot_account(synapse)
    agent = EchoDispatcher()
    config = mx_config(synapse, bot_id, password, allowFrom=[ann.user_id])
    manager = await start_manager(config, dispatcher=agent)
    room = await ann.dm(bot_id)
    await joined(manager, room)
    await ann.say(room, "one")
    await ann.wait_messages(1)
    await manager.stop()
    await ann.say(room, "two (while the bot was down)")
    manager = await start_manager(config, dispatcher=agent)
    await ann.wait_messages(2)
    await ann.say(room, "three")
    await ann.wait_messages(3)  # barrier: answered after anything a replay would have caused
    assert [c["text"] for c in agent.calls] == ["one", "two (while the bot was down)", "three"]
    session = home / ".clawdbot" / "matrix" / "default" / "session.json"
    assert session.stat().st_mode & 0o777 == 0o600
    # the password login's token is revoked on the homeserver: auth failure, no crash
    token = json.loads(session.read_text())["accessToken"]
    elsewhere = nio.AsyncClient(synapse.url, bot_id)
    elsewhere.access_token = token
    await elsewhere.logout()  # e.g. the owner ended the session in another client
    await elsewhere.close()
    runner = manager.runner("matrix")
    await ann.say(room, "anyone?")
    await wait_for(lambda: runner.status.state is AccountState.FAILED, timeout=30)
    await supervisor_ended("matrix")
    status = channels_status(manager)["channelAccounts"]["matrix"][0]
    assert "refused the credentials" in status["lastError"] and status["connected"] is False
    assert manager.state.value == "running"


async def test_encrypted_room_without_encryption_gets_a_notice(
    synapse: Synapse, people: Any, start_manager: Any
) -> None:
    ann = people("ann")
    await ann.sync()
    bot_id, password = bot_account(synapse)
    agent = EchoDispatcher()
    manager = await start_manager(
        mx_config(synapse, bot_id, password, allowFrom=[ann.user_id]), dispatcher=agent
    )
    room = await ann.encrypted_dm(bot_id)
    await joined(manager, room)
    await ann.client.room_send(
        room,
        "m.room.encrypted",
        {
            "algorithm": "m.megolm.v1.aes-sha2",
            "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg",
            "device_id": "ANN",
            "sender_key": "FYg7mRBHKnMqa93Rvtg8GRTbVXfaJozxl8SJSyJRC2A",
            "session_id": "8ZBS8eZFTOgh6xcHtMGHZJfGN2WYZQNJSXHN2ZkVfPk",
        },
    )
    [(where, notice)] = await ann.wait_messages(1)
    assert where == room and "encrypted room not supported" in notice.body
    assert agent.calls == []
    status = channels_status(manager)["channelAccounts"]["matrix"][0]
    assert "encrypted room not supported" in status["lastError"]


async def test_message_send_targets(synapse: Synapse, people: Any, start_manager: Any) -> None:
    ann = people("ann")
    await ann.sync()
    bot_id, password = bot_account(synapse)
    manager = await start_manager(mx_config(synapse, bot_id, password), dispatcher=EchoDispatcher())
    result = await manager.send("matrix", f"user:{ann.user_id}", OutboundMessage(text="hi ann"))
    [(where, event)] = await ann.wait_messages(1)
    assert where == result.chat_id and event.body == "hi ann"
    again = await manager.send("matrix", f"room:{where}", OutboundMessage(text="again"))
    assert again.chat_id == where
    from moltbot.channels.errors import TargetError

    with pytest.raises(TargetError, match="invalid matrix target"):
        await manager.send("matrix", "ann", OutboundMessage(text="x"))


async def test_logout_ends_the_session_and_forgets_the_credentials(
    synapse: Synapse, people: Any, start_manager: Any, home: Path
) -> None:
    from tests.channels.channel_helpers import config_path

    bot_id, password = bot_account(synapse)
    manager = await start_manager(mx_config(synapse, bot_id, password), dispatcher=EchoDispatcher())
    session = home / ".clawdbot" / "matrix" / "default" / "session.json"
    token = json.loads(session.read_text())["accessToken"]
    result = await manager.logout("matrix")
    assert result == {
        "channel": "matrix",
        "accountId": "default",
        "cleared": True,
        "clearedKeys": ["password"],
        "loggedOut": True,
        "envToken": False,
    }
    probe = nio.AsyncClient(synapse.url, bot_id)
    probe.access_token = token
    who = await probe.whoami()
    await probe.close()
    assert isinstance(who, nio.WhoamiError) and who.status_code == "M_UNKNOWN_TOKEN"
    assert not session.parent.exists()
    section = json.loads(config_path(home).read_text())["channels"]["matrix"]
    assert "password" not in section and section["userId"] == bot_id
    assert manager.runner("matrix").status.state is AccountState.STOPPED


async def test_end_to_end_encrypted_dm(
    synapse: Synapse, people: Any, start_manager: Any, tmp_path: Path, home: Path
) -> None:
    (tmp_path / "ann-store").mkdir()
    ann = people("ann", store=tmp_path / "ann-store")
    await ann.sync()
    bot_id, password = bot_account(synapse)
    agent = EchoDispatcher()
    manager = await start_manager(
        mx_config(synapse, bot_id, password, allowFrom=[ann.user_id], encryption=True),
        dispatcher=agent,
    )
    room = await ann.encrypted_dm(bot_id)
    await joined(manager, room)
    await wait_for(lambda: manager.running_channel("matrix").client.rooms[room].member_count == 2)
    await ann.sync()
    sent = await ann.client.room_send(
        room,
        "m.room.message",
        {"msgtype": "m.text", "body": "a secret"},
        ignore_unverified_devices=True,
    )
    assert isinstance(sent, nio.RoomSendResponse), sent
    [(where, reply)] = await ann.wait_messages(1)
    assert where == room and reply.body == "echo: a secret"
    assert reply.decrypted  # it travelled encrypted
    assert agent.calls[0]["text"] == "a secret"
    assert (home / ".clawdbot" / "matrix" / "default" / "store").is_dir()

    # an encrypted image: the media repo holds ciphertext, the agent gets the picture
    import io

    picture = png(6, 6, (200, 10, 10))
    uploaded, keys = await ann.client.upload(
        io.BytesIO(picture),
        content_type="application/octet-stream",
        filename="red.png",
        encrypt=True,
        filesize=len(picture),
    )
    assert isinstance(uploaded, nio.UploadResponse) and keys
    report = tmp_path / "report.png"
    report.write_bytes(png(9, 9, (0, 0, 250)))
    agent.reply = lambda text: f"got it\nMEDIA: {report}"

    async def resolve_media(agent_id: str, item: str) -> str:
        return item

    agent.resolve_media = resolve_media  # type: ignore[attr-defined]
    stored = await ann.client.download(mxc=uploaded.content_uri)
    assert stored.body != picture
    sent = await ann.client.room_send(
        room,
        "m.room.message",
        {
            "msgtype": "m.image",
            "body": "red.png",
            "file": {**keys, "url": uploaded.content_uri},
            "info": {"mimetype": "image/png", "size": len(picture)},
        },
        ignore_unverified_devices=True,
    )
    assert isinstance(sent, nio.RoomSendResponse), sent
    [_, (_, text), (_, answer)] = await ann.wait_messages(3)
    [image] = agent.calls[1]["media"]
    assert image.mime_type == "image/png" and Path(image.path).read_bytes() == picture
    # ... and the file the agent sends back goes out encrypted too
    assert text.body == "got it" and isinstance(answer, nio.RoomEncryptedImage), answer
    from nio.crypto.attachments import decrypt_attachment

    got = await ann.client.download(mxc=answer.url)
    assert got.body != report.read_bytes()
    plain = decrypt_attachment(got.body, answer.key["k"], answer.hashes["sha256"], answer.iv)
    assert plain == report.read_bytes()


async def test_streamed_reply_is_one_message_edited_as_it_grows(
    synapse: Synapse, people: Any, llm: Any, stack: Any
) -> None:
    from tests.fakes.llm_openai import openai_config
    from tests.fakes.llm_script import Reply

    ann = people("ann")
    await ann.sync()
    bot_id, password = bot_account(synapse)
    channel = {"allowFrom": [ann.user_id], "streaming": True, "textChunkLimit": 100}
    _, channels = await stack(
        {**openai_config(llm.base_url), **mx_config(synapse, bot_id, password, **channel)}
    )
    room = await ann.dm(bot_id)
    await joined(channels, room)

    def from_bot() -> list[dict[str, Any]]:
        return [e.source for _, e in ann.received if e.sender == bot_id]

    # the first words show at once; the rest replaces them when the model goes on
    gate = asyncio.Event()
    text = "Hello there, **friend**. The whole answer is here now."
    llm.push(Reply(text=text, chunk_chars=12, gate=gate))
    await ann.say(room, "hi")
    await ann.wait(lambda: bool(from_bot()))
    [preview] = from_bot()
    assert preview["content"]["body"] == "Hello there,"
    await ann.sync()  # the bot types while the model works
    assert (room, [bot_id]) in ann.typing
    assert "m.relates_to" not in preview["content"]
    gate.set()
    await ann.wait(lambda: from_bot()[-1]["content"].get("m.new_content", {}).get("body") == text)
    edits = from_bot()[1:]
    for edit in edits:
        relation = edit["content"]["m.relates_to"]
        assert relation == {"rel_type": "m.replace", "event_id": preview["event_id"]}
        assert edit["content"]["body"].startswith("* ")
    final = edits[-1]["content"]["m.new_content"]
    assert (
        final["formatted_body"]
        == "<p>Hello there, <strong>friend</strong>. The whole answer is here now.</p>"
    )

    # NO_REPLY never shows; a long reply: the preview becomes the first part, then more
    llm.push(Reply(text="NO_REPLY"))
    await ann.say(room, "ok")
    long = " ".join(f"word{i}" for i in range(40))  # ~280 characters
    llm.push(Reply(text=long, chunk_chars=30))
    await ann.say(room, "more")
    await ann.wait(lambda: "word39" in from_bot()[-1]["content"].get("body", ""))
    later = from_bot()[len(edits) + 1 :]
    assert all("NO_REPLY" not in e["content"]["body"] for e in later)
    first = later[0]
    assert "m.relates_to" not in first["content"]
    shown = first["content"]["body"]
    for event in later[1:]:
        content = event["content"]
        if content.get("m.relates_to", {}).get("rel_type") == "m.replace":
            assert content["m.relates_to"]["event_id"] == first["event_id"]
            shown = content["m.new_content"]["body"]
        else:
            shown += " " + content["body"]
    assert shown.split() == long.split()
    assert all(len(e["content"]["body"]) <= 102 for e in later)


async def test_auto_join_allowlist(synapse: Synapse, people: Any, start_manager: Any) -> None:
    ann = people("ann")
    bob = people("bob")
    bot_id, password = bot_account(synapse)
    config = mx_config(
        synapse, bot_id, password, autoJoin="allowlist", autoJoinAllowlist=[ann.user_id]
    )
    manager = await start_manager(config, dispatcher=EchoDispatcher())
    refused = await bob.dm(bot_id)  # bob is not on the list
    accepted = await ann.dm(bot_id)
    await joined(manager, accepted)  # barrier: the later invite was handled
    members = await bob.client.joined_members(refused)
    assert isinstance(members, nio.JoinedMembersResponse), members
    assert [m.user_id for m in members.members] == [bob.user_id]
    assert refused not in manager.running_channel("matrix").client.rooms
