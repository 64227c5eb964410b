"""`moltbot config history|diff|restore`: this instance's kept config versions.

Every config writer keeps the version it replaces (:mod:`moltbot.config.history`); a
gateway records the config it ran with as the last good one. These commands read that
history and write a kept version back — the same operations a rescue instance runs on
its targets (:mod:`moltbot.rescue.configops`), here on this instance itself, so they
work while its config is broken.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from moltbot.cli import context

if TYPE_CHECKING:
    from moltbot.instance.resolve import Instance

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _instance() -> Instance:
    """This instance, its paths resolved without reading its config (it may be broken)."""
    from moltbot.config.schema import Config
    from moltbot.instance import resolve_instance

    cli = context.get()
    return resolve_instance(cli.identity(), Config(), cli.env)


def _who(instance: Instance) -> str:
    return instance.profile


@click.command(
    "history",
    epilog="\b\nExamples:\n  moltbot config history\n"
    "  moltbot --profile main config history --json",
)
@click.option(
    "--limit", type=click.IntRange(1, 50), default=10, show_default=True, help="Versions shown."
)
@_json
def history_cmd(limit: int, as_json: bool) -> None:
    """The kept versions of the config file, newest first (1 = the one replaced last):
    who wrote each, which is the last good config, and who wrote the current file."""
    from moltbot.rescue import configops

    instance = _instance()
    result = configops.listing(instance, limit)
    hint = "moltbot config restore N" + _profile_flag(instance)
    context.emit(result, as_json, configops.listing_text(_who(instance), result, hint))


@click.command(
    "diff", epilog="\b\nExamples:\n  moltbot config diff\n  moltbot config diff 2 --json"
)
@click.argument("number", type=click.IntRange(1), required=False)
@_json
def diff_cmd(number: int | None, as_json: bool) -> None:
    """What changed in the config file since the last good config (or kept version
    NUMBER of `config history`); secrets redacted. Exit 9 when there is none."""
    from moltbot.rescue import configops

    instance = _instance()
    result = configops.diff(instance, number)
    context.emit(result, as_json, configops.diff_text(_who(instance), result))


@click.command(
    "restore",
    epilog="\b\nExamples:\n  moltbot config restore\n"
    "  moltbot --profile main config restore 2 --yes",
)
@click.argument("number", type=click.IntRange(1), required=False)
@click.option("--yes", "-y", is_flag=True, help="Do not ask first.")
@_json
def restore_cmd(number: int | None, yes: bool, as_json: bool) -> None:
    """Write the last good config (or kept version NUMBER) back, byte for byte.

    It must still be valid and pass the checks of `config set`; the file it replaces is
    kept in the history. Asks first (type yes), or pass --yes. Exit 9 when there is no
    such version, 78 when it is not valid any more, 1 when not confirmed."""
    from moltbot.config.history import current_writer
    from moltbot.errors import UsageError
    from moltbot.rescue import configops

    cli = context.get()
    instance = _instance()
    planned = configops.plan_restore(instance, number, cli.env)
    summary = planned.summary[0].upper() + planned.summary[1:]
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"{summary}: this needs a confirmation", hint="run it in a terminal, or pass --yes"
            )
        answer = click.prompt(f"{summary}?\nType yes to confirm", default="no")
        if answer.strip().lower() not in ("yes", "y"):
            click.echo("Nothing changed.", err=True)
            raise SystemExit(1)
    written = configops.apply(instance, planned, cli.env, current_writer())
    context.emit(
        {"ok": True, "path": str(instance.config_path), "hash": written, "from": planned.before},
        as_json,
        f"Restored {instance.config_path} (now {written[:8]}).",
    )


def _profile_flag(instance: Instance) -> str:
    return "" if instance.profile == "default" else f" (with --profile {instance.profile})"


__all__ = ["diff_cmd", "history_cmd", "restore_cmd"]
