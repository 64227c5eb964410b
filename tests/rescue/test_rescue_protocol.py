"""The same repair through the protocol: ``rescue.*`` methods (operator.admin) with
confirmation codes, and ``/rescue`` in WebChat's ``chat.send`` — on a real rescue
gateway without a model."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest
from tests.rescue.rescue_helpers import Host, audit, dead_model, steps

from gateway_harness import MethodFailed, ws_client


async def test_the_protocol_repairs_main(host: Host) -> None:
    main_cfg = host.write("main")
    host.write("rescue", {"rescue": {"targets": ["main"], "confirmSeconds": 60}})
    main = await asyncio.to_thread(host.start, "main")
    main_token = main.token
    rescue = await asyncio.to_thread(host.start, "rescue")
    await asyncio.to_thread(main.stop)
    line, column = host.break_config("main")
    assert await asyncio.to_thread(host.fail_to_start, "main") == 78

    async with ws_client(rescue.url, rescue.token) as admin:
        assert {"rescue.status", "rescue.config", "rescue.restart"} <= set(
            admin.hello["features"]["methods"]
        )
        status = await admin.call("rescue.status", {"target": "main"})
        assert status["status"] == "ok" and status["lastExit"] == 78
        assert status["config"]["location"] == {
            "file": str(main_cfg),
            "line": line,
            "column": column,
        }
        assert f"{main_cfg}:{line}:{column}" in status["text"]
        logs = await admin.call("rescue.logs", {"target": "main", "grep": "failed to start"})
        assert logs["lines"] and all("failed to start" in entry for entry in logs["lines"])
        doctor = await admin.call("rescue.doctor", {"target": "main"})
        assert doctor["summary"]["error"] >= 1
        diff = await admin.call("rescue.config", {"target": "main", "action": "diff"})
        assert not diff["same"] and any("oops" in row for row in diff["diff"])

        ask = await admin.call("rescue.config", {"target": "main", "action": "restore"})
        assert ask["status"] == "confirm" and len(ask["code"]) == 6
        assert b"oops" in main_cfg.read_bytes()
        with pytest.raises(MethodFailed) as wrong:
            await admin.call(
                "rescue.config", {"target": "main", "action": "restore", "confirm": "000000"}
            )
        assert wrong.value.error["code"] == "INVALID_REQUEST"
        with pytest.raises(MethodFailed):  # the code confirms this request, not another one
            await admin.call(
                "rescue.config",
                {"target": "main", "action": "restore", "version": 1, "confirm": ask["code"]},
            )
        ask = await admin.call("rescue.config", {"target": "main", "action": "restore"})
        done = await admin.call(
            "rescue.config", {"target": "main", "action": "restore", "confirm": ask["code"]}
        )
        assert done["status"] == "ok" and done["config"]["valid"] is True
        with pytest.raises(MethodFailed):  # a code is used once
            await admin.call(
                "rescue.config", {"target": "main", "action": "restore", "confirm": ask["code"]}
            )

        ask = await admin.call("rescue.restart", {"target": "main"})
        assert ask["status"] == "confirm"
        up = await admin.call(
            "rescue.restart", {"target": "main", "confirm": ask["code"]}, timeout=120
        )
        assert up["status"] == "ok" and up["how"] == "process" and up["pid"]

        with pytest.raises(MethodFailed) as ungranted:
            await admin.call("rescue.status", {"target": "rescue"})
        assert "this instance itself" in ungranted.value.error["message"]
        trail = await admin.call("rescue.audit", {"target": "main", "lines": 3})
        assert [(e["op"], e["result"]) for e in trail["entries"]] == [
            ("restart", "asked"),
            ("restart", "confirmed"),
            ("restart", "applied"),
        ]
        assert trail["text"].startswith("audit: last 3 of ") and "on main" in trail["text"]

    async with ws_client(f"ws://127.0.0.1:{host.ports['main']}", main_token) as client:
        assert (await client.call("health"))["ok"] is True

    async with ws_client(rescue.url, rescue.token, scopes=["operator.write"]) as writer:
        with pytest.raises(MethodFailed) as scoped:
            await writer.call("rescue.status", {"target": "main"})
        assert "scope" in scoped.value.error["message"]

    results = steps(audit(host))
    assert results[:4] == [
        ("status", "main", "ok"),
        ("logs", "main", "ok"),
        ("doctor", "main", "ok"),
        ("config diff", "main", "ok"),
    ]
    assert ("config restore", "main", "applied") in results
    assert ("restart", "main", "applied") in results
    assert results[-1] == ("status", "rescue", "refused")
    assert all(e["via"] == "protocol" for e in audit(host))


async def test_an_operator_repairs_main_from_webchat_without_a_model(host: Host) -> None:
    """``/rescue`` typed in WebChat (``chat.send``) goes through the chat-command layer:
    answered before any model (there is none), confirmations by a plain ``yes`` or code
    in the same session, ``operator.admin`` required."""
    main_cfg = host.write("main")
    host.write("rescue", {"rescue": {"targets": ["main"]}, **dead_model()})
    main = await asyncio.to_thread(host.start, "main")
    main_token = main.token
    rescue = await asyncio.to_thread(host.start, "rescue")
    await asyncio.to_thread(main.stop)
    line, column = host.break_config("main")
    assert await asyncio.to_thread(host.fail_to_start, "main") == 78

    async def send(client: Any, text: str, session: str = "main") -> dict[str, Any]:
        return await client.call(
            "chat.send",
            {"sessionKey": session, "message": text, "idempotencyKey": str(uuid.uuid4())},
            timeout=120,
        )

    async with ws_client(rescue.url, rescue.token) as admin:
        # no model works here: an ordinary message starts a run that fails
        hello = await send(admin, "hello")
        assert hello["status"] == "started"
        waited = await admin.call("agent.wait", {"runId": hello["runId"]}, timeout=60)
        assert waited["status"] == "error", waited

        status = await send(admin, "/rescue status main")
        assert status["command"] == "rescue"
        assert status["reply"].startswith("main: DOWN (last exit 78)"), status
        assert f"{main_cfg}:{line}:{column}" in status["reply"]

        ask = await send(admin, "/rescue config restore main")
        assert ask["reply"].startswith("Confirm: restore the config of main"), ask
        assert b"oops" in main_cfg.read_bytes()
        elsewhere = await send(admin, "/rescue confirm yes", session="other")  # another chat
        assert elsewhere["reply"].startswith("Nothing is waiting"), elsewhere
        async with ws_client(rescue.url, rescue.token, scopes=["operator.write"]) as writer:
            meddler = await send(writer, "yes")  # same session, not an admin
            assert meddler["reply"].startswith("Not allowed"), meddler
        assert b"oops" in main_cfg.read_bytes()
        done = await send(admin, "yes")  # the asker's answer still counts
        assert done["command"] == "rescue" and "done" in done["reply"], done
        assert b"oops" not in main_cfg.read_bytes()

        ask = await send(admin, "/rescue restart main")
        code = re.search(r"Reply yes or (\d{6}) within", ask["reply"])
        assert code, ask
        restarted = await send(admin, code.group(1))
        assert "restarted: answers health" in restarted["reply"], restarted
        async with ws_client(f"ws://127.0.0.1:{host.ports['main']}", main_token) as client:
            assert (await client.call("health"))["ok"] is True

        # once answered, "yes" is ordinary text again: it goes to the (missing) model
        again = await send(admin, "yes")
        assert again["status"] == "started" and "command" not in again, again

        helped = await send(admin, "/rescue help")
        assert "/rescue status main" in helped["reply"] and "Targets: main" in helped["reply"]
        history = await admin.call("chat.history", {"sessionKey": "main"})
        assert any("restarted: answers health" in str(m) for m in history["messages"])

    async with ws_client(rescue.url, rescue.token, scopes=["operator.write"]) as writer:
        refused = await send(writer, "/rescue stop main")
        assert refused["reply"].startswith("Not allowed"), refused
    assert host.runtime_pid("main") is not None  # still running: nobody stopped it
    assert steps(audit(host)) == [
        ("status", "main", "ok"),
        ("config restore", "main", "asked"),
        ("config restore", "main", "refused"),
        ("config restore", "main", "confirmed"),
        ("config restore", "main", "applied"),
        ("restart", "main", "asked"),
        ("restart", "main", "confirmed"),
        ("restart", "main", "applied"),
        ("stop", "main", "refused"),
    ]
    assert {e["via"] for e in audit(host)} == {"webchat"}


async def test_grants_apply_live(host: Host, run_moltbot: Any) -> None:
    host.write("main")
    host.write("rescue")
    rescue = await asyncio.to_thread(host.start, "rescue")
    async with ws_client(rescue.url, rescue.token) as admin:
        with pytest.raises(MethodFailed) as none:
            await admin.call("rescue.status", {"target": "main"})
        assert "has no rescue targets" in none.value.error["message"]
        granted = await asyncio.to_thread(
            run_moltbot, "--profile", "rescue", "config", "set", "rescue.targets", '["main"]'
        )
        assert granted.returncode == 0, granted.stderr
        await rescue.wait_output("rescue.targets")  # the live change, logged
        status = await admin.call("rescue.status", {"target": "main"})
        assert status["status"] == "ok" and status["running"] is False
        every = await admin.call("rescue.status", {})  # no target: every granted one
        assert [row["target"] for row in every["targets"]] == ["main"]
        assert every["text"] == "main: DOWN (last exit unknown)"
    assert "restarting in-process" not in rescue.output()
