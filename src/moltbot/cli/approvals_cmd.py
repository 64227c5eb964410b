"""`moltbot approvals ...`: exec approvals — the policy file and the requests waiting now."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from moltbot.cli import context, rpc

_node = click.option(
    "--node", "wanted", help="A node's file instead of the gateway's (id/name/IP)."
)


@click.group(
    epilog=context.examples(
        "moltbot approvals pending",
        "moltbot approvals approve 0c6e... --always",
        "moltbot approvals deny 0c6e...",
        "moltbot approvals get --json",
        "moltbot approvals allowlist add /usr/bin/uname --agent main",
        "moltbot approvals allowlist add /usr/bin/git --node build-box",
        notes="While an agent's exec waits for a decision it also shows in the Control UI,\n"
        "and the direct chat it came from can answer: /approve ID [allow-always], /deny ID.",
    )
)
def approvals() -> None:
    """Decide what the agents' exec may run: waiting requests, policy, allowlist."""


def _decide(request_id: str, decision: str, target: dict[str, Any]) -> dict[str, Any]:
    return rpc.call("exec.approval.resolve", {"id": request_id, "decision": decision}, **target)


@approvals.command("pending")
@context.target_options
def pending_cmd(**target: Any) -> None:
    """Commands waiting for a decision now."""
    as_json = target.pop("as_json")
    pending = rpc.call("exec.approval.list", {}, **target)["pending"]
    if as_json:
        context.emit_json(pending)
        return
    if not pending:
        click.echo("No approvals waiting.")
    for item in pending:
        request = item["request"]
        left = max(0, int(item["expiresAtMs"] / 1000 - time.time()))
        click.echo(
            f"{item['id']}  {request.get('agentId') or '-'}  {request.get('sessionKey') or '-'}  "
            f"expires in {left}s\n    {request['command']}"
        )


@approvals.command("approve")
@click.argument("request_id", metavar="ID")
@click.option("--always", is_flag=True, help="Also allow this executable from now on.")
@context.target_options
def approve_cmd(request_id: str, always: bool, **target: Any) -> None:
    """Let a waiting command run (once, or --always)."""
    as_json = target.pop("as_json")
    decision = "allow-always" if always else "allow-once"
    context.emit(_decide(request_id, decision, target), as_json, f"{request_id}: {decision}")


@approvals.command("deny")
@click.argument("request_id", metavar="ID")
@context.target_options
def deny_cmd(request_id: str, **target: Any) -> None:
    """Refuse a waiting command."""
    as_json = target.pop("as_json")
    context.emit(_decide(request_id, "deny", target), as_json, f"{request_id}: deny")


def _node_id(wanted: str | None, target: dict[str, Any]) -> str | None:
    if not wanted:
        return None
    from moltbot.devices.registry import match_node

    return match_node(rpc.call("node.list", {}, **target)["nodes"], wanted)


def _snapshot(node_id: str | None, target: dict[str, Any]) -> dict[str, Any]:
    if node_id:
        return rpc.call("exec.approvals.node.get", {"nodeId": node_id}, **target)
    return rpc.call("exec.approvals.get", {}, **target)


def _save(node_id: str | None, file: dict[str, Any], base: str, target: dict[str, Any]) -> Any:
    params: dict[str, Any] = {"file": file, "baseHash": base}
    if node_id:
        return rpc.call("exec.approvals.node.set", {"nodeId": node_id, **params}, **target)
    return rpc.call("exec.approvals.set", params, **target)


@approvals.command("get")
@_node
@context.target_options
def get_cmd(wanted: str | None, **target: Any) -> None:
    """Show the approvals file (the gateway's, or --node's)."""
    as_json = target.pop("as_json")
    snapshot = _snapshot(_node_id(wanted, target), target)
    if as_json:
        context.emit_json(snapshot)
        return
    click.echo(f"{snapshot['path']} ({'exists' if snapshot['exists'] else 'not written yet'})")
    file = snapshot["file"]
    click.echo(f"defaults: {json.dumps(file.get('defaults') or {})}")
    for agent, section in (file.get("agents") or {}).items():
        rules = {k: v for k, v in section.items() if k != "allowlist"}
        click.echo(f"agent {agent}: {json.dumps(rules)}")
        for entry in section.get("allowlist") or []:
            click.echo(f"    {entry['pattern']}")


@approvals.command("set")
@_node
@click.option("--file", "path", type=click.Path(dir_okay=False), help="JSON file to upload.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the JSON from stdin.")
@context.target_options
def set_cmd(wanted: str | None, path: str | None, from_stdin: bool, **target: Any) -> None:
    """Replace the approvals file with a JSON document (version 1)."""
    from moltbot.errors import UsageError

    as_json = target.pop("as_json")
    if bool(path) == from_stdin:
        raise UsageError("give exactly one of --file PATH or --stdin")
    try:
        text = sys.stdin.read() if from_stdin else open(path or "", encoding="utf-8").read()
        file = json.loads(text)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the approvals JSON: {exc}") from None
    node_id = _node_id(wanted, target)
    snapshot = _snapshot(node_id, target)
    result = _save(node_id, file, snapshot["hash"], target)
    context.emit(result, as_json, f"saved {result['path']}")


@approvals.group("allowlist")
def allowlist() -> None:
    """Executables an agent may run without asking (path globs)."""


def _edit_allowlist(
    wanted: str | None, agent: str, pattern: str, add: bool, target: dict[str, Any]
) -> dict[str, Any]:
    from moltbot.errors import NotFoundError

    node_id = _node_id(wanted, target)
    snapshot = _snapshot(node_id, target)
    file = snapshot["file"]
    section = file.setdefault("agents", {}).setdefault(agent, {})
    entries = section.setdefault("allowlist", [])
    if add:
        if not any(e["pattern"] == pattern for e in entries):
            entries.append({"pattern": pattern})
    else:
        kept = [e for e in entries if e["pattern"] != pattern]
        if len(kept) == len(entries):
            raise NotFoundError(f"{pattern} is not in the allowlist of agent {agent}")
        section["allowlist"] = kept
    return _save(node_id, file, snapshot["hash"], target)


@allowlist.command("add")
@click.argument("pattern")
@click.option("--agent", default="*", show_default=True, help="Agent id (* = every agent).")
@_node
@context.target_options
def allowlist_add(pattern: str, agent: str, wanted: str | None, **target: Any) -> None:
    """Allow PATTERN (e.g. /usr/bin/uname, /opt/tools/*) for AGENT."""
    as_json = target.pop("as_json")
    result = _edit_allowlist(wanted, agent, pattern, True, target)
    context.emit(result, as_json, f"added {pattern} (agent {agent})")


@allowlist.command("remove")
@click.argument("pattern")
@click.option("--agent", default="*", show_default=True, help="Agent id (* = every agent).")
@_node
@context.target_options
def allowlist_remove(pattern: str, agent: str, wanted: str | None, **target: Any) -> None:
    """Remove PATTERN from AGENT's allowlist."""
    as_json = target.pop("as_json")
    result = _edit_allowlist(wanted, agent, pattern, False, target)
    context.emit(result, as_json, f"removed {pattern} (agent {agent})")
