"""`moltbot skills list|info|check`: this instance's skills and their eligibility (no
gateway needed: the same discovery the agents use, on this host's PATH and config)."""

from __future__ import annotations

from typing import Any

import click

from moltbot.cli import context
from moltbot.cli.lazy import LazyGroup

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_agent = click.option("--agent", "agent_id", metavar="ID", help="Whose workspace (default agent).")


@click.group(
    cls=LazyGroup,
    default="list",
    epilog="\b\nExamples:\n  moltbot skills\n  moltbot skills info weather\n"
    "  moltbot skills check --json\n\b\nExit codes: 0 ok; 1 check found ineligible "
    "skills; 9 no such skill or agent.",
)
def skills() -> None:
    """Skills (SKILL.md folders) of this instance's agents (default: list)."""


def _statuses(agent_id: str | None) -> tuple[Any, list[Any]]:
    from moltbot.agents import skills as skills_mod
    from moltbot.agents.roster import agent_specs, default_agent_id
    from moltbot.errors import NotFoundError

    cli = context.get()
    instance, snapshot = cli.load()
    config = snapshot.config
    specs = {s.id: s for s in agent_specs(config, instance)}
    wanted = (agent_id or default_agent_id(config)).lower()
    if wanted not in specs:
        raise NotFoundError(f"no agent {agent_id}; agents: {', '.join(specs)}")
    found = skills_mod.statuses(config, cli.env, specs[wanted].workspace, instance.skills_dir)
    return specs[wanted], found


@skills.command("list")
@_agent
@_json
def list_cmd(agent_id: str | None, as_json: bool) -> None:
    """Every skill with its source and whether the agent may use it."""
    spec, found = _statuses(agent_id)
    if as_json:
        context.emit_json(
            {"workspaceDir": str(spec.workspace), "skills": [s.report() for s in found]}
        )
        return
    if not found:
        click.echo(f"No skills. Add one as {spec.workspace}/skills/<name>/SKILL.md.")
        return
    for item in found:
        mark = "✓" if item.eligible else "✗"
        why = "" if item.eligible else f"  ({'; '.join(item.reasons())})"
        skill = item.skill
        click.echo(f"{mark} {skill.name:<24} {skill.source:<9} {skill.description[:60]}{why}")


@skills.command("info")
@click.argument("name")
@_agent
@_json
def info_cmd(name: str, agent_id: str | None, as_json: bool) -> None:
    """One skill: where it is, what it requires, what is missing."""
    from moltbot.errors import NotFoundError

    _, found = _statuses(agent_id)
    item = next((s for s in found if name.lower() in (s.skill.name, s.skill.key.lower())), None)
    if item is None:
        raise NotFoundError(f"no skill {name}", hint="list them with `moltbot skills`")
    report = item.report()
    if as_json:
        context.emit_json(report)
        return
    click.echo(f"{report['name']}: {report['description']}")
    click.echo(f"  file      {report['filePath']} ({report['source']})")
    click.echo(f"  key       {report['skillKey']}")
    click.echo(
        f"  eligible  {'yes' if report['eligible'] else 'no: ' + '; '.join(report['reasons'])}"
    )
    needs = {k: v for k, v in report["requirements"].items() if v}
    for kind, values in needs.items():
        click.echo(f"  requires  {kind}: {', '.join(values)}")
    for option in report["install"]:
        click.echo(f"  install   {option['id']}: {option['label']} ({option['kind']})")


@skills.command("check")
@_agent
@_json
def check_cmd(agent_id: str | None, as_json: bool) -> None:
    """Exit 1 when a skill is not eligible (not counting ones disabled on purpose)."""
    _, found = _statuses(agent_id)
    broken = [s for s in found if not s.eligible and not s.disabled and not s.blocked]
    if as_json:
        context.emit_json(
            {
                "ok": not broken,
                "eligible": [s.skill.name for s in found if s.eligible],
                "ineligible": {s.skill.name: s.reasons() for s in broken},
            }
        )
    else:
        click.echo(f"{len(found) - len(broken)} of {len(found)} skills eligible")
        for item in broken:
            click.echo(f"✗ {item.skill.name}: {'; '.join(item.reasons())}")
    if broken:
        raise SystemExit(1)
