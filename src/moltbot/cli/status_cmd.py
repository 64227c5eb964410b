"""`moltbot status`, `moltbot health`, `moltbot logs`: this instance, from the outside."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import click

from moltbot.cli import context

if TYPE_CHECKING:
    from moltbot.gateway.status import InstanceStatus, StatusPayload


def _instance_lenient() -> tuple[Any, Any, str | None]:
    """The instance even when its config is broken (status must still answer)."""
    from moltbot.config.schema import Config
    from moltbot.errors import ConfigError
    from moltbot.instance.resolve import resolve_instance

    cli = context.get()
    try:
        instance, snapshot = cli.load()
        return instance, snapshot.config, None
    except ConfigError as exc:
        identity = cli.identity()
        return resolve_instance(identity, Config(), cli.env, cli.invocation), Config(), exc.message


def _uptime(ms: int | None) -> str:
    from moltbot.gateway.status import uptime_text

    return uptime_text(ms)


@click.command(
    epilog=context.examples(
        "moltbot status", "moltbot --profile rescue status --json", "moltbot status --all"
    )
)
@context.target_options
@click.option("--all", "show_all", is_flag=True, help="Every instance on this host.")
def status(
    url: str | None,
    token: str | None,
    password: str | None,
    timeout: float,
    as_json: bool,
    show_all: bool,
) -> None:
    """This instance: paths, ports, and whether its gateway answers (never another
    profile's port). Exit 0 whether or not the gateway is running."""
    if show_all:
        _status_all(as_json)
        return
    from moltbot.gateway.probe import probe
    from moltbot.gateway.target import running_target

    cli = context.get()
    # A running gateway knows every fact of its instance: ask it first, without paying
    # for config validation (keeps `status` fast). Otherwise describe it from the config.
    fast = running_target(cli.identity(), cli.env, url=url, token=token, password=password)
    rpc = probe(fast, timeout) if fast else None
    if fast and rpc and rpc["ok"]:
        data = _status_from_gateway(fast, rpc)
    else:
        data = _status_from_config(url, token, password, timeout)
    if as_json:
        context.emit_json(data)
        return
    click.echo(_render_status(data, cli.home))


def _instance_facts(
    instance: InstanceStatus, *, config_exists: bool, config_error: str | None
) -> dict[str, Any]:
    """The instance part of ``status --json``: ``status.instance`` without what runs,
    with whether the config exists and why it is invalid."""
    from moltbot.gateway.status import wire

    known = wire(instance)
    facts = {key: known[key] for key in ("profile", "stateDir", "configPath")}
    facts.update(configExists=config_exists, configError=config_error)
    facts.update({key: known[key] for key in _PORT_KEYS})
    return facts


_PORT_KEYS = ("workspace", "port", "controlPort", "canvasPort", "cdpRange")


def _gateway_facts(
    target: Any, rpc: dict[str, Any], running: InstanceStatus | None
) -> dict[str, Any]:
    return {
        "url": target.url,
        "source": target.source,
        "reachable": rpc["ok"],
        "connectLatencyMs": rpc.get("connectLatencyMs"),
        "pid": running.pid if running else None,
        "version": running.version if running else None,
        "uptimeMs": running.uptime_ms if running else None,
        "error": rpc.get("error"),
    }


def _status_from_gateway(target: Any, rpc: dict[str, Any]) -> dict[str, Any]:
    from moltbot.gateway.status import wire
    from moltbot.instance.names import service_names

    remote: StatusPayload = rpc["status"]
    running = remote.instance
    data = _instance_facts(running, config_exists=True, config_error=None)
    data.update(
        configured=wire(running.configured),
        drift=running.drift,
        service=service_names(running.profile).systemd_unit,
        gateway=_gateway_facts(target, rpc, running),
        sessions={"count": remote.sessions.count},
        channels=remote.channel_summary,
        subsystems=remote.subsystems,
    )
    return data


def _status_from_config(
    url: str | None, token: str | None, password: str | None, timeout: float
) -> dict[str, Any]:
    from moltbot.gateway.logs import last_error
    from moltbot.gateway.probe import probe, refused_foreign
    from moltbot.gateway.status import InstanceStatus
    from moltbot.gateway.target import resolve_target

    cli = context.get()
    instance, config, config_error = _instance_lenient()
    target = resolve_target(
        instance, config, cli.env, url=url, token=token, password=password, refuse_foreign=False
    )
    # never try our credentials on another instance's gateway
    rpc = refused_foreign(target, instance) if target.foreign else probe(target, timeout)
    if rpc["ok"]:  # answered now (it was starting, or --url): its facts win
        return _status_from_gateway(target, rpc) | {"configError": config_error}
    data = _instance_facts(
        InstanceStatus.of(instance),
        config_exists=instance.config_path.exists(),
        config_error=config_error,
    )
    data["service"] = instance.service.systemd_unit
    data["gateway"] = _gateway_facts(target, rpc, None)
    data["gateway"]["lastError"] = last_error(instance.log_file)
    data["gateway"]["foreign"] = target.foreign
    return data


def _render_status(data: dict[str, Any], home: Any) -> str:
    rel = lambda p: context.home_relative(p, home)  # noqa: E731
    gw = data["gateway"]
    lines = [
        f"moltbot status — profile {data['profile']}",
        f"  State dir   {rel(data['stateDir'])}",
        f"  Config      {rel(data['configPath'])}"
        + ("" if data["configExists"] else " (missing: run `moltbot setup`)"),
        f"  Workspace   {rel(data['workspace'])}",
        f"  Ports       gateway {data['port']} · browser control {data['controlPort']} · "
        f"canvas {data['canvasPort']} · CDP {data['cdpRange'][0]}-{data['cdpRange'][1]}",
    ]
    if data.get("drift"):
        lines.append(f"  Drift       {data['drift']}")
    if data.get("configError"):
        lines.append(f"  Config err  {data['configError'].splitlines()[0]}")
    if gw["reachable"]:
        lines.append(
            f"  Gateway     reachable {gw['url']} ({gw['source']}) · pid {gw['pid']} · "
            f"up {_uptime(gw['uptimeMs'])} · v{gw['version']} · {gw['connectLatencyMs']} ms"
        )
        lines.append(f"  Sessions    {data['sessions']['count']}")
        subs = data.get("subsystems", {})
        if subs:
            lines.append(
                "  Subsystems  "
                + " · ".join(f"{name} {info.get('state', '?')}" for name, info in subs.items())
            )
        lines.append(f"  Channels    {', '.join(data['channels']) or 'none configured'}")
    elif gw.get("foreign"):
        lines.append(f"  Gateway     not running; port {data['port']} is served by {gw['foreign']}")
    else:
        lines.append(f"  Gateway     not reachable at {gw['url']} ({gw['error']})")
        if gw.get("lastError"):
            lines.append(f"  Last error  {gw['lastError']}")
        flag = "" if data["profile"] == "default" else f"--profile {data['profile']} "
        lines.append(f"  Start it    moltbot {flag}gateway")
    return "\n".join(lines)


def _status_all(as_json: bool) -> None:
    cli = context.get()
    try:
        from moltbot.doctor.overview import host_overview, render_host_table
    except ModuleNotFoundError:
        from moltbot.instance.registry import discover

        rows = [
            {
                "profile": k.instance.profile,
                "stateDir": str(k.instance.state_dir),
                "port": k.live_port,
                "running": k.running is not None,
            }
            for k in discover(cli.home, cli.env)
        ]
        context.emit_json(rows)
        return
    rows = host_overview(cli.home, cli.env)
    if as_json:
        context.emit_json(rows)
    else:
        click.echo(render_host_table(rows))


@click.command(epilog="\b\nExamples:\n  moltbot health\n  moltbot --profile rescue health --json")
@context.target_options
def health(
    url: str | None, token: str | None, password: str | None, timeout: float, as_json: bool
) -> None:
    """Ask this instance's gateway for its health (exit 6 unreachable, 7 auth refused)."""
    from moltbot.gateway.status import HealthPayload, parse
    from moltbot.gateway.sync_client import SyncGatewayClient
    from moltbot.gateway.target import resolve_target

    cli = context.get()
    instance, config, _ = _instance_lenient()
    target = resolve_target(instance, config, cli.env, url=url, token=token, password=password)
    started = time.perf_counter()
    with SyncGatewayClient.for_target(target, timeout) as client:
        answer = client.call("health")
    if as_json:
        context.emit_json(answer)
        return
    elapsed = (time.perf_counter() - started) * 1000
    summary = parse(HealthPayload, answer)
    click.echo(
        f"ok: {target.url} answered in {elapsed:.0f} ms; "
        f"{summary.sessions.count} sessions; default agent {summary.default_agent_id}"
    )


@click.command(
    epilog=context.examples(
        "moltbot logs --limit 50", "moltbot --profile rescue logs --follow", "moltbot logs --json"
    )
)
@click.option("--limit", type=click.IntRange(1, 5000), default=200, show_default=True)
@click.option("--max-bytes", type=click.IntRange(1, 1_000_000), default=250_000, show_default=True)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines.")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Follow poll seconds.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def logs(limit: int, max_bytes: int, follow: bool, interval: float, as_json: bool) -> None:
    """Show this instance's gateway log (<state>/logs/gateway.jsonl); works while the
    gateway is down too."""
    from moltbot.gateway.logs import tail_file

    instance, _, _ = _instance_lenient()
    cursor: int | None = None
    while True:
        chunk = tail_file(instance.log_file, cursor, limit, max_bytes)
        for line in chunk["lines"]:
            click.echo(line if as_json else _pretty(line))
        cursor = chunk["cursor"]
        if not follow:
            if not chunk["lines"] and cursor == 0 and not as_json:
                click.echo(f"no log yet at {instance.log_file}", err=True)
            return
        time.sleep(interval)


def _pretty(line: str) -> str:
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    time_, level = entry.get("time", ""), entry.get("level", "")
    return f"{time_} {level:<7} {entry.get('subsystem', '')}: {entry.get('message', '')}"
