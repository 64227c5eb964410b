"""`moltbot setup`."""

from __future__ import annotations

from pathlib import Path

import click

from moltbot.cli import context


@click.command(
    epilog="\b\nExamples:\n  moltbot --profile rescue setup\n"
    "  moltbot setup --port 18789 --workspace ~/clawd --json"
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Base port to persist (default: derived from the profile name).",
)
@click.option("--workspace", type=click.Path(path_type=Path), help="Workspace directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def setup(port: int | None, workspace: Path | None, as_json: bool) -> None:
    """Create or complete this instance: config, state dir, workspace.

    Writes gateway.mode=local, gateway.port, a generated gateway.auth.token and
    agents.defaults.workspace; creates the state dir (0700), the sessions dir of
    agent "main" and the workspace with its bootstrap files. Idempotent: existing
    values and files are kept (--port/--workspace replace stored values). Refuses
    (exit 3, nothing written) when the port or paths clash with another instance
    on this host; exit 78 when the existing config is invalid.
    """
    from moltbot.instance.setup import setup_instance

    cli = context.get()
    identity = cli.identity(port=port)
    workspace = workspace.expanduser().resolve() if workspace else None
    report = setup_instance(identity, cli.env, port=port, workspace=workspace)
    for warning in report.warnings:
        context.warn(warning)
    if as_json:
        context.emit_json(report.as_dict())
        return
    inst = report.instance
    rel = lambda p: context.home_relative(p, cli.home)  # noqa: E731
    click.echo(f"Instance   {inst.profile}")
    click.echo(f"State dir  {rel(inst.state_dir)}")
    click.echo(f"Config     {rel(inst.config_path)}")
    click.echo(f"Workspace  {rel(inst.workspace)}")
    click.echo(
        f"Ports      gateway {inst.port}, browser control {inst.control_port}, "
        f"canvas {inst.canvas_port}, CDP {inst.cdp_ports.start}-{inst.cdp_ports.stop - 1}"
    )
    for item in report.created:
        click.echo(f"  created  {rel(item)}")
    for item in report.changed:
        click.echo(f"  changed  {item}")
    if report.kept:
        click.echo(f"  kept     {len(report.kept)} existing values and files")
    flag = "" if inst.profile == "default" else f"--profile {inst.profile} "
    click.echo(f"Next: moltbot {flag}gateway")
