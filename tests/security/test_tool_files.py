"""Issue 11, items 6 and 12: file tools never block on a FIFO, socket or device;
every tool call is time-limited and cancellable; hard links and links swapped in
after the check are not followed; nothing is created world-writable under
``umask 000``."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import stat
import uuid
from pathlib import Path

import psutil
import pytest
from tool_harness import Reply, agent, gateways, is_chat, llm, openai_config, start_agent

from gateway_harness import ws_client

__all__ = ["agent", "gateways", "llm"]  # fixtures


def release(fifos):
    """Unblock anything stuck opening these FIFOs (cleanup, should a tool block)."""
    for fifo in fifos:
        for flags in (os.O_RDONLY | os.O_NONBLOCK, os.O_WRONLY | os.O_NONBLOCK):
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, flags))


async def send(client, text, session="main"):
    return await client.call(
        "chat.send",
        {"sessionKey": session, "message": text, "idempotencyKey": str(uuid.uuid4())},
    )


def tool_messages(llm):
    return [m["content"] for m in llm.requests[-1]["body"]["messages"] if m["role"] == "tool"]


async def test_fifos_and_sockets_are_refused_at_once_through_the_gateway(home, llm, gateways):
    workspace = home / "clawd-main"
    workspace.mkdir()
    fifos = [workspace / f"pipe{i}" for i in range(8)]
    for fifo in fifos:
        os.mkfifo(fifo)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(workspace / "sock"))
    calls = [("read", {"path": f"pipe{i}"}) for i in range(7)]
    calls += [
        ("write", {"path": "pipe7", "content": "x"}),
        ("edit", {"path": "pipe7", "oldText": "a", "newText": "b"}),
        ("read", {"path": "sock"}),
    ]
    llm.push(Reply("", tool_calls=calls), Reply("survived"))
    gw = gateways(home, openai_config(llm.base_url))
    try:
        async with ws_client(gw.url, gw.token) as client:
            run = await send(client, "read the pipes")
            final = await client.wait_event(is_chat(run["runId"], "final"), timeout=60)
            assert final["payload"]["message"]["content"][0]["text"] == "survived"
            results = tool_messages(llm)
            assert len(results) == 10
            for text in results[:9]:
                assert "FIFO" in text and "only regular files" in text, text
            assert "socket" in results[9]
            # the runtime is healthy: a plain message still gets its answer
            again = await send(client, "still there?")
            final = await client.wait_event(is_chat(again["runId"], "final"), timeout=30)
            assert final["payload"]["message"]["content"][0]["text"] == "echo: still there?"
    finally:
        release(fifos)
        listener.close()


def find_process(cwd: Path, *argv: str) -> psutil.Process | None:
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if len(cmdline) != len(argv) or os.path.basename(cmdline[0]) != argv[0]:
                continue
            if cmdline[1:] == list(argv[1:]) and Path(proc.cwd()) == cwd:
                return proc
        except (psutil.Error, TypeError):
            continue
    return None


async def wait_process(cwd: Path, *argv: str) -> psutil.Process:
    for _ in range(600):
        found = find_process(cwd, *argv)
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{argv} never started")


async def test_every_tool_call_is_time_limited(home, llm, gateways):
    workspace = home / "clawd-main"
    workspace.mkdir()
    fifo = workspace / "never-written"
    os.mkfifo(fifo)
    config = openai_config(llm.base_url)
    config["tools"] = {"timeoutSeconds": 2, "exec": {"timeoutSeconds": 600}}
    llm.push(Reply("", tool_calls=[("exec", {"command": "cat never-written"})]), Reply("next"))
    gw = gateways(home, config)
    try:
        async with ws_client(gw.url, gw.token) as client:
            run = await send(client, "wait forever")
            cat = await wait_process(workspace.resolve(), "cat", "never-written")
            final = await client.wait_event(is_chat(run["runId"], "final"), timeout=60)
            assert final["payload"]["message"]["content"][0]["text"] == "next"
            (text,) = tool_messages(llm)
            assert "timed out after 2s (tools.timeoutSeconds)" in text
            cat.wait(timeout=10)  # killed with its process group
    finally:
        release([fifo])


async def test_chat_abort_frees_a_running_tool(home, llm, gateways):
    workspace = home / "clawd-main"
    workspace.mkdir()
    (workspace / "log.txt").write_text("line\n")
    llm.push(Reply("", tool_calls=[("exec", {"command": "tail -f log.txt"})]))
    gw = gateways(home, openai_config(llm.base_url))
    async with ws_client(gw.url, gw.token) as client:
        run = await send(client, "follow the log")
        tail = await wait_process(workspace.resolve(), "tail", "-f", "log.txt")
        aborted = await client.call(
            "chat.abort", {"sessionKey": "agent:main:main", "runId": run["runId"]}
        )
        assert aborted["runIds"] == [run["runId"]]
        await client.wait_event(is_chat(run["runId"], "aborted"), timeout=10)
        tail.wait(timeout=10)
        again = await send(client, "free again?")
        final = await client.wait_event(is_chat(again["runId"], "final"), timeout=30)
        assert final["payload"]["message"]["content"][0]["text"] == "echo: free again?"


async def test_hard_links_out_of_the_workspace_are_not_followed(agent, home):
    a = await agent()
    secret = home / "outside-secret.txt"
    secret.write_text("HARDLINKED SECRET\n")
    os.link(secret, a.workspace / "notes.txt")
    results = await a.call_tools(
        ("read", {"path": "notes.txt"}),
        ("edit", {"path": "notes.txt", "oldText": "SECRET", "newText": "gone"}),
        ("write", {"path": "notes.txt", "content": "overwritten"}),
        ("exec", {"command": "head notes.txt"}),
    )
    for result in results:
        assert result.is_error and "hard link" in result.text, result
        assert "HARDLINKED SECRET" not in result.text
    assert secret.read_text() == "HARDLINKED SECRET\n"


async def test_canvas_hard_links_are_not_served(agent, home):
    from moltbot.canvas import files

    a = await agent()
    secret = home / "outside-secret.txt"
    secret.write_text("HARDLINKED SECRET\n")
    root = a.workspace / "canvas"
    os.link(secret, root / "page.html")
    (result,) = await a.call_tools(("canvas", {"action": "read", "path": "page.html"}))
    assert result.is_error and "hard link" in result.text and "SECRET" not in result.text
    with pytest.raises(files.Refused):
        files.resolve(root, "page.html")
    (result,) = await a.call_tools(
        ("canvas", {"action": "write", "path": "page.html", "content": "x"})
    )
    assert result.is_error and secret.read_text() == "HARDLINKED SECRET\n"


async def test_a_link_swapped_in_after_the_check_is_refused(agent, home):
    """The time-of-check/time-of-use gap: the path is checked, then a parent directory
    is replaced by a symlink leading out; the open must not follow it."""
    from moltbot.agents.tools.confine import Confinement
    from moltbot.agents.tools.fs import read_bytes, write_bytes

    a = await agent()
    outside = home / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("OUTSIDE\n")
    (a.workspace / "dir").mkdir()
    (a.workspace / "dir" / "f.txt").write_text("inside\n")
    box = Confinement.build(a.workspace, [])
    checked = box.resolve("dir/f.txt")
    (a.workspace / "dir" / "f.txt").unlink()
    (a.workspace / "dir").rmdir()
    os.symlink(outside, a.workspace / "dir")
    with pytest.raises(Exception, match="symlink") as raised:
        read_bytes(box, checked)
    assert "OUTSIDE" not in str(raised.value)
    with pytest.raises(Exception, match="symlink"):
        write_bytes(box, checked, b"pwned")
    assert (outside / "f.txt").read_text() == "OUTSIDE\n"


async def test_umask_000_creates_nothing_group_or_world_writable(home, llm):
    old = os.umask(0)
    try:
        a = await start_agent(home, llm)
        try:
            results = await a.call_tools(
                ("write", {"path": "deep/er/note.md", "content": "hello"}),
                ("edit", {"path": "deep/er/note.md", "oldText": "hello", "newText": "hi"}),
                ("canvas", {"action": "write", "path": "app/index.html", "content": "<p>"}),
            )
            assert not any(r.is_error for r in results), results
        finally:
            await a.runtime.stop()
    finally:
        os.umask(old)
    created = [a.workspace, *a.workspace.rglob("*")]
    assert len(created) > 8
    for path in created:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o022 == 0, f"{path} is {oct(mode)}"
    assert stat.S_IMODE(a.workspace.stat().st_mode) == 0o700
    assert stat.S_IMODE((a.workspace / "deep/er/note.md").stat().st_mode) == 0o600


async def test_a_fifo_write_target_does_not_block(agent):
    a = await agent()
    fifo = a.workspace / "pipe"
    os.mkfifo(fifo)
    try:
        (result,) = await asyncio.wait_for(
            a.call_tools(("write", {"path": "pipe", "content": "x"})), timeout=60
        )
        assert result.is_error and "FIFO" in result.text
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    finally:
        release([fifo])
    with pytest.raises(OSError) as no_reader:
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    assert no_reader.value.errno == errno.ENXIO  # nobody is left blocked reading it
