"""`moltbot devices list|approve|reject|rotate|revoke`: operator devices of the gateway."""

from __future__ import annotations

import time
from typing import Any

import click

from moltbot.cli import context, rpc


@click.group(
    epilog=context.examples(
        "moltbot devices list",
        "moltbot devices approve 6f9db1bd-...",
        "moltbot devices rotate --device 3c1e... --role operator --scope operator.read",
        "moltbot devices revoke --device 3c1e... --role operator",
        notes="A device that connects from elsewhere (a phone, the Control UI over the LAN, a\n"
        "node host) waits for approval here; requests expire after 5 minutes.",
    )
)
def devices() -> None:
    """Pair devices (apps, remote Control UIs, nodes) and manage their tokens."""


def _age(ts: Any) -> str:
    if not isinstance(ts, int):
        return ""
    seconds = max(0, int(time.time() - ts / 1000))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


@devices.command("list")
@context.target_options
def list_cmd(**target: Any) -> None:
    """Pending requests and paired devices (tokens are never shown)."""
    as_json = target.pop("as_json")
    listing = rpc.call("device.pair.list", {}, **target)
    if as_json:
        context.emit_json(listing)
        return
    pending, paired = listing.get("pending") or [], listing.get("paired") or []
    if pending:
        click.echo(f"Pending ({len(pending)})")
        for r in pending:
            flags = " repair" if r.get("isRepair") else ""
            click.echo(
                f"  {r['requestId']}  {r.get('displayName') or r['deviceId'][:16]:<20} "
                f"{r.get('role', ''):<9} {r.get('remoteIp', ''):<15} {_age(r.get('ts'))}{flags}"
            )
    if paired:
        click.echo(f"Paired ({len(paired)})")
        for d in paired:
            tokens = ", ".join(
                f"{t['role']}{' (revoked)' if t.get('revokedAtMs') else ''}"
                for t in d.get("tokens") or []
            )
            click.echo(
                f"  {d['deviceId'][:16]}  {d.get('displayName') or '':<20} "
                f"roles: {', '.join(d.get('roles') or [])}  scopes: "
                f"{', '.join(d.get('scopes') or []) or '-'}  tokens: {tokens or '-'}"
            )
    if not pending and not paired:
        click.echo("No device pairing entries.")


@devices.command("approve")
@click.argument("request_id", metavar="REQUEST")
@context.target_options
def approve_cmd(request_id: str, **target: Any) -> None:
    """Approve a pending request (the roles and scopes it asked for)."""
    as_json = target.pop("as_json")
    result = rpc.call("device.pair.approve", {"requestId": request_id}, **target)
    context.emit(result, as_json, f"Approved {result['device']['deviceId']}")


@devices.command("reject")
@click.argument("request_id", metavar="REQUEST")
@context.target_options
def reject_cmd(request_id: str, **target: Any) -> None:
    """Reject a pending request."""
    as_json = target.pop("as_json")
    result = rpc.call("device.pair.reject", {"requestId": request_id}, **target)
    context.emit(result, as_json, f"Rejected {result['deviceId']}")


@devices.command("rotate")
@click.option("--device", "device_id", required=True, help="Device id.")
@click.option("--role", required=True, help="operator or node.")
@click.option("--scope", "scopes", multiple=True, help="Scope of the new token (repeatable).")
@context.target_options
def rotate_cmd(device_id: str, role: str, scopes: tuple[str, ...], **target: Any) -> None:
    """Give the device a new token for ROLE (printed once; the old one stops working)."""
    target.pop("as_json")
    params: dict[str, Any] = {"deviceId": device_id, "role": role}
    if scopes:
        params["scopes"] = list(scopes)
    context.emit_json(rpc.call("device.token.rotate", params, **target))


@devices.command("revoke")
@click.option("--device", "device_id", required=True, help="Device id.")
@click.option("--role", required=True, help="operator or node.")
@context.target_options
def revoke_cmd(device_id: str, role: str, **target: Any) -> None:
    """Revoke the device's token for ROLE; its open connections close at once."""
    target.pop("as_json")
    context.emit_json(
        rpc.call("device.token.revoke", {"deviceId": device_id, "role": role}, **target)
    )
