"""Tools against the real file system, real processes and a real local HTTP server."""

import asyncio
import logging
import os

import pytest
from aiohttp import web

from moltbot.agents.tools.base import ToolContext, ToolError
from moltbot.agents.tools.exec import ExecTool, child_env
from moltbot.agents.tools.fs import EditTool, ReadTool, WriteTool
from moltbot.agents.tools.html_text import html_to_text
from moltbot.agents.tools.web import WebFetchTool, blocked_address
from moltbot.config.schema import Config
from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance


@pytest.fixture
def make_ctx(tmp_path):
    def make(config=None, env=None):
        cfg = Config.model_validate(config or {})
        environ = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", **(env or {})}
        identity = resolve_identity(Invocation(), environ, tmp_path)
        instance = resolve_instance(identity, cfg, environ)
        workspace = tmp_path / "ws"
        workspace.mkdir(exist_ok=True)
        return ToolContext(
            agent_id="main",
            session_key="agent:main:main",
            run_id="r",
            workspace=workspace,
            instance=instance,
            config=cfg,
            env=environ,
            logger=logging.getLogger("test"),
        )

    return make


async def call(tool, ctx, **args):
    return await tool.run(ctx, tool.parse(args))


async def test_write_read_edit(make_ctx):
    ctx = make_ctx()
    assert "Wrote 11 bytes" in await call(WriteTool(), ctx, path="a/b.txt", content="hello\nworld")
    assert await call(ReadTool(), ctx, file_path="a/b.txt") == "hello\nworld"
    assert "lines 2-2 of 2" in await call(ReadTool(), ctx, path="a/b.txt", offset=2)
    assert "1 replacement" in await call(
        EditTool(), ctx, path="a/b.txt", oldText="world", newText="there"
    )
    assert (ctx.workspace / "a/b.txt").read_text() == "hello\nthere"
    with pytest.raises(ToolError, match="not found"):
        await call(EditTool(), ctx, path="a/b.txt", old_string="zzz", new_string="y")
    (ctx.workspace / "dup.txt").write_text("x x")
    with pytest.raises(ToolError, match="occurs 2 times"):
        await call(EditTool(), ctx, path="dup.txt", oldText="x", newText="y")
    await call(EditTool(), ctx, path="dup.txt", oldText="x", newText="y", replaceAll=True)
    assert (ctx.workspace / "dup.txt").read_text() == "y y"
    absolute = str(ctx.workspace / "a" / "b.txt")
    assert await call(ReadTool(), ctx, path=absolute) == "hello\nthere"


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", "a/../../x", "~/x"])
async def test_escapes_are_rejected(make_ctx, path, tmp_path):
    ctx = make_ctx()
    (tmp_path / "outside.txt").write_text("secret")
    for tool, args in ((ReadTool(), {}), (WriteTool(), {"content": "x"})):
        try:
            result = await call(tool, ctx, path=path, **args)
        except ToolError as exc:
            assert "outside the workspace" in exc.message or "no such file" in exc.message
        else:  # "~/x" is a relative name inside the workspace, which is fine
            assert path == "~/x", result
    assert (tmp_path / "outside.txt").read_text() == "secret"


async def test_symlink_escapes_are_rejected(make_ctx, tmp_path):
    ctx = make_ctx()
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, ctx.workspace / "link.txt")
    os.symlink(tmp_path, ctx.workspace / "up")
    with pytest.raises(ToolError, match="outside the workspace"):
        await call(ReadTool(), ctx, path="link.txt")
    with pytest.raises(ToolError, match="outside the workspace"):
        await call(WriteTool(), ctx, path="link.txt", content="pwned")
    with pytest.raises(ToolError, match="outside the workspace"):
        await call(WriteTool(), ctx, path="up/new.txt", content="pwned")
    with pytest.raises(ToolError, match="outside the workspace"):
        await call(EditTool(), ctx, path="link.txt", oldText="top", newText="no")
    assert secret.read_text() == "top secret" and not (tmp_path / "new.txt").exists()
    # a link that stays inside is fine
    (ctx.workspace / "real.txt").write_text("inside")
    os.symlink(ctx.workspace / "real.txt", ctx.workspace / "alias.txt")
    assert await call(ReadTool(), ctx, path="alias.txt") == "inside"


async def test_a_sibling_with_the_workspace_as_prefix_is_outside(make_ctx, tmp_path):
    """``ws-evil`` starts with the workspace's path ``ws``: a check by string prefix
    would let every tool in. Reached by ``..``, by absolute path and through a link."""
    ctx = make_ctx()
    evil = tmp_path / (ctx.workspace.name + "-evil")
    evil.mkdir()
    (evil / "secret.txt").write_text("top secret")
    os.symlink(evil, ctx.workspace / "door")
    paths = [f"../{evil.name}/{{}}", str(evil / "{}"), "door/{}"]
    for template in paths:
        with pytest.raises(ToolError):
            await call(ReadTool(), ctx, path=template.format("secret.txt"))
        with pytest.raises(ToolError):
            await call(WriteTool(), ctx, path=template.format("new.txt"), content="pwned")
        with pytest.raises(ToolError):
            await call(WriteTool(), ctx, path=template.format("secret.txt"), content="pwned")
        with pytest.raises(ToolError):
            await call(
                EditTool(), ctx, path=template.format("secret.txt"), oldText="top", newText="no"
            )
    for workdir in (f"../{evil.name}", str(evil), "door"):
        with pytest.raises(ToolError):
            await call(ExecTool(), ctx, command="ls", workdir=workdir)
        full = make_ctx({"tools": {"exec": {"security": "full"}}})
        with pytest.raises(ToolError):
            await call(ExecTool(), full, command="echo pwned > planted.txt", workdir=workdir)
    assert sorted(p.name for p in evil.iterdir()) == ["secret.txt"]
    assert (evil / "secret.txt").read_text() == "top secret"
    # The workspace itself and what is inside it stay reachable.
    (ctx.workspace / "sub").mkdir()
    assert "[exit code 0]" in await call(ExecTool(), ctx, command="pwd", workdir="sub")
    assert "[exit code 0]" in await call(ExecTool(), ctx, command="pwd", workdir=".")


async def test_exec_allowlist(make_ctx):
    ctx = make_ctx()
    (ctx.workspace / "f.txt").write_text("abc\n")
    out = await call(ExecTool(), ctx, command="cat f.txt")
    assert "abc" in out and "[exit code 0]" in out
    out = await call(ExecTool(), ctx, command="ls -1")
    assert "f.txt" in out
    for bad in ("cat f.txt; rm f.txt", "ls && id", "echo hi > x", "echo $(id)", "ls | wc"):
        with pytest.raises(ToolError, match="without a shell"):
            await call(ExecTool(), ctx, command=bad)
    with pytest.raises(ToolError, match="not in tools.exec.allowlist"):
        await call(ExecTool(), ctx, command="rm f.txt")
    assert (ctx.workspace / "f.txt").exists()
    with pytest.raises(ToolError, match="outside the workspace"):
        await call(ExecTool(), ctx, command="ls", workdir="..")


async def test_exec_full_timeout_and_output_cap(make_ctx):
    ctx = make_ctx(
        {"tools": {"exec": {"security": "full", "maxOutputChars": 200, "timeoutSeconds": 5}}}
    )
    out = await call(ExecTool(), ctx, command="echo one && echo two | tr a-z A-Z; exit 3")
    assert "one\nTWO" in out and "[exit code 3]" in out
    out = await call(ExecTool(), ctx, command="seq 1 100000")
    assert "bytes of output omitted" in out and out.count("\n") < 80
    assert "\n100000\n" in out
    out = await call(ExecTool(), ctx, command="sleep 30 & echo started; wait", timeout=1)
    assert "timed out after 1s" in out


async def test_exec_environment_is_scrubbed(make_ctx):
    env = {
        "OPENAI_API_KEY": "sk-1",
        "MOLTBOT_GATEWAY_TOKEN": "t",
        "CLAWDBOT_STATE_DIR": "/x",
        "SLACK_BOT_TOKEN": "xoxb",
        "AWS_SECRET_ACCESS_KEY": "s",
        "GITHUB_TOKEN": "g",
        "MY_PASSWORD": "p",
        "LANG": "C.UTF-8",
    }
    ctx = make_ctx({"tools": {"exec": {"security": "full"}}}, env)
    out = await call(ExecTool(), ctx, command="env")
    for name in env:
        if name != "LANG":
            assert name not in out, name
    assert "LANG=C.UTF-8" in out
    assert "PWD=" + os.path.realpath(ctx.workspace) in out
    with pytest.raises(ToolError):
        child_env({}, {"NEW_TOKEN": "x"})


def test_exec_deny_hides_the_tool():
    assert not ExecTool().enabled(Config.model_validate({"tools": {"exec": {"security": "deny"}}}))
    assert ExecTool().enabled(Config())


@pytest.fixture
async def site():
    app = web.Application()

    async def page(request):
        return web.Response(
            text="<html><head><title>T</title><style>x{}</style></head><body>"
            "<h1>Hello</h1><p>world <b>bold</b></p><script>evil()</script>"
            "<ul><li>one</li></ul></body></html>",
            content_type="text/html",
        )

    async def big(request):
        return web.Response(text="x" * 50_000)

    async def hop(request):
        raise web.HTTPFound("/page")

    async def binary(request):
        return web.Response(body=b"\x00\x01", content_type="image/png")

    app.router.add_get("/page", page)
    app.router.add_get("/big", big)
    app.router.add_get("/hop", hop)
    app.router.add_get("/bin", binary)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", port
    await runner.cleanup()


async def test_web_fetch_blocks_private_targets(make_ctx, site):
    url, port = site
    ctx = make_ctx()
    for target in (
        f"{url}/page",
        f"http://localhost:{port}/page",
        "http://10.1.2.3/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
    ):
        with pytest.raises(ToolError, match="private|local|only http"):
            await call(WebFetchTool(), ctx, url=target)


async def test_web_fetch_when_allowed(make_ctx, site):
    url, port = site
    ctx = make_ctx({"tools": {"web": {"fetch": {"allowPrivate": True, "maxBytes": 10_000}}}})
    result = await call(WebFetchTool(), ctx, url=f"{url}/hop")
    assert result["title"] == "T" and result["finalUrl"].endswith("/page")
    assert "Hello" in result["text"] and "world bold" in result["text"]
    assert "evil" not in result["text"] and "- one" in result["text"]
    big = await call(WebFetchTool(), ctx, url=f"{url}/big", maxChars=500)
    assert big["truncated"] and len(big["text"]) == 500
    with pytest.raises(ToolError, match="not text"):
        await call(WebFetchTool(), ctx, url=f"{url}/bin")
    host_only = make_ctx({"tools": {"web": {"fetch": {"allowHosts": ["localhost"]}}}})
    assert (
        "Hello"
        in (await call(WebFetchTool(), host_only, url=f"http://localhost:{port}/page"))["text"]
    )


def test_blocked_addresses():
    assert blocked_address("127.0.0.1") and blocked_address("192.168.1.1")
    assert blocked_address("::ffff:10.0.0.1") and blocked_address("fe80::1")
    assert not blocked_address("93.184.216.34")
    assert html_to_text("<p>a</p><p>b</p>")[1] == "a\n\nb"


async def test_read_write_edit_edges(make_ctx):
    """Limits are inclusive, a directory reads as its listing, and every failure is a
    ToolError the model can read (never a raw exception)."""
    from moltbot.agents.tools import fs

    ctx = make_ctx()
    ws = ctx.workspace
    assert "Wrote 2 bytes to x/y/z.txt" in await call(
        WriteTool(), ctx, path="x/y/z.txt", content="hi"
    )
    (ws / "x" / "a.txt").write_text("a")
    listing = await call(ReadTool(), ctx, path="x")
    assert listing == "x/ is a directory:\na.txt\ny/"
    (ws / "three.txt").write_text("1\n2\n3\n")
    assert await call(ReadTool(), ctx, path="three.txt", limit=3) == "1\n2\n3\n"
    assert await call(ReadTool(), ctx, path="three.txt", limit=2) == (
        "1\n2\n\n[lines 1-2 of 3; use offset/limit for more]"
    )
    (ws / "wide.txt").write_text("w" * fs.MAX_READ_CHARS)
    assert await call(ReadTool(), ctx, path="wide.txt") == "w" * fs.MAX_READ_CHARS
    (ws / "wider.txt").write_text("w" * (fs.MAX_READ_CHARS + 1))
    assert "[truncated at" in await call(ReadTool(), ctx, path="wider.txt")
    big = "b" * fs.MAX_WRITE_BYTES
    assert f"Wrote {fs.MAX_WRITE_BYTES} bytes" in await call(
        WriteTool(), ctx, path="big.txt", content=big
    )
    with pytest.raises(ToolError, match="too large"):
        await call(WriteTool(), ctx, path="big.txt", content=big + "b")
    (ws / "one.txt").write_text("a b")
    assert await call(EditTool(), ctx, path="one.txt", oldText="a", newText="c") == (
        "Edited one.txt: 1 replacement"
    )
    (ws / "two.txt").write_text("a a")
    assert await call(
        EditTool(), ctx, path="two.txt", oldText="a", newText="c", replaceAll=True
    ) == ("Edited two.txt: 2 replacements")
    for blank in ("", "   "):
        with pytest.raises(ToolError):
            await call(ReadTool(), ctx, path=blank)
    with pytest.raises(ToolError, match="is a directory"):
        await call(WriteTool(), ctx, path="x", content="over a directory")
    with pytest.raises(ToolError, match="(?i)not a directory"):
        await call(ReadTool(), ctx, path="three.txt/inside")


async def test_exec_edges(make_ctx, tmp_path):
    """Unparseable commands and unstartable children are ToolErrors; a timeout kills the
    whole process group (a backgrounded child too), and the output cap keeps the head."""
    import psutil

    ctx = make_ctx()
    with pytest.raises(ToolError, match="cannot parse"):
        await call(ExecTool(), ctx, command='echo "unbalanced')
    # Split like a shell: quotes removed, a word stays whole, every operator refused.
    out = await call(ExecTool(), ctx, command="echo \"a b\" 'c' d:e,f")
    assert out.splitlines()[1] == "a b c d:e,f"
    with pytest.raises(ToolError, match="without a shell"):
        await call(ExecTool(), ctx, command="echo x ();<>|&")
    exact = make_ctx({"tools": {"exec": {"security": "full", "maxOutputChars": 200}}})
    out = await call(ExecTool(), exact, command="head -c 200 /dev/zero | tr '\\0' a")
    assert "a" * 200 in out and "omitted" not in out
    full = make_ctx(  # no sandbox: the pids below are the host's, not a PID namespace's
        {
            "tools": {
                "exec": {
                    "security": "full",
                    "maxOutputChars": 200,
                    "timeoutSeconds": 30,
                    "sandbox": {"mode": "off"},
                }
            }
        }
    )
    with pytest.raises(ToolError, match="cannot start"):
        await call(ExecTool(), full, command="true", env={"HUGE": "x" * 200_000})  # E2BIG
    out = await call(ExecTool(), full, command="seq 1 100000")
    assert out.startswith("$ seq 1 100000\n1\n2\n3\n") and out.rstrip().endswith("[exit code 0]")
    total = sum(len(str(i)) + 1 for i in range(1, 100001))
    assert f"[... {total - 200} bytes of output omitted ...]" in out  # head 100 + tail 100
    out = await call(ExecTool(), full, command="sleep 1000 & echo pid=$!; wait", timeout=1)
    assert "timed out after 1s" in out
    pid = int(out.split("\npid=")[1].split()[0])

    def dead() -> bool:  # SIGKILL is sent; the kernel takes a moment to act on it
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    for _ in range(500):
        if dead():
            break
        await asyncio.sleep(0.02)
    assert dead(), f"the backgrounded child {pid} survived the timeout"
