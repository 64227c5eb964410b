"""Applying an onboarding plan: the instance, the config, the API key, the
channels, the service; then the summary.

:func:`apply` writes in this order: the instance (``setup_instance``: config,
state dir, workspace), the gateway auth (a new token when asked or missing —
the old one stops working at the gateway's next config reload), the default
model, the model's API key (``<state>/credentials``, mode 0600) and the
channels. Channel answers must have been checked first
(:func:`moltbot.onboard.channels.precheck`), so a refused token writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moltbot.onboard.plan import Plan

if TYPE_CHECKING:
    from collections.abc import Mapping

    from moltbot.instance.resolve import Identity, Instance
    from moltbot.instance.setup import SetupReport


@dataclass
class Applied:
    """What :func:`apply` did."""

    report: SetupReport
    instance: Instance
    auth: Any
    """The gateway's auth config as written (``gateway.auth``)."""
    credentials: Path | None = None
    """The file the API key went to, if one was given."""
    port_note: str | None = None
    channels: list[dict[str, Any]] = field(default_factory=list)
    """One summary row per configured or removed channel."""
    rescue_targets: list[str] = field(default_factory=list)
    """``rescue.targets`` as written: the instances this one may repair."""


def apply(identity: Identity, env: Mapping[str, str], plan: Plan) -> Applied:
    """Write everything ``plan`` says (see the module doc)."""
    from moltbot import __version__
    from moltbot.config import keypath
    from moltbot.config.store import update_config
    from moltbot.instance.resolve import resolve_instance
    from moltbot.instance.setup import new_token, setup_instance
    from moltbot.onboard.channels import apply_channels

    report = setup_instance(identity, env, port=plan.port, workspace=plan.workspace)

    def mutate(data: dict[str, Any]) -> None:
        def put(key: str, value: Any) -> None:
            keypath.set_(data, keypath.parse(key), value)

        auth = (data.get("gateway") or {}).get("auth") or {}
        put("gateway.auth.mode", plan.auth)
        if plan.auth == "token":
            if plan.new_token or not auth.get("token"):
                put("gateway.auth.token", new_token())
            if "password" in auth:
                keypath.unset(data, keypath.parse("gateway.auth.password"))
        else:
            if plan.password:
                put("gateway.auth.password", plan.password)
            if "token" in auth:
                keypath.unset(data, keypath.parse("gateway.auth.token"))
        if plan.model:
            put("agents.defaults.model", plan.model)
        if plan.rescue_targets is not None:
            put("rescue.targets", plan.rescue_targets)
        put("wizard.lastRunAt", datetime.now(UTC).isoformat(timespec="seconds"))
        put("wizard.lastRunVersion", __version__)
        put("wizard.lastRunCommand", "onboard")

    snapshot = update_config(identity.config_path, mutate, env)
    instance = resolve_instance(identity, snapshot.config, env)
    applied = Applied(report, instance, snapshot.config.gateway.auth)
    applied.rescue_targets = list(snapshot.config.rescue.targets)
    if plan.api_key and plan.model:
        from moltbot.agents.models import save_credential

        provider = plan.model.split("/", 1)[0]
        applied.credentials = save_credential(instance.credentials_dir, provider, plan.api_key)
    if report.instance.port != instance.port:  # an env port would win over the config
        applied.port_note = f"the environment sets port {instance.port}"
    applied.channels = apply_channels(instance, env, plan)
    return applied


def install_service(instance: Instance, env: Mapping[str, str], enable_linger: bool) -> Any:
    """Install (or reinstall) the instance's user service; the service action's result."""
    from moltbot.errors import ConflictError
    from moltbot.service import actions, get_manager

    manager = get_manager(dict(env), instance.home)
    try:
        return actions.install(instance, manager, enable_linger=enable_linger)
    except ConflictError:
        # onboarding just changed this instance: the service must follow it
        return actions.install(instance, manager, force=True, enable_linger=enable_linger)


def port_warning(instance: Instance) -> str | None:
    """A warning when another process holds one of the instance's ports."""
    from moltbot.service.inspect import port_owner, process_facts

    mine = process_facts(instance)
    for port in (instance.port, instance.control_port, instance.canvas_port):
        owner = port_owner(port)
        if owner and not (mine["alive"] and owner.get("pid") in (None, mine["pid"])):
            who = (
                f"pid {owner['pid']} ({owner.get('commandLine') or owner.get('name')})"
                if owner.get("pid")
                else "another process"
            )
            return (
                f"port {port} is held by {who}: the gateway will not start (exit 5) "
                f"until it is free, or choose another base port with --port"
            )
    return None


def dashboard_url(instance: Instance, token: str | None) -> str:
    from urllib.parse import quote

    base = f"http://127.0.0.1:{instance.port}/"
    # the token goes in the fragment: browsers never send it to a server or a proxy log
    return f"{base}#token={quote(token, safe='')}" if token else base


def summary(applied: Applied, service: Any, env: Mapping[str, str]) -> dict[str, Any]:
    """The ``onboard --json`` summary (no secret in it)."""
    from moltbot.errors import MoltbotError
    from moltbot.onboard.channels import channel_warnings
    from moltbot.service import build_spec, cli_prefix, get_manager

    instance, auth = applied.instance, applied.auth
    try:
        manager = get_manager(dict(env), instance.home)
        spec = build_spec(instance, platform=manager.platform)
        service_info: dict[str, Any] = {
            "manager": manager.name,
            "name": manager.service_name(spec),
            "file": str(manager.primary_file(spec)),
            "installed": manager.primary_file(spec).exists(),
            "result": service.result if service else None,
        }
    except MoltbotError as exc:
        service_info = {"manager": None, "installed": False, "error": exc.message}
    cli = cli_prefix(instance)
    warnings = [
        port_warning(instance),
        *channel_warnings(applied.channels, bool(service_info.get("installed")), cli),
    ]
    return {
        "profile": instance.profile,
        "stateDir": str(instance.state_dir),
        "configPath": str(instance.config_path),
        "workspace": str(instance.workspace),
        "port": instance.port,
        "controlPort": instance.control_port,
        "canvasPort": instance.canvas_port,
        "cdpRange": [instance.cdp_ports.start, instance.cdp_ports.stop - 1],
        "auth": auth.mode or "token",
        "service": service_info,
        "credentials": str(applied.credentials) if applied.credentials else None,
        "dashboardUrl": dashboard_url(instance, auth.token if auth.mode != "password" else None),
        "channels": applied.channels,
        "rescueTargets": applied.rescue_targets,
        "created": applied.report.created,
        "changed": applied.report.changed,
        "cli": cli,
        "warnings": [w for w in warnings if w],
    }
