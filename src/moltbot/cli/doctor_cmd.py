"""`moltbot [--profile P] doctor [--all] [--fix] [--yes] [--json]`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from moltbot.cli import context

if TYPE_CHECKING:
    from moltbot.doctor import Report

EPILOG = """\b
Examples:
  moltbot doctor
  moltbot --profile rescue doctor --all
  moltbot doctor --all --fix --yes
  moltbot doctor --all --json
\b
Exit codes: 0 no error-level finding (warnings and info allowed),
1 at least one error remains.
"""

LABELS = {"error": "ERROR", "warning": "WARN ", "info": "INFO "}


@click.command(epilog=EPILOG)
@click.option(
    "--all",
    "all_",
    is_flag=True,
    help="Check every instance on this host (automatic when there are several).",
)
@click.option(
    "--fix",
    is_flag=True,
    help="Apply the safe fixes (move ports, move workspaces, reinstall stale services).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before applying fixes.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
def doctor(ctx: click.Context, all_: bool, fix: bool, yes: bool, as_json: bool) -> None:
    """Check this instance and its isolation from every other instance on the host.

    Per instance: config valid, auth set, directories writable, workspace files,
    service file current, port ownership, conflicting MOLTBOT_/CLAWDBOT_/OPENCLAW_
    variables. Host-wide (--all, or automatically when several instances exist):
    shared config, state dir or workspace; equal, close or overlapping ports
    (base, +2, +4, CDP range, explicit cdpPort); the same pinned cdpUrl; legacy
    clawdbot services; service files whose interpreter or state dir is gone.
    Each finding names the exact command that fixes it.
    """
    from moltbot.doctor import diagnose
    from moltbot.doctor.diagnose import host_manager
    from moltbot.doctor.fixes import apply

    cli = context.get()
    identity = cli.identity()
    host = True if all_ else None
    report = diagnose(identity, cli.env, host=host)
    applied: list[str] = []
    if fix and report.auto_plans:
        if not as_json:
            _print(report, cli.home, fixing=True)
            click.echo("\nFixes to apply:")
            for entry in report.auto_plans:
                for line in entry.describe():
                    click.echo(f"  - {line}")
        if not yes and not as_json and sys.stdin.isatty():
            click.confirm("Apply these fixes?", default=True, abort=True)
        manager = host_manager(cli.env, cli.home)
        # one fix can make the next one decidable (e.g. whose pinned cdpUrl it is once
        # the ports are apart): apply, look again, a few rounds at most
        for _round in range(3):
            applied += apply(report.auto_plans, cli.env, manager)
            report = diagnose(identity, cli.env, host=host)
            if not report.auto_plans:
                break
        if not as_json:
            click.echo("\nApplied:")
            for line in applied:
                click.echo(f"  {line}")
            click.echo("\nAfter the fixes:")
    if as_json:
        data = report.as_dict()
        if fix:
            data["applied"] = applied
        context.emit_json(data)
    else:
        _print(report, cli.home, fixing=False)
    if report.errors:
        sys.exit(1)


def _print(report: Report, home, *, fixing: bool) -> None:  # noqa: ANN001
    inst = report.instance
    where = context.home_relative(inst.state_dir, home)
    scope = f", host: {len(report.members)} instances" if report.host else ""
    if report.exists:
        click.echo(f"Doctor: profile {inst.profile} ({where}, port {inst.port}){scope}")
    else:
        names = ", ".join(m.instance.profile for m in report.members)
        click.echo(f"Doctor: no {inst.profile} instance here ({where}); host: {names}")
    if not report.findings:
        click.echo("  no problems found")
    for finding in report.findings:
        click.echo(f"{LABELS[finding.severity]} {finding.code}: {finding.message}")
        if finding.fix:
            click.echo(f"      fix: {finding.fix}")
    counts = ", ".join(
        f"{report.count(s)} {s}{'s' if report.count(s) != 1 and s != 'info' else ''}"
        for s in ("error", "warning", "info")
    )
    click.echo(f"Summary: {counts}.")
    if report.auto_plans and not fixing:
        from moltbot.service.spec import cli_prefix

        flag = "--all " if report.host else ""
        count = len(report.auto_plans)
        click.echo(
            f"Run `{cli_prefix(inst)} doctor {flag}--fix` to apply the safe fixes for "
            f"{count} instance{'s' if count != 1 else ''} (shown before applying)."
        )
