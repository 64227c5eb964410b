"""`moltbot [--profile P] onboard`: set up an instance by wizard or by flags.

The shared part (config, state dir, workspace, conflict checks against every
instance on the host) is :func:`moltbot.instance.setup.setup_instance`; this
command adds the questions, auth mode, model and API key, the optional service
install and the final summary.

Proposals for a new named profile: a base port whose whole 111-port block is
clear of every known instance (instance/ports.py), the workspace ~/clawd-P, a
fresh token. A re-run proposes the current values, so Enter keeps them.
"""

from __future__ import annotations

import sys
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
\b
--non-interactive alone accepts every proposal (and keeps existing values).
The API key named by --api-key-env is copied into <state>/credentials
(mode 0600), never into the config or a service file.
"""


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


def propose(identity: Identity, env: dict[str, str]) -> Proposal:
    from moltbot.config.store import read_config
    from moltbot.instance.registry import discover, others
    from moltbot.instance.resolve import resolve_instance
    from moltbot.instance.setup import choose_port

    snapshot = read_config(identity.config_path, env)
    provisional = resolve_instance(identity, snapshot.config, env)
    neighbours = others(discover(identity.home, env), provisional)
    gateway = snapshot.config.gateway
    port = identity.env_port or gateway.port or _free_of_listeners(
        identity, neighbours, choose_port(identity, neighbours))
    auth = gateway.auth
    mode = auth.mode or ("password" if auth.password and not auth.token else "token")
    model = snapshot.config.agents.defaults.model
    model_text = model if isinstance(model, str) else (model.primary if model else None)
    return Proposal(existing=snapshot.exists, port=port, workspace=provisional.workspace,
                    auth=mode, has_token=bool(auth.token), has_password=bool(auth.password),
                    model=model_text, service_installed=_service_installed(provisional, env),
                    config=snapshot.config, neighbours=neighbours)


def _free_of_listeners(identity: Identity, neighbours: list[Any], port: int) -> int:
    """A named profile's proposal also skips ports something on the host listens on."""
    from moltbot.instance import ports
    from moltbot.service.inspect import listening_ports

    busy = listening_ports()
    wanted = {port, ports.control_port(port), ports.canvas_port(port)}
    if identity.profile in ("default", "dev") or not busy & wanted:
        return port
    return ports.choose_free_base(
        identity.profile, [k.instance.port for k in neighbours],
        [*(p for k in neighbours for p in k.instance.port_block), *busy])


def port_warning(instance: Instance) -> str | None:
    """A warning when another process holds one of the instance's ports."""
    from moltbot.service.inspect import port_owner, process_facts

    mine = process_facts(instance)
    for port in (instance.port, instance.control_port, instance.canvas_port):
        owner = port_owner(port)
        if owner and not (mine["alive"] and owner.get("pid") in (None, mine["pid"])):
            who = f"pid {owner['pid']} ({owner.get('commandLine') or owner.get('name')})" \
                if owner.get("pid") else "another process"
            return (f"port {port} is held by {who}: the gateway will not start (exit 5) "
                    f"until it is free, or choose another base port with --port")
    return None


def _service_installed(instance: Instance, env: dict[str, str]) -> bool:
    from moltbot.errors import MoltbotError
    from moltbot.service import build_spec, get_manager

    try:
        manager = get_manager(env, instance.home)
    except MoltbotError:
        return False
    return manager.primary_file(build_spec(instance, platform=manager.platform)).exists()


def validate_choice(identity: Identity, env: dict[str, str], proposal: Proposal, port: int,
                    workspace: Path) -> str | None:
    """Why ``port``/``workspace`` cannot be used, or ``None`` (no writes)."""
    import dataclasses

    from moltbot.errors import ConflictError
    from moltbot.instance.resolve import Invocation, resolve_instance
    from moltbot.instance.setup import check_paths, check_port

    candidate = dataclasses.replace(
        resolve_instance(identity, proposal.config, env, Invocation(port=port)),
        workspace=workspace.resolve())
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
        answer = question.ask()
        if answer is None:  # Ctrl-C / Ctrl-D
            raise click.exceptions.Abort()
        return answer

    def text(self, message: str, default: str = "", validate: Any = None) -> str:
        import questionary

        return str(self._ask(questionary.text(message, default=default, validate=validate,
                                              **self.session)))

    def password(self, message: str) -> str:
        import questionary

        return str(self._ask(questionary.password(message, **self.session)))

    def select(self, message: str, choices: list[str], default: str) -> str:
        import questionary

        return str(self._ask(questionary.select(message, choices=choices, default=default,
                                                **self.session)))

    def confirm(self, message: str, default: bool) -> bool:
        import questionary

        return bool(self._ask(questionary.confirm(message, default=default, **self.session)))


def interview(prompter: Prompter, identity: Identity, env: dict[str, str],
              proposal: Proposal, flags: Answers) -> Answers:
    """Ask every question, each defaulting to the flag, else the current or proposed value."""
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

    workspace = Path(prompter.text(f"Workspace{keep}", str(flags.workspace),
                                   workspace_ok)).expanduser().resolve()
    auth = prompter.select("Gateway auth", ["token", "password"], flags.auth)
    answers = Answers(port=port, workspace=workspace, auth=auth, model=flags.model,
                      install_daemon=flags.install_daemon)
    if auth == "token":
        answers.new_token = flags.new_token or (
            proposal.has_token and not prompter.confirm("Keep the current token?", True))
    elif proposal.has_password and prompter.confirm("Keep the current password?", True):
        answers.password = None
    else:
        answers.password = _new_password(prompter)
    model = prompter.text(f"Default model, provider/model (empty: none){keep}",
                          flags.model or "", lambda t: _model_ok(t) or True)
    answers.model = model.strip() or None
    if answers.model and not flags.api_key:
        provider = answers.model.split("/", 1)[0]
        key = prompter.password(f"API key for {provider} (stored in the state dir, 0600; "
                                "empty: use the environment)")
        answers.api_key, answers.api_key_source = (key.strip() or None), "prompt"
    else:
        answers.api_key, answers.api_key_source = flags.api_key, flags.api_key_source
    verb = "Reinstall" if proposal.service_installed else "Install"
    answers.install_daemon = prompter.confirm(
        f"{verb} the gateway as a user service (starts at login/boot)?",
        flags.install_daemon or not proposal.service_installed)
    return answers


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
        extra["credentials"] = save_credential(instance.credentials_dir, provider,
                                               answers.api_key)
    if report.instance.port != instance.port:  # an env port would win over the config
        extra["port_note"] = f"the environment sets port {instance.port}"
    return report, extra


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
@click.option("--password-env", metavar="VAR",
              help="With --auth password: read the password from this environment variable.")
@click.option("--model", metavar="PROVIDER/MODEL", help="Default model, e.g. openai/gpt-4o.")
@click.option("--api-key-env", metavar="VAR",
              help="Copy the model provider's API key from this environment variable into "
              "<state>/credentials (0600).")
@click.option("--install-daemon/--no-install-daemon", default=None,
              help="Install the user service (wizard default: yes; --non-interactive: no).")
@click.option("--enable-linger", is_flag=True,
              help="Linux: enable lingering so the service runs without a login.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def onboard(non_interactive: bool, port: int | None, workspace: Path | None, auth: str | None,
            new_token: bool, password_env: str | None, model: str | None,
            api_key_env: str | None, install_daemon: bool | None, enable_linger: bool,
            as_json: bool) -> None:
    """Set up this instance: port, workspace, auth, model, service — then a summary.

    For a named profile the proposed base port keeps a whole port block (111
    ports) away from every instance on this host, the workspace is ~/clawd-P
    and the token is fresh. Refuses (exit 3, nothing written) a port or path
    that clashes with another instance.
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
            raise UsageError(f"--api-key-env {api_key_env}: that variable is not set",
                             hint=f"export {api_key_env}=... first")
        if not (model or proposal.model):
            raise UsageError("--api-key-env needs a model (--model provider/model)")
    flags = Answers(
        port=port or proposal.port,
        workspace=workspace.expanduser().resolve() if workspace else proposal.workspace,
        auth=auth or proposal.auth, new_token=new_token, password=password,
        model=model or proposal.model, api_key=api_key,
        api_key_source=f"${api_key_env}" if api_key_env else None,
        install_daemon=bool(install_daemon))
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
        answers = interview(Prompter(), identity, cli.env, proposal, flags)
        if install_daemon is not None:
            answers.install_daemon = install_daemon

    report, extra = apply(identity, cli.env, answers)
    instance = extra["instance"]
    service_result = None
    if answers.install_daemon:
        service_result = install_service(instance, cli.env, enable_linger)
    summary = _summary(instance, extra, report, service_result, cli.env)
    summary["warnings"] = [w for w in [port_warning(instance)] if w]
    if as_json:
        context.emit_json(summary)
    else:
        _print_summary(summary, cli.home, service_result)


def _summary(instance: Instance, extra: dict[str, Any], report: Any, service: Any,
             env: dict[str, str]) -> dict[str, Any]:
    from moltbot.errors import MoltbotError
    from moltbot.service import build_spec, cli_prefix, get_manager

    auth = extra["auth"]
    try:
        manager = get_manager(env, instance.home)
        spec = build_spec(instance, platform=manager.platform)
        service_info: dict[str, Any] = {
            "manager": manager.name, "name": manager.service_name(spec),
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
        "created": report.created,
        "changed": report.changed,
        "cli": cli_prefix(instance),
    }


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
    click.echo(f"  Ports       gateway {summary['port']}, browser control "
               f"{summary['controlPort']}, canvas {summary['canvasPort']}, "
               f"CDP {cdp[0]}-{cdp[1]}")
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
    for warning in summary.get("warnings", []):
        context.warn(warning)
    if not info.get("installed"):
        click.echo(f"Next: `{cli} gateway` (foreground) or `{cli} gateway install` (service)")
    else:
        click.echo(f"Next: `{cli} gateway status`")
