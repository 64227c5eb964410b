"""`moltbot config path|get|set|unset|validate|history|diff|restore`."""

from __future__ import annotations

import json
from typing import Any

import click

from moltbot.cli import context

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_secrets = click.option("--show-secrets", is_flag=True, help="Show tokens/passwords/API keys.")


@click.group(
    epilog="\b\nExamples:\n"
    "  moltbot config get gateway.port\n"
    "  moltbot --profile rescue config set gateway.port 19789\n"
    "  moltbot config set browser.profiles.work '{cdpPort: 18850}'"
)
def config() -> None:
    """Read, change and validate the config file (JSON5); its kept versions."""


def _history_commands() -> None:
    from moltbot.cli.config_history_cmd import diff_cmd, history_cmd, restore_cmd

    for command in (history_cmd, diff_cmd, restore_cmd):
        config.add_command(command)


@config.command("path", epilog="\b\nExample:\n  moltbot --profile rescue config path")
@_json
def path_cmd(as_json: bool) -> None:
    """Print the config file path of this instance."""
    identity = context.get().identity()
    path = identity.config_path
    context.emit(
        {"path": str(path), "exists": path.exists(), "source": identity.config_source},
        as_json,
        str(path),
    )


@config.command(
    "get",
    epilog="\b\nExamples:\n  moltbot config get gateway\n"
    "  moltbot config get gateway.auth.token --show-secrets",
)
@click.argument("key", required=False)
@_json
@_secrets
@click.option("--resolved", is_flag=True, help="Show ${VAR} references substituted.")
def get_cmd(key: str | None, as_json: bool, show_secrets: bool, resolved: bool) -> None:
    """Print a value (or the whole file) by dotted KEY, as written in the file.

    Secrets are redacted unless --show-secrets. Reading does not validate the
    file (use `config validate`), so values of a broken config can be inspected.
    Exit 9 when KEY is unset, 78 when the file cannot be parsed.
    """
    from moltbot.config import keypath
    from moltbot.config.envsubst import substitute
    from moltbot.config.secrets import is_secret_key, redact
    from moltbot.config.store import read_raw

    cli = context.get()
    path = cli.identity().config_path
    _, data = read_raw(path)
    if resolved:
        data = substitute(data, cli.env, str(path))
    keys = keypath.parse(key) if key else []
    value = keypath.get(data, keys) if keys else data
    if not show_secrets:
        last = keys[-1] if keys else ""
        if isinstance(last, str) and is_secret_key(last) and isinstance(value, str):
            value = redact({last: value})[last]
        else:
            value = redact(value)
    if as_json:
        context.emit_json({"key": key, "value": value} if key else value)
    elif isinstance(value, dict | list):
        context.emit_json(value)
    else:
        click.echo(json.dumps(value) if value is None or isinstance(value, bool) else value)


@config.command(
    "set",
    epilog="\b\nExamples:\n  moltbot config set gateway.port 19789\n"
    "  moltbot config set gateway.bind lan\n"
    "  moltbot config set gateway.auth.token '${GATEWAY_TOKEN}'\n"
    "  moltbot config set agents.defaults.model '{primary: \"openai/gpt-4o\"}'",
)
@click.argument("key")
@click.argument("value")
@_json
@click.option("--strict", is_flag=True, help="Fail on unknown keys instead of warning.")
@click.option(
    "--force", is_flag=True, help="Write an unknown KEY, or a port/path another instance uses."
)
def set_cmd(key: str, value: str, as_json: bool, strict: bool, force: bool) -> None:
    """Set KEY to VALUE (a JSON5 value; a bare word is a string).

    The file is locked, rewritten atomically and the previous version kept as
    <config>.bak. The same checks as `setup` run first, and a refused change leaves
    the file unchanged: an invalid value or model reference exits 78, an unknown KEY
    exits 2 (with a "did you mean"), a port or path that clashes with another instance
    exits 3 naming it. --force skips the last two.
    """
    from moltbot.config import keypath
    from moltbot.config.schema import unknown_key
    from moltbot.config.secrets import REDACTED, is_secret_key
    from moltbot.config.store import update_config
    from moltbot.errors import UsageError

    cli = context.get()
    identity = cli.identity()
    keys = keypath.parse(key)
    problem = unknown_key(keys)
    if problem and not force:
        raise UsageError(
            f"{problem}; {identity.config_path} is unchanged",
            hint="check the key's spelling (`moltbot config get` shows the file), "
            "or pass --force to write it anyway",
        )
    parsed = _parse_value(value)
    snapshot = update_config(
        identity.config_path,
        lambda d: keypath.set_(d, keys, parsed),
        cli.env,
        strict=strict or None,
        check=_checks(identity, cli.env, host=not force),
    )
    for warning in snapshot.warnings:
        context.warn(warning)
    secret = isinstance(keys[-1], str) and is_secret_key(keys[-1])
    shown = REDACTED if secret and not _is_reference(parsed) else parsed
    context.emit(
        {"ok": True, "key": key, "value": shown, "path": str(snapshot.path), "hash": snapshot.hash},
        as_json,
        f"Updated {key} in {snapshot.path}",
    )


@config.command("unset", epilog="\b\nExample:\n  moltbot config unset browser.profiles.work")
@click.argument("key")
@_json
@click.option(
    "--force", is_flag=True, help="Even if the default then clashes with another instance."
)
def unset_cmd(key: str, as_json: bool, force: bool) -> None:
    """Remove KEY from the config. Exit 9 when it is not set; exit 3 when the value that
    then applies (a default port, say) clashes with another instance."""
    from moltbot.config import keypath
    from moltbot.config.store import update_config

    cli = context.get()
    identity = cli.identity()
    keys = keypath.parse(key)
    snapshot = update_config(
        identity.config_path,
        lambda d: keypath.unset(d, keys),
        cli.env,
        check=_checks(identity, cli.env, host=not force),
    )
    context.emit(
        {"ok": True, "key": key, "path": str(snapshot.path), "hash": snapshot.hash},
        as_json,
        f"Removed {key} from {snapshot.path}",
    )


@config.command(
    "validate",
    epilog="\b\nExamples:\n  moltbot config validate\n"
    "  moltbot --profile rescue config validate --strict --json",
)
@_json
@click.option("--strict", is_flag=True, help="Unknown keys are errors.")
def validate_cmd(as_json: bool, strict: bool) -> None:
    """Check the config file. Exit 0 when valid, 78 when not (the error says where)."""
    from moltbot.config.store import read_config
    from moltbot.errors import ConfigError

    cli = context.get()
    identity = cli.identity()
    try:
        snapshot = read_config(identity.config_path, cli.env, strict=strict or None)
    except ConfigError as exc:
        if as_json:
            context.emit_json(
                {"valid": False, "path": str(identity.config_path), "error": exc.message}
            )
            raise SystemExit(exc.exit_code) from None
        raise
    warnings = context.config_warnings(snapshot)
    result = {
        "valid": True,
        "path": str(snapshot.path),
        "exists": snapshot.exists,
        "hash": snapshot.hash,
        "warnings": warnings,
    }
    if not as_json:
        for warning in warnings:
            context.warn(warning)
    state = "valid" if snapshot.exists else "missing (defaults apply)"
    context.emit(result, as_json, f"{snapshot.path}: {state}")


def _checks(identity: Any, env: dict[str, str], *, host: bool) -> Any:
    """The checks a config write must pass (see `config set --help`)."""
    from moltbot.agents.models import config_write_check

    return config_write_check(identity, env, host=host)


def _parse_value(text: str) -> Any:
    from moltbot.config.store import parse_value

    return parse_value(text)


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


_history_commands()
