"""Skills: discovery and eligibility (a missing binary makes a skill ineligible, with the
reason), the system prompt and the ``skill`` tool, safe installs, the ``skills.*``
methods with payloads checked against upstream's protocol schemas, the CLI."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from tests.agents.gateway_agents import start
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply

from gateway_harness import MethodFailed, ws_client
from moltbot.agents import skills
from moltbot.agents.skills_install import SkillInstallError, install_folder, unpack
from moltbot.agents.tools.exec_policy import with_skill_env
from moltbot.config.schema import Config

SCHEMAS = Path("/root/.cache/openclaw-anchor/oc/node_modules/openclaw/dist/protocol.schema.json")

WEATHER = """---
name: weather
description: Current weather via the sh tool
metadata: {"openclaw": {"requires": {"bins": ["sh"], "env": ["WTTR_KEY"]},
  "primaryEnv": "WTTR_KEY", "emoji": "☀️"}}
---
Run {baseDir}/weather.sh CITY.
"""
RADAR = """---
name: radar
description: Rain radar
metadata:
  {
    "openclaw": { "requires": { "bins": ["no-such-radar-binary"] },
                  "install": [{ "id": "dl", "kind": "download", "url": "http://x/radar.tgz" },
                              { "id": "brew", "kind": "brew", "formula": "radar" }] },
  }
---
Look at the radar.
"""


def write_skill(root: Path, name: str, text: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "SKILL.md").write_text(text)
    return folder


def test_eligibility_missing_binary_env_and_config(tmp_path: Path) -> None:
    workspace, managed = tmp_path / "ws", tmp_path / "managed"
    write_skill(workspace / "skills", "weather", WEATHER)
    write_skill(managed, "radar", RADAR)
    write_skill(managed, "weather", WEATHER.replace("via the sh tool", "OLD"))
    env = {"PATH": "/usr/bin:/bin"}
    found = {s.skill.name: s for s in skills.statuses(Config(), env, workspace, managed)}
    assert set(found) == {"radar", "weather"}
    weather, radar = found["weather"], found["radar"]
    assert weather.skill.source == "workspace" and "OLD" not in weather.skill.description
    assert not radar.eligible
    assert radar.reasons() == ["missing binary: no-such-radar-binary"]
    assert radar.report()["missing"]["bins"] == ["no-such-radar-binary"]
    assert [o["id"] for o in radar.report()["install"]] == ["dl", "brew"]
    assert not weather.eligible and weather.reasons() == ["missing env: WTTR_KEY"]
    assert weather.skill.metadata["emoji"] == "☀️"
    # the key configured for the skill's primaryEnv makes it eligible, and reaches exec
    config = Config.model_validate({"skills": {"entries": {"weather": {"apiKey": "k-123"}}}})
    found = {s.skill.name: s for s in skills.statuses(config, env, workspace, managed)}
    assert found["weather"].eligible
    assert skills.skill_env(list(found.values())) == {"WTTR_KEY": "k-123"}
    assert with_skill_env({}, {"WTTR_KEY": "k", "LD_PRELOAD": "x", "MOLTBOT_PROFILE": "y"}) == {
        "WTTR_KEY": "k"
    }
    block = skills.prompt_block(list(found.values()))
    assert block is not None and "<name>weather</name>" in block and "radar" not in block
    off = Config.model_validate({"skills": {"deny": ["weath*"]}})
    assert not skills.evaluate(found["weather"].skill, off, env).eligible
    disabled = Config.model_validate({"skills": {"entries": {"weather": {"enabled": False}}}})
    status = skills.evaluate(found["weather"].skill, disabled, env)
    assert status.disabled and status.reasons()[0].startswith("disabled")


def test_skill_commands(tmp_path: Path) -> None:
    root = tmp_path / "ws" / "skills"
    write_skill(root, "weather", WEATHER)
    write_skill(root, "radar", RADAR)  # not eligible: no command
    write_skill(root, "git-hub", "---\nname: git-hub\ndescription: Issues\n---\nUse gh.")
    write_skill(root, "status", "---\nname: status\ndescription: Server status\n---\nPing.")
    write_skill(root, "quiet", "---\nname: quiet\ndescription: Q\nuser-invocable: false\n---\nQ.")
    found = skills.statuses(
        Config(), {"WTTR_KEY": "k", "PATH": "/usr/bin:/bin"}, tmp_path / "ws", tmp_path / "m"
    )
    commands = skills.skill_commands(found, {"status", "help", "skill"})
    # sanitised names, a taken name gets a suffix, only eligible and user-invocable skills
    assert sorted(commands) == ["git_hub", "status_2", "weather"]
    prompt = skills.skill_prompt(commands, "/weather  Berlin, tomorrow")
    assert prompt == 'Use the "weather" skill for this request.\n\nUser input:\nBerlin, tomorrow'
    assert skills.skill_prompt(commands, "/status_2") == 'Use the "status" skill for this request.'
    assert skills.skill_prompt(commands, "/skill git-hub open ones") == (
        'Use the "git-hub" skill for this request.\n\nUser input:\nopen ones'
    )
    for text in ("/radar", "/quiet", "/skill", "/skill nope x", "weather", "/weatherx"):
        assert skills.skill_prompt(commands, text) is None, text


def test_broken_skill_files_are_skipped(tmp_path: Path) -> None:
    write_skill(tmp_path / "ws" / "skills", "nofront", "just text")
    write_skill(tmp_path / "ws" / "skills", "nodesc", "---\nname: nodesc\n---\nx")
    (tmp_path / "ws" / "skills" / "fifo").mkdir()
    import os

    os.mkfifo(tmp_path / "ws" / "skills" / "fifo" / "SKILL.md")
    assert skills.discover(Config(), tmp_path / "ws", tmp_path / "managed") == []


def _tar(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


def test_unpack_refuses_unsafe_archives(tmp_path: Path) -> None:
    for bad in (
        _tar({"../evil.sh": b"x"}),
        _tar({"/etc/x": b"x"}),
        _tar({"ok/SKILL.md": b"x"}, links={"ok/link": "/etc/passwd"}),
    ):
        target = tmp_path / f"t{len(list(tmp_path.iterdir()))}"
        target.mkdir()
        with pytest.raises(SkillInstallError):
            unpack(bad, target)
    with pytest.raises(SkillInstallError, match="not a tar or zip"):
        unpack(b"plain text", tmp_path)
    good = tmp_path / "good"
    good.mkdir()
    assert unpack(_tar({"pkg/SKILL.md": WEATHER.encode(), "pkg/run.sh": b"#!/bin/sh"}), good) == 2
    assert (good / "pkg" / "run.sh").stat().st_mode & 0o777 == 0o600  # no execute bit


async def test_install_copies_and_replaces(tmp_path: Path) -> None:
    source = write_skill(tmp_path / "src", "weather", WEATHER)
    (source / "weather.sh").write_text("echo sunny")
    managed = tmp_path / "managed"
    done = await install_folder(managed, "weather", str(source), 10)
    assert done.files == 2 and not done.replaced
    assert (managed / "weather" / "SKILL.md").read_text() == WEATHER
    again = await install_folder(managed, "weather", str(source), 10)
    assert again.replaced and len(list((managed / ".trash").iterdir())) == 1
    (tmp_path / "src" / "nosk").mkdir()
    with pytest.raises(SkillInstallError, match="no SKILL.md"):
        await install_folder(managed, "nosk", str(tmp_path / "src" / "nosk"), 10)
    with pytest.raises(Exception, match="invalid skill name"):
        await install_folder(managed, "../up", str(source), 10)
    assert sorted(p.name for p in managed.iterdir()) == [".trash", "weather"]


def upstream_schema(name: str) -> dict[str, Any]:
    data = json.loads(SCHEMAS.read_text())
    definitions = data.get("definitions") or data.get("$defs")
    return {**definitions[name], "definitions": definitions}


async def test_skills_methods_prompt_and_tool(home: Path, llm: FakeOpenAI) -> None:
    import jsonschema
    from aiohttp import web

    workspace = home / "clawd-main"
    write_skill(workspace / "skills", "weather", WEATHER)
    write_skill(workspace / "skills", "radar", RADAR)
    # an archive server for installs (a download installer and a skill folder)
    archive = _tar({"bin/radar": b"#!/bin/sh\necho radar\n"})
    folder = _tar({"notes/SKILL.md": b"---\nname: notes\ndescription: Take notes\n---\nWrite."})
    bodies = {"/radar.tgz": archive, "/notes.tgz": folder}

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=bodies[request.path])

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    (workspace / "skills" / "radar" / "SKILL.md").write_text(
        RADAR.replace("http://x/radar.tgz", f"http://127.0.0.1:{port}/radar.tgz")
    )
    config = openai_config(llm.base_url)
    gw = start(home, config, env={"WTTR_KEY": "from-env"})
    try:
        async with ws_client(gw.url, gw.token) as client:
            # exactly the Control UI's calls (params valid under upstream's schemas)
            for params, schema in (
                ({}, "SkillsStatusParams"),
                ({"skillKey": "radar", "enabled": False}, "SkillsUpdateParams"),
                ({"skillKey": "weather", "apiKey": "k-1"}, "SkillsUpdateParams"),
                ({"name": "radar", "installId": "dl", "timeoutMs": 120000}, "SkillsInstallParams"),
            ):
                jsonschema.validate(params, upstream_schema(schema))
            report = await client.call("skills.status", {})
            assert report["workspaceDir"] == str(workspace)
            by_name = {s["name"]: s for s in report["skills"]}
            assert by_name["weather"]["eligible"] and not by_name["radar"]["eligible"]
            assert by_name["radar"]["missing"]["bins"] == ["no-such-radar-binary"]
            for item in report["skills"]:  # what the UI's Skills tab reads
                for key in ("name", "description", "skillKey", "source", "eligible", "disabled"):
                    assert isinstance(item[key], str | bool), key
                assert isinstance(item["blockedByAllowlist"], bool)
                assert all(
                    isinstance(item["missing"][k], list) for k in ("bins", "env", "config", "os")
                )
                assert all(isinstance(o["id"], str) and o["label"] for o in item["install"])
            # its Install button (install[0] while a binary is missing) and API key field
            assert by_name["radar"]["install"][0]["id"] == "dl"
            assert by_name["weather"]["primaryEnv"] == "WTTR_KEY"
            assert by_name["weather"]["emoji"] == "☀️"
            bins = await client.call("skills.bins", {})
            jsonschema.validate(bins, upstream_schema("SkillsBinsResult"))
            assert bins["bins"] == ["no-such-radar-binary", "sh"]

            updated = await client.call("skills.update", {"skillKey": "radar", "enabled": False})
            assert updated["config"] == {"enabled": False}
            await client.call("skills.update", {"skillKey": "weather", "apiKey": "k-1"})
            saved = json.loads((gw.state_dir / "moltbot.json").read_text())["skills"]["entries"]
            assert saved == {"radar": {"enabled": False}, "weather": {"apiKey": "k-1"}}
            # toggling a skill in the Control UI applies live: no restart drops its socket
            await gw.wait_output("applied config change live:", 15)
            assert "skills.entries" in gw.output()
            assert "config change needs a restart" not in gw.output()

            done = await client.call(
                "skills.install", {"name": "radar", "installId": "dl", "timeoutMs": 120000}
            )
            assert done["ok"] and done["files"] == 1
            assert (gw.state_dir / "tools" / "radar" / "bin" / "radar").exists()
            with pytest.raises(MethodFailed, match="moltbot runs no package manager"):
                await client.call("skills.install", {"name": "radar", "installId": "brew"})
            url = f"http://127.0.0.1:{port}/notes.tgz"
            installed = await client.call(
                "skills.install", {"name": "notes", "installId": "download", "source": url}
            )
            assert installed["path"] == str(gw.state_dir / "skills" / "notes")
            report = await client.call("skills.status", {})
            notes = [s for s in report["skills"] if s["name"] == "notes"]
            assert notes and notes[0]["source"] == "managed" and notes[0]["eligible"]

            # the eligible skills are in the system prompt; the skill tool reads one
            llm.push(Reply(tool_calls=[("skill", {"name": "weather"})]), Reply("sunny"))
            ack = await client.call(
                "chat.send",
                {"sessionKey": "main", "message": "weather?", "idempotencyKey": "k1"},
            )
            assert ack["status"] == "started"
            await client.wait_event(
                lambda f: f["event"] == "chat" and f["payload"]["state"] == "final", timeout=10
            )
            system = llm.requests[0]["body"]["messages"][0]["content"]
            assert "<name>weather</name>" in system and "<name>notes</name>" in system
            assert "<name>radar</name>" not in system  # disabled
            tool_result = llm.requests[1]["body"]["messages"][-1]["content"]
            assert f"Run {workspace}/skills/weather/weather.sh CITY." in tool_result

            # /weather <request> from WebChat: the agent is told to use the skill
            ack = await client.call(
                "chat.send",
                {"sessionKey": "main", "message": "/weather Oslo", "idempotencyKey": "k2"},
            )
            await client.wait_event(
                lambda f: (
                    f["event"] == "chat"
                    and f["payload"]["runId"] == "k2"
                    and f["payload"]["state"] == "final"
                ),
                timeout=10,
            )
            asked = llm.requests[-1]["body"]["messages"][-1]["content"]
            assert 'Use the "weather" skill' in str(asked) and "Oslo" in str(asked)
            help_text = await client.call(
                "chat.send", {"sessionKey": "main", "message": "/help", "idempotencyKey": "k3"}
            )
            assert "/weather — Current weather via the sh tool" in help_text["reply"]
            assert "/radar" not in help_text["reply"]  # disabled, so no command
    finally:
        gw.stop()
        await runner.cleanup()


def test_skills_cli(home: Path, run_moltbot: Any) -> None:
    workspace = home / "clawd"
    write_skill(workspace / "skills", "radar", RADAR)
    write_skill(
        workspace / "skills",
        "sh-skill",
        WEATHER.replace("name: weather", "name: sh-skill").replace(', "env": ["WTTR_KEY"]', ""),
    )
    setup = run_moltbot("setup")
    assert setup.returncode == 0, setup.stderr
    listed = run_moltbot("skills")
    assert listed.returncode == 0, listed.stderr
    assert "✗ radar" in listed.stdout and "missing binary: no-such-radar-binary" in listed.stdout
    assert "✓ sh-skill" in listed.stdout
    info = run_moltbot("skills", "info", "radar", "--json")
    assert json.loads(info.stdout)["missing"]["bins"] == ["no-such-radar-binary"]
    check = run_moltbot("skills", "check")
    assert check.returncode == 1 and "1 of 2 skills eligible" in check.stdout
    assert run_moltbot("skills", "info", "nope").returncode == 9
