"""What an idle gateway loads: with every subsystem enabled and no model, channel or
cron job configured, none of the heavy libraries is imported — the SDKs (LLM
providers, Playwright, chat platforms), tiktoken (compaction's token counts), numpy
(memory's vector search), croniter (cron expressions), watchfiles (a file watcher:
the config file is watched with inotify, the canvas folder only while a page listens)
or pydantic (the models are ``moltbot.validation``'s; an SDK may still bring it)
— nor those of moltbot's own modules that wait for their first use (``FIRST_USE``).
The gateway's own ``-X importtime`` report (``PYTHONPROFILEIMPORTTIME``) says so."""

from __future__ import annotations

from pathlib import Path

from gateway_harness import start_gateway, ws_client

SDKS = {"openai", "anthropic", "playwright", "telegram", "slack_sdk", "slack_bolt", "nio"}
SDKS |= {"discord", "httpx", "huggingface_hub"}
HEAVY = SDKS | {"tiktoken", "numpy", "croniter", "watchfiles", "pydantic", "pydantic_core"}
# modules an idle gateway leaves for their first use: the rescue operations and chat
# commands, the browser's route table and actions, the method families (the config
# family imports moltbot.config.isolated; nothing else at idle does), web_fetch's HTML
# parser and the skills prompt's XML escaping
FIRST_USE = {
    "html.parser",
    "xml.sax",
    "moltbot.rescue.operations",
    "moltbot.rescue.commands",
    "moltbot.browser.routes",
    "moltbot.browser.actions",
    "moltbot.config.isolated",
}


def imported_modules(output: str) -> set[str]:
    """Modules named in the report (``importlib.import_module`` targets themselves are
    not timed by CPython, but everything they import is)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in output.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def heavy(modules: set[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & HEAVY)


async def test_an_idle_gateway_imports_no_sdk_and_no_heavy_library(home):
    gw = start_gateway(home, "main", env={"PYTHONPROFILEIMPORTTIME": "1"})
    try:
        async with ws_client(gw.url, gw.token) as client:
            # an async method runs once the sidecars have started: every import is done
            await client.call("sessions.list")
            status = await client.call("status")
            assert {name: sub["state"] for name, sub in status["subsystems"].items()} == {
                "agents": "running",
                "channels": "running",
                "browser": "running",
                "canvas": "running",
                "heartbeat": "running",
                "cron": "running",
                "exec.approvals": "running",
                "nodes": "running",
                "rescue": "running",
            }
            modules = imported_modules(gw.output())
            assert "moltbot.gateway.server" in modules  # the report is there
            assert heavy(modules) == [], f"an idle gateway imported {heavy(modules)}"
            assert sorted(modules & FIRST_USE) == []
            # nor the C++ runtime (frozenlist's compiled extension would map it)
            maps = Path(f"/proc/{gw.proc.pid}/maps").read_text()
            assert "libstdc++" not in maps

            # each is there once used: a browser route (its status needs no Chromium)
            await client.call("browser.request", {"method": "GET", "path": "/"})
            assert {"moltbot.browser.routes", "moltbot.browser.actions"} <= imported_modules(
                gw.output()
            )

            # the report keeps what is imported later: a cron expression needs croniter
            schedule = {"kind": "cron", "expr": "0 7 * * *"}
            payload = {"kind": "systemEvent", "text": "morning"}
            job = {"name": "morning", "schedule": schedule, "payload": payload}
            await client.call("cron.add", {**job, "sessionTarget": "main"})
            await client.call("health")
        assert heavy(imported_modules(gw.output())) == ["croniter"]
    finally:
        gw.stop()
