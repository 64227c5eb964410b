import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from moltbot.sessions.store import SessionStore
from moltbot.sessions.transcript import Transcript, ordered_messages


def user(text):
    return {"type": "message", "message": {"role": "user", "content": text}}


async def test_create_append_and_reload(tmp_path):
    store = SessionStore(tmp_path / "sessions", cwd=tmp_path)
    entry = await store.ensure("agent:main:main", label="hello")
    assert (tmp_path / "sessions" / f"{entry.session_id}.jsonl").exists()
    first = await store.append(entry, user("one"))
    second = await store.append(entry, user("two"))
    assert second["parentId"] == first["id"]

    again = SessionStore(tmp_path / "sessions")
    reloaded = await again.get("agent:main:main")
    assert reloaded is not None and reloaded.session_id == entry.session_id
    assert reloaded.label == "hello"
    texts = [m["message"]["content"] for m in await again.messages(reloaded)]
    assert texts == ["one", "two"]
    header = json.loads(
        (tmp_path / "sessions" / f"{entry.session_id}.jsonl").read_text().splitlines()[0]
    )
    assert header["type"] == "session" and header["sessionKey"] == "agent:main:main"
    assert header["cwd"] == str(tmp_path)


async def test_index_written_atomically_and_merged(tmp_path):
    a = SessionStore(tmp_path)
    b = SessionStore(tmp_path)  # a second process, in effect
    await a.ensure("agent:main:a")
    await b.ensure("agent:main:b")
    await a.touch("agent:main:a", label="A")
    data = json.loads((tmp_path / "sessions.json").read_text())
    assert set(data) == {"agent:main:a", "agent:main:b"}
    assert data["agent:main:a"]["label"] == "A"
    assert "sessionId" in data["agent:main:b"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


async def test_usage_reset_delete(tmp_path):
    store = SessionStore(tmp_path)
    entry = await store.ensure("agent:main:main")
    await store.add_usage("agent:main:main", 10, 5)
    updated = await store.add_usage("agent:main:main", 1, 1)
    assert (updated.input_tokens, updated.output_tokens, updated.total_tokens) == (11, 6, 17)
    fresh = await store.reset("agent:main:main")
    assert fresh.session_id != entry.session_id and fresh.total_tokens is None
    assert await store.messages(fresh) == []
    deleted, archived = await store.delete("agent:main:main")
    assert deleted and len(archived) == 1 and ".deleted." in archived[0]
    assert await store.get("agent:main:main") is None
    assert await store.delete("agent:main:main") == (False, [])


async def test_torn_last_line_is_skipped_and_terminated(tmp_path, caplog):
    store = SessionStore(tmp_path)
    entry = await store.ensure("agent:main:main")
    await store.append(entry, user("kept"))
    path = store.transcript_path(entry)
    with path.open("ab") as handle:
        handle.write(b'{"type":"message","message":{"role":"user","cont')
    fresh = SessionStore(tmp_path)
    read = await fresh.read(entry)
    assert [e["message"]["content"] for e in read.entries] == ["kept"]
    assert read.warnings and "torn last line" in read.warnings[0]
    await fresh.append(entry, user("after"))
    read = await fresh.read(entry)
    assert [e["message"]["content"] for e in read.entries] == ["kept", "after"]
    # What is on disk, not what the appending store remembers: a third store reads the file.
    on_disk = await SessionStore(tmp_path).read(entry)
    assert [e["message"]["content"] for e in on_disk.entries] == ["kept", "after"]
    assert len(on_disk.warnings) == 1 and "unreadable line 3" in on_disk.warnings[0]
    await fresh.append(entry, user("later"))
    on_disk = await SessionStore(tmp_path).read(entry)
    assert [e["message"]["content"] for e in on_disk.entries] == ["kept", "after", "later"]
    assert on_disk.entries[-1]["parentId"] == on_disk.entries[-2]["id"]


async def test_corrupt_index_is_rebuilt_from_transcripts(tmp_path):
    store = SessionStore(tmp_path)
    entry = await store.ensure("agent:main:main")
    await store.append(entry, user("survives"))
    (tmp_path / "sessions.json").write_text("{not json")
    fresh = SessionStore(tmp_path)
    rebuilt = await fresh.get("agent:main:main")
    assert rebuilt is not None and rebuilt.session_id == entry.session_id
    assert list(tmp_path.glob("sessions.json.corrupt-*"))
    assert [m["message"]["content"] for m in await fresh.messages(rebuilt)] == ["survives"]


async def test_fifo_or_directory_in_place_of_the_index_is_moved_aside(tmp_path):
    store = SessionStore(tmp_path)
    entry = await store.ensure("agent:main:main")
    await store.append(entry, user("survives"))
    for odd in ("fifo", "directory"):
        (tmp_path / "sessions.json").unlink()
        if odd == "fifo":  # nobody writes to it: a blocking read would hang forever
            os.mkfifo(tmp_path / "sessions.json")
        else:
            (tmp_path / "sessions.json").mkdir()
        fresh = SessionStore(tmp_path)
        assert list(fresh.snapshot()) == ["agent:main:main"], odd
        assert (tmp_path / "sessions.json").is_file()
    assert len(list(tmp_path.glob("sessions.json.corrupt-*"))) == 2


def test_ordered_messages_groups_runs():
    entries = [
        {"type": "message", "runId": "r1", "message": {"role": "user", "content": "u1"}},
        {"type": "message", "runId": "r2", "message": {"role": "user", "content": "u2"}},
        {"type": "message", "runId": "r1", "message": {"role": "assistant", "content": "a1"}},
        {"type": "message", "message": {"role": "assistant", "content": "inj"}},
        {"type": "message", "runId": "r2", "message": {"role": "assistant", "content": "a2"}},
    ]
    order = [e["message"]["content"] for e in ordered_messages(entries)]
    assert order == ["u1", "a1", "u2", "a2", "inj"]


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from moltbot.sessions.transcript import Transcript
    t = Transcript(Path(sys.argv[1]))
    t.create("sid", "agent:main:main", None)
    i = 0
    while True:
        entry = t.append({"type": "message", "message": {"role": "user", "content": "x" * 3000,
                                                           "n": i}})
        sys.stdout.write(entry["id"] + "\\n")
        sys.stdout.flush()
        i += 1
""")


@pytest.mark.parametrize("delay", [0.05, 0.13, 0.21])
def test_kill_9_keeps_every_acknowledged_entry(tmp_path, delay):
    path = tmp_path / "t.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        acked = proc.stdout.read().decode().split()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert acked, "the writer acknowledged nothing"
    read = Transcript(path).read()
    ids = [e["id"] for e in read.entries]
    assert set(acked) <= set(ids)
    assert len(read.warnings) <= 1


async def test_append_is_on_disk_before_it_returns(tmp_path, monkeypatch):
    """An acknowledged entry has been fsync'd: the file's size at its last fsync covers it."""
    from fsync_spy import FsyncSpy

    store = SessionStore(tmp_path)
    spy = FsyncSpy.install(monkeypatch)
    entry = await store.ensure("agent:main:main")
    path = store.transcript_path(entry)
    assert spy.synced(path) == [path.stat().st_size]  # the header
    assert spy.index("fsync-dir", tmp_path) > spy.index("fsync", path)
    for text in ("one", "two"):
        await store.append(entry, user(text))
        assert spy.synced(path)[-1] == path.stat().st_size
    assert len(spy.synced(path)) == 3

    spy.clear()
    transcript = Transcript(tmp_path / "direct.jsonl")
    transcript.create("sid", "agent:main:x", None)
    transcript.append(user("three"))
    assert spy.synced(transcript.path) == [
        len(lines) for lines in _prefix_sizes(transcript.path.read_bytes())
    ]


def _prefix_sizes(raw: bytes) -> list[bytes]:
    """The file as it was after each complete line."""
    ends = [i + 1 for i, byte in enumerate(raw) if byte == ord("\n")]
    return [raw[:end] for end in ends]


async def test_reads_see_what_another_store_appended(tmp_path):
    """The read cache never hides another writer's entries, nor a deleted file."""
    a = SessionStore(tmp_path)
    entry = await a.ensure("agent:main:main")
    await a.append(entry, user("one"))
    assert [m["message"]["content"] for m in await a.messages(entry)] == ["one"]
    b = SessionStore(tmp_path)
    await b.append(entry, user("from b"))
    await a.append(entry, user("from a"))
    texts = [m["message"]["content"] for m in await a.messages(entry)]
    assert texts == ["one", "from b", "from a"]
    a.transcript_path(entry).unlink()
    assert (await a.read(entry)).entries == []


async def test_an_index_that_cannot_be_written_fails_the_caller(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the sessions directory should be")
    store = SessionStore(blocker)
    with pytest.raises(OSError):
        await store.ensure("agent:main:main")
    with pytest.raises(OSError):  # and the next caller too: nothing is stuck
        await store.ensure("agent:main:other")


async def test_index_rows_use_upstream_keys_and_millisecond_times(tmp_path):
    """Rows carry camelCase keys and no nulls, as upstream writes them; times are epoch ms."""
    store = SessionStore(tmp_path / "agents" / "main" / "sessions")  # parents created
    before = int(time.time() * 1000)
    entry = await store.ensure("agent:main:main", label="café ✓", model=None)
    after = int(time.time() * 1000)
    raw = store.index_path.read_text(encoding="utf-8")
    assert '"label": "café ✓"' in raw  # UTF-8, not \u escapes, as upstream writes it
    assert json.loads(raw) == {
        "agent:main:main": {
            "sessionId": entry.session_id,
            "createdAt": entry.created_at,
            "updatedAt": entry.updated_at,
            "label": "café ✓",
        }
    }
    assert before <= entry.created_at <= entry.updated_at <= after

    touched = await store.touch("agent:main:main", label="again")
    assert entry.updated_at <= touched.updated_at <= int(time.time() * 1000)
    _, [archived] = await store.delete("agent:main:main")
    stamp = int(archived.rsplit(".deleted.", 1)[1])
    assert touched.updated_at <= stamp <= int(time.time() * 1000)


async def test_reset_keeps_labels_and_settings_and_creates_a_missing_entry(tmp_path):
    store = SessionStore(tmp_path)
    entry = await store.ensure("agent:main:main", label="mine", model_override="m1")
    await store.add_usage("agent:main:main", 3, 4)
    fresh = await store.reset("agent:main:main")
    assert (fresh.label, fresh.model_override) == ("mine", "m1")
    assert fresh.session_id != entry.session_id and fresh.total_tokens is None
    assert await SessionStore(tmp_path).get("agent:main:main") == fresh

    created = await store.reset("agent:main:new")
    assert store.transcript_path(created).exists()
    assert (await SessionStore(tmp_path).get("agent:main:new")).session_id == created.session_id


async def test_an_unreadable_row_is_skipped_and_the_rest_kept(tmp_path, caplog):
    """One bad row (edited by hand) costs that row only: the index is not rebuilt."""
    store = SessionStore(tmp_path)
    await store.ensure("agent:main:good", label="kept")
    data = json.loads(store.index_path.read_text())
    data["agent:main:bad"] = {"label": "no sessionId"}
    store.index_path.write_text(json.dumps(data))
    fresh = SessionStore(tmp_path)
    assert set(await fresh.all()) == {"agent:main:good"}
    assert (await fresh.get("agent:main:good")).label == "kept"
    assert "session agent:main:bad skipped" in caplog.text
    assert not list(tmp_path.glob("sessions.json.corrupt-*"))


async def test_rebuild_takes_transcripts_with_a_full_header_and_their_times(tmp_path):
    store = SessionStore(tmp_path)
    entry = await store.ensure("agent:main:main")
    await store.append(entry, user("survives"))
    os.utime(store.transcript_path(entry), (1_700_000_000.25, 1_700_000_000.25))
    for name, header in (  # stray JSONL files whose header names no session or no key
        ("no-key.jsonl", {"type": "session", "id": "orphan"}),
        ("no-id.jsonl", {"type": "session", "sessionKey": "agent:main:stray"}),
    ):
        (tmp_path / name).write_text(json.dumps(header) + "\n")
    store.index_path.write_text("[1, 2")
    before = int(time.time() * 1000)

    fresh = SessionStore(tmp_path)
    assert set(await fresh.all()) == {"agent:main:main"}
    rebuilt = await fresh.get("agent:main:main")
    assert rebuilt.session_id == entry.session_id
    assert rebuilt.updated_at == 1_700_000_000_250
    assert set(json.loads(store.index_path.read_text())) == {"agent:main:main"}
    [aside] = tmp_path.glob("sessions.json.corrupt-*")
    assert aside.read_text() == "[1, 2"
    assert before <= int(aside.name.rsplit("-", 1)[1]) <= int(time.time() * 1000)
