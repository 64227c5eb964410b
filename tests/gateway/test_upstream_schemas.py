"""Every method this gateway implements, called over the wire; every frame it sends
checked against upstream's own protocol schemas (``dist/gateway/protocol/schema``).

Where upstream has a schema for a method's params, result or an event, it is used as
is. Where it has none (its server builds the shape in code), the schema here is
written from its server's code (``dist/gateway/server-methods/*.js``); where its
schema is stale relative to its server, the server wins (noted at each case). The
test fails when a method is added without a case here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.agents.gateway_agents import is_chat, start
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.upstream import package, protocol_schemas

from gateway_harness import GatewayProcess, WsClient, ws_client

S: dict[str, Any] = {}

Str = {"type": "string"}
NonEmpty = {"type": "string", "minLength": 1}
Int = {"type": "integer", "minimum": 0}
Bool = {"type": "boolean"}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """A closed object schema (as upstream's, ``additionalProperties: false``)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }


def arr(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


STALE: dict[str, dict[str, Any]] = {
    # upstream's schema lacks what its own server sends (server-chat.js adds sessionKey
    # "so Control UI can filter tool streams per session")
    "AgentEvent": {"sessionKey": NonEmpty},
}


def upstream(name: str) -> dict[str, Any]:
    """Upstream's schema ``name``, with the properties its server adds (:data:`STALE`)."""
    schema = S[name]
    extra = STALE.get(name)
    if extra:
        schema = {**schema, "properties": {**schema["properties"], **extra}}
    return schema


# Shapes from upstream's server code, where it has no schema ------------------------

TOKEN_SUMMARY = obj(
    {"role": NonEmpty, "scopes": arr(Str), "createdAtMs": Int},
    {"rotatedAtMs": Int, "revokedAtMs": Int, "lastUsedAtMs": Int},
)
PAIRED_DEVICE = obj(  # infra/device-pairing.js approveDevicePairing, redacted by the handler
    {"deviceId": NonEmpty, "publicKey": NonEmpty, "createdAtMs": Int, "approvedAtMs": Int},
    {
        "displayName": NonEmpty,
        "platform": NonEmpty,
        "clientId": NonEmpty,
        "clientMode": NonEmpty,
        "role": NonEmpty,
        "roles": arr(NonEmpty),
        "scopes": arr(NonEmpty),
        "remoteIp": NonEmpty,
        "tokens": arr(TOKEN_SUMMARY),
        "lastSeenAtMs": Int,  # moltbot: when it last connected
    },
)
NODE_ROW = obj(  # server-methods/nodes.js node.list
    {"nodeId": NonEmpty, "caps": arr(Str), "commands": arr(Str), "paired": Bool, "connected": Bool},
    {
        "displayName": Str,
        "platform": Str,
        "version": Str,
        "coreVersion": Str,
        "uiVersion": Str,
        "deviceFamily": Str,
        "modelIdentifier": Str,
        "remoteIp": Str,
        "pathEnv": Str,
        "permissions": {"type": "object"},
        "connectedAtMs": Int,
    },
)
NODE_REQUEST = {
    "type": "object",
    "required": ["requestId", "nodeId", "ts"],
    "properties": {"requestId": NonEmpty, "nodeId": NonEmpty, "ts": Int, "isRepair": Bool},
}
PAIRED_NODE = {"type": "object", "required": ["nodeId"], "not": {"required": ["token"]}}
APPROVAL_REQUEST = obj(  # server-methods/exec-approval.js
    {"command": NonEmpty},
    {
        k: nullable(Str)
        for k in ("cwd", "host", "security", "ask", "agentId", "resolvedPath", "sessionKey")
    },
)
APPROVAL_RECORD = obj(
    {"id": NonEmpty, "request": APPROVAL_REQUEST, "createdAtMs": Int, "expiresAtMs": Int}
)
_TOTAL_KEYS = (
    "input",
    "output",
    "cacheRead",
    "cacheWrite",
    "totalTokens",
    "totalCost",
    "missingCostEntries",
)
TOTALS = {  # infra/session-cost-usage.js emptyTotals (moltbot adds "calls")
    "type": "object",
    "required": list(_TOTAL_KEYS),
    "properties": {k: {"type": "number", "minimum": 0} for k in _TOTAL_KEYS},
}
LISTS = {k: arr(Str) for k in ("bins", "anyBins", "env", "config", "os")}
SKILL_ENTRY = {  # agents/skills-status.js buildSkillStatus (moltbot adds "reasons")
    "type": "object",
    "required": [
        "name",
        "description",
        "source",
        "filePath",
        "baseDir",
        "skillKey",
        "always",
        "disabled",
        "blockedByAllowlist",
        "eligible",
        "requirements",
        "missing",
        "configChecks",
        "install",
    ],
    "properties": {
        **{k: NonEmpty for k in ("name", "source", "filePath", "baseDir", "skillKey")},
        "description": Str,
        **{k: nullable(Str) for k in ("primaryEnv", "emoji", "homepage")},
        **{k: Bool for k in ("always", "disabled", "blockedByAllowlist", "eligible")},
        "requirements": obj(LISTS),
        "missing": obj(LISTS),
        "configChecks": arr(obj({"path": NonEmpty, "value": {}, "satisfied": Bool})),
        "install": arr(
            obj({"id": NonEmpty, "kind": NonEmpty, "label": NonEmpty, "bins": arr(Str)})
        ),
    },
}
RESULTS: dict[str, dict[str, Any]] = {
    "system-presence": arr({}),  # filled in by the fixture (upstream's PresenceEntry)
    "system-event": obj({"ok": {"const": True}}),
    "last-heartbeat": {"type": "null"},
    "config.get": obj(
        {
            "path": NonEmpty,
            "exists": Bool,
            "raw": Str,
            "parsed": {},
            "valid": Bool,
            "config": {},
            "issues": arr({}),
            "warnings": arr({}),
            "legacyIssues": arr({}),
        },
        {"hash": nullable(Str)},
    ),
    "config.patch": {"type": "object", "required": ["ok", "path", "config"]},
    "config.set": {"type": "object", "required": ["ok", "path", "config"]},
    "config.apply": {  # server-methods/config.js: restart and sentinel
        "type": "object",
        "required": ["ok", "path", "config", "restart", "sentinel"],
        "properties": {
            "restart": obj(
                {
                    "ok": Bool,
                    "pid": Int,
                    "signal": {"const": "SIGUSR1"},
                    "delayMs": Int,
                    "mode": {"enum": ["emit", "signal"]},
                },
                {"reason": Str},
            ),
            "sentinel": obj({"path": nullable(Str), "payload": {"type": "object"}}),
        },
    },
    "agent.wait": obj(
        {"runId": NonEmpty, "status": NonEmpty},
        {"startedAt": nullable(Int), "endedAt": nullable(Int), "error": nullable(Str)},
    ),
    "chat.history": {
        "type": "object",
        "required": ["sessionKey", "messages"],
        "properties": {"sessionKey": NonEmpty, "messages": arr({"type": "object"})},
    },
    "chat.abort": obj({"ok": Bool, "aborted": Bool, "runIds": arr(Str)}),
    "chat.inject": obj({"ok": Bool, "messageId": NonEmpty}),
    "sessions.list": {
        "type": "object",
        "required": ["ts", "path", "count", "defaults", "sessions"],
        "properties": {"sessions": arr({"type": "object", "required": ["key", "kind"]})},
    },
    "sessions.preview": {
        "type": "object",
        "required": ["ts", "previews"],
        "properties": {
            "previews": arr(
                obj(
                    {
                        "key": NonEmpty,
                        "status": {"enum": ["ok", "empty", "missing", "error"]},
                        "items": arr(obj({"role": NonEmpty, "text": Str})),
                    }
                )
            )
        },
    },
    "sessions.patch": {"type": "object", "required": ["ok", "path", "key", "entry"]},
    "sessions.reset": {"type": "object", "required": ["ok", "key", "entry"]},
    "sessions.delete": {"type": "object", "required": ["ok", "key", "deleted", "archived"]},
    "sessions.resolve": obj({"ok": {"const": True}, "key": NonEmpty}),
    "channels.logout": {"type": "object", "required": ["channel", "accountId", "cleared"]},
    "device.pair.list": obj({"pending": arr({}), "paired": arr(PAIRED_DEVICE)}),
    "device.pair.approve": obj({"requestId": NonEmpty, "device": PAIRED_DEVICE}),
    "device.pair.reject": obj({"requestId": NonEmpty, "deviceId": NonEmpty}),
    "device.token.rotate": obj(
        {
            "deviceId": NonEmpty,
            "role": NonEmpty,
            "token": NonEmpty,
            "scopes": arr(Str),
            "rotatedAtMs": Int,
        }
    ),
    "device.token.revoke": obj({"deviceId": NonEmpty, "role": NonEmpty, "revokedAtMs": Int}),
    "node.list": obj({"ts": Int, "nodes": arr(NODE_ROW)}),
    "node.describe": {
        **NODE_ROW,
        "required": [*NODE_ROW["required"], "ts"],
        "properties": {**NODE_ROW["properties"], "ts": Int},
    },
    "node.rename": obj({"nodeId": NonEmpty, "displayName": NonEmpty}),
    "node.invoke": obj(
        {
            "ok": {"const": True},
            "nodeId": NonEmpty,
            "command": NonEmpty,
            "payload": {},
            "payloadJSON": nullable(Str),
        }
    ),
    "node.invoke.result": obj({"ok": {"const": True}}, {"ignored": Bool}),
    "node.event": obj({"ok": {"const": True}}),
    "node.pair.request": obj(
        {"status": {"const": "pending"}, "request": NODE_REQUEST, "created": Bool}
    ),
    "node.pair.list": obj({"pending": arr(NODE_REQUEST), "paired": arr(PAIRED_NODE)}),
    "node.pair.approve": obj(
        {"requestId": NonEmpty, "node": {"type": "object", "required": ["nodeId", "token"]}}
    ),
    "node.pair.reject": obj({"requestId": NonEmpty, "nodeId": NonEmpty}),
    "node.pair.verify": {"type": "object", "required": ["ok"]},
    "exec.approval.request": obj(
        {
            "id": NonEmpty,
            "decision": nullable({"enum": ["allow-once", "allow-always", "deny"]}),
            "createdAtMs": Int,
            "expiresAtMs": Int,
        }
    ),
    "exec.approval.resolve": obj({"ok": {"const": True}}),
    "exec.approval.list": obj({"pending": arr(APPROVAL_RECORD)}),  # moltbot's own
    "talk.mode": obj({"enabled": Bool, "phase": nullable(Str), "ts": Int}),
    "voicewake.get": obj({"triggers": arr(NonEmpty)}),
    "voicewake.set": obj({"triggers": arr(NonEmpty)}),
    "tts.status": obj(
        {
            "enabled": Bool,
            "auto": Str,
            "provider": NonEmpty,
            "fallbackProvider": nullable(Str),
            "fallbackProviders": arr(Str),
            "prefsPath": NonEmpty,
            "hasOpenAIKey": Bool,
            "hasElevenLabsKey": Bool,
            "edgeEnabled": Bool,
        }
    ),
    "tts.providers": obj(
        {
            "providers": arr(
                obj(
                    {"id": NonEmpty, "name": NonEmpty, "configured": Bool, "models": arr(Str)},
                    {"voices": arr(Str)},
                )
            ),
            "active": NonEmpty,
        }
    ),
    "tts.enable": obj({"enabled": {"const": True}}),
    "tts.disable": obj({"enabled": {"const": False}}),
    "tts.setProvider": obj({"provider": NonEmpty}),
    "tts.convert": obj(
        {
            "audioPath": NonEmpty,
            "provider": NonEmpty,
            "outputFormat": NonEmpty,
            "voiceCompatible": Bool,
        }
    ),
    "gateway.ping": obj({"ts": Int}),  # moltbot's own
    # moltbot's own, for its Control UI
    "host.status": obj(
        {"profile": NonEmpty, "instances": arr({"type": "object"}), "doctor": {"type": "object"}}
    ),
    "config.history": obj(
        {
            "path": NonEmpty,
            "current": obj({"hash": nullable(Str), "writtenBy": nullable(Str)}),
            "lastGood": nullable(obj({"hash": NonEmpty, "at": Int})),
            "versions": arr(
                obj(
                    {
                        "number": Int,
                        "id": Int,
                        "configPath": NonEmpty,
                        "hash": NonEmpty,
                        "bytes": Int,
                        "savedAt": Int,
                        "replacedBy": Str,
                        "writtenBy": Str,
                        "newHash": Str,
                    }
                )
            ),
        }
    ),
    "channels.pairing.list": obj(
        {"requests": arr({"type": "object"}), "allowed": {"type": "object"}}
    ),
    "channels.pairing.revoke": obj({"revoked": Bool, "channel": NonEmpty, "id": NonEmpty}),
    # scheduling (cron/service/ops.js, server-methods/cron.js, system.js)
    "cron.list": obj({"jobs": arr({})}),  # each validated as upstream's CronJob below
    "cron.status": obj(
        {"enabled": Bool, "storePath": NonEmpty, "jobs": Int, "nextWakeAtMs": nullable(Int)}
    ),
    "cron.remove": obj({"ok": Bool, "removed": Bool}),
    "cron.run": obj({"ok": Bool, "ran": Bool}, {"reason": NonEmpty}),
    "wake": obj({"ok": Bool}),
    "set-heartbeats": obj({"ok": {"const": True}, "enabled": Bool}),
    # usage (infra/session-cost-usage.js, provider-usage.load.js; moltbot adds by*, today)
    "usage.cost": {
        "type": "object",
        "required": ["updatedAt", "days", "daily", "totals"],
        "properties": {
            "updatedAt": Int,
            "days": Int,
            "daily": arr(
                {
                    **TOTALS,
                    "required": ["date", *TOTALS["required"]],
                    "properties": {**TOTALS["properties"], "date": NonEmpty},
                }
            ),
            "totals": TOTALS,
        },
    },
    "usage.status": {
        "type": "object",
        "required": ["updatedAt", "providers"],
        "properties": {
            "updatedAt": Int,
            "providers": arr(
                {
                    "type": "object",
                    "required": ["provider", "windows"],
                    "properties": {
                        "provider": NonEmpty,
                        "displayName": Str,
                        "windows": arr({}),
                        "error": Str,
                    },
                }
            ),
        },
    },
    # skills (agents/skills-status.js)
    "skills.status": obj(
        {"workspaceDir": NonEmpty, "managedSkillsDir": NonEmpty, "skills": arr(SKILL_ENTRY)}
    ),
    "skills.install": {"type": "object", "required": ["ok", "message"]},
    "skills.update": {
        "type": "object",
        "required": ["ok", "skillKey", "config"],
        "properties": {"ok": {"const": True}, "skillKey": NonEmpty, "config": {"type": "object"}},
    },
    "sessions.compact": obj(
        {"ok": {"const": True}, "key": NonEmpty, "compacted": Bool},
        {
            "reason": NonEmpty,
            "kept": Int,
            "tokensBefore": Int,
            "tokensAfter": Int,
            "entryId": NonEmpty,
            "archived": NonEmpty,
        },
    ),
}
AGENT_ACCEPTED = obj({"runId": NonEmpty, "status": {"const": "accepted"}, "acceptedAt": Int})
AGENT_FINAL = {  # server-methods/agent.js + commands/agent-via-gateway.js (result.payloads)
    "type": "object",
    "required": ["runId", "status", "summary", "result"],
    "properties": {
        "status": {"const": "ok"},
        "summary": {"const": "completed"},
        "result": {
            "type": "object",
            "required": ["payloads", "meta"],
            "properties": {
                "payloads": arr(
                    {"type": "object", "required": ["text"], "properties": {"text": Str}}
                ),
                "meta": {
                    "type": "object",
                    "required": ["durationMs", "agentMeta"],
                    "properties": {"durationMs": Int, "agentMeta": {"type": "object"}},
                },
            },
        },
    },
}
UPSTREAM_RESULTS = {
    "logs.tail": "LogsTailResult",
    "config.schema": "ConfigSchemaResponse",
    "agents.list": "AgentsListResult",
    "agent.identity.get": "AgentIdentityResult",
    "models.list": "ModelsListResult",
    "channels.status": "ChannelsStatusResult",
    "exec.approvals.get": "ExecApprovalsSnapshot",
    "exec.approvals.set": "ExecApprovalsSnapshot",
    "exec.approvals.node.get": "ExecApprovalsSnapshot",
    "exec.approvals.node.set": "ExecApprovalsSnapshot",
    "wizard.start": "WizardStartResult",
    "wizard.next": "WizardNextResult",
    "wizard.cancel": "WizardStatusResult",
    "wizard.status": "WizardStatusResult",
    "cron.add": "CronJob",
    "cron.update": "CronJob",
    "skills.bins": "SkillsBinsResult",
}
PARAMS = {  # method -> upstream's params schema
    "logs.tail": "LogsTailParams",
    "config.get": "ConfigGetParams",
    "config.set": "ConfigSetParams",
    "config.patch": "ConfigPatchParams",
    "config.apply": "ConfigApplyParams",
    "config.schema": "ConfigSchemaParams",
    "agent": "AgentParams",
    "agent.wait": "AgentWaitParams",
    "agent.identity.get": "AgentIdentityParams",
    "agents.list": "AgentsListParams",
    "models.list": "ModelsListParams",
    "send": "SendParams",
    "chat.send": "ChatSendParams",
    "chat.history": "ChatHistoryParams",
    "chat.abort": "ChatAbortParams",
    "chat.inject": "ChatInjectParams",
    "sessions.list": "SessionsListParams",
    "sessions.preview": "SessionsPreviewParams",
    "sessions.resolve": "SessionsResolveParams",
    "sessions.patch": "SessionsPatchParams",
    "sessions.reset": "SessionsResetParams",
    "sessions.delete": "SessionsDeleteParams",
    "channels.status": "ChannelsStatusParams",
    "channels.logout": "ChannelsLogoutParams",
    "device.pair.list": "DevicePairListParams",
    "device.pair.approve": "DevicePairApproveParams",
    "device.pair.reject": "DevicePairRejectParams",
    "device.token.rotate": "DeviceTokenRotateParams",
    "device.token.revoke": "DeviceTokenRevokeParams",
    "node.list": "NodeListParams",
    "node.describe": "NodeDescribeParams",
    "node.rename": "NodeRenameParams",
    "node.invoke": "NodeInvokeParams",
    "node.invoke.result": "NodeInvokeResultParams",
    "node.event": "NodeEventParams",
    "node.pair.request": "NodePairRequestParams",
    "node.pair.list": "NodePairListParams",
    "node.pair.approve": "NodePairApproveParams",
    "node.pair.reject": "NodePairRejectParams",
    "node.pair.verify": "NodePairVerifyParams",
    "exec.approvals.get": "ExecApprovalsGetParams",
    "exec.approvals.set": "ExecApprovalsSetParams",
    "exec.approvals.node.get": "ExecApprovalsNodeGetParams",
    "exec.approvals.node.set": "ExecApprovalsNodeSetParams",
    "exec.approval.request": "ExecApprovalRequestParams",
    "exec.approval.resolve": "ExecApprovalResolveParams",
    "wizard.start": "WizardStartParams",
    "wizard.next": "WizardNextParams",
    "wizard.cancel": "WizardCancelParams",
    "wizard.status": "WizardStatusParams",
    "talk.mode": "TalkModeParams",
    "update.run": "UpdateRunParams",
    "cron.list": "CronListParams",
    "cron.status": "CronStatusParams",
    "cron.add": "CronAddParams",
    "cron.update": "CronUpdateParams",
    "cron.remove": "CronRemoveParams",
    "cron.run": "CronRunParams",
    "cron.runs": "CronRunsParams",
    "wake": "WakeParams",
    "skills.status": "SkillsStatusParams",
    "skills.bins": "SkillsBinsParams",
    "skills.install": "SkillsInstallParams",
    "skills.update": "SkillsUpdateParams",
    "sessions.compact": "SessionsCompactParams",
}
EVENTS = {
    "chat": "ChatEvent",
    "agent": "AgentEvent",
    "tick": "TickEvent",
    "device.pair.requested": "DevicePairRequestedEvent",
    "device.pair.resolved": "DevicePairResolvedEvent",
    "node.invoke.request": "NodeInvokeRequestEvent",
}


def validate(schema: dict[str, Any], value: Any, where: str) -> None:
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(value), key=lambda e: list(e.path)
    )
    if errors:
        detail = "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
        raise AssertionError(f"{where} does not match: {detail}\n{json.dumps(value)[:1500]}")


class Recorder:
    """Calls a method with the raw frame kept; checks params, frame and result."""

    def __init__(self, client: WsClient) -> None:
        self.client = client
        self.covered: set[str] = set()

    async def __call__(
        self,
        method: str,
        params: Any = None,
        *,
        ok: bool = True,
        timeout: float = 30,
        extension: bool = False,
    ) -> Any:
        """``extension``: ``params`` use a field of moltbot's own (not upstream's)."""
        if method in PARAMS and params is not None and not extension:
            validate(upstream(PARAMS[method]), params, f"{method} params we send")
        frame = await self.client.request(method, params, timeout=timeout)
        validate(upstream("ResponseFrame"), frame, f"{method} response frame")
        self.covered.add(method)
        if not ok:
            assert not frame["ok"], frame
            validate(upstream("ErrorShape"), frame["error"], f"{method} error")
            return frame["error"]
        assert frame["ok"], (method, frame.get("error"))
        payload = frame.get("payload")
        if method == "agent":  # two answers on one id: accepted, then the result
            validate(AGENT_ACCEPTED, payload, "agent accepted")
            request_id = self.client.last_request_id
            deadline = time.monotonic() + timeout
            while not self.client.second_response(request_id):
                assert time.monotonic() < deadline, "agent never answered a second time"
                await asyncio.sleep(0.05)
            (final,) = self.client.second_response(request_id)
            validate(upstream("ResponseFrame"), final, "agent final frame")
            validate(AGENT_FINAL, final["payload"], "agent final result")
            return final["payload"]
        if method in UPSTREAM_RESULTS:
            validate(upstream(UPSTREAM_RESULTS[method]), payload, f"{method} result")
        elif method in RESULTS:
            validate(RESULTS[method], payload, f"{method} result (upstream's server shape)")
        return payload


@pytest.fixture
def gateway(home: Path, llm: FakeOpenAI) -> Iterator[GatewayProcess]:
    S.update(protocol_schemas())
    RESULTS["system-presence"] = arr(upstream("PresenceEntry"))
    config = openai_config(llm.base_url)
    config["messages"] = {"tts": {"openai": {"providerId": "fake"}}}
    gw = start(home, config, env={"CLAWDBOT_SKIP_CHANNELS": None})  # channels.status for real
    yield gw
    gw.stop()


@contextlib.asynccontextmanager
async def node_host(home: Path, gw: GatewayProcess) -> AsyncIterator[list[Any]]:
    """The real node host, in-process, recording the invoke requests it receives."""
    from moltbot.config.schema import Config
    from moltbot.devices.identity import DeviceIdentity
    from moltbot.devices.node_host import CAPS, COMMANDS, NodeHost
    from moltbot.gateway.client import GatewayClient
    from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance

    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    instance = resolve_instance(
        resolve_identity(Invocation(profile="nodebox"), env, home), Config(), env
    )
    identity = DeviceIdentity.load_or_create(instance.identity_dir / "device.json")
    seen: list[Any] = []

    class Recording(GatewayClient):
        def events(self) -> AsyncIterator[Any]:
            listener = super().events()  # listening from now on

            async def recorded() -> AsyncIterator[Any]:
                async for event in listener:
                    seen.append(event)
                    yield event

            return recorded()

    def connect() -> Recording:
        return Recording(
            gw.url,
            token=gw.token,
            client_id="node-host",
            mode="node",
            role="node",
            scopes=[],
            identity=identity,
            display_name="schema-node",
            caps=list(CAPS),
            commands=list(COMMANDS),
        )

    stop = asyncio.Event()
    host = NodeHost(instance, Config(), env)
    task = asyncio.create_task(host.serve(connect, stop, say=lambda line: None))
    try:
        yield seen
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def until(probe: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await probe()):
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.05)
    return value


async def test_every_method_and_event_matches_upstreams_schemas(
    home: Path, gateway: GatewayProcess, llm: FakeOpenAI
) -> None:
    from moltbot.gateway.methods.registry import load_families

    implemented = set(load_families())
    llm.known_models = ["m1", "m-listed"]
    async with ws_client(
        gateway.url, gateway.token, client_id="openclaw-control-ui", mode="webchat"
    ) as client:
        validate(upstream("HelloOk"), client.hello, "hello-ok")
        assert set(client.hello["features"]["methods"]) <= implemented
        call = Recorder(client)
        await calls(call, client, home, gateway, llm)
        await client.call("health")  # barrier: every event caused above has arrived
        for frame in client.events:
            validate(upstream("EventFrame"), frame, f"{frame['event']} frame")
            assert frame["event"] in client.hello["features"]["events"], frame["event"]
            schema = EVENTS.get(frame["event"])
            if schema:
                validate(upstream(schema), frame["payload"], f"{frame['event']} event")
            if frame["event"] == "presence":
                validate(arr(upstream("PresenceEntry")), frame["payload"]["presence"], "presence")
        sent = {f["event"] for f in client.events}
        assert {"chat", "agent", "device.pair.resolved", "exec.approval.requested"} <= sent
    missing = implemented - call.covered
    assert not missing, f"methods without a schema case: {sorted(missing)}"


async def calls(
    call: Recorder, client: WsClient, home: Path, gw: GatewayProcess, llm: FakeOpenAI
) -> None:
    await call("health")
    await call("status")
    await call("system-presence")
    await call("logs.tail", {"limit": 20})
    await call("last-heartbeat")
    await call("gateway.ping")
    refused = await call("update.run", {"restartDelayMs": 0}, ok=False)
    assert "not supported by this gateway" in refused["message"]
    # config
    snapshot = await call("config.get", {})
    await call("config.schema", {})
    patched = await call(
        "config.patch",
        {"raw": json.dumps({"logging": {"level": "info"}}), "baseHash": snapshot["hash"]},
    )
    current = await call("config.get", {})
    await call("config.set", {"raw": current["raw"], "baseHash": current["hash"]})
    current = await call("config.get", {})
    await call(
        "config.apply",
        {"raw": current["raw"], "baseHash": current["hash"], "restartDelayMs": 60_000},
    )
    assert patched["ok"]
    # moltbot's own, for its Control UI: host, config history, channel pairing
    await call("host.status", {})
    kept = await call("config.history", {})
    version = await call("config.history.get", {"id": kept["versions"][0]["id"]})
    assert version["raw"]
    await call("config.history.get", {"id": 999_999}, ok=False)
    await call("channels.pairing.list", {})
    await call("channels.pairing.approve", {"channel": "telegram", "code": "NOPE2345"}, ok=False)
    await call("channels.pairing.reject", {"channel": "telegram", "code": "NOPE2345"}, ok=False)
    await call("channels.pairing.revoke", {"channel": "telegram", "id": "42"})
    # agents and chat
    await call("agents.list", {})
    await call("agent.identity.get", {"agentId": "main"})
    await call("agent.identity.get", {"agentId": "nobody"})
    models = await call("models.list", {})
    assert {m["id"] for m in models["models"]} >= {"m1", "m-listed"}
    # only configured providers are asked (not the keyless ollama preset on this host)
    logged = "\n".join((await call("logs.tail", {"limit": 500}))["lines"])
    assert "models of provider" not in logged, logged
    key = str(uuid.uuid4())
    final = await call("agent", {"message": "hello", "idempotencyKey": key}, timeout=60)
    assert final["result"]["payloads"] == [{"text": "echo: hello", "mediaUrl": None}]
    await call("agent.wait", {"runId": key, "timeoutMs": 30_000})
    await call("system-event", {"text": "schema check"})  # goes into the next turn's prompt
    await call("agent.wait", {"runId": "never-started", "timeoutMs": 0})
    ack = await call(
        "chat.send", {"sessionKey": "main", "message": "hi", "idempotencyKey": str(uuid.uuid4())}
    )
    await client.wait_event(is_chat(ack["runId"], "final"), timeout=60)
    await call("chat.history", {"sessionKey": "main", "limit": 10})
    await call("chat.abort", {"sessionKey": "main"})
    await call("chat.inject", {"sessionKey": "main", "message": "note"})
    await call("sessions.list", {"limit": 10})
    await call("sessions.preview", {"keys": ["main"]})
    await call("sessions.patch", {"key": "agent:main:side", "label": "side"})
    await call("sessions.resolve", {"label": "side"})
    await call("sessions.resolve", {"key": "main"})
    await call("sessions.reset", {"key": "agent:main:side"})
    await call("sessions.delete", {"key": "agent:main:side"})
    await call("send", {"to": "123", "message": "x", "idempotencyKey": "s1"}, ok=False)
    await call("channels.status", {})
    await call("channels.logout", {"channel": "telegram"}, ok=False)  # not configured here
    await call("browser.request", {"method": "GET", "path": "/"}, ok=False)
    await call("sessions.compact", {"key": "main"})
    await call("sessions.compact", {"key": "main", "maxLines": 1})
    await automation_cases(call)
    await rescue_cases(call)
    await skills_and_usage_cases(call, home)
    # devices: a client from elsewhere (not local) asks to pair
    await device_cases(call, gw)
    # nodes, with the real node host
    async with node_host(home, gw) as invoked:
        await node_cases(call, gw, invoked)
    # exec approvals
    await approval_cases(call, client)
    # wizard
    started = await call("wizard.start", {})
    step = started["step"]
    answered = await call(
        "wizard.next", {"sessionId": started["sessionId"], "answer": {"stepId": step["id"]}}
    )
    assert answered["status"] == "running"
    await call("wizard.status", {"sessionId": started["sessionId"]})
    await call("wizard.cancel", {"sessionId": started["sessionId"]})
    # voice
    await call("talk.mode", {"enabled": True}, ok=False)  # no phone node connected
    await call("voicewake.get", {})
    await call("voicewake.set", {"triggers": ["molty", "  "]})
    await call("tts.status", {})
    await call("tts.providers", {})
    await call("tts.enable", {})
    await call("tts.disable", {})
    await call("tts.setProvider", {"provider": "openai"})
    await call("tts.setProvider", {"provider": "edge"}, ok=False)
    spoken = await call("tts.convert", {"text": "hello there"})
    assert Path(spoken["audioPath"]).read_bytes().endswith(b"hello there")


async def automation_cases(call: Recorder) -> None:
    job = await call(
        "cron.add",
        {
            "name": "schema job",
            "schedule": {"kind": "every", "everyMs": 3_600_000},
            "sessionTarget": "main",
            "wakeMode": "next-heartbeat",
            "payload": {"kind": "systemEvent", "text": "tick"},
        },
    )
    await call("cron.update", {"id": job["id"], "patch": {"enabled": False}})
    listed = await call("cron.list", {"includeDisabled": True})
    for entry in listed["jobs"]:
        validate(upstream("CronJob"), entry, "a cron.list job")
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]
    await call("cron.status", {})
    await call("cron.run", {"id": job["id"], "mode": "force"})
    runs = await until(lambda: _runs(call, job["id"]))
    for entry in runs:
        validate(upstream("CronRunLogEntry"), entry, "a cron.runs entry")
    await call("cron.remove", {"id": job["id"]})
    await call("wake", {"mode": "next-heartbeat", "text": "schema wake"})
    await call("set-heartbeats", {"enabled": False})
    await call("last-heartbeat")


async def rescue_cases(call: Recorder) -> None:
    """moltbot's own rescue.* (tests/rescue checks their payloads): with no targets
    granted here, each operation answers with an upstream-shaped error frame."""
    await call("rescue.status", {}, ok=False)
    await call("rescue.status", {"target": "main"}, ok=False)
    await call("rescue.logs", {"target": "main"}, ok=False)
    await call("rescue.doctor", {"target": "main"}, ok=False)
    await call("rescue.config", {"target": "main", "action": "validate"}, ok=False)
    await call("rescue.restart", {"target": "main", "action": "restart"}, ok=False)
    await call("rescue.audit", {"lines": 5})  # the refusals above, read back


async def _runs(call: Recorder, job_id: str) -> list[Any]:
    return list((await call("cron.runs", {"id": job_id}))["entries"])


async def skills_and_usage_cases(call: Recorder, home: Path) -> None:
    source = home / "skill-src" / "weather"
    source.mkdir(parents=True)
    (source / "SKILL.md").write_text(
        "---\nname: weather\ndescription: Weather via sh\n"
        'metadata: {"openclaw": {"requires": {"bins": ["sh"], "env": ["WTTR_KEY"]},'
        ' "primaryEnv": "WTTR_KEY", "install": [{"id": "dl", "kind": "download",'
        ' "url": "http://127.0.0.1:9/x.tgz"}]}}\n---\nRun it.\n'
    )
    await call(
        "skills.install",
        {"name": "weather", "installId": "copy", "source": str(source)},
        extension=True,
    )
    await call("skills.update", {"skillKey": "weather", "apiKey": "k-1", "enabled": True})
    status = await call("skills.status", {})
    assert [s["name"] for s in status["skills"]] == ["weather"]
    await call("skills.bins", {})
    await call("skills.install", {"name": "weather", "installId": "brew"}, ok=False)
    cost = await call("usage.cost", {"days": 7})
    assert cost["totals"]["totalTokens"] > 0  # the turns above were recorded
    await call("usage.status", {})


async def device_cases(call: Recorder, gw: GatewayProcess) -> None:
    import aiohttp

    # with a wrong shared token a device cannot even ask; with a remote-looking origin
    # it would; here: a device asking for more scopes than loopback auto-approval gives
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway_harness import signed_connect_params

    key = Ed25519PrivateKey.generate()
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(gw.url, headers={"X-Forwarded-For": "203.0.113.9"}) as ws:
            challenge = json.loads((await ws.receive()).data)["payload"]["nonce"]
            params = signed_connect_params(gw.token, challenge, key=key)
            await ws.send_json({"type": "req", "id": "c", "method": "connect", "params": params})
            refused = json.loads((await ws.receive()).data)
    assert refused["error"]["code"] == "NOT_PAIRED", refused
    request_id = refused["error"]["details"]["requestId"]
    listing = await call("device.pair.list", {})
    for pending in listing["pending"]:
        validate(upstream("DevicePairRequestedEvent"), pending, "a pending device request")
    approved = await call("device.pair.approve", {"requestId": request_id})
    device_id = approved["device"]["deviceId"]
    await call("device.pair.reject", {"requestId": request_id}, ok=False)
    await call("device.token.rotate", {"deviceId": device_id, "role": "operator"})
    await call("device.token.revoke", {"deviceId": device_id, "role": "operator"})
    await call("device.pair.list", {})


async def node_cases(call: Recorder, gw: GatewayProcess, invoked: list[Any]) -> None:
    async def connected() -> Any:
        rows = (await call("node.list", {}))["nodes"]
        return [r for r in rows if r["connected"]]

    (node,) = await until(connected)
    node_id = node["nodeId"]
    await call("node.describe", {"nodeId": node_id})
    await call("node.rename", {"nodeId": node_id, "displayName": "schema box"})
    which = await call(
        "node.invoke",
        {
            "nodeId": node_id,
            "command": "system.which",
            "params": {"bins": ["ls"]},
            "idempotencyKey": "w1",
        },
    )
    assert which["payload"]["bins"]["ls"]
    await call(
        "node.invoke",
        {
            "nodeId": node_id,
            "command": "system.run",
            "params": {"command": ["echo", "hi"]},
            "idempotencyKey": "r1",
        },
    )
    node_file = await call("exec.approvals.node.get", {"nodeId": node_id})
    await call(
        "exec.approvals.node.set",
        {"nodeId": node_id, "file": node_file["file"], "baseHash": node_file["hash"]},
    )
    for event in invoked:
        if event.name == "node.invoke.request":
            validate(upstream("NodeInvokeRequestEvent"), event.payload, "node.invoke.request")
    assert any(e.name == "node.invoke.request" for e in invoked)
    assert any(e.name == "voicewake.changed" for e in invoked), [e.name for e in invoked]
    # the node-only methods refuse an operator, as upstream's
    await call("node.invoke.result", {"id": "x", "nodeId": node_id, "ok": True}, ok=False)
    await call("node.event", {"event": "exec.finished", "payloadJSON": "{}"}, ok=False)
    await node_only(call, gw)
    requested = await call("node.pair.request", {"nodeId": "legacy-node", "displayName": "old"})
    await call("node.pair.list", {})
    approved = await call("node.pair.approve", {"requestId": requested["request"]["requestId"]})
    await call("node.pair.verify", {"nodeId": "legacy-node", "token": approved["node"]["token"]})
    again = await call("node.pair.request", {"nodeId": "other-node"})
    await call("node.pair.reject", {"requestId": again["request"]["requestId"]})


async def node_only(call: Recorder, gw: GatewayProcess) -> None:
    """node.invoke.result and node.event as a node sends them (params and answers): a
    device-less node client (token auth), whose node id is its client id."""
    async with ws_client(gw.url, gw.token, client_id="node-host", mode="node", role="node") as node:
        recorder = Recorder(node)
        await recorder(
            "node.invoke.result",
            {"id": "late", "nodeId": "node-host", "ok": True, "payloadJSON": "{}"},
        )
        await recorder(
            "node.event", {"event": "exec.finished", "payloadJSON": json.dumps({"command": "x"})}
        )
        call.covered |= recorder.covered


async def approval_cases(call: Recorder, client: WsClient) -> None:
    snapshot = await call("exec.approvals.get", {})
    await call(
        "exec.approvals.set",
        {"file": snapshot["file"]} | ({"baseHash": snapshot["hash"]} if snapshot["exists"] else {}),
    )
    asked = asyncio.create_task(
        call(
            "exec.approval.request",
            {"command": "rm -rf /tmp/x", "timeoutMs": 30_000, "sessionKey": "main"},
        )
    )
    requested = await client.wait_event(lambda f: f["event"] == "exec.approval.requested")
    validate(APPROVAL_RECORD, requested["payload"], "exec.approval.requested")
    await call("exec.approval.list", {})
    await call("exec.approval.resolve", {"id": requested["payload"]["id"], "decision": "deny"})
    decided = await asked
    assert decided["decision"] == "deny"
    resolved = await client.wait_event(lambda f: f["event"] == "exec.approval.resolved")
    validate(
        obj({"id": NonEmpty, "decision": NonEmpty, "ts": Int}, {"resolvedBy": Str}),
        resolved["payload"],
        "exec.approval.resolved",
    )


def test_readme_states_how_many_of_upstreams_methods_we_implement() -> None:
    """The README's "N of upstream's M advertised methods" is the count of today."""
    import re

    from moltbot.gateway.methods.registry import load_families

    listing = (package() / "dist/gateway/server-methods-list.js").read_text()
    base = listing[listing.index("BASE_METHODS") : listing.index("];")]
    theirs = re.findall(r'"([^"]+)"', base)
    ours = {name for name, spec in load_families().items() if spec.advertise}
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    claim = f"{len(ours & set(theirs))} of upstream's {len(theirs)} advertised methods"
    assert claim in readme, claim
