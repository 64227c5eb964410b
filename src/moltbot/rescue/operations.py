"""The rescue operations, implemented once for every front-end (CLI, protocol methods,
agent tools, chat commands).

A front-end builds a :class:`Request` and hands it to :class:`Rescuer` with the
:class:`~moltbot.rescue.audit.Actor` who asks. Reads (``status``, ``logs``,
``doctor``, ``config validate|get|diff|history``) answer an :class:`Outcome` at once.
Changes (``config restore|set``, ``restart``, ``stop``, ``start``) are first
*proposed* — checked as far as they can be without acting, answered as a
:class:`Change` with a one-line summary — and *applied* only once the asker confirmed
it (:mod:`moltbot.rescue.confirm`; the CLI asks on its terminal). Every step goes to
the audit log first; a step that cannot be audited is not taken.

Outcomes carry a short plain-text ``text`` (fits a phone screen; chat replies and the
CLI print it) and JSON ``data`` (protocol payloads, ``--json``). Failures raise the
error tree's exceptions (:class:`~moltbot.rescue.errors.TargetRefused`,
:class:`~moltbot.errors.NotFoundError`, :class:`~moltbot.rescue.errors.StartFailed`,
...), which each front-end renders its own way.

Blocking: everything here does file I/O and may start processes or wait for a target
to come up (``rescue.startTimeoutSeconds``); the gateway calls it in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moltbot.config.schema import Config
from moltbot.config.secrets import REDACTED, is_secret_key
from moltbot.errors import MoltbotError, UsageError
from moltbot.instance.resolve import Instance
from moltbot.rescue import configops, control, inspect
from moltbot.rescue.audit import Actor, AuditLog
from moltbot.rescue.ops import OPS, READS, WRITES
from moltbot.rescue.targets import Grants, RescueTarget, target_env

CONFIG_ACTIONS = ("validate", "get", "diff", "history", "restore", "set")
DEFAULT_LOG_LINES = 20
MAX_VALUE_CHARS = 16 * 1024
MAX_AUDIT_SHOWN = 100


@dataclass(frozen=True)
class Request:
    """One operation on one target. ``key``/``value`` for ``config get|set`` (``value``
    as JSON5 text), ``number`` a history version (``config diff|restore``; none: the last
    good config), ``lines``/``grep`` for ``logs``."""

    target: str
    op: str
    key: str | None = None
    value: str | None = None
    number: int | None = None
    lines: int | None = None
    grep: str | None = None

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise UsageError(f"unknown rescue operation {self.op!r}; one of: {', '.join(OPS)}")
        if self.op == "config set" and (not self.key or self.value is None):
            raise UsageError("config set needs a key and a value")
        if self.number is not None and self.number < 1:
            raise UsageError("a history version is a number from 1 (the newest)")
        if self.value is not None and len(self.value) > MAX_VALUE_CHARS:
            raise UsageError(f"a value for config set is at most {MAX_VALUE_CHARS} characters")
        if self.grep is not None and len(self.grep) > 200:
            raise UsageError("a logs filter is at most 200 characters")

    @property
    def is_change(self) -> bool:
        return self.op in WRITES

    def args(self) -> dict[str, Any]:
        """The arguments as the audit log and confirmations show them (secrets hidden)."""
        shown: dict[str, Any] = {}
        for name in ("key", "value", "number", "lines", "grep"):
            value = getattr(self, name)
            if value is not None:
                shown[name] = value
        if self.key and "value" in shown and is_secret_key(self.key.rsplit(".", 1)[-1]):
            if not str(self.value).startswith("${"):
                shown["value"] = REDACTED
        return shown

    def command(self) -> str:
        """The chat command that asks for this (``/rescue config restore main 2``)."""
        extra = [str(v) for v in (self.key, self.value, self.number) if v is not None]
        if self.op == "config set" and self.key and "value" in self.args():
            extra = [self.key, str(self.args()["value"])]
        return " ".join(["/rescue", self.op, self.target, *extra])


@dataclass(frozen=True)
class Outcome:
    request: Request
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """A checked change waiting for its confirmation."""

    request: Request
    summary: str
    before: str | None = None
    """The target config's hash the change was checked against (config changes)."""
    planned: configops.Planned | None = None


class Rescuer:
    """The operations of the rescue instance ``me`` (its ``config.rescue`` grants and
    owners), audited in ``me``'s state dir. ``env`` is this process's environment; the
    targets get it without any instance identity (:func:`target_env`)."""

    def __init__(
        self, me: Instance, config: Config, env: Mapping[str, str], audit: AuditLog | None = None
    ) -> None:
        self.me = me
        self.settings = config.rescue
        self.grants = Grants(me, config, env)
        self.env = target_env(env)
        self.audit = audit or AuditLog(me.state_dir)

    # -- the three steps ------------------------------------------------------------

    def run(self, actor: Actor, request: Request) -> Outcome | Change:
        """A read's outcome, or a change to confirm."""
        return self.propose(actor, request) if request.is_change else self.read(actor, request)

    def read(self, actor: Actor, request: Request) -> Outcome:
        target = self._target(actor, request)
        try:
            outcome = _READERS[request.op](self, target, request)
        except MoltbotError as exc:
            self._audit(actor, request, "failed", message=exc.message)
            raise
        self._audit(actor, request, "ok", message=outcome.text.splitlines()[0])
        return outcome

    def propose(self, actor: Actor, request: Request) -> Change:
        target = self._target(actor, request)
        try:
            change = self._plan(target, request)
        except MoltbotError as exc:
            self._audit(actor, request, "refused", message=exc.message)
            raise
        self._audit(actor, request, "asked", message=change.summary, before=change.before)
        return change

    def apply(self, actor: Actor, change: Change) -> Outcome:
        """Carry out a confirmed change (re-resolving the target: grants may have
        changed meanwhile)."""
        request = change.request
        target = self._target(actor, request)
        self._audit(actor, request, "confirmed", message=change.summary, before=change.before)
        try:
            outcome = self._carry_out(actor, target, change)
        except MoltbotError as exc:
            self._audit(actor, request, "failed", message=exc.message, before=change.before)
            raise
        after = outcome.data.get("after")
        self._audit(
            actor,
            request,
            "applied",
            message=outcome.text.splitlines()[0],
            before=change.before,
            after=after if isinstance(after, str) else None,
        )
        return outcome

    def overview(self, actor: Actor) -> Outcome:
        """The first line of every granted target's status (``/rescue status``, ``moltbot
        rescue`` and ``rescue.status`` without a target): ``data["targets"]`` holds each
        status. :class:`TargetRefused` when nothing is granted or none of it exists."""
        from moltbot.rescue.errors import TargetRefused

        names = sorted(self.grants.names())
        if not names:
            if not self.settings.targets:
                self.grants.resolve("-")  # raises: no targets granted, with the hint
            raise TargetRefused(
                "none of the instances in rescue.targets is on this host "
                f"(granted: {', '.join(self.settings.targets)})"
            )
        rows: list[dict[str, Any]] = []
        for name in names:
            try:
                outcome = self.read(actor, Request(name, "status"))
                row = {"target": name, "line": outcome.text.splitlines()[0], **outcome.data}
            except MoltbotError as exc:
                row = {"target": name, "line": f"{name}: {exc.message}", "error": exc.message}
            rows.append(row)
        text = "\n".join(row["line"] for row in rows)
        return Outcome(Request("*", "status"), text, {"targets": rows})

    def recent(self, count: int | None = None, target: str | None = None) -> Outcome:
        """The last ``count`` (default 10, at most :data:`MAX_AUDIT_SHOWN`) steps of the
        audit log, oldest first, only those on ``target`` when given. Reading the audit
        log is not itself audited."""
        import time as clock
        from datetime import datetime

        wanted = max(1, min(count or 10, MAX_AUDIT_SHOWN))
        entries = [e for e in self.audit.entries() if target is None or e.get("target") == target]
        shown = entries[-wanted:]
        lines = [
            f"audit: last {len(shown)} of {len(entries)} step(s)"
            + (f" on {target}" if target else "")
            + ("" if shown else " — none")
        ]
        for entry in shown:
            try:
                at = datetime.fromisoformat(str(entry.get("ts"))).timestamp()
                when = clock.strftime("%m-%d %H:%M", clock.localtime(at))
            except ValueError:
                when = "?"
            lines.append(
                f"{when} {entry.get('op')} {entry.get('target')}: {entry.get('result')} "
                f"({entry.get('via')}, {entry.get('actor')})"
            )
        data = {"entries": shown, "total": len(entries)}
        return Outcome(Request(target or "*", "status"), "\n".join(lines), data)

    # -- helpers ----------------------------------------------------------------------

    def _target(self, actor: Actor, request: Request) -> RescueTarget:
        try:
            return self.grants.resolve(request.target)
        except MoltbotError as exc:
            self._audit(actor, request, "refused", message=exc.message)
            raise

    def _audit(self, actor: Actor, request: Request, result: str, **extra: Any) -> None:
        self.audit.append(actor, request.target, request.op, result, args=request.args(), **extra)

    def _plan(self, target: RescueTarget, request: Request) -> Change:
        instance = target.instance
        if request.op == "config restore":
            planned = configops.plan_restore(instance, request.number, self.env)
            return Change(request, planned.summary, planned.before, planned)
        if request.op == "config set":
            assert request.key is not None and request.value is not None
            planned = configops.plan_set(instance, request.key, request.value, self.env)
            return Change(request, planned.summary, planned.before, planned)
        how = "its service" if control.installed_manager(instance, self.env) else "a process"
        state = inspect.running(instance, self.env)
        now = f"running, pid {state.pid}" if state else "not running"
        _, digest = configops.current_text(instance)
        verb = {"restart": "restart", "stop": "stop", "start": "start"}[request.op]
        return Change(request, f"{verb} {_who(target)} ({now}) through {how}", digest or None)

    def _carry_out(self, actor: Actor, target: RescueTarget, change: Change) -> Outcome:
        request, instance = change.request, target.instance
        if change.planned is not None:
            after = configops.apply(instance, change.planned, self.env, f"rescue ({actor.label})")
            state = inspect.check_config(instance.config_path, self.env)
            validity = (
                "valid" if state.valid else "NOT valid: " + inspect.short_error(state.error or "")
            )
            text = f"{_who(target)}: done — config now {after[:8]}, {validity}."
            if request.op == "config restore" and inspect.running(instance, self.env) is None:
                text += f"\nIt is not running: /rescue restart {target.name}"
            return Outcome(request, text, {"ok": True, "after": after, "config": state.wire()})
        done = control.control(instance, self.env, request.op, self.settings.start_timeout_seconds)
        return Outcome(request, f"{_who(target)}: {done.message}.", {"ok": True, **done.wire()})


# -- the reads ------------------------------------------------------------------------


def _status(rescuer: Rescuer, target: RescueTarget, request: Request) -> Outcome:
    from moltbot.gateway.status import uptime_text

    instance, env = target.instance, rescuer.env
    config = inspect.check_config(instance.config_path, env)
    live = inspect.running(instance, env)
    run = inspect.last_run(inspect.read_log(instance.log_file))
    service = inspect.service(instance, env)
    lines: list[str] = []
    if live is not None:
        state = f"RUNNING, pid {live.pid}, port {live.port}"
        if live.answering and live.uptime_ms is not None:
            state += f", up {uptime_text(live.uptime_ms)}"
        if live.answering and live.error:
            state += f"; {live.error}"
        elif not live.answering:
            state += f", not answering ({live.error})"
    else:
        exit_code = (
            f"last exit {run.exit_code}" if run.exit_code is not None else "last exit unknown"
        )
        state = f"DOWN ({exit_code})"
    lines.append(f"{_who(target)}: {state}")
    if not config.exists:
        lines.append(f"config: missing ({config.path})")
    elif config.valid:
        lines.append(f"config: valid ({config.hash and config.hash[:8]})")
    else:
        lines.append(f"config: INVALID at {config.where()}")
        lines.append(f"  {inspect.short_error(config.error or '')}")
    if live is None and run.errors:
        lines.append("last errors:")
        lines += [f"  {line}" for line in run.errors]
    lines.append(f"service: {_service_line(service)}")
    if live is None and config.valid:
        lines.append(
            f"ports: {instance.port} (+2 {instance.control_port}, +4 {instance.canvas_port})"
        )
    if not config.valid:
        lines.append(
            f"next: /rescue config diff {target.name}, /rescue config restore {target.name}"
        )
    elif live is None:
        lines.append(f"next: /rescue restart {target.name}")
    data = {
        "target": target.name,
        "profile": instance.profile,
        "stateDir": str(instance.state_dir),
        "running": live is not None,
        "answering": bool(live and live.answering),
        "pid": live.pid if live else None,
        "port": live.port if live else instance.port,
        "ports": live.ports
        if live and live.ports
        else {
            "port": instance.port,
            "controlPort": instance.control_port,
            "canvasPort": instance.canvas_port,
        },
        "uptimeMs": live.uptime_ms if live else None,
        "version": live.version if live else None,
        "error": live.error if live else None,
        "lastExit": run.exit_code,
        "lastRun": run.ended,
        "lastErrors": list(run.errors),
        "service": service,
        "config": config.wire(),
    }
    return Outcome(request, "\n".join(lines), data)


def _logs(rescuer: Rescuer, target: RescueTarget, request: Request) -> Outcome:
    lines = inspect.tail_log(
        target.instance.log_file, request.lines or DEFAULT_LOG_LINES, request.grep
    )
    head = f"{_who(target)}: last {len(lines)} log line(s)"
    if request.grep:
        head += f" containing {request.grep!r}"
    text = "\n".join([head + ":" if lines else head + " — none", *lines])
    return Outcome(request, text, {"file": str(target.instance.log_file), "lines": lines})


def _doctor(rescuer: Rescuer, target: RescueTarget, request: Request) -> Outcome:
    report = inspect.doctor(target.instance, rescuer.env)
    fixes = [line for plan in report.auto_plans for line in plan.describe()]
    lines = [
        f"{_who(target)}: {report.errors} error(s), {report.count('warning')} warning(s), "
        f"{report.count('info')} info"
    ]
    for finding in report.findings[:8]:
        lines.append(f"{finding.severity.upper()} {finding.code}: {finding.message}")
    lines += [f"would fix: {line}" for line in fixes[:5]]
    return Outcome(request, "\n".join(lines), {**report.as_dict(), "wouldFix": fixes})


def _validate(rescuer: Rescuer, target: RescueTarget, request: Request) -> Outcome:
    state = inspect.check_config(target.instance.config_path, rescuer.env)
    if not state.exists:
        text = f"{_who(target)}: no config file ({state.path}): defaults apply"
    elif state.valid:
        text = f"{_who(target)}: config valid ({state.path})"
    else:
        text = f"{_who(target)}: config INVALID at {state.where()}\n{state.error}"
    return Outcome(request, text, state.wire())


def _get(rescuer: Rescuer, target: RescueTarget, request: Request) -> Outcome:
    value = configops.get(target.instance, request.key)
    shown = value if isinstance(value, str) else json.dumps(value, indent=1, ensure_ascii=False)
    label = request.key or "config"
    return Outcome(
        request, f"{_who(target)} {label}:\n{shown}", {"key": request.key, "value": value}
    )


def _diff(rescuer: Rescuer, target: RescueTarget, request: Request) -> Outcome:
    result = configops.diff(target.instance, request.number)
    return Outcome(request, configops.diff_text(_who(target), result), result)


def _history(rescuer: Rescuer, target: RescueTarget, request: Request) -> Outcome:
    result = configops.listing(target.instance, request.lines or 10)
    hint = f"/rescue config restore {target.name} N"
    return Outcome(request, configops.listing_text(_who(target), result, hint), result)


_READERS = {
    "status": _status,
    "logs": _logs,
    "doctor": _doctor,
    "config validate": _validate,
    "config get": _get,
    "config diff": _diff,
    "config history": _history,
}


def _who(target: RescueTarget) -> str:
    return target.name


def _service_line(service: dict[str, Any]) -> str:
    if not service.get("manager"):
        return f"no service manager ({service.get('unavailable') or 'unsupported'})"
    name = f"{service['manager']} {service.get('name')}"
    if not service.get("installed"):
        return f"{name} not installed"
    if not service.get("available"):
        return f"{name} installed; manager unavailable ({service.get('unavailable')})"
    return f"{name} {'running' if service.get('running') else 'not running'}"


__all__ = ["CONFIG_ACTIONS", "OPS", "READS", "WRITES", "Change", "Outcome", "Request", "Rescuer"]
