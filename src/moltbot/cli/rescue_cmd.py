"""`moltbot [--profile P] rescue [TARGET [OP [ARGS]...]]`: this instance repairs another.

Without OP, ``status``; without TARGET, a one-line status of every granted target."""

from __future__ import annotations

import getpass
import os
import sys

import click

from moltbot.cli import context

EPILOG = """\b
Operations:
  status                       running? pid, ports, uptime, last exit, last errors,
                               service, config validity (file:line:col)
  logs [--lines N] [--grep T]  the end of its log
  doctor                       its doctor findings and the fixes doctor would apply
  config validate|get [KEY]|diff [N]|history
  config restore [N]           the last good config (or history version N)
  config set KEY VALUE         as `moltbot config set`
  restart|stop|start           through its service, else as a detached process
\b
Examples:
  moltbot --profile rescue rescue              (every target, one line each)
  moltbot --profile rescue rescue main         (= main status)
  moltbot --profile rescue rescue main status
  moltbot --profile rescue rescue main config diff
  moltbot --profile rescue rescue main config restore --yes
  moltbot --profile rescue rescue default restart
  moltbot --profile rescue rescue --audit --lines 30   (who did what)
\b
Changes ask for confirmation (type yes), or pass --yes. Exit codes: 0 done;
2 bad operation, or a target not granted; 3 the config changed meanwhile or clashes;
8 the target did not come up; 9 no such instance or version; 78 the result would be
an invalid config.
"""


@click.command(epilog=EPILOG, context_settings={"ignore_unknown_options": False})
@click.argument("target", required=False)
@click.argument("op", required=False, default="status")
@click.argument("args", nargs=-1)
@click.option("--lines", type=click.IntRange(1, 200), help="logs: how many lines (default 20).")
@click.option("--grep", help="logs: only lines containing this text.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before a change.")
@click.option(
    "--audit", is_flag=True, help="Show the last steps of the audit log (--lines, TARGET)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def rescue(
    target: str | None,
    op: str,
    args: tuple[str, ...],
    lines: int | None,
    grep: str | None,
    yes: bool,
    audit: bool,
    as_json: bool,
) -> None:
    """Diagnose and repair TARGET (an instance this one is granted in rescue.targets)."""
    from moltbot.errors import UsageError
    from moltbot.rescue.audit import Actor
    from moltbot.rescue.operations import Change, Rescuer

    cli = context.get()
    instance, snapshot = cli.load()
    rescuer = Rescuer(instance, snapshot.config, cli.env)
    actor = Actor("cli", f"cli:{os.getpid()}", f"cli ({_user()}, pid {os.getpid()})")
    if audit:
        recent = rescuer.recent(lines, target)
        context.emit(recent.data, as_json, recent.text)
        return
    if target is None:
        overview = rescuer.overview(actor)
        context.emit(overview.data, as_json, overview.text)
        return
    request = _request(target, op, list(args), lines, grep)
    result = rescuer.run(actor, request)
    if isinstance(result, Change):
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"{result.summary}: this change needs a confirmation",
                    hint="run it in a terminal, or pass --yes",
                )
            answer = click.prompt(f"{result.summary}?\nType yes to confirm", default="no")
            if answer.strip().lower() not in ("yes", "y"):
                click.echo("Nothing changed.", err=True)
                raise SystemExit(1)
        result = rescuer.apply(actor, result)
    context.emit({"text": result.text, **result.data}, as_json, result.text)


def _request(target: str, op: str, args: list[str], lines: int | None, grep: str | None) -> object:
    from moltbot.errors import UsageError
    from moltbot.rescue.operations import CONFIG_ACTIONS, Request

    if op == "config":
        if not args or args[0] not in CONFIG_ACTIONS:
            raise UsageError(f"config needs one of: {', '.join(CONFIG_ACTIONS)}")
        action, rest = args[0], args[1:]
        if action == "get":
            return Request(target, "config get", key=rest[0] if rest else None)
        if action == "set":
            if len(rest) != 2:
                raise UsageError("config set KEY VALUE")
            return Request(target, "config set", key=rest[0], value=rest[1])
        number = _number(rest)
        if action == "history":
            return Request(target, "config history", lines=number)
        if action in ("diff", "restore"):
            return Request(target, f"config {action}", number=number)
        return Request(target, f"config {action}")
    if args:
        raise UsageError(f"{op} takes no arguments (got {' '.join(args)})")
    if op == "logs":
        return Request(target, "logs", lines=lines, grep=grep)
    return Request(target, op)


def _number(rest: list[str]) -> int | None:
    from moltbot.errors import UsageError

    if not rest:
        return None
    if len(rest) > 1 or not rest[0].isdigit():
        raise UsageError(f"expected a history version number, got {' '.join(rest)}")
    return int(rest[0])


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"
