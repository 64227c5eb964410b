"""Exec approvals on a real gateway: the agent's exec waits for an operator, who decides
with the CLI, the protocol (as the Control UI does) or a chat reply; "allow always"
lands in the approvals file; ``tools.exec.ask`` and the file's policy apply."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.agents.gateway_agents import is_chat, start
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply

from gateway_harness import GatewayProcess, MethodFailed, WsClient, moltbot_env, ws_client


@pytest.fixture
def launch(home: Path, llm: FakeOpenAI) -> Iterator[Any]:
    started: list[GatewayProcess] = []

    def run(exec_config: dict[str, Any]) -> GatewayProcess:
        config = openai_config(llm.base_url)
        config["tools"] = {"exec": exec_config}
        gw = start(home, config)
        started.append(gw)
        return gw

    yield run
    for gw in started:
        gw.stop()


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moltbot", "--profile", "main", *args],
        capture_output=True,
        text=True,
        env=moltbot_env(home),
        cwd=home,
        timeout=60,
    )


def execs(*commands: str) -> list[Reply]:
    return [Reply("", tool_calls=[("exec", {"command": c})]) for c in commands] + [Reply("done")]


def results(llm: FakeOpenAI) -> list[str]:
    """The exec results the model saw, in order."""
    out = []
    for request in llm.requests[1:]:
        tool = [m for m in request["body"]["messages"] if m["role"] == "tool"]
        out.append(str(tool[-1]["content"]))
    return out


async def send(op: WsClient, text: str) -> str:
    ack = await op.call(
        "chat.send", {"sessionKey": "main", "message": text, "idempotencyKey": str(uuid.uuid4())}
    )
    return str(ack["runId"])


def requested(after: set[str] | None = None) -> Any:
    seen = after or set()
    return lambda f: f["event"] == "exec.approval.requested" and f["payload"]["id"] not in seen


async def test_operators_decide_by_cli_and_chat_reply_and_allow_always_sticks(
    home: Path, launch: Any, llm: FakeOpenAI
) -> None:
    gw = launch({"approvalTimeoutSeconds": 60})
    llm.push(*execs("seq 3", "seq 2", "echo hi | tr a-z A-Z"))
    async with ws_client(gw.url, gw.token, client_id="webchat-ui", mode="webchat") as op:
        run_id = await send(op, "count")
        first = (await op.wait_event(requested(), timeout=60))["payload"]
        assert first["request"]["command"] == "seq 3" and first["request"]["host"] == "gateway"
        assert first["request"]["resolvedPath"].endswith("/seq")
        listed = cli(home, "approvals", "pending", "--json")
        assert [p["id"] for p in json.loads(listed.stdout)] == [first["id"]], listed.stderr
        approve = cli(home, "approvals", "approve", first["id"], "--always")
        assert approve.returncode == 0, approve.stderr
        # "seq 2" runs without asking now; the pipe asks again, answered in the chat
        second = (await op.wait_event(requested({first["id"]}), timeout=60))["payload"]
        assert second["request"]["command"] == "echo hi | tr a-z A-Z"
        reply = await op.call(
            "chat.send",
            {
                "sessionKey": "main",
                "message": f"/approve {second['id'][:8]}",
                "idempotencyKey": str(uuid.uuid4()),
            },
        )
        assert reply["approval"] == f"exec approval {second['id']}: allow-once"
        final = await op.wait_event(is_chat(run_id, "final", "error"), timeout=60)
        assert final["payload"]["state"] == "final"
        decisions = [
            (f["payload"]["id"], f["payload"]["decision"])
            for f in op.events
            if f["event"] == "exec.approval.resolved"
        ]
        assert decisions == [(first["id"], "allow-always"), (second["id"], "allow-once")]
        assert len([f for f in op.events if f["event"] == "exec.approval.requested"]) == 2
        seen = results(llm)
        assert seen[0].splitlines()[1:4] == ["1", "2", "3"], seen[0]
        assert seen[1].splitlines()[1:3] == ["1", "2"], seen[1]
        assert seen[2].splitlines()[1] == "HI", seen[2]
        snapshot = await op.call("exec.approvals.get")
        (entry,) = snapshot["file"]["agents"]["main"]["allowlist"]
        assert entry["pattern"] == first["request"]["resolvedPath"] and entry["id"]
        assert snapshot["exists"] and len(snapshot["hash"]) == 64


async def test_ask_always_deny_and_the_fallback_when_nobody_answers(
    home: Path, launch: Any, llm: FakeOpenAI
) -> None:
    gw = launch({"ask": "always", "approvalTimeoutSeconds": 1})
    async with ws_client(gw.url, gw.token) as op:
        snapshot = await op.call("exec.approvals.get")
        assert not snapshot["exists"]
        llm.push(*execs("echo one", "echo two"))
        run_id = await send(op, "go")
        first = (await op.wait_event(requested(), timeout=60))["payload"]
        assert first["request"]["ask"] == "always"
        await op.call("exec.approval.resolve", {"id": first["id"], "decision": "deny"})
        await op.wait_event(is_chat(run_id, "final", "error"), timeout=60)
        seen = results(llm)
        assert "not approved by an operator" in seen[0]
        assert "not approved by an operator" in seen[1]  # expired unanswered: fallback deny
        # askFallback=allowlist: an allowlisted command runs when nobody answers
        file = {"version": 1, "defaults": {"askFallback": "allowlist"}}
        saved = await op.call("exec.approvals.set", {"file": file})
        with pytest.raises(MethodFailed, match="base hash required"):
            await op.call("exec.approvals.set", {"file": file})
        with pytest.raises(MethodFailed, match="changed since last load"):
            await op.call("exec.approvals.set", {"file": file, "baseHash": "0" * 64})
        llm.requests.clear()
        llm.push(*execs("echo three", "echo four | cat"))
        run_id = await send(op, "again")
        await op.wait_event(is_chat(run_id, "final", "error"), timeout=60)
        seen = results(llm)
        assert seen[0].splitlines()[1] == "three", seen[0]
        assert "not approved by an operator" in seen[1]  # not allowlisted: still refused
        # the file can only tighten: security deny there disables exec altogether
        tight = {"version": 1, "agents": {"*": {"security": "deny"}}}
        await op.call("exec.approvals.set", {"file": tight, "baseHash": saved["hash"]})
        llm.requests.clear()
        llm.push(*execs("echo five"))
        run_id = await send(op, "once more")
        await op.wait_event(is_chat(run_id, "final", "error"), timeout=60)
        assert "tightened by the exec approvals file" in results(llm)[0]


async def test_ask_off_refuses_without_asking(home: Path, launch: Any, llm: FakeOpenAI) -> None:
    gw = launch({"ask": "off"})
    llm.push(*execs("echo a | cat", "echo b"))
    async with ws_client(gw.url, gw.token) as op:
        run_id = await send(op, "go")
        await op.wait_event(is_chat(run_id, "final", "error"), timeout=60)
        await op.call("health")  # barrier: every event of the run arrived before this answer
        assert not [f for f in op.events if f["event"].startswith("exec.approval")]
        seen = results(llm)
        assert "tools.exec.ask is off" in seen[0]
        assert seen[1].splitlines()[1] == "b"


async def test_approval_events_reach_only_operators_with_the_approvals_scope(
    home: Path, launch: Any, llm: FakeOpenAI
) -> None:
    gw = launch({"approvalTimeoutSeconds": 60})
    llm.push(*execs("seq 1"))
    async with (
        ws_client(gw.url, gw.token) as admin,
        ws_client(gw.url, gw.token, scopes=["operator.read", "operator.write"]) as reader,
        ws_client(gw.url, gw.token, scopes=["operator.approvals"]) as approver,
    ):
        run_id = await send(admin, "go")
        request = (await approver.wait_event(requested(), timeout=60))["payload"]
        with pytest.raises(MethodFailed, match="missing scope: operator.approvals"):
            await reader.call("exec.approval.resolve", {"id": request["id"], "decision": "deny"})
        with pytest.raises(MethodFailed, match="invalid decision"):
            await approver.call("exec.approval.resolve", {"id": request["id"], "decision": "yes"})
        await approver.call(
            "exec.approval.resolve", {"id": request["id"], "decision": "allow-once"}
        )
        await admin.wait_event(is_chat(run_id, "final", "error"), timeout=60)
        await reader.call("health")  # barrier
        assert not [f for f in reader.events if f["event"].startswith("exec.approval")]
        assert [f["event"] for f in admin.events if f["event"].startswith("exec.approval")] == [
            "exec.approval.requested",
            "exec.approval.resolved",
        ]
