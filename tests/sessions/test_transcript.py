"""One transcript file on its own: header, parent links, torn lines, and peeking."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from moltbot.sessions.transcript import Transcript, ordered_messages, parse, peek, read_tail


def msg(role: str, content: object, **extra: object) -> dict[str, object]:
    return {"type": "message", "message": {"role": role, "content": content}, **extra}


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_create_once_in_new_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "t.jsonl"
    transcript = Transcript(path)
    assert transcript.create("sid", "agent:main:main", "/w") is True
    assert Transcript(path).create("other", "agent:main:x", None) is False
    [header] = lines(path)
    assert header["type"] == "session" and header["id"] == "sid" and header["cwd"] == "/w"
    first = transcript.append(msg("user", "one"))
    assert first["parentId"] is None  # nothing before it but the header


def test_parent_links_across_writers(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    Transcript(path).create("sid", "k", None)
    a = Transcript(path).append(msg("user", "one"))
    b = Transcript(path).append(msg("assistant", "two"))  # a new writer finds the last id
    writer = Transcript(path)
    c = writer.append(msg("user", "three"))
    d = writer.append(msg("assistant", "four", id="given"))
    assert [b["parentId"], c["parentId"], d["parentId"]] == [a["id"], b["id"], c["id"]]
    assert d["id"] == "given"
    full, before, after = writer.write(msg("user", "five"))
    assert after - before == len(path.read_bytes()) - before and full["parentId"] == "given"
    assert path.read_bytes().endswith(b"\n") and b'","' in path.read_bytes()  # compact JSON


def test_tail_id_skips_the_header_and_junk(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    transcript = Transcript(path)
    transcript.create("sid", "k", None)
    path.write_bytes(path.read_bytes() + b'{"type":"message","id":"e1"}\n[1]\nnot json\n')
    assert Transcript(path).append(msg("user", "x"))["parentId"] == "e1"
    missing = Transcript(tmp_path / "new.jsonl")
    assert missing.append(msg("user", "first"))["parentId"] is None
    big = tmp_path / "big.jsonl"
    Transcript(big).create("sid", "k", None)
    writer = Transcript(big)
    for i in range(40):
        writer.append(msg("user", "x" * 4000, id=f"e{i}"))
    assert Transcript(big).append(msg("user", "y"))["parentId"] == "e39"


def test_parse_names_torn_and_unreadable_lines(caplog: pytest.LogCaptureFixture) -> None:
    header = b'{"type":"session","id":"s"}\n'
    good = b'{"type":"message","id":"1"}\n'
    with caplog.at_level(logging.WARNING):
        read = parse(header + good + b"{torn", "f")
    assert [e["id"] for e in read.entries] == ["1"] and read.header == {
        "type": "session",
        "id": "s",
    }
    assert read.warnings == ["f: torn last line skipped (5 bytes)"]
    assert "torn last line" in caplog.text
    read = parse(header + b"{torn\n", "f")
    assert read.warnings == ["f: torn last line skipped (5 bytes)"]
    read = parse(header + good + b"\n  \n" + good, "f")  # blank lines in between
    assert len(read.entries) == 2 and read.warnings == []
    read = parse(header + b"{bad\n" + good + b"\n\n", "f")
    assert read.warnings == ["f: unreadable line 2 skipped (4 bytes)"]
    assert [e["id"] for e in read.entries] == ["1"]
    read = parse(good + b'{"type":"session","id":"late"}\n' + b"[1]\n" + good, "f")
    assert read.header is None and len(read.entries) == 3  # a late "session" line is an entry
    assert read.warnings == ["f: unreadable line 3 skipped (3 bytes)"]


def test_read_of_a_missing_file(tmp_path: Path) -> None:
    read = Transcript(tmp_path / "none.jsonl").read()
    assert read.header is None and read.entries == [] and read.warnings == []


def test_ordered_messages_skips_other_entries() -> None:
    entries = [
        {"type": "note", "message": {"role": "user"}},
        {"type": "message", "message": "not a dict"},
        msg("user", "u1"),
        msg("assistant", "a1"),
    ]
    assert [e["message"]["content"] for e in ordered_messages(entries)] == ["u1", "a1"]


def test_peek_finds_first_user_text_and_last_message(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    Transcript(path).create("sid", "k", None)
    writer = Transcript(path)
    writer.append(msg("assistant", "hello first"))
    writer.append(msg("user", [{"type": "image"}]))  # no text: keep looking
    writer.append(
        msg("user", [{"type": "text", "text": "the "}, "x", {"type": "text", "text": "question"}])
    )
    writer.append(msg("user", "second question"))
    writer.append(msg("assistant", "the answer"))
    writer.append(msg("assistant", []))  # no text: not the last message
    writer.append({"type": "custom", "message": {"role": "system", "content": "internal"}})
    first, last = peek(path)
    assert first == "the question"
    assert last == {"role": "assistant", "content": "the answer"}
    assert peek(tmp_path / "missing.jsonl") == (None, None)
    with path.open("ab") as handle:
        handle.write(b"{torn")
    assert peek(path) == ("the question", {"role": "assistant", "content": "the answer"})


def test_peek_reads_only_the_ends(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = Transcript(path)
    writer.create("sid", "k", None)
    writer.append(msg("user", "opening"))
    for i in range(20):
        writer.append(msg("assistant", f"{i:02d}" + "z" * 2000))
    writer.append(msg("user", 42))  # content that is no text at all
    first, last = peek(path, window=4096)
    assert first == "opening"
    assert last is not None and str(last["content"]).startswith("19")
    small = tmp_path / "small.jsonl"
    Transcript(small).append(msg("user", "only"))
    assert peek(small, window=1 << 20) == ("only", {"role": "user", "content": "only"})


def _rchar() -> int:
    """Bytes this process has read through read(2) so far (Linux ``/proc/self/io``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _long_transcript(path: Path, turns: int) -> None:
    with path.open("w") as handle:
        handle.write(json.dumps({"type": "session", "version": 3, "id": "sid"}) + "\n")
        for n in range(turns):
            handle.write(json.dumps(msg("user", f"question {n} " + "x" * 100, id=f"u{n}")) + "\n")
            handle.write(json.dumps(msg("assistant", f"answer {n}", id=f"a{n}")) + "\n")


def _messages_over(count: int):
    return lambda entries: sum(1 for e in entries if e.get("type") == "message") > count


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs /proc/self/io")
def test_read_tail_reads_only_the_end(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    _long_transcript(path, 50_000)  # 100,000 message lines, about 9 MB
    size = path.stat().st_size
    before = _rchar()
    read = read_tail(path, _messages_over(20))
    read_bytes = _rchar() - before
    assert [e["id"] for e in read.entries[-4:]] == ["u49998", "a49998", "u49999", "a49999"]
    assert read.header is None and read.size < 200_000
    assert read_bytes < 200_000 < size  # the kernel's count, not ours
    whole = Transcript(path).read()
    assert whole.entries[-len(read.entries) :] == read.entries


def test_read_tail_of_a_short_file_is_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    _long_transcript(path, 3)
    read = read_tail(path, _messages_over(100))
    assert read.header is not None and read.header["id"] == "sid"
    assert [e["id"] for e in read.entries] == ["u0", "a0", "u1", "a1", "u2", "a2"]
    assert read.size == path.stat().st_size


def test_read_tail_line_longer_than_a_block_and_a_torn_end(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "t.jsonl"
    _long_transcript(path, 10)
    with path.open("a") as handle:
        handle.write(json.dumps(msg("assistant", "y" * 300_000, id="big")) + "\n")
        handle.write(json.dumps(msg("user", "last", id="last")) + "\n")
        handle.write('{"type": "message", "mess')  # torn by a crash
    with caplog.at_level(logging.WARNING):
        read = read_tail(path, _messages_over(1), block=4096)
    assert [e["id"] for e in read.entries[-2:]] == ["big", "last"]
    assert read.entries[-2]["message"]["content"] == "y" * 300_000
    assert "torn last line" in caplog.text


def test_read_tail_refuses_a_fifo_without_hanging(tmp_path: Path) -> None:
    import os

    path = tmp_path / "t.jsonl"
    os.mkfifo(path)
    with pytest.raises(OSError, match="not a regular file"):
        read_tail(path, _messages_over(1))
    assert read_tail(tmp_path / "missing.jsonl", _messages_over(1)).entries == []
