"""`moltbot cron ...`: scheduled jobs (flags as upstream's `openclaw cron`).

Through the running gateway (``cron.*`` methods); while no gateway runs,
``status``, ``list``, ``runs``, ``add``, ``edit``, ``enable``, ``disable`` and
``rm`` work on the store file itself (``run`` needs the gateway).
"""

from __future__ import annotations

from typing import Any

import click

from moltbot.cli import context

EXAMPLES = """\b
Examples:
  moltbot cron add --name inbox --cron '0 7 * * *' --tz Europe/Berlin \\
      --session isolated --message 'Summarize my inbox' --deliver --channel telegram --to 123
  moltbot cron add --name standup --every 1d --system-event 'Standup in 10 minutes'
  moltbot cron add --name once --at 20m --session isolated --message 'Stretch!' --to 123
  moltbot cron list --all
  moltbot cron runs --id <jobId> --limit 20
"""


def gateway_options(command: Any) -> Any:
    for option in (
        click.option("--url", help="Gateway WebSocket URL (default: this instance's gateway)."),
        click.option("--token", help="Gateway token (default: from the config)."),
        click.option(
            "--timeout",
            "timeout_ms",
            type=click.IntRange(100),
            default=30_000,
            show_default=True,
            help="Milliseconds to wait for the gateway.",
        ),
    ):
        command = option(command)
    return command


class Gateway:
    """Calls to this instance's gateway, or (``offline``) the store when none runs."""

    def __init__(self, url: str | None, token: str | None, timeout_ms: int) -> None:
        from moltbot.gateway.target import resolve_target

        cli = context.get()
        self.instance, snapshot = cli.load()
        self.config = snapshot.config
        self.target = resolve_target(self.instance, self.config, cli.env, url=url, token=token)
        self.timeout = timeout_ms / 1000
        self.offline = not self.target.running and not url

    def call(self, method: str, params: Any = None) -> Any:
        from moltbot.errors import MethodError, NotFoundError, UsageError
        from moltbot.gateway.sync_client import SyncGatewayClient

        if self.offline:
            return self._offline(method, params or {})
        try:
            with SyncGatewayClient.for_target(self.target, self.timeout) as client:
                return client.call(method, params)
        except MethodError as exc:
            if "unknown cron job id" in exc.message:
                raise NotFoundError(exc.message, hint="moltbot cron list --all") from None
            if exc.protocol_code == "INVALID_REQUEST":
                raise UsageError(exc.message) from None
            raise

    def _offline(self, method: str, params: dict[str, Any]) -> Any:
        from moltbot.automation import offline
        from moltbot.automation.service import store_path
        from moltbot.automation.store import CronStore
        from moltbot.errors import GatewayUnreachableError, UsageError

        store = CronStore(store_path(self.config, self.instance))
        job_id = params.get("id", "")
        try:
            if method == "cron.status":
                return offline.status(store, self.config.cron.enabled)
            if method == "cron.list":
                return offline.list_jobs(store, bool(params.get("includeDisabled")))
            if method == "cron.add":
                return offline.add(store, params)
            if method == "cron.update":
                return offline.update(store, job_id, params["patch"])
            if method == "cron.remove":
                return offline.remove(store, job_id)
            if method == "cron.runs":
                return offline.runs(store, job_id, int(params.get("limit") or 50))
        except ValueError as exc:  # moltbot.validation's ValidationError
            from moltbot.gateway.protocol import describe_validation

            raise UsageError(f"invalid job: {describe_validation(exc)}") from None
        raise GatewayUnreachableError(
            f"`{method}` needs the running gateway (none runs at {self.target.url})",
            hint="start it: moltbot gateway",
        )

    def warn_if_disabled(self) -> None:
        status = self.call("cron.status")
        if isinstance(status, dict) and status.get("enabled") is False:
            context.warn(
                "cron is disabled (cron.enabled: false or CLAWDBOT_SKIP_CRON): jobs are "
                f"saved but will not run. Store: {status.get('storePath')}"
            )


@click.group(epilog=EXAMPLES)
def cron() -> None:
    """Scheduled jobs: system events for the main session or isolated agent turns."""


@cron.command("status")
@gateway_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default output).")
def status_cmd(url: str | None, token: str | None, timeout_ms: int, as_json: bool) -> None:
    """Whether jobs run, the store, and when the next one is due."""
    context.emit_json(Gateway(url, token, timeout_ms).call("cron.status", {}))


@cron.command("list")
@gateway_options
@click.option("--all", "include_all", is_flag=True, help="Include disabled jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(
    url: str | None, token: str | None, timeout_ms: int, include_all: bool, as_json: bool
) -> None:
    """Jobs, soonest first."""
    result = Gateway(url, token, timeout_ms).call("cron.list", {"includeDisabled": include_all})
    if as_json:
        context.emit_json(result)
        return
    click.echo(format_table(result.get("jobs") or []))


@cron.command("add", epilog=EXAMPLES)
@gateway_options
@click.option("--name", required=True, help="Job name.")
@click.option("--description", help="Optional description.")
@click.option("--disabled", is_flag=True, help="Create the job disabled.")
@click.option("--delete-after-run", is_flag=True, help="Delete a one-shot job once it succeeds.")
@click.option("--agent", "agent_id", help="Agent id (default: the default agent).")
@click.option(
    "--session",
    type=click.Choice(["main", "isolated"]),
    default="main",
    show_default=True,
    help="main: a system event for the main session; isolated: an agent turn of its own.",
)
@click.option(
    "--wake",
    type=click.Choice(["now", "next-heartbeat"]),
    default="next-heartbeat",
    show_default=True,
    help="Run a heartbeat at once after the job, or wait for the next one.",
)
@click.option(
    "--at", "at_", help="Once, at an ISO time (zone-less: UTC) or after a duration (20m)."
)
@click.option("--every", help="Every duration: 30s, 10m, 1h, 1d.")
@click.option("--cron", "cron_expr", help="5-field cron expression.")
@click.option("--tz", help="IANA time zone of --cron (default: the host's).")
@click.option("--system-event", help="Text for the main session (with --session main).")
@click.option("--message", help="The agent's prompt (with --session isolated).")
@click.option("--thinking", help="Thinking level for agent jobs.")
@click.option("--model", help="Model for agent jobs (provider/model or alias).")
@click.option("--timeout-seconds", type=click.IntRange(1), help="Timeout of agent jobs.")
@click.option("--deliver", is_flag=True, help="Deliver the reply (needed for --channel last).")
@click.option(
    "--channel", default="last", show_default=True, help="Delivery channel: last or an id."
)
@click.option("--to", help="Delivery recipient (Telegram chat id, Slack channel:...).")
@click.option("--best-effort-deliver", is_flag=True, help="A failed delivery does not fail it.")
@click.option(
    "--post-prefix", default="Cron", show_default=True, help="Prefix in the main session."
)
@click.option(
    "--post-mode",
    type=click.Choice(["summary", "full"]),
    default="summary",
    show_default=True,
    help="What an isolated job posts to the main session.",
)
@click.option("--post-max-chars", type=click.IntRange(0), default=8000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default output).")
def add_cmd(**opts: Any) -> None:
    """Add a job: one schedule (--at, --every, --cron) and one payload (--system-event,
    --message)."""
    from moltbot.errors import UsageError

    gateway = Gateway(opts.pop("url"), opts.pop("token"), opts.pop("timeout_ms"))
    schedule = _schedule(opts["at_"], opts["every"], opts["cron_expr"], opts["tz"])
    if schedule is None:
        raise UsageError("choose exactly one schedule: --at, --every or --cron")
    payload = _payload(opts, required=True)
    session = opts["session"]
    if session == "main" and payload["kind"] != "systemEvent":
        raise UsageError("main jobs need --system-event (or use --session isolated)")
    if session == "isolated" and payload["kind"] != "agentTurn":
        raise UsageError("isolated jobs need --message")
    params: dict[str, Any] = {
        "name": opts["name"].strip(),
        "enabled": not opts["disabled"],
        "deleteAfterRun": opts["delete_after_run"],
        "schedule": schedule,
        "sessionTarget": session,
        "wakeMode": opts["wake"],
        "payload": payload,
    }
    if opts["description"]:
        params["description"] = opts["description"].strip()
    if opts["agent_id"]:
        params["agentId"] = opts["agent_id"].strip().lower()
    if session == "isolated":
        params["isolation"] = {
            "postToMainPrefix": opts["post_prefix"].strip() or "Cron",
            "postToMainMode": opts["post_mode"],
            "postToMainMaxChars": opts["post_max_chars"],
        }
    context.emit_json(gateway.call("cron.add", params))
    gateway.warn_if_disabled()


@cron.command("edit")
@gateway_options
@click.argument("job_id", metavar="ID")
@click.option("--name", help="New name.")
@click.option("--description", help="New description.")
@click.option("--enable", is_flag=True, help="Enable the job.")
@click.option("--disable", is_flag=True, help="Disable the job.")
@click.option("--delete-after-run", is_flag=True, help="Delete a one-shot job after success.")
@click.option("--keep-after-run", is_flag=True, help="Keep a one-shot job after success.")
@click.option("--session", type=click.Choice(["main", "isolated"]), help="Session target.")
@click.option("--agent", "agent_id", help="Agent id.")
@click.option("--clear-agent", is_flag=True, help="Use the default agent.")
@click.option("--wake", type=click.Choice(["now", "next-heartbeat"]), help="Wake mode.")
@click.option("--at", "at_", help="New one-shot time (ISO or duration).")
@click.option("--every", help="New interval.")
@click.option("--cron", "cron_expr", help="New cron expression.")
@click.option("--tz", help="Time zone of --cron.")
@click.option("--system-event", help="New system-event text.")
@click.option("--message", help="New agent prompt.")
@click.option("--thinking", help="Thinking level.")
@click.option("--model", help="Model.")
@click.option("--timeout-seconds", type=click.IntRange(1), help="Timeout of agent jobs.")
@click.option("--deliver/--no-deliver", default=None, help="Deliver the reply, or not.")
@click.option("--channel", help="Delivery channel: last or an id.")
@click.option("--to", help="Delivery recipient.")
@click.option("--best-effort-deliver/--no-best-effort-deliver", default=None)
@click.option("--post-prefix", help="Prefix of the summary in the main session.")
def edit_cmd(**opts: Any) -> None:
    """Change fields of job ID (only the flags given)."""
    from moltbot.errors import UsageError

    gateway = Gateway(opts.pop("url"), opts.pop("token"), opts.pop("timeout_ms"))
    patch: dict[str, Any] = {}
    for flag, key in (
        ("name", "name"),
        ("description", "description"),
        ("session", "sessionTarget"),
        ("wake", "wakeMode"),
    ):
        if opts[flag] is not None:
            patch[key] = opts[flag]
    for first, second in (("enable", "disable"), ("delete_after_run", "keep_after_run")):
        if opts[first] and opts[second]:
            raise UsageError(f"choose --{first.replace('_', '-')} or --{second.replace('_', '-')}")
    if opts["enable"] or opts["disable"]:
        patch["enabled"] = bool(opts["enable"])
    if opts["delete_after_run"] or opts["keep_after_run"]:
        patch["deleteAfterRun"] = bool(opts["delete_after_run"])
    if opts["agent_id"] and opts["clear_agent"]:
        raise UsageError("use --agent or --clear-agent, not both")
    if opts["agent_id"]:
        patch["agentId"] = opts["agent_id"].strip().lower()
    if opts["clear_agent"]:
        patch["agentId"] = None
    if sum(bool(opts[k]) for k in ("at_", "every", "cron_expr")) > 1:
        raise UsageError("choose at most one schedule change")
    schedule = _schedule(opts["at_"], opts["every"], opts["cron_expr"], opts["tz"])
    if schedule is not None:
        patch["schedule"] = schedule
    payload = _payload(opts, required=False)
    if payload is not None:
        patch["payload"] = payload
    if opts["post_prefix"] is not None:
        patch["isolation"] = {"postToMainPrefix": opts["post_prefix"].strip() or "Cron"}
    if not patch:
        raise UsageError("nothing to change: give at least one flag")
    context.emit_json(gateway.call("cron.update", {"id": opts["job_id"], "patch": patch}))
    gateway.warn_if_disabled()


def _toggle(enabled: bool) -> Any:
    @gateway_options
    @click.argument("job_id", metavar="ID")
    def command(url: str | None, token: str | None, timeout_ms: int, job_id: str) -> None:
        gateway = Gateway(url, token, timeout_ms)
        patch = {"id": job_id, "patch": {"enabled": enabled}}
        context.emit_json(gateway.call("cron.update", patch))
        gateway.warn_if_disabled()

    return command


cron.command("enable", help="Enable job ID.")(_toggle(True))
cron.command("disable", help="Disable job ID.")(_toggle(False))


@cron.command("rm")
@gateway_options
@click.argument("job_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default output).")
def rm_cmd(url: str | None, token: str | None, timeout_ms: int, job_id: str, as_json: bool) -> None:
    """Remove job ID (its run log stays). Also: remove, delete."""
    from moltbot.errors import NotFoundError

    result = Gateway(url, token, timeout_ms).call("cron.remove", {"id": job_id})
    context.emit_json(result)
    if not result.get("removed"):
        raise NotFoundError(f"unknown cron job id: {job_id}", hint="moltbot cron list --all")


cron.add_command(rm_cmd, "remove")
cron.add_command(rm_cmd, "delete")


@cron.command("run")
@gateway_options
@click.argument("job_id", metavar="ID")
@click.option("--force", is_flag=True, help="Run even if not due (or disabled).")
def run_cmd(url: str | None, token: str | None, timeout_ms: int, job_id: str, force: bool) -> None:
    """Run job ID now and wait for it (needs the gateway)."""
    result = Gateway(url, token, timeout_ms).call(
        "cron.run", {"id": job_id, "mode": "force" if force else "due"}
    )
    context.emit_json(result)


@cron.command("runs")
@gateway_options
@click.argument("job_arg", metavar="[ID]", required=False)
@click.option("--id", "job_id", help="Job id.")
@click.option("--limit", type=click.IntRange(1, 5000), default=50, show_default=True)
def runs_cmd(
    url: str | None,
    token: str | None,
    timeout_ms: int,
    job_arg: str | None,
    job_id: str | None,
    limit: int,
) -> None:
    """Run history of a job (newest last)."""
    from moltbot.errors import UsageError

    chosen = job_id or job_arg
    if not chosen:
        raise UsageError("give the job: --id <jobId>")
    context.emit_json(
        Gateway(url, token, timeout_ms).call("cron.runs", {"id": chosen, "limit": limit})
    )


def _schedule(at: str | None, every: str | None, expr: str | None, tz: str | None) -> Any:
    from moltbot.automation.schedule import check_cron, parse_at_ms, parse_duration_ms
    from moltbot.errors import UsageError

    chosen = [bool(at), bool(every), bool(expr)]
    if sum(chosen) > 1:
        raise UsageError("choose exactly one schedule: --at, --every or --cron")
    if at:
        import time

        when = parse_at_ms(at, time.time_ns() // 1_000_000)
        if when is None:
            raise UsageError(f"invalid --at {at!r}: use an ISO time or a duration like 20m")
        return {"kind": "at", "atMs": when}
    if every:
        interval = parse_duration_ms(every) if not every.strip().isdigit() else None
        if interval is None:
            raise UsageError(f"invalid --every {every!r}: use e.g. 30s, 10m, 1h, 1d")
        return {"kind": "every", "everyMs": interval}
    if expr:
        check_cron(expr, tz)
        schedule = {"kind": "cron", "expr": expr.strip()}
        if tz and tz.strip():
            schedule["tz"] = tz.strip()
        return schedule
    if tz:
        raise UsageError("--tz goes with --cron")
    return None


def _payload(opts: dict[str, Any], *, required: bool) -> dict[str, Any] | None:
    from moltbot.errors import UsageError

    event = (opts.get("system_event") or "").strip()
    message = (opts.get("message") or "").strip()
    agent_fields = {
        "model": (opts.get("model") or "").strip() or None,
        "thinking": (opts.get("thinking") or "").strip() or None,
        "timeoutSeconds": opts.get("timeout_seconds"),
        "deliver": opts.get("deliver") if opts.get("deliver") is not None else None,
        "channel": opts.get("channel"),
        "to": (opts.get("to") or "").strip() or None,
        "bestEffortDeliver": opts.get("best_effort_deliver"),
    }
    if required:  # add: flags default to off; only true ones are sent
        agent_fields["deliver"] = True if opts.get("deliver") else None
        agent_fields["bestEffortDeliver"] = True if opts.get("best_effort_deliver") else None
    agent_fields = {k: v for k, v in agent_fields.items() if v is not None}
    if event and (message or (not required and agent_fields)):
        raise UsageError("choose one payload: --system-event or --message")
    if event:
        return {"kind": "systemEvent", "text": event}
    if message or (not required and agent_fields):
        payload: dict[str, Any] = {"kind": "agentTurn", **agent_fields}
        if message:
            payload["message"] = message
        return payload
    if required:
        raise UsageError("choose one payload: --system-event or --message")
    return None


def format_table(jobs: list[dict[str, Any]]) -> str:
    """Upstream's `cron list` columns: ID, Name, Schedule, Next, Last, Status, Target, Agent."""
    import time

    from moltbot.automation.jobs import CronJob, describe_schedule

    if not jobs:
        return "No cron jobs."
    widths = (36, 24, 32, 10, 10, 9, 9, 10)
    header = ("ID", "Name", "Schedule", "Next", "Last", "Status", "Target", "Agent")
    now = time.time_ns() // 1_000_000
    lines = [" ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for data in jobs:
        job = CronJob.model_validate({**data, "state": data.get("state") or {}})
        state = job.state
        status = (
            "disabled"
            if not job.enabled
            else "running"
            if state.runningAtMs
            else state.lastStatus or "idle"
        )
        cells = (
            job.id,
            _cut(job.name, 24),
            _cut(describe_schedule(job.schedule), 32),
            _relative(state.nextRunAtMs, now) if job.enabled else "-",
            _relative(state.lastRunAtMs, now),
            status,
            job.sessionTarget,
            _cut(job.agentId or "default", 10),
        )
        lines.append(" ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _relative(ms: int | None, now: int) -> str:
    if not ms:
        return "-"
    delta = ms - now
    span = abs(delta)
    if span < 60_000:
        label = "<1m"
    elif span < 3_600_000:
        label = f"{round(span / 60_000)}m"
    elif span < 86_400_000:
        label = f"{round(span / 3_600_000)}h"
    else:
        label = f"{round(span / 86_400_000)}d"
    return f"in {label}" if delta >= 0 else f"{label} ago"
