from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from shim_fixtures import IDENTITY_PREFIXES, env, home, shim  # noqa: E402

from moltbot.cli.context import CliContext  # noqa: E402
from moltbot.instance.resolve import Invocation  # noqa: E402

__all__ = ["env", "home", "run_service", "shim"]


def service_group() -> click.Group:
    """A stand-in for the `gateway` group: the service commands under the real root options."""
    from moltbot.cli import service_cmd

    @click.group()
    @click.option("--profile")
    @click.pass_context
    def gateway(ctx: click.Context, profile: str | None) -> None:
        environ = dict(os.environ)
        ctx.obj = CliContext(Invocation(profile=profile), environ, Path(environ["HOME"]))

    for command in service_cmd.COMMANDS:
        gateway.add_command(command)
    return gateway


@pytest.fixture
def run_service(env: dict[str, str]) -> Iterator[object]:
    """Invoke `[--profile P] <install|...> args` in-process with ``env``; returns the result."""
    from moltbot.errors import MoltbotError

    group = service_group()

    def invoke(*args: str, profile: str | None = None, extra_env: dict[str, str] | None = None):
        argv = ([f"--profile={profile}"] if profile else []) + list(args)
        runner = CliRunner()
        scrub: dict[str, str | None] = {
            k: None for k in os.environ if k.startswith(IDENTITY_PREFIXES)
        }
        result = runner.invoke(
            group, argv, env={**scrub, **env, **(extra_env or {})}, catch_exceptions=True
        )
        if isinstance(result.exception, MoltbotError):
            result.error = result.exception  # type: ignore[attr-defined]
            result.exit_code = result.exception.exit_code  # what the root group exits with
        elif result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        else:
            result.error = None  # type: ignore[attr-defined]
        return result

    yield invoke
