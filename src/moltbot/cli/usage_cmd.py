"""`moltbot usage`: token usage and cost from this instance's transcripts (no gateway needed)."""

from __future__ import annotations

from typing import Any

import click

from moltbot.cli import context

GROUPS = {"day": "daily", "model": "byModel", "agent": "byAgent", "session": "bySession"}


@click.command(
    epilog=context.examples(
        "moltbot usage",
        "moltbot usage --days 7 --by model",
        "moltbot --profile rescue usage --by session --json",
    )
)
@click.option("--days", type=click.IntRange(1, 3660), default=30, show_default=True)
@click.option("--by", "group", type=click.Choice(sorted(GROUPS)), default="day", show_default=True)
@click.option("--agent", "agent_id", metavar="ID", help="Only this agent's sessions.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole summary as JSON.")
def usage(days: int, group: str, agent_id: str | None, as_json: bool) -> None:
    """Tokens and cost per day, model, agent or session over the last DAYS days.

    Costs use models.providers.<id>.models[].cost (USD per million tokens); calls of
    models without a price are counted as missing."""
    from moltbot.agents.models import read_credentials, resolve_providers
    from moltbot.agents.roster import agent_specs
    from moltbot.agents.usage import UsageLedger, price_lookup, summary
    from moltbot.errors import NotFoundError

    cli = context.get()
    instance, snapshot = cli.load()
    config = snapshot.config
    ids = [spec.id for spec in agent_specs(config, instance)]
    if agent_id:
        if agent_id.lower() not in ids:
            raise NotFoundError(f"no agent {agent_id}; agents: {', '.join(ids)}")
        ids = [agent_id.lower()]
    providers = resolve_providers(config, cli.env, read_credentials(instance.credentials_dir))
    rows = UsageLedger().scan({i: instance.sessions_dir(i) for i in ids}, price_lookup(providers))
    result = summary(rows, days)
    if as_json:
        context.emit_json(result)
        return
    items: list[dict[str, Any]] = result[GROUPS[group]]
    name = {"day": "date", "model": "model", "agent": "agentId", "session": "key"}[group]
    if not items:
        click.echo(f"No usage in the last {days} days.")
        return
    width = max(len(str(item[name])) for item in items)
    for item in items:
        click.echo(_line(str(item[name]), width, item))
    click.echo(_line("total", width, result["totals"]))


def _line(label: str, width: int, totals: dict[str, Any]) -> str:
    cost = f"${totals['totalCost']:.4f}"
    if totals["missingCostEntries"]:
        cost += f" (+{totals['missingCostEntries']} unpriced)"
    return (
        f"{label:<{width}}  {totals['input']:>9} in  {totals['output']:>8} out  "
        f"{totals['totalTokens']:>9} tok  {cost}"
    )
