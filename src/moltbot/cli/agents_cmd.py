"""`moltbot agents list|add|remove`: the agents of this instance (``agents.list``)."""

from __future__ import annotations

from typing import Any

import click

from moltbot.cli import context

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group(
    epilog="\b\nExamples:\n  moltbot agents list\n  moltbot agents add ops "
    "--model openai/gpt-4o-mini\n  moltbot agents remove ops"
)
def agents() -> None:
    """List, add and remove agents (each with its own workspace, model and sessions)."""


def _rows(instance: Any, config: Any) -> list[dict[str, Any]]:
    from moltbot.agents.models import model_choice
    from moltbot.agents.roster import agent_specs

    rows = []
    for spec in agent_specs(config, instance):
        choice = model_choice(config, spec.id)
        model = choice if isinstance(choice, str) or choice is None else choice.primary
        rows.append(
            {
                "id": spec.id,
                "name": spec.name,
                "default": spec.default,
                "workspace": str(spec.workspace),
                "model": model,
                "sessions": str(instance.sessions_dir(spec.id)),
            }
        )
    return rows


@agents.command("list", epilog="\b\nExample:\n  moltbot --profile rescue agents list --json")
@_json
def list_cmd(as_json: bool) -> None:
    """Show every agent: id, default, model, workspace."""
    cli = context.get()
    instance, snapshot = cli.load()
    rows = _rows(instance, snapshot.config)
    if as_json:
        context.emit_json({"agents": rows})
        return
    for row in rows:
        mark = "*" if row["default"] else " "
        name = f" ({row['name']})" if row["name"] else ""
        click.echo(
            f"{mark} {row['id']}{name}  model {row['model'] or '(none)'}  "
            f"workspace {context.home_relative(row['workspace'], cli.home)}"
        )


@agents.command(
    "add",
    epilog="\b\nExamples:\n  moltbot agents add ops\n  moltbot agents add "
    "research --model anthropic/claude-opus-4-5 --workspace ~/research --default",
)
@click.argument("agent_id")
@click.option("--name", help="Display name.")
@click.option("--model", metavar="PROVIDER/MODEL", help="Model for this agent.")
@click.option("--workspace", help="Workspace (default: <instance workspace>-<id>).")
@click.option("--default", "make_default", is_flag=True, help="Make it the default agent.")
@_json
def add_cmd(
    agent_id: str,
    name: str | None,
    model: str | None,
    workspace: str | None,
    make_default: bool,
    as_json: bool,
) -> None:
    """Add agent AGENT_ID to agents.list and create its workspace. Exit 3 if it exists."""
    from moltbot.agents.roster import agent_specs
    from moltbot.config.store import update_config
    from moltbot.errors import ConflictError, UsageError
    from moltbot.instance.workspace import ensure_workspace
    from moltbot.sessions.keys import normalize_agent_id

    cli = context.get()
    instance, snapshot = cli.load()
    agent_id = normalize_agent_id(agent_id)
    if model and "/" not in model:
        raise UsageError(f"--model {model}: use provider/model, e.g. openai/gpt-4o")

    def mutate(data: dict[str, Any]) -> None:
        section = data.setdefault("agents", {})
        entries = section.setdefault("list", [])
        if any(isinstance(e, dict) and e.get("id") == agent_id for e in entries):
            raise ConflictError(f"agent {agent_id} already exists")
        if not entries and agent_id != "main":
            entries.append({"id": "main"})  # keep the implicit main agent
        entry: dict[str, Any] = {"id": agent_id}
        for key, value in (("name", name), ("model", model), ("workspace", workspace)):
            if value:
                entry[key] = value
        if make_default:
            for other in entries:
                if isinstance(other, dict):
                    other.pop("default", None)
            entry["default"] = True
        entries.append(entry)

    updated = update_config(instance.config_path, mutate, cli.env)
    spec = next(s for s in agent_specs(updated.config, instance) if s.id == agent_id)
    report = ensure_workspace(spec.workspace)
    result = {
        "id": agent_id,
        "workspace": str(spec.workspace),
        "default": spec.default,
        "created": report.created,
        "config": str(instance.config_path),
    }
    if as_json:
        context.emit_json(result)
    else:
        click.echo(
            f"Added agent {agent_id} (workspace {context.home_relative(spec.workspace, cli.home)})."
        )
        click.echo("A running gateway picks it up from the config file.")


@agents.command("remove", epilog="\b\nExample:\n  moltbot agents remove ops")
@click.argument("agent_id")
@_json
def remove_cmd(agent_id: str, as_json: bool) -> None:
    """Remove AGENT_ID from agents.list. Its workspace and sessions stay on disk. Exit 9 if
    there is no such agent."""
    from moltbot.config.store import update_config
    from moltbot.errors import NotFoundError

    cli = context.get()
    instance, _ = cli.load()
    agent_id = agent_id.strip().lower()

    def mutate(data: dict[str, Any]) -> None:
        entries = (data.get("agents") or {}).get("list") or []
        kept = [e for e in entries if not (isinstance(e, dict) and e.get("id") == agent_id)]
        if len(kept) == len(entries):
            raise NotFoundError(f"no agent {agent_id} in agents.list")
        data["agents"]["list"] = kept

    update_config(instance.config_path, mutate, cli.env)
    result = {"id": agent_id, "removed": True, "keptOnDisk": [str(instance.sessions_dir(agent_id))]}
    if as_json:
        context.emit_json(result)
    else:
        click.echo(
            f"Removed agent {agent_id}; its sessions stay in "
            f"{context.home_relative(instance.sessions_dir(agent_id), cli.home)}."
        )
