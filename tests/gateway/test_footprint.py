"""What an idle gateway loads: with every subsystem enabled and no model or channel
configured, none of the SDKs (LLM providers, Playwright, chat platforms) is imported.
The gateway's own ``-X importtime`` report (``PYTHONPROFILEIMPORTTIME``) says so."""

from __future__ import annotations

from gateway_harness import start_gateway, ws_client

SDKS = {"openai", "anthropic", "playwright", "telegram", "slack_sdk", "slack_bolt", "nio"}
SDKS |= {"discord", "httpx", "huggingface_hub"}


def imported_modules(output: str) -> set[str]:
    """Modules named in the report (``importlib.import_module`` targets themselves are
    not timed by CPython, but everything they import is)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in output.splitlines()
        if line.startswith("import time:") and "|" in line
    }


async def test_an_idle_gateway_imports_no_sdk(home):
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
        }
        modules = imported_modules(gw.output())
        assert "moltbot.gateway.server" in modules  # the report is there
        loaded_sdks = sorted(m for m in modules if m.split(".")[0] in SDKS)
        assert loaded_sdks == [], f"an idle gateway imported {loaded_sdks}"
    finally:
        gw.stop()
