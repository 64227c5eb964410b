"""`moltbot`: the entry point. Global options, then one lazily imported command."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from moltbot import __version__
from moltbot.cli.lazy import LazyGroup

# name -> ("module:attribute", one-line help). Only imported when the command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "setup": (
        "moltbot.cli.setup_cmd:setup",
        "Create or complete this instance's config, state and workspace.",
    ),
    "config": ("moltbot.cli.config_cmd:config", "Read, change and validate the config file."),
    "onboard": (
        "moltbot.cli.onboard_cmd:onboard",
        "Set up this instance step by step (wizard or flags).",
    ),
    "doctor": (
        "moltbot.cli.doctor_cmd:doctor",
        "Check this instance and its isolation from the others.",
    ),
    "gateway": (
        "moltbot.cli.gateway_cmd:gateway",
        "Run the gateway, inspect it, manage its OS service.",
    ),
    "status": (
        "moltbot.cli.status_cmd:status",
        "This instance: paths, ports, reachability (--all: host).",
    ),
    "health": ("moltbot.cli.status_cmd:health", "Ask this instance's gateway for its health."),
    "logs": ("moltbot.cli.status_cmd:logs", "Show this instance's gateway log."),
    "channels": (
        "moltbot.cli.channels_cmd:channels",
        "Messaging connections: list, status, add, remove.",
    ),
    "pairing": (
        "moltbot.cli.pairing_cmd:pairing",
        "Approve or reject senders asking to DM the bot.",
    ),
    "message": ("moltbot.cli.message_cmd:message", "Send a message through a channel."),
    "agent": (
        "moltbot.cli.agent_cmd:agent",
        "Talk to an agent: one turn, streamed (--local: no gateway).",
    ),
    "agents": ("moltbot.cli.agents_cmd:agents", "List, add and remove agents."),
    "sessions": (
        "moltbot.cli.sessions_cmd:sessions",
        "List chat sessions, show or compact a transcript.",
    ),
    "usage": ("moltbot.cli.usage_cmd:usage", "Token usage and cost by day, model, agent, session."),
    "skills": ("moltbot.cli.skills_cmd:skills", "Skills: list, info, check eligibility."),
    "browser": (
        "moltbot.cli.browser_cmd:browser",
        "This instance's browser: status, start, tabs, snapshot, click.",
    ),
    "devices": (
        "moltbot.cli.devices_cmd:devices",
        "Pair devices (apps, remote UIs, nodes) and manage their tokens.",
    ),
    "nodes": ("moltbot.cli.nodes_cmd:nodes", "The gateway's nodes: status, pairing, run."),
    "node": ("moltbot.cli.node_cmd:node", "Run this machine as a node of a gateway."),
    "approvals": (
        "moltbot.cli.approvals_cmd:approvals",
        "Exec approvals: waiting commands, policy file, allowlist.",
    ),
    "cron": ("moltbot.cli.cron_cmd:cron", "Scheduled jobs: add, list, edit, run, history."),
    "system": ("moltbot.cli.system_cmd:system", "System events, heartbeats, presence."),
    "rescue": (
        "moltbot.cli.rescue_cmd:rescue",
        "Diagnose and repair another instance (rescue.targets).",
    ),
}

EPILOG = """\b
Examples:
  moltbot --profile main setup
  moltbot --profile rescue gateway --port 19001
  moltbot --profile rescue status --json
"""


class RootGroup(LazyGroup):
    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        from moltbot.errors import MoltbotError

        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except MoltbotError as exc:
            click.echo(f"error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(0)


def _profile_option(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from moltbot.errors import UsageError
    from moltbot.instance.resolve import validate_profile

    try:
        return validate_profile(value)
    except UsageError as exc:
        raise click.BadParameter(exc.message) from None


@click.group(
    cls=RootGroup,
    lazy=COMMANDS,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--profile",
    metavar="NAME",
    callback=_profile_option,
    help="Use a named profile: state in ~/.clawdbot-NAME, workspace ~/clawd-NAME, "
    "its own ports and service.",
)
@click.option("--dev", is_flag=True, help="Dev profile (= --profile dev, default port 19001).")
@click.option("--no-color", is_flag=True, help="Disable colour (NO_COLOR=1 works too).")
@click.version_option(__version__, "-V", "--version", prog_name="moltbot")
@click.pass_context
def cli(ctx: click.Context, profile: str | None, dev: bool, no_color: bool) -> None:
    """moltbot: your personal-assistant Gateway, isolated per profile."""
    from moltbot.cli.context import CliContext
    from moltbot.instance.resolve import Invocation

    if dev and profile not in (None, "dev"):
        raise click.UsageError("--dev cannot be combined with --profile other than dev")
    env = dict(os.environ)
    if no_color:
        os.environ["NO_COLOR"] = "1"
    ctx.obj = CliContext(
        invocation=Invocation(profile=profile, dev=dev),
        env=env,
        home=Path(env.get("HOME") or Path.home()),
        color=not (no_color or env.get("NO_COLOR")),
    )


def main() -> None:
    # The LLM SDKs import pydantic, which scans every installed distribution for plugins
    # (~20 ms); we use none.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    cli.main(prog_name="moltbot")
