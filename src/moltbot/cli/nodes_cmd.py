"""`moltbot nodes ...`: the gateway's nodes (paired and connected), pairing, invoking."""

from __future__ import annotations

import json
import shlex
import time
import uuid
from typing import Any

import click

from moltbot.cli import context, rpc


@click.group(
    epilog=context.examples(
        "moltbot nodes status",
        "moltbot nodes pending",
        "moltbot nodes approve 6f9db1bd-...",
        "moltbot nodes describe --node build-box",
        "moltbot nodes run --node build-box -- uname -a",
        "moltbot nodes invoke --node build-box --command system.which --params '{...}'",
        notes="Start a node on another machine with `moltbot node run --host GATEWAY --port N`.",
    )
)
def nodes() -> None:
    """Nodes: machines and apps that run commands for the agents (`node run`)."""


def _node_id(wanted: str, target: dict[str, Any]) -> str:
    from moltbot.devices.registry import match_node

    return match_node(rpc.call("node.list", {}, **target)["nodes"], wanted)


def _show(node: dict[str, Any]) -> str:
    state = "connected" if node.get("connected") else "disconnected"
    paired = "paired" if node.get("paired") else "unpaired"
    since = ""
    if isinstance(node.get("connectedAtMs"), int):
        since = f" since {time.strftime('%H:%M:%S', time.localtime(node['connectedAtMs'] / 1000))}"
    name = node.get("displayName") or node["nodeId"][:16]
    line = f"{name:<22} {node['nodeId'][:16]}  {paired:<8} {state}{since}"
    if node.get("platform"):
        line += f"  {node['platform']}"
    if node.get("commands"):
        line += f"\n    commands: {', '.join(node['commands'])}"
    return line


@nodes.command("status")
@click.option("--connected", is_flag=True, help="Only connected nodes.")
@context.target_options
def status_cmd(connected: bool, **target: Any) -> None:
    """Known nodes: paired, connected, platform and commands."""
    as_json = target.pop("as_json")
    result = rpc.call("node.list", {}, **target)
    rows = [n for n in result["nodes"] if n.get("connected") or not connected]
    if as_json:
        context.emit_json({**result, "nodes": rows})
        return
    paired = sum(1 for n in rows if n.get("paired"))
    live = sum(1 for n in rows if n.get("connected"))
    click.echo(f"Known: {len(rows)} · Paired: {paired} · Connected: {live}")
    for node in rows:
        click.echo(_show(node))


nodes.add_command(status_cmd, "list")


@nodes.command("describe")
@click.option("--node", "wanted", required=True, help="Node id, name or IP.")
@context.target_options
def describe_cmd(wanted: str, **target: Any) -> None:
    """One node's facts."""
    as_json = target.pop("as_json")
    node = rpc.call("node.describe", {"nodeId": _node_id(wanted, target)}, **target)
    if as_json:
        context.emit_json(node)
    else:
        click.echo(_show(node))


@nodes.command("pending")
@context.target_options
def pending_cmd(**target: Any) -> None:
    """Nodes waiting for approval: connecting nodes (device pairing) and node.pair requests."""
    as_json = target.pop("as_json")
    rows = _pending(target)
    if as_json:
        context.emit_json(rows)
        return
    if not rows:
        click.echo("No pending pairing requests.")
    for r in rows:
        name = r.get("displayName") or r.get("nodeId") or r.get("deviceId", "")[:16]
        click.echo(f"{r['requestId']}  {name:<22} {r.get('remoteIp', ''):<15} {r['kind']}")


def _pending(target: dict[str, Any]) -> list[dict[str, Any]]:
    devices = rpc.call("device.pair.list", {}, **target)["pending"]
    store = rpc.call("node.pair.list", {}, **target)["pending"]
    return [
        *(
            {**r, "kind": "device"}
            for r in devices
            if "node" in (r.get("roles") or [r.get("role")])
        ),
        *({**r, "kind": "node.pair"} for r in store),
    ]


def _decide(request_id: str, verb: str, target: dict[str, Any]) -> dict[str, Any]:
    """``<kind>.pair.<verb>`` of the request's kind (a connecting node pairs as a device)."""
    kind = next((r["kind"] for r in _pending(target) if r["requestId"] == request_id), "node.pair")
    method = f"device.pair.{verb}" if kind == "device" else f"node.pair.{verb}"
    return rpc.call(method, {"requestId": request_id}, **target)


@nodes.command("approve")
@click.argument("request_id", metavar="REQUEST")
@context.target_options
def approve_cmd(request_id: str, **target: Any) -> None:
    """Approve a pending node (either kind of request)."""
    as_json = target.pop("as_json")
    result = _decide(request_id, "approve", target)
    node = result.get("device", {}).get("deviceId") or result.get("node", {}).get("nodeId")
    context.emit(result, as_json, f"Approved {node}")


@nodes.command("reject")
@click.argument("request_id", metavar="REQUEST")
@context.target_options
def reject_cmd(request_id: str, **target: Any) -> None:
    """Reject a pending node."""
    as_json = target.pop("as_json")
    result = _decide(request_id, "reject", target)
    context.emit(result, as_json, f"Rejected {result.get('deviceId') or result.get('nodeId')}")


@nodes.command("rename")
@click.option("--node", "wanted", required=True, help="Node id, name or IP.")
@click.option("--name", required=True, help="New display name.")
@context.target_options
def rename_cmd(wanted: str, name: str, **target: Any) -> None:
    """Set the name the gateway shows for a node."""
    as_json = target.pop("as_json")
    node_id = _node_id(wanted, target)
    result = rpc.call("node.rename", {"nodeId": node_id, "displayName": name}, **target)
    context.emit(result, as_json, f"node rename ok: {node_id} -> {name}")


@nodes.command("invoke")
@click.option("--node", "wanted", required=True, help="Node id, name or IP.")
@click.option("--command", "command", required=True, help="A command the node declared.")
@click.option("--params", "params_json", default="{}", help="Params as JSON.")
@click.option("--invoke-timeout", type=int, default=30_000, show_default=True, help="ms.")
@context.target_options
def invoke_cmd(
    wanted: str, command: str, params_json: str, invoke_timeout: int, **target: Any
) -> None:
    """Invoke COMMAND on a node and print its payload."""
    from moltbot.errors import UsageError

    target.pop("as_json")
    try:
        params = json.loads(params_json)
    except ValueError as exc:
        raise UsageError(f"--params is not valid JSON: {exc}") from None
    body = {
        "nodeId": _node_id(wanted, target),
        "command": command,
        "params": params,
        "timeoutMs": invoke_timeout,
        "idempotencyKey": str(uuid.uuid4()),
    }
    target["timeout"] = max(target["timeout"], invoke_timeout / 1000 + 5)
    context.emit_json(rpc.call("node.invoke", body, **target))


@nodes.command("run", context_settings={"ignore_unknown_options": True})
@click.option("--node", "wanted", required=True, help="Node id, name or IP.")
@click.option("--cwd", help="Working directory on the node.")
@click.option("--command-timeout", type=int, help="Seconds before the command is killed.")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
@context.target_options
def run_cmd(
    wanted: str, cwd: str | None, command_timeout: int | None, argv: tuple[str, ...], **target: Any
) -> None:
    """Run a command on a node (`system.run`, under the node's exec policy); prints its
    output and exits with its exit code."""
    as_json = target.pop("as_json")
    params: dict[str, Any] = {"command": list(argv), "rawCommand": shlex.join(argv)}
    if cwd:
        params["cwd"] = cwd
    if command_timeout:
        params["timeoutMs"] = command_timeout * 1000
    body = {
        "nodeId": _node_id(wanted, target),
        "command": "system.run",
        "params": params,
        "timeoutMs": (command_timeout or 120) * 1000 + 5000,
        "idempotencyKey": str(uuid.uuid4()),
    }
    target["timeout"] = max(target["timeout"], body["timeoutMs"] / 1000 + 5)
    result = rpc.call("node.invoke", body, **target)
    payload = result.get("payload") or {}
    if as_json:
        context.emit_json(payload)
    else:
        click.echo(str(payload.get("stdout", "")).rstrip("\n"))
    code = payload.get("exitCode")
    raise SystemExit(code if isinstance(code, int) else 1)
