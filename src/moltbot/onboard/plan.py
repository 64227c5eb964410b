"""What onboarding proposes, and the plan it then applies. Writes nothing.

:func:`propose` reads the instance's config and its neighbours on the host and
says what onboard suggests (or what the config already says): for a new named
profile a base port whose whole 111-port block is clear of every known instance
and of ports something listens on, the workspace ``~/clawd-P``, a fresh token.
:func:`plan_from_flags` turns command-line values into a :class:`Plan`; the
wizard (:mod:`moltbot.onboard.wizard`) builds one by asking.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moltbot.errors import ConflictError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from moltbot.instance.registry import KnownInstance
    from moltbot.instance.resolve import Identity, Instance


@dataclass
class Proposal:
    """What onboard suggests (or what the config already says)."""

    existing: bool
    port: int
    workspace: Path
    auth: str
    has_token: bool
    has_password: bool
    model: str | None
    service_installed: bool
    config: Any = None
    neighbours: list[KnownInstance] = field(default_factory=list)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Configured channels (a ``channels.<name>`` section exists): name -> the
    row of its default (else first) account from ``channels.setup.list_accounts``."""
    rescue_offer: list[str] = field(default_factory=list)
    """Targets onboard offers a profile named ``rescue`` that has none: the default
    instance, when it exists (``rescue.targets``)."""


@dataclass
class ChannelPlan:
    """One channel to add or update: keyword answers of ``channels.setup.add_channel``."""

    name: str
    answers: dict[str, Any]
    checked: bool = False
    """Already dry-run through add_channel (the wizard does that as it asks)."""
    probe: dict[str, Any] | None = None


@dataclass
class Plan:
    """Everything onboard will write."""

    port: int
    workspace: Path
    auth: str
    new_token: bool = False
    password: str | None = None
    model: str | None = None
    api_key: str | None = None
    api_key_source: str | None = None
    install_daemon: bool = False
    channels: list[ChannelPlan] = field(default_factory=list)
    remove_channels: list[str] = field(default_factory=list)
    rescue_targets: list[str] | None = None
    """``rescue.targets`` to write (None: leave the config's as they are)."""


@dataclass(frozen=True)
class Flags:
    """The command line of ``onboard``, as given (None: not given)."""

    port: int | None = None
    workspace: Path | None = None
    auth: str | None = None
    new_token: bool = False
    password_env: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    install_daemon: bool | None = None
    channel_values: Mapping[str, Any] = field(default_factory=dict)
    """Generated channel flags by parameter name (``telegram_token``, ``slack_mode``...)."""
    dm_policy: str | None = None
    allow_from: tuple[str, ...] = ()
    remove_channels: tuple[str, ...] = ()
    rescue_targets: tuple[str, ...] = ()
    no_rescue_targets: bool = False


def propose(identity: Identity, env: Mapping[str, str]) -> Proposal:
    from moltbot.config.store import read_config
    from moltbot.instance.registry import discover, others
    from moltbot.instance.resolve import resolve_instance
    from moltbot.instance.setup import choose_port
    from moltbot.onboard.channels import configured_channels

    snapshot = read_config(identity.config_path, env)
    provisional = resolve_instance(identity, snapshot.config, env)
    neighbours = others(discover(identity.home, env), provisional)
    gateway = snapshot.config.gateway
    port = (
        identity.env_port
        or gateway.port
        or _free_of_listeners(identity, neighbours, choose_port(identity, neighbours))
    )
    auth = gateway.auth
    mode = auth.mode or ("password" if auth.password and not auth.token else "token")
    model = snapshot.config.agents.defaults.model
    model_text = model if isinstance(model, str) else (model.primary if model else None)
    return Proposal(
        existing=snapshot.exists,
        port=port,
        workspace=provisional.workspace,
        auth=mode,
        has_token=bool(auth.token),
        has_password=bool(auth.password),
        model=model_text,
        service_installed=_service_installed(provisional, env),
        config=snapshot.config,
        neighbours=neighbours,
        channels=configured_channels(snapshot, env),
        rescue_offer=_rescue_offer(identity, snapshot.config, neighbours),
    )


def _rescue_offer(identity: Identity, config: Any, neighbours: list[KnownInstance]) -> list[str]:
    if identity.profile != "rescue" or "targets" in config.rescue.model_fields_set:
        return []  # a choice made before (even "none") is kept
    return ["default"] if any(k.instance.profile == "default" for k in neighbours) else []


def _free_of_listeners(identity: Identity, neighbours: list[Any], port: int) -> int:
    """A named profile's proposal also skips ports something on the host listens on."""
    from moltbot.instance import ports
    from moltbot.service.inspect import listening_ports

    busy = listening_ports()
    wanted = {port, ports.control_port(port), ports.canvas_port(port)}
    if identity.profile in ("default", "dev") or not busy & wanted:
        return port
    return ports.choose_free_base(
        identity.profile,
        [k.instance.port for k in neighbours],
        [*(p for k in neighbours for p in k.instance.port_block), *busy],
    )


def _service_installed(instance: Instance, env: Mapping[str, str]) -> bool:
    from moltbot.errors import MoltbotError
    from moltbot.service import build_spec, get_manager

    try:
        manager = get_manager(dict(env), instance.home)
    except MoltbotError:
        return False
    return manager.primary_file(build_spec(instance, platform=manager.platform)).exists()


def choice_problem(
    identity: Identity, env: Mapping[str, str], proposal: Proposal, port: int, workspace: Path
) -> str | None:
    """Why ``port``/``workspace`` cannot be used, or ``None`` (no writes)."""
    from moltbot.instance.resolve import Invocation, resolve_instance
    from moltbot.instance.setup import check_paths, check_port

    candidate = dataclasses.replace(
        resolve_instance(identity, proposal.config, env, Invocation(port=port)),
        workspace=workspace.resolve(),
    )
    try:
        check_port(port, proposal.neighbours, candidate)
        check_paths(candidate, proposal.neighbours)
    except ConflictError as exc:
        return exc.message + (f" ({exc.hint})" if exc.hint else "")
    return None


def model_problem(text: str) -> str | None:
    """Why ``text`` is not a ``provider/model`` name, or None (empty is fine: no model)."""
    value = text.strip()
    if value and ("/" not in value or value.startswith("/") or value.endswith("/")):
        return "use provider/model, e.g. openai/gpt-4o"
    return None


def plan_from_flags(
    identity: Identity, env: Mapping[str, str], proposal: Proposal, flags: Flags
) -> Plan:
    """The plan the flags ask for, proposals filling the rest. Raises UsageError for
    contradicting or incomplete flags (nothing written)."""
    from moltbot.onboard.channels import channels_from_flags

    if flags.model and model_problem(flags.model):
        raise UsageError(f"--model {flags.model}: {model_problem(flags.model)}")
    auth = flags.auth
    password = None
    if flags.password_env:
        password = env.get(flags.password_env)
        if not password:
            raise UsageError(f"--password-env {flags.password_env}: that variable is not set")
        auth = auth or "password"
    api_key = None
    if flags.api_key_env:
        api_key = env.get(flags.api_key_env)
        if not api_key:
            raise UsageError(
                f"--api-key-env {flags.api_key_env}: that variable is not set",
                hint=f"export {flags.api_key_env}=... first",
            )
        if not (flags.model or proposal.model):
            raise UsageError("--api-key-env needs a model (--model provider/model)")
    channels, removals = channels_from_flags(env, proposal, flags)
    if flags.no_rescue_targets and flags.rescue_targets:
        raise UsageError("--rescue-target and --no-rescue-targets contradict each other")
    rescue: list[str] | None = proposal.rescue_offer or None
    if flags.rescue_targets or flags.no_rescue_targets:
        rescue = list(dict.fromkeys(flags.rescue_targets))
    return Plan(
        port=flags.port or proposal.port,
        workspace=flags.workspace.expanduser().resolve() if flags.workspace else proposal.workspace,
        auth=auth or proposal.auth,
        new_token=flags.new_token,
        password=password,
        model=flags.model or proposal.model,
        api_key=api_key,
        api_key_source=f"${flags.api_key_env}" if flags.api_key_env else None,
        install_daemon=bool(flags.install_daemon),
        channels=channels,
        remove_channels=removals,
        rescue_targets=rescue,
    )


def check_plan(identity: Identity, env: Mapping[str, str], proposal: Proposal, plan: Plan) -> None:
    """The checks a plan that was not asked for must pass: a password for password
    auth, a port and workspace no other instance uses. Raises UsageError / ConflictError."""
    if plan.auth == "password" and not (plan.password or proposal.has_password):
        raise UsageError("--auth password needs --password-env VAR in non-interactive mode")
    problem = choice_problem(identity, env, proposal, plan.port, plan.workspace)
    if problem:
        raise ConflictError(problem)
