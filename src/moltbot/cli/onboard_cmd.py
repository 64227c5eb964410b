"""`moltbot [--profile P] onboard`: set up an instance by wizard or by flags.

The shared part (config, state dir, workspace, conflict checks against every
instance on the host) is :func:`moltbot.instance.setup.setup_instance`; this
command adds the questions, auth mode, model and API key, the optional service
install, the messaging channels (Telegram, Slack: through
:func:`moltbot.channels.setup.add_channel`, as ``moltbot channels add``) and the
final summary.

Proposals for a new named profile: a base port whose whole 111-port block is
clear of every known instance (instance/ports.py), the workspace ~/clawd-P, a
fresh token. A re-run proposes the current values, so Enter keeps them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from moltbot.cli import context

if TYPE_CHECKING:
    from moltbot.instance.resolve import Identity, Instance

EPILOG = """\b
Examples:
  moltbot onboard
  moltbot onboard --non-interactive
  moltbot --profile rescue onboard --non-interactive --install-daemon
  moltbot --profile rescue onboard --non-interactive --port 19789 \\
      --model openai/gpt-4o --api-key-env OPENAI_API_KEY
  moltbot onboard --non-interactive --telegram-token-env TELEGRAM_TOKEN
  moltbot onboard --non-interactive --slack-bot-token xoxb-... \\
      --slack-app-token xapp-... --dm-policy allowlist --allow-from U0123
\b
--non-interactive alone accepts every proposal (and keeps existing values and
channels). The API key named by --api-key-env is copied into <state>/credentials
(mode 0600), never into the config or a service file. A *-env channel flag
stores "${VAR}" in the config instead of the secret.
"""

CHANNELS = ("telegram", "slack")
LABELS = {"telegram": "Telegram", "slack": "Slack"}
DM_POLICIES = ["pairing", "allowlist", "open", "disabled"]
# config keys holding a secret, per channel (shown redacted)
SECRET_KEYS = {"telegram": ("botToken",), "slack": ("botToken", "appToken", "signingSecret")}
# `channels add` flag -> onboard flag, for the hints add_channel gives
ONBOARD_FLAGS = {
    "telegram": {"--token": "--telegram-token"},
    "slack": {
        "--bot-token": "--slack-bot-token",
        "--app-token": "--slack-app-token",
        "--signing-secret": "--slack-signing-secret",
    },
}
_VAR_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


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
    neighbours: list[Any] = field(default_factory=list)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Configured channels (a ``channels.<name>`` section exists): name -> the
    row of its default (else first) account from ``channels.setup.list_accounts``."""


@dataclass
class ChannelAnswers:
    """One channel to add or update: keyword answers of ``channels.setup.add_channel``."""

    name: str
    answers: dict[str, Any]
    checked: bool = False  # already dry-run through add_channel (the wizard does that)
    probe: dict[str, Any] | None = None


@dataclass
class Answers:
    port: int
    workspace: Path
    auth: str
    new_token: bool = False
    password: str | None = None
    model: str | None = None
    api_key: str | None = None
    api_key_source: str | None = None
    install_daemon: bool = False
    channels: list[ChannelAnswers] = field(default_factory=list)
    remove_channels: list[str] = field(default_factory=list)


def propose(identity: Identity, env: dict[str, str]) -> Proposal:
    from moltbot.config.store import read_config
    from moltbot.instance.registry import discover, others
    from moltbot.instance.resolve import resolve_instance
    from moltbot.instance.setup import choose_port

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
        channels=_configured_channels(snapshot, env),
    )


def _configured_channels(snapshot: Any, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    from moltbot.channels.setup import list_accounts

    sections = snapshot.data.get("channels") if isinstance(snapshot.data, dict) else None
    present = [n for n in CHANNELS if isinstance((sections or {}).get(n), dict)]
    rows: dict[str, dict[str, Any]] = {}
    for row in list_accounts(snapshot.config, env):
        name = row["channel"]
        if name in present and (name not in rows or row.get("accountId") == "default"):
            rows[name] = row
    return {name: rows.get(name, {"channel": name, "accountId": None}) for name in present}


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


def _service_installed(instance: Instance, env: dict[str, str]) -> bool:
    from moltbot.errors import MoltbotError
    from moltbot.service import build_spec, get_manager

    try:
        manager = get_manager(env, instance.home)
    except MoltbotError:
        return False
    return manager.primary_file(build_spec(instance, platform=manager.platform)).exists()


def validate_choice(
    identity: Identity, env: dict[str, str], proposal: Proposal, port: int, workspace: Path
) -> str | None:
    """Why ``port``/``workspace`` cannot be used, or ``None`` (no writes)."""
    import dataclasses

    from moltbot.errors import ConflictError
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


# the wizard -------------------------------------------------------------------


class Prompter:
    """questionary, with optional prompt_toolkit input/output (tests drive a pipe)."""

    def __init__(self, **session: Any) -> None:
        self.session = session

    def _ask(self, question: Any) -> Any:
        try:
            answer = question.ask()
        except EOFError:  # the input ended (a closed terminal or pipe)
            answer = None
        if answer is None:  # Ctrl-C / Ctrl-D
            raise click.exceptions.Abort()
        return answer

    def text(self, message: str, default: str = "", validate: Any = None) -> str:
        import questionary

        return str(
            self._ask(questionary.text(message, default=default, validate=validate, **self.session))
        )

    def password(self, message: str, validate: Any = None) -> str:
        import questionary

        return str(self._ask(questionary.password(message, validate=validate, **self.session)))

    def select(self, message: str, choices: list[str], default: str) -> str:
        import questionary

        return str(
            self._ask(questionary.select(message, choices=choices, default=default, **self.session))
        )

    def confirm(self, message: str, default: bool) -> bool:
        import questionary

        return bool(self._ask(questionary.confirm(message, default=default, **self.session)))


def interview(
    prompter: Prompter,
    identity: Identity,
    env: dict[str, str],
    proposal: Proposal,
    flags: Answers,
    check: Callable[[ChannelAnswers], str | None] | None = None,
) -> Answers:
    """Ask every question, each defaulting to the flag, else the current or proposed value.

    ``check`` vets a channel's answers (default: :func:`channel_check` without
    the credential probe) and returns why they cannot be used, or ``None``.
    """
    keep = " (current)" if proposal.existing else ""
    if proposal.existing:
        click.echo(f"Existing config at {identity.config_path}: press Enter to keep a value.")

    def port_ok(text: str) -> bool | str:
        if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
            return "enter a port number (1-65535)"
        return validate_choice(identity, env, proposal, int(text), flags.workspace) or True

    port = int(prompter.text(f"Gateway base port{keep}", str(flags.port), port_ok))

    def workspace_ok(text: str) -> bool | str:
        if not text.strip():
            return "enter a directory"
        path = Path(text).expanduser()
        return validate_choice(identity, env, proposal, port, path) or True

    workspace = (
        Path(prompter.text(f"Workspace{keep}", str(flags.workspace), workspace_ok))
        .expanduser()
        .resolve()
    )
    auth = prompter.select("Gateway auth", ["token", "password"], flags.auth)
    answers = Answers(
        port=port,
        workspace=workspace,
        auth=auth,
        model=flags.model,
        install_daemon=flags.install_daemon,
    )
    if auth == "token":
        answers.new_token = flags.new_token or (
            proposal.has_token and not prompter.confirm("Keep the current token?", True)
        )
    elif proposal.has_password and prompter.confirm("Keep the current password?", True):
        answers.password = None
    else:
        answers.password = _new_password(prompter)
    model = prompter.text(
        f"Default model, provider/model (empty: none){keep}",
        flags.model or "",
        lambda t: _model_ok(t) or True,
    )
    answers.model = model.strip() or None
    if answers.model and not flags.api_key:
        provider = answers.model.split("/", 1)[0]
        key = prompter.password(
            f"API key for {provider} (stored in the state dir, 0600; empty: use the environment)"
        )
        answers.api_key, answers.api_key_source = (key.strip() or None), "prompt"
    else:
        answers.api_key, answers.api_key_source = flags.api_key, flags.api_key_source
    verb = "Reinstall" if proposal.service_installed else "Install"
    answers.install_daemon = prompter.confirm(
        f"{verb} the gateway as a user service (starts at login/boot)?",
        flags.install_daemon or not proposal.service_installed,
    )
    if check is None:
        from moltbot.instance.resolve import resolve_instance

        check = channel_check(resolve_instance(identity, proposal.config, env), env, probe=False)
    answers.channels, answers.remove_channels = interview_channels(
        prompter, env, proposal, flags, check
    )
    return answers


def interview_channels(
    prompter: Prompter,
    env: dict[str, str],
    proposal: Proposal,
    flags: Answers,
    check: Callable[[ChannelAnswers], str | None],
) -> tuple[list[ChannelAnswers], list[str]]:
    """The channel questions: keep/change/remove each configured channel, offer the others.

    Channels the flags already set are not asked about. Each channel's answers
    go through ``check`` before the next question; a refusal is shown and the
    channel asked again (or skipped).
    """
    plans, removals = list(flags.channels), list(flags.remove_channels)
    given = {plan.name for plan in plans} | set(removals)
    if proposal.channels:
        click.echo("Configured channels:")
        for name, row in proposal.channels.items():
            click.echo(f"  {_row_text(name, row)}")
    for name in CHANNELS:
        label = LABELS[name]
        current = proposal.channels.get(name)
        if name in given:
            click.echo(f"{label}: set by the command-line flags")
            continue
        if current is not None:
            action = prompter.select(
                f"{label}: keep, change or remove it?", ["keep", "change", "remove"], "keep"
            )
            if action == "remove":
                removals.append(name)
            if action != "change":
                continue
        elif not prompter.confirm(
            f"Connect a {label} {'bot' if name == 'telegram' else 'app'}?", False
        ):
            continue
        while True:
            ask = _ask_telegram if name == "telegram" else _ask_slack
            plan = ChannelAnswers(
                name, {**ask(prompter, env, current), **_ask_dm_policy(prompter, current)}
            )
            problem = check(plan)
            if problem is None:
                plan.checked = True
                plans.append(plan)
                break
            click.echo(f"{label}: {problem}")
            if not prompter.confirm(f"Enter the {label} settings again?", True):
                break
    return plans, removals


def _secret_ok(
    channel: str, key: str, env: dict[str, str], optional: bool
) -> Callable[[str], bool | str]:
    """A prompt validator: a token (format checked) or ``${VAR}`` naming a set variable."""
    from moltbot.channels.setup import token_problem

    def ok(text: str) -> bool | str:
        value = text.strip()
        if not value:
            return True if optional else "required (or ${VAR} to read it from the environment)"
        ref = _VAR_REF.fullmatch(value)
        if ref:
            if not env.get(ref.group(1)):
                return f"{ref.group(1)} is not set in this environment"
            value = env[ref.group(1)]
        return token_problem(channel, key, value) or True

    return ok


def _ask_telegram(
    prompter: Prompter, env: dict[str, str], current: dict[str, Any] | None
) -> dict[str, Any]:
    keep = "; empty: keep the current one" if current else ""
    token = prompter.password(
        f"Telegram bot token from @BotFather (or ${{VAR}}: read from the environment{keep})",
        _secret_ok("telegram", "botToken", env, optional=current is not None),
    )
    return {"token": token.strip() or None}


def _ask_slack(
    prompter: Prompter, env: dict[str, str], current: dict[str, Any] | None
) -> dict[str, Any]:
    keep = "; empty: keep the current one" if current else ""
    optional = current is not None
    mode = prompter.select(
        "Slack connection: socket = Socket Mode (app token, no public URL); "
        "http = Events API to this gateway's /slack/events (signing secret)",
        ["socket", "http"],
        (current or {}).get("mode") or "socket",
    )
    answers: dict[str, Any] = {"mode": mode}
    answers["bot_token"] = (
        prompter.password(
            f"Slack bot token xoxb-... (or ${{VAR}}{keep})",
            _secret_ok("slack", "botToken", env, optional),
        ).strip()
        or None
    )
    if mode == "socket":
        answers["app_token"] = (
            prompter.password(
                f"Slack app-level token xapp-... (or ${{VAR}}{keep})",
                _secret_ok("slack", "appToken", env, optional),
            ).strip()
            or None
        )
    else:
        answers["signing_secret"] = (
            prompter.password(
                f"Slack signing secret (or ${{VAR}}{keep})",
                _secret_ok("slack", "signingSecret", env, optional),
            ).strip()
            or None
        )
    return answers


def _ask_dm_policy(prompter: Prompter, current: dict[str, Any] | None) -> dict[str, Any]:
    now = [str(a) for a in (current or {}).get("allowFrom") or [] if a != "*"]
    policy = prompter.select(
        "Who may DM the bot? pairing: strangers get a code you approve; allowlist: only "
        "the ids you list; open: anyone; disabled: no DMs",
        DM_POLICIES,
        (current or {}).get("dmPolicy") or "pairing",
    )
    allow = None
    if policy == "allowlist":
        text = prompter.text(
            "Allowed sender ids, comma-separated (Telegram user ids or @username; Slack user ids)",
            ",".join(now),
        )
        allow = [part.strip() for part in text.split(",") if part.strip()]
    return {
        "dm_policy": policy,
        "allow_from": _allow_from(policy, allow, (current or {}).get("allowFrom") or []),
    }


def _allow_from(
    policy: str | None, given: list[str] | None, current: list[Any]
) -> list[str] | None:
    """allowFrom to write: the given ids, else the current ones without the "*" that
    only ``open`` needs (leaving open must not leave the bot open), else unchanged."""
    if given is not None:
        return given
    if policy and policy != "open" and "*" in current:
        return [str(a) for a in current if a != "*"]
    return None


def _new_password(prompter: Prompter) -> str:
    while True:
        first = prompter.password("Gateway password (at least 8 characters)")
        if len(first) < 8:
            click.echo("Too short.")
            continue
        if prompter.password("Repeat the password") == first:
            return first
        click.echo("The passwords differ; try again.")


def _model_ok(text: str) -> str | None:
    value = text.strip()
    if value and ("/" not in value or value.startswith("/") or value.endswith("/")):
        return "use provider/model, e.g. openai/gpt-4o"
    return None


# channels from flags, checks ----------------------------------------------------


def _secret_flag(value: str | None, var: str | None, flag: str, env: dict[str, str]) -> str | None:
    if value and var:
        raise _usage(f"give {flag} or {flag}-env, not both")
    if var is None:
        return value
    if not _VAR_REF.fullmatch("${" + var + "}"):
        raise _usage(f"{flag}-env {var}: use an upper-case variable name (A-Z, 0-9, _)")
    if not env.get(var):
        raise _usage(f"{flag}-env {var}: that variable is not set", hint=f"export {var}=... first")
    return "${" + var + "}"


def _usage(message: str, hint: str | None = None) -> Exception:
    from moltbot.errors import UsageError

    return UsageError(message, hint=hint)


def channels_from_flags(
    env: dict[str, str],
    proposal: Proposal,
    *,
    telegram_token: str | None = None,
    telegram_token_env: str | None = None,
    slack_bot_token: str | None = None,
    slack_bot_token_env: str | None = None,
    slack_app_token: str | None = None,
    slack_app_token_env: str | None = None,
    slack_signing_secret: str | None = None,
    slack_signing_secret_env: str | None = None,
    slack_mode: str | None = None,
    dm_policy: str | None = None,
    allow_from: tuple[str, ...] = (),
    remove: tuple[str, ...] = (),
) -> tuple[list[ChannelAnswers], list[str]]:
    """The channel flags as add_channel answers (no flags: no channel changes).

    ``--dm-policy``/``--allow-from`` apply to the channels the flags set up,
    else to every configured channel.
    """
    plans: list[ChannelAnswers] = []
    token = _secret_flag(telegram_token, telegram_token_env, "--telegram-token", env)
    if token:
        plans.append(ChannelAnswers("telegram", {"token": token}))
    bot = _secret_flag(slack_bot_token, slack_bot_token_env, "--slack-bot-token", env)
    app = _secret_flag(slack_app_token, slack_app_token_env, "--slack-app-token", env)
    secret = _secret_flag(
        slack_signing_secret, slack_signing_secret_env, "--slack-signing-secret", env
    )
    if bot or app or secret or slack_mode:
        if app and secret and not slack_mode:
            raise _usage(
                "--slack-app-token is for Socket Mode, --slack-signing-secret for HTTP "
                "Events: give one (or choose with --slack-mode socket|http)"
            )
        mode = slack_mode or ("http" if secret and not app else "socket" if app else None)
        plans.append(
            ChannelAnswers(
                "slack",
                {"bot_token": bot, "app_token": app, "signing_secret": secret, "mode": mode},
            )
        )
    removals = list(dict.fromkeys(remove))
    for name in removals:
        if name in {plan.name for plan in plans}:
            raise _usage(f"--remove-channel {name} contradicts the {name} flags")
        if name not in proposal.channels:
            raise _usage(f"--remove-channel {name}: {name} is not configured")
    if dm_policy or allow_from:
        if not plans:
            plans = [ChannelAnswers(n, {}) for n in proposal.channels if n not in removals]
        if not plans:
            raise _usage(
                "--dm-policy/--allow-from need a channel: --telegram-token..., "
                "--slack-bot-token... or an already configured channel"
            )
        for plan in plans:
            current = (proposal.channels.get(plan.name) or {}).get("allowFrom") or []
            plan.answers["dm_policy"] = dm_policy
            plan.answers["allow_from"] = _allow_from(dm_policy, list(allow_from) or None, current)
    return plans, removals


def channel_check(
    instance: Instance, env: dict[str, str], probe: bool
) -> Callable[[ChannelAnswers], str | None]:
    """Vet a channel's answers with add_channel(dry_run=True): why not, or None."""
    from moltbot.errors import MoltbotError

    def check(plan: ChannelAnswers) -> str | None:
        try:
            precheck(instance, env, plan, probe)
        except MoltbotError as exc:
            return exc.message + (f" ({exc.hint})" if exc.hint else "")
        return None

    return check


def precheck(instance: Instance, env: dict[str, str], plan: ChannelAnswers, probe: bool) -> None:
    """add_channel's checks without writing, with the credential probe when ``probe`` and
    the answers set a credential; hints name onboard's flags."""
    from moltbot.channels.setup import add_channel
    from moltbot.errors import MoltbotError

    secrets = ("token", "bot_token", "app_token", "signing_secret")
    probe = probe and any(plan.answers.get(key) for key in secrets)
    try:
        change = add_channel(instance, env, plan.name, probe=probe, dry_run=True, **plan.answers)
    except MoltbotError as exc:
        flags = ONBOARD_FLAGS[plan.name]
        if exc.hint:
            exc.hint = re.sub(r"--[a-z-]+", lambda m: flags.get(m.group(0), m.group(0)), exc.hint)
        raise
    plan.checked, plan.probe = True, change.probe


# applying ---------------------------------------------------------------------


def apply(identity: Identity, env: dict[str, str], answers: Answers) -> tuple[Any, dict[str, Any]]:
    """Write everything; returns (setup report, extra facts for the summary)."""
    from datetime import UTC, datetime

    from moltbot import __version__
    from moltbot.config import keypath
    from moltbot.config.store import update_config
    from moltbot.instance.resolve import resolve_instance
    from moltbot.instance.setup import new_token, setup_instance

    report = setup_instance(identity, env, port=answers.port, workspace=answers.workspace)

    def mutate(data: dict[str, Any]) -> None:
        def put(key: str, value: Any) -> None:
            keypath.set_(data, keypath.parse(key), value)

        auth = (data.get("gateway") or {}).get("auth") or {}
        put("gateway.auth.mode", answers.auth)
        if answers.auth == "token":
            if answers.new_token or not auth.get("token"):
                put("gateway.auth.token", new_token())
            if "password" in auth:
                keypath.unset(data, keypath.parse("gateway.auth.password"))
        else:
            if answers.password:
                put("gateway.auth.password", answers.password)
            if "token" in auth:
                keypath.unset(data, keypath.parse("gateway.auth.token"))
        if answers.model:
            put("agents.defaults.model", answers.model)
        put("wizard.lastRunAt", datetime.now(UTC).isoformat(timespec="seconds"))
        put("wizard.lastRunVersion", __version__)
        put("wizard.lastRunCommand", "onboard")

    snapshot = update_config(identity.config_path, mutate, env)
    instance = resolve_instance(identity, snapshot.config, env)
    extra: dict[str, Any] = {"instance": instance, "auth": snapshot.config.gateway.auth}
    if answers.api_key and answers.model:
        from moltbot.agents.models import save_credential

        provider = answers.model.split("/", 1)[0]
        extra["credentials"] = save_credential(instance.credentials_dir, provider, answers.api_key)
    if report.instance.port != instance.port:  # an env port would win over the config
        extra["port_note"] = f"the environment sets port {instance.port}"
    extra["channels"] = apply_channels(instance, env, answers)
    return report, extra


def apply_channels(
    instance: Instance, env: dict[str, str], answers: Answers
) -> list[dict[str, Any]]:
    """Write the channel answers (checked before anything was written); the summary rows."""
    from moltbot.channels.setup import add_channel, remove_channel
    from moltbot.config.store import read_config

    actions: dict[str, str] = {}
    for name in answers.remove_channels:
        actions[name] = remove_channel(instance, env, name).action
    for plan in answers.channels:
        actions[plan.name] = add_channel(
            instance, env, plan.name, probe=False, **plan.answers
        ).action
    snapshot = read_config(instance.config_path, env)
    probes = {plan.name: plan.probe for plan in answers.channels}
    rows = [
        {"channel": name, "accountId": None, "action": "removed"}
        for name in answers.remove_channels
    ]
    for name, row in _configured_channels(snapshot, env).items():
        rows.append(
            _channel_summary(name, row, snapshot.data, actions.get(name, "kept"), probes.get(name))
        )
    return rows


def _channel_summary(
    name: str, row: dict[str, Any], data: dict[str, Any], action: str, probe: dict[str, Any] | None
) -> dict[str, Any]:
    """One configured channel for the summary: secrets shown as ``${VAR}`` or "(hidden)"."""
    from moltbot.channels.setup import merged_account_data

    section = merged_account_data(data["channels"][name], row.get("accountId") or "default")
    secrets = {}
    for key in SECRET_KEYS[name]:
        value = section.get(key)
        if isinstance(value, str) and value:
            secrets[key] = value if _VAR_REF.fullmatch(value.strip()) else "(hidden)"
    bot = ((probe or {}).get("bot") or {}).get("username")
    return {
        "channel": name,
        "accountId": row.get("accountId"),
        "action": action,
        "mode": row.get("mode"),
        "dmPolicy": row.get("dmPolicy"),
        "allowFrom": row.get("allowFrom") or [],
        "tokenSource": row.get("tokenSource"),
        "secrets": secrets,
        "bot": bot,
        "error": row.get("error"),
    }


def _row_text(name: str, row: dict[str, Any]) -> str:
    if row.get("error"):
        return f"{name}: invalid config: {row['error']}"
    return (
        f"{name} {row.get('accountId')}: {row.get('mode')}, dm {row.get('dmPolicy')}, "
        f"token from {row.get('tokenSource')}"
    )


def install_service(instance: Instance, env: dict[str, str], enable_linger: bool) -> Any:
    from moltbot.errors import ConflictError
    from moltbot.service import actions, get_manager

    manager = get_manager(env, instance.home)
    try:
        return actions.install(instance, manager, enable_linger=enable_linger)
    except ConflictError:
        # onboarding just changed this instance: the service must follow it
        return actions.install(instance, manager, force=True, enable_linger=enable_linger)


def dashboard_url(instance: Instance, token: str | None) -> str:
    from urllib.parse import quote

    base = f"http://127.0.0.1:{instance.port}/"
    # the token goes in the fragment: browsers never send it to a server or a proxy log
    return f"{base}#token={quote(token, safe='')}" if token else base


# the command ------------------------------------------------------------------


@click.command(epilog=EPILOG)
@click.option("--non-interactive", is_flag=True, help="Ask nothing; use flags, then proposals.")
@click.option("--port", type=click.IntRange(1, 65535), help="Gateway base port.")
@click.option("--workspace", type=click.Path(path_type=Path), help="Workspace directory.")
@click.option("--auth", type=click.Choice(["token", "password"]), help="Gateway auth mode.")
@click.option("--new-token", is_flag=True, help="Replace the existing gateway token.")
@click.option(
    "--password-env",
    metavar="VAR",
    help="With --auth password: read the password from this environment variable.",
)
@click.option("--model", metavar="PROVIDER/MODEL", help="Default model, e.g. openai/gpt-4o.")
@click.option(
    "--api-key-env",
    metavar="VAR",
    help="Copy the model provider's API key from this environment variable into "
    "<state>/credentials (0600).",
)
@click.option(
    "--install-daemon/--no-install-daemon",
    default=None,
    help="Install the user service (wizard default: yes; --non-interactive: no).",
)
@click.option(
    "--enable-linger",
    is_flag=True,
    help="Linux: enable lingering so the service runs without a login.",
)
@click.option("--telegram-token", metavar="TOKEN", help="Connect a Telegram bot (@BotFather).")
@click.option(
    "--telegram-token-env",
    metavar="VAR",
    help='Telegram bot token from $VAR (the config stores "${VAR}").',
)
@click.option("--slack-bot-token", metavar="TOKEN", help="Connect a Slack app: bot token xoxb-...")
@click.option("--slack-bot-token-env", metavar="VAR", help='Slack bot token from $VAR ("${VAR}").')
@click.option("--slack-app-token", metavar="TOKEN", help="Slack Socket Mode app token xapp-...")
@click.option("--slack-app-token-env", metavar="VAR", help='Slack app token from $VAR ("${VAR}").')
@click.option(
    "--slack-signing-secret", metavar="SECRET", help="Slack HTTP Events mode: signing secret."
)
@click.option(
    "--slack-signing-secret-env", metavar="VAR", help='Slack signing secret from $VAR ("${VAR}").'
)
@click.option(
    "--slack-mode",
    type=click.Choice(["socket", "http"]),
    help="Slack connection (default: socket with an app token, http with a secret).",
)
@click.option(
    "--dm-policy",
    type=click.Choice(DM_POLICIES),
    help="Who may DM the bot (default pairing): for the channels these flags set "
    "up, else every configured one.",
)
@click.option(
    "--allow-from",
    multiple=True,
    metavar="ID",
    help="Allowed DM sender (repeatable; Telegram user id or @name, Slack user id).",
)
@click.option(
    "--remove-channel",
    "remove_channels",
    multiple=True,
    type=click.Choice(list(CHANNELS)),
    help="Remove a configured channel.",
)
@click.option(
    "--no-channel-check",
    is_flag=True,
    help="Do not check channel credentials with Telegram/Slack first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def onboard(
    non_interactive: bool,
    port: int | None,
    workspace: Path | None,
    auth: str | None,
    new_token: bool,
    password_env: str | None,
    model: str | None,
    api_key_env: str | None,
    install_daemon: bool | None,
    enable_linger: bool,
    telegram_token: str | None,
    telegram_token_env: str | None,
    slack_bot_token: str | None,
    slack_bot_token_env: str | None,
    slack_app_token: str | None,
    slack_app_token_env: str | None,
    slack_signing_secret: str | None,
    slack_signing_secret_env: str | None,
    slack_mode: str | None,
    dm_policy: str | None,
    allow_from: tuple[str, ...],
    remove_channels: tuple[str, ...],
    no_channel_check: bool,
    as_json: bool,
) -> None:
    """Set up this instance: port, workspace, auth, model, service, channels — then a summary.

    For a named profile the proposed base port keeps a whole port block (111
    ports) away from every instance on this host, the workspace is ~/clawd-P
    and the token is fresh. Refuses (exit 3, nothing written) a port or path
    that clashes with another instance.

    Channel tokens are checked (format, then with Telegram/Slack) before
    anything is written; a refused token writes nothing (exit 2, or 7 when the
    platform refuses it). The summary never shows a secret.
    """
    from moltbot.errors import UsageError

    cli = context.get()
    identity = cli.identity(port=port)
    proposal = propose(identity, cli.env)
    if model and _model_ok(model):
        raise UsageError(f"--model {model}: {_model_ok(model)}")
    password = None
    if password_env:
        password = cli.env.get(password_env)
        if not password:
            raise UsageError(f"--password-env {password_env}: that variable is not set")
        auth = auth or "password"
    api_key = None
    if api_key_env:
        api_key = cli.env.get(api_key_env)
        if not api_key:
            raise UsageError(
                f"--api-key-env {api_key_env}: that variable is not set",
                hint=f"export {api_key_env}=... first",
            )
        if not (model or proposal.model):
            raise UsageError("--api-key-env needs a model (--model provider/model)")
    channel_plans, removals = channels_from_flags(
        cli.env,
        proposal,
        telegram_token=telegram_token,
        telegram_token_env=telegram_token_env,
        slack_bot_token=slack_bot_token,
        slack_bot_token_env=slack_bot_token_env,
        slack_app_token=slack_app_token,
        slack_app_token_env=slack_app_token_env,
        slack_signing_secret=slack_signing_secret,
        slack_signing_secret_env=slack_signing_secret_env,
        slack_mode=slack_mode,
        dm_policy=dm_policy,
        allow_from=allow_from,
        remove=remove_channels,
    )
    flags = Answers(
        port=port or proposal.port,
        workspace=workspace.expanduser().resolve() if workspace else proposal.workspace,
        auth=auth or proposal.auth,
        new_token=new_token,
        password=password,
        model=model or proposal.model,
        api_key=api_key,
        api_key_source=f"${api_key_env}" if api_key_env else None,
        install_daemon=bool(install_daemon),
        channels=channel_plans,
        remove_channels=removals,
    )
    from moltbot.instance.resolve import resolve_instance

    provisional = resolve_instance(identity, proposal.config, cli.env)
    interactive = not non_interactive
    if interactive and not (sys.stdin.isatty() and sys.stdout.isatty()):
        context.warn("not a terminal: continuing as with --non-interactive")
        interactive = False
    if not interactive:
        answers = flags
        if answers.auth == "password" and not (password or proposal.has_password):
            raise UsageError("--auth password needs --password-env VAR in non-interactive mode")
        problem = validate_choice(identity, cli.env, proposal, answers.port, answers.workspace)
        if problem:
            from moltbot.errors import ConflictError

            raise ConflictError(problem)
    else:
        check = channel_check(provisional, cli.env, probe=not no_channel_check)
        answers = interview(Prompter(), identity, cli.env, proposal, flags, check)
        if install_daemon is not None:
            answers.install_daemon = install_daemon
    for plan in answers.channels:  # before anything is written
        if not plan.checked:
            precheck(provisional, cli.env, plan, probe=not no_channel_check)

    report, extra = apply(identity, cli.env, answers)
    instance = extra["instance"]
    service_result = None
    if answers.install_daemon:
        service_result = install_service(instance, cli.env, enable_linger)
    summary = _summary(instance, extra, report, service_result, cli.env)
    summary["warnings"] = [w for w in [port_warning(instance), *_channel_warnings(summary)] if w]
    if as_json:
        context.emit_json(summary)
    else:
        _print_summary(summary, cli.home, service_result)


def _summary(
    instance: Instance, extra: dict[str, Any], report: Any, service: Any, env: dict[str, str]
) -> dict[str, Any]:
    from moltbot.errors import MoltbotError
    from moltbot.service import build_spec, cli_prefix, get_manager

    auth = extra["auth"]
    try:
        manager = get_manager(env, instance.home)
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
        "credentials": str(extra["credentials"]) if extra.get("credentials") else None,
        "dashboardUrl": dashboard_url(instance, auth.token if auth.mode != "password" else None),
        "channels": extra.get("channels", []),
        "created": report.created,
        "changed": report.changed,
        "cli": cli_prefix(instance),
    }


def _channel_warnings(summary: dict[str, Any]) -> list[str]:
    warnings = []
    for row in summary["channels"]:
        refs = [v for v in (row.get("secrets") or {}).values() if v.startswith("${")]
        if refs and summary["service"].get("installed"):
            warnings.append(
                f"{row['channel']} reads {', '.join(refs)} from the environment, which the user "
                f"service does not inherit: its gateway cannot load the config; run "
                f"`{summary['cli']} gateway` where the variable is set, or store the token itself"
            )
        if row.get("dmPolicy") == "allowlist" and not row.get("allowFrom"):
            warnings.append(
                f"{row['channel']}: dm policy allowlist with no allowFrom: only "
                f"senders approved earlier may DM the bot (--allow-from ID)"
            )
    return warnings


def _channel_line(row: dict[str, Any]) -> str:
    if row["action"] == "removed":
        return f"{row['channel']}: removed"
    if row.get("error"):
        return f"{row['channel']}: invalid config: {row['error']}"
    bot = f" (@{row['bot']})" if row.get("bot") else ""
    names = {"botToken": "bot token", "appToken": "app token", "signingSecret": "signing secret"}
    secrets = ", ".join(f"{names[k]} {v}" for k, v in row["secrets"].items())
    if not secrets:
        secrets = f"token from {row.get('tokenSource')}"
    return (
        f"{row['channel']} {row['accountId']}{bot}: {row['action']}, {row['mode']}, "
        f"dm {row['dmPolicy']}, {secrets}"
    )


def _print_summary(summary: dict[str, Any], home: Path, service: Any) -> None:
    rel = lambda p: context.home_relative(p, home)  # noqa: E731
    cli = summary["cli"]
    click.echo(f"\nOnboarded profile {summary['profile']}")
    for change in summary["changed"]:
        click.echo(f"  changed     {change}")
    click.echo(f"  State dir   {rel(summary['stateDir'])}")
    click.echo(f"  Config      {rel(summary['configPath'])}")
    click.echo(f"  Workspace   {rel(summary['workspace'])}")
    cdp = summary["cdpRange"]
    click.echo(
        f"  Ports       gateway {summary['port']}, browser control "
        f"{summary['controlPort']}, canvas {summary['canvasPort']}, "
        f"CDP {cdp[0]}-{cdp[1]}"
    )
    click.echo(f"  Auth        {summary['auth']}")
    if summary["credentials"]:
        click.echo(f"  API key     stored in {rel(summary['credentials'])} (0600)")
    info = summary["service"]
    if info.get("manager"):
        state = "installed" if info["installed"] else "not installed"
        click.echo(f"  Service     {info['name']} ({state}: {rel(info['file'])})")
    else:
        click.echo(f"  Service     unavailable: {info.get('error')}")
    if service is not None:
        click.echo(f"              {service.message}")
        for change in service.changes:
            click.echo(f"              changed {change}")
        for warning in service.warnings:
            context.warn(warning)
        for hint in service.hints:
            click.echo(f"              {hint}")
    click.echo(f"  Dashboard   {summary['dashboardUrl']}")
    label = "Channels"
    for row in summary["channels"]:
        click.echo(f"  {label:<11} {_channel_line(row)}")
        label = ""
    if any(row.get("dmPolicy") == "pairing" for row in summary["channels"]):
        click.echo(
            f"              strangers get a pairing code; approve with: "
            f"`{cli} pairing approve CHANNEL CODE`"
        )
    for warning in summary.get("warnings", []):
        context.warn(warning)
    if not info.get("installed"):
        click.echo(f"Next: `{cli} gateway` (foreground) or `{cli} gateway install` (service)")
    else:
        click.echo(f"Next: `{cli} gateway status`")
