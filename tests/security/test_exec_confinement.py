"""Issue 11, item 1: a model-chosen command under the default ``allowlist`` policy
cannot run other programs, write outside the workspace, choose its binary or
loader through the environment, or read any instance's private files.

Every attack is a tool call from the stand-in model, run by the real runtime."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import tempfile
from pathlib import Path

import pytest
from tool_harness import agent, llm, make_other_instance, needs_bwrap

from moltbot.agents.tools.base import ToolError

__all__ = ["agent", "llm"]  # fixtures
APPROVAL = "needs an operator's approval"


async def test_find_exec_cannot_run_a_shell(agent, home):
    a = await agent()
    marker = home / "pwned"
    result = await a.exec(f'find . -maxdepth 0 -exec /bin/sh -c "id; touch {marker}" {{}} +')
    assert result.is_error and APPROVAL in result.text and "-exec" in result.text
    assert "uid=" not in result.text and not marker.exists()
    for primary in ("-execdir", "-ok", "-okdir", "-delete"):
        result = await a.exec(f"find . {primary} /bin/true {{}} +")
        assert result.is_error and primary in result.text, primary
    assert (a.workspace / "f.txt").exists()


@pytest.mark.parametrize(
    "command",
    [
        "sort -o {out} f.txt",
        "sort -ro{out} f.txt",
        "sort --out={out} f.txt",
        "sort --output {out} f.txt",
        "sort --compress-program=/bin/sh -S 1 f.txt",
        "sort -T {dir} f.txt",
        "find . -fprint {out}",
        "find . -fprint0 {out}",
        "find . -fprintf {out} %p",
        "find . -fls {out}",
        "uniq f.txt {out}",
        "cat f.txt {out}",
    ],
)
async def test_no_writes_outside_the_workspace(agent, home, command):
    a = await agent()
    out = home / "outside.txt"
    result = await a.exec(command.format(out=out, dir=home))
    assert result.is_error and APPROVAL in result.text, result.text
    assert not out.exists()


async def test_the_model_cannot_choose_the_binary(agent, home):
    a = await agent()
    marker = home / "ran-workspace-binary"
    fake = a.workspace / "bin" / "cat"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ntouch {marker}\necho fake cat\n")
    fake.chmod(0o755)
    for command, env in (
        ("cat f.txt", {"PATH": str(fake.parent)}),
        ("cat f.txt", {"PATH": f"{fake.parent}:/usr/bin:/bin"}),
        ("./bin/cat f.txt", None),
        (f"{fake} f.txt", None),
    ):
        result = await a.exec(command, **({"env": env} if env else {}))
        assert result.is_error and APPROVAL in result.text, (command, result.text)
        assert "fake cat" not in result.text
    assert not marker.exists()
    # the real cat, found on the gateway's PATH, still works
    result = await a.exec("cat f.txt")
    assert not result.is_error and "banana" in result.text


async def test_gateway_path_entries_inside_the_workspace_are_skipped(agent, home, monkeypatch):
    a = await agent()
    fake = a.workspace / "cat"
    fake.write_text("#!/bin/sh\necho fake cat\n")
    fake.chmod(0o755)
    a.runtime.env = {**a.runtime.env, "PATH": f".:{a.workspace}:/usr/bin:/bin"}
    result = await a.exec("cat f.txt")
    assert not result.is_error and "banana" in result.text and "fake cat" not in result.text


@pytest.mark.parametrize(
    "name,value",
    [
        ("LD_PRELOAD", "/nonexistent/evil.so"),
        ("LD_LIBRARY_PATH", "."),
        ("LD_AUDIT", "/nonexistent/evil.so"),
        ("GCONV_PATH", "."),
        ("GLIBC_TUNABLES", "glibc.malloc.check=3"),
        ("PYTHONPATH", "."),
        ("PYTHONSTARTUP", "x.py"),
        ("PERL5OPT", "-Mevil"),
        ("RUBYOPT", "-revil"),
        ("NODE_OPTIONS", "--require ./evil.js"),
        ("BASH_ENV", "./evil.sh"),
        ("ENV", "./evil.sh"),
        ("IFS", "/"),
        ("TMPDIR", "/tmp/elsewhere"),
        ("HOME", "."),
        ("GIT_CONFIG_GLOBAL", "./evil"),
        ("RIPGREP_CONFIG_PATH", "./rc"),
        ("LC_ALL", "../../../tmp/evil-locale"),
    ],
)
async def test_loader_and_interpreter_variables_are_refused(agent, name, value):
    a = await agent()
    result = await a.exec("cat f.txt", env={name: value})
    assert result.is_error and APPROVAL in result.text and name in result.text, result.text
    assert "banana" not in result.text and "cannot be preloaded" not in result.text


async def test_harmless_variables_still_pass(agent):
    a = await agent()
    result = await a.exec("date -u +%Z", env={"TZ": "UTC", "LC_ALL": "C", "MY_FLAG": "1"})
    assert not result.is_error and "UTC" in result.text, result.text


async def test_state_dirs_and_other_instances_are_unreadable(agent, home):
    make_other_instance(home, "rescue", "RESCUE-TOKEN")
    # the worst case: the workspace is the home directory, which holds every state dir
    a = await agent({"agents": {"defaults": {"workspace": str(home)}}})
    assert a.workspace == home
    own = a.state_dir / "moltbot.json"
    results = [
        await a.exec(f"cat {own}"),
        await a.exec("cat .clawdbot/moltbot.json"),
        await a.exec("grep -r TOKEN .clawdbot-rescue"),
        await a.exec("head clawd-rescue/MEMORY.md"),
        await a.exec("ls", workdir=".clawdbot-rescue"),
        *await a.call_tools(
            ("read", {"path": ".clawdbot/moltbot.json"}),
            ("read", {"path": str(home / ".clawdbot-rescue" / "moltbot.json")}),
            ("read", {"path": "clawd-rescue/MEMORY.md"}),
            ("edit", {"path": ".clawdbot/moltbot.json", "oldText": "OWN", "newText": "X"}),
            ("write", {"path": ".clawdbot-rescue/moltbot.json", "content": "{}"}),
        ),
    ]
    for result in results:
        assert result.is_error, result
        assert "OWN-TOKEN" not in result.text and "RESCUE-TOKEN" not in result.text
        assert "moltbot state dir" in result.text, result.text
    assert "OWN-TOKEN" in own.read_text()
    assert "RESCUE-TOKEN" in (home / ".clawdbot-rescue" / "moltbot.json").read_text()
    # the rest of the home directory is the workspace and stays usable
    (home / "notes.txt").write_text("fine\n")
    assert "fine" in (await a.exec("cat notes.txt")).text


@pytest.mark.parametrize("sandbox", ["off", pytest.param("bwrap", marks=needs_bwrap)])
async def test_walking_a_directory_that_holds_state_dirs(agent, home, sandbox):
    """A recursive command started above a state dir must not read it: without the
    sandbox it needs an approval, inside the sandbox the state dirs are empty."""
    make_other_instance(home, "rescue", "RESCUE-TOKEN")
    a = await agent(
        {
            "agents": {"defaults": {"workspace": str(home)}},
            "tools": {"exec": {"sandbox": {"mode": sandbox}}},
        }
    )
    for command in ("grep -r TOKEN .", "grep -r TOKEN", "find . -name moltbot.json", "du -a"):
        result = await a.exec(command)
        assert "OWN-TOKEN" not in result.text and "RESCUE-TOKEN" not in result.text
        if sandbox == "off":
            assert result.is_error and "no OS sandbox" in result.text, result.text
        else:
            assert not result.is_error, result.text
            assert ".clawdbot/moltbot.json" not in result.text
    # a directory without protected places inside is fine either way
    (home / "docs").mkdir()
    (home / "docs" / "a.txt").write_text("TOKENS are fine here\n")
    result = await a.exec("grep -r TOKEN .", workdir="docs")
    assert not result.is_error and "./a.txt" in result.text


async def test_a_workspace_inside_the_state_dir_still_hides_its_secrets(agent, home):
    state = home / ".clawdbot"
    (state / "credentials").mkdir(parents=True)
    (state / "credentials" / "model-providers.json").write_text('{"key": "SK-SECRET"}')
    a = await agent({"agents": {"defaults": {"workspace": str(state)}}})
    results = [
        await a.exec("cat credentials/model-providers.json"),
        await a.exec("cat moltbot.json"),
        *await a.call_tools(
            ("read", {"path": "credentials/model-providers.json"}),
            ("read", {"path": "moltbot.json"}),
        ),
    ]
    for result in results:
        assert result.is_error, result
        assert "SK-SECRET" not in result.text and "OWN-TOKEN" not in result.text
    assert "banana" in (await a.exec("cat f.txt")).text


async def test_a_sibling_named_like_the_workspace_is_outside(agent, home):
    a = await agent()
    evil = home / "clawd-evil"
    evil.mkdir()
    (evil / "secret.txt").write_text("SIBLING SECRET\n")
    results = [
        await a.exec("cat ../clawd-evil/secret.txt"),
        await a.exec(f"cat {evil}/secret.txt"),
        await a.exec("ls", workdir="../clawd-evil"),
        await a.exec("ls", workdir=str(evil)),
        *await a.call_tools(
            ("read", {"path": "../clawd-evil/secret.txt"}),
            ("read", {"path": str(evil / "secret.txt")}),
            ("write", {"path": str(evil / "new.txt"), "content": "x"}),
            ("edit", {"path": str(evil / "secret.txt"), "oldText": "SIBLING", "newText": "X"}),
            ("canvas", {"action": "write", "path": "../../clawd-evil/x.html", "content": "x"}),
        ),
    ]
    for result in results:
        assert result.is_error and "SIBLING SECRET" not in result.text, result
    assert sorted(p.name for p in evil.iterdir()) == ["secret.txt"]
    assert (evil / "secret.txt").read_text() == "SIBLING SECRET\n"


async def test_sed_runs_sandboxed_and_never_in_place(agent, home):
    a = await agent({"tools": {"exec": {"allowlist": ["sed", "cat"]}}})
    out = home / "sed-out"
    ran = await a.exec("sed -n 1e/usr/bin/id f.txt")
    assert "uid=" not in ran.text and "sandbox" in ran.text, ran.text
    ran = await a.exec(f"sed s/a/b/w{out} f.txt")
    assert not out.exists() and "sandbox" in ran.text
    refused = await a.exec("sed -i s/banana/x/ f.txt")
    assert refused.is_error and APPROVAL in refused.text
    assert "banana" in (a.workspace / "f.txt").read_text()
    ok = await a.exec("sed s/banana/cherry/ f.txt")
    assert not ok.is_error and "cherry" in ok.text


async def test_interpreters_and_runners_need_an_approval_even_when_listed(agent):
    listed = ["python3", "env", "xargs", "awk", "git", "tar", "sh", "cat"]
    a = await agent({"tools": {"exec": {"allowlist": listed}}})
    for command in (
        "python3 -c print(1)",
        "env id",
        "xargs id",
        'awk BEGIN{system("id")}',
        "git -c core.pager=id log",
        "tar -cf x.tar f.txt",
        "sh -c id",
    ):
        result = await a.exec(command)
        assert result.is_error and APPROVAL in result.text, command
        assert "uid=" not in result.text
    assert not (a.workspace / "x.tar").exists()


async def test_an_approver_decides_what_the_rules_cannot(agent, home):
    """The approval seam: a running ``exec.approvals`` subsystem is asked; yes runs the
    command once (as /bin/sh -c), no refuses it. Without one the call fails (above)."""

    class Approver:
        def __init__(self):
            self.requests = []
            self.answer = True

        def policy(self, agent_id):
            from moltbot.agents.tools.exec import ConfigPolicy

            return ConfigPolicy("allowlist", "on-miss", ())

        async def decide(self, request):
            self.requests.append(request)
            return self.answer

    a = await agent()
    approver = Approver()
    a.runtime.ctx.lookup = lambda name: approver if name == "exec.approvals" else None
    approved = await a.exec("cat f.txt | sort")
    assert not approved.is_error and approved.text.index("apple") < approved.text.index("banana")
    (request,) = approver.requests
    assert request.command == "cat f.txt | sort" and "without a shell" in request.reason
    assert request.cwd == a.workspace and request.session_key.startswith("agent:main:")
    approver.answer = False
    denied = await a.exec("sort -o ../x f.txt")
    assert denied.is_error and "not approved" in denied.text and not (home / "x").exists()


def test_every_default_binary_has_rules_and_refusals_are_found():
    from moltbot.agents.tools.confine import Confinement
    from moltbot.agents.tools.exec_policy import NeedsApproval, plan
    from moltbot.agents.tools.exec_rules import DEFAULT_ALLOWLIST, RULES

    assert set(DEFAULT_ALLOWLIST) <= set(RULES)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        ws.mkdir()
        (ws / "f.txt").write_text("x\n")
        box = Confinement.build(ws, [Path(tmp) / "state"])
        every = [*DEFAULT_ALLOWLIST, "sed"]

        def check(command: str) -> str | None:
            try:
                plan(command, every, "/usr/bin:/bin", ws, box)
            except NeedsApproval as exc:
                return exc.reason
            except ToolError:
                return None  # allowed by the rules, binary simply not installed here
            return None

        refused = [
            "rg --pre=/bin/sh x",
            "rg --pre /bin/sh x",
            "rg -z x",
            "rg -uuLi x",
            "rg --hostname-bin=/bin/id x",
            "file -z f.txt",
            "file -C -m magic",
            "file -f list",
            "sha256sum -c sums",
            "md5sum --check sums",
            "wc --files0-from=list",
            "du --files0-from list",
            "du -L .",
            "ls -lL .",
            "ls --deref .",
            "grep -R x .",
            "grep -rR x .",
            "diff -r a b",
            "diff -N a b",
            "tree -o out.txt",
            "tree -R",
            "tree -l",
            "jq -L . .",
            "jq --library-path=. .",
            "jq 'include \"x\"; .' f.txt",
            "date -s now",
            "date --set=now",
            "sed -i s/a/b/ f.txt",
            "sed -ni p f.txt",
            "sed --in-pl s/a/b/ f.txt",
            "find -L .",
            "find . -follow",
            "cat /etc/passwd",
            "cat -- ../f.txt",
            "grep -f/etc/passwd f.txt",
            "grep --file=/etc/passwd f.txt",
            "head -n1 ../../etc/passwd",
            "ls -la /",
            "stat ..",
        ]
        for command in refused:
            assert check(command), command
        allowed = [
            "grep -e -o f.txt",
            "grep -rn x .",
            "cut -d/ -f1 f.txt",
            "cut --delimiter=/ -f1 f.txt",
            "sort -t/ -k2 f.txt",
            "sort -rn f.txt",
            "ls -la",
            "find . -name *.txt -type f",
            "echo /etc/passwd",
            "jq -n 1+1",
            "date -u +%Y/%m/%d",
            "wc -l f.txt",
            "sed -n 1p f.txt",
            "uniq -c f.txt",
            "diff f.txt f.txt",
            "stat -c %s f.txt",
            "basename /a/b",
        ]
        for command in allowed:
            assert check(command) is None, (command, check(command))


async def test_hard_links_are_not_followed_by_exec(agent, home):
    a = await agent()
    secret = home / "outside-secret.txt"
    secret.write_text("HARDLINKED SECRET\n")
    os.link(secret, a.workspace / "innocent.txt")
    result = await a.exec("cat innocent.txt")
    assert result.is_error and "hard link" in result.text
    assert "HARDLINKED SECRET" not in result.text


@needs_bwrap
async def test_bwrap_sandbox_hides_state_is_read_only_and_offline(agent, home):
    """The OS sandbox, for real: even a full shell cannot read a state dir, write
    outside the workspace or reach the network (unless tools.exec.sandbox.network)."""
    make_other_instance(home, "rescue", "RESCUE-TOKEN")
    config = {
        "tools": {"exec": {"security": "full", "sandbox": {"mode": "bwrap"}}},
        # the workspace holds every state dir: only the sandbox's masks hide them
        "agents": {"defaults": {"workspace": str(home)}},
    }
    a = await agent(config)
    outside = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="moltbot-sandbox-"))
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        connect = (
            f'python3 -c \'import socket; socket.create_connection(("127.0.0.1", {port}), 3); '
            'print("CONNECTED", 6 * 7)\''
        )
        result = await a.exec(
            f"cat {a.state_dir}/moltbot.json; cat {home}/.clawdbot-rescue/moltbot.json; "
            f"cat {home}/clawd-rescue/MEMORY.md; touch {outside}/escaped; "
            f"echo inside > made-here.txt; {connect}; echo END"
        )
        assert "END" in result.text, result.text
        assert "OWN-TOKEN" not in result.text and "RESCUE-TOKEN" not in result.text
        assert "Read-only file system" in result.text
        assert not (outside / "escaped").exists()
        assert (a.workspace / "made-here.txt").read_text() == "inside\n"
        assert stat.S_IMODE((a.workspace / "made-here.txt").stat().st_mode) & 0o002 == 0
        assert "CONNECTED 42" not in result.text and "Connection refused" in result.text
        # with the network allowed, the same connection goes through
        a.runtime.config.tools.exec.sandbox.network = True
        server.setblocking(False)
        result = await a.exec(connect)
        assert "CONNECTED 42" in result.text, result.text
        conn, _ = await asyncio.get_running_loop().sock_accept(server)
        conn.close()
    finally:
        server.close()
        for child in outside.iterdir():
            child.unlink()
        outside.rmdir()


@needs_bwrap
async def test_allowlist_commands_run_in_the_sandbox_by_default(agent):
    a = await agent()
    result = await a.exec("uname -n")
    assert not result.is_error and "moltbot-sandbox" in result.text, result.text
    off = await agent({"tools": {"exec": {"sandbox": {"mode": "off"}}}})
    result = await off.exec("uname -n")
    assert not result.is_error and "moltbot-sandbox" not in result.text
