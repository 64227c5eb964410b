"""The onboarding wizard: every question, each defaulting to the flag, else the
current or proposed value, so Enter keeps what is there.

Questions go through a :class:`Prompter` (:class:`QuestionaryPrompter` in a
terminal; tests drive it through a pipe). Answers are vetted as they are given
(a clashing port or workspace, a malformed token, credentials the platform
refuses) and asked again; Ctrl-C or the end of the input raises
:class:`WizardAborted` before anything is written. The channel questions come
from the channel manifests: their setup fields with a ``prompt``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, get_args

from moltbot.channels import registry
from moltbot.channels.config import DmPolicy
from moltbot.channels.manifest import ChannelManifest
from moltbot.errors import MoltbotError
from moltbot.onboard.channels import allow_from_answer, channel_check, secret_problem
from moltbot.onboard.plan import ChannelPlan, Plan, Proposal, choice_problem, model_problem

if TYPE_CHECKING:
    from moltbot.instance.resolve import Identity

DM_POLICIES = list(get_args(DmPolicy))
Validator = Callable[[str], "bool | str"]


class WizardAborted(MoltbotError):
    """The user pressed Ctrl-C or the input ended; nothing was written."""

    exit_code = 130


class Prompter(Protocol):
    def say(self, text: str) -> None: ...

    def text(self, message: str, default: str = "", validate: Validator | None = None) -> str: ...

    def password(self, message: str, validate: Validator | None = None) -> str: ...

    def select(self, message: str, choices: list[str], default: str) -> str: ...

    def confirm(self, message: str, default: bool) -> bool: ...


class QuestionaryPrompter:
    """questionary, with optional prompt_toolkit ``input``/``output`` (tests pass a pipe)."""

    def __init__(self, **session: Any) -> None:
        self.session = session

    def _ask(self, question: Any) -> Any:
        try:
            answer = question.ask()
        except EOFError:  # the input ended (a closed terminal or pipe)
            answer = None
        if answer is None:  # Ctrl-C / Ctrl-D
            raise WizardAborted("aborted")
        return answer

    def say(self, text: str) -> None:
        print(text, flush=True)

    def text(self, message: str, default: str = "", validate: Validator | None = None) -> str:
        import questionary

        return str(
            self._ask(questionary.text(message, default=default, validate=validate, **self.session))
        )

    def password(self, message: str, validate: Validator | None = None) -> str:
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
    env: Mapping[str, str],
    proposal: Proposal,
    flags: Plan,
    check: Callable[[ChannelPlan], str | None] | None = None,
) -> Plan:
    """Ask every question; ``flags`` (the plan the command line gives) are the defaults.

    ``check`` vets a channel's answers (default: :func:`channel_check` without
    the credential probe) and returns why they cannot be used, or ``None``.
    """
    keep = " (current)" if proposal.existing else ""
    if proposal.existing:
        prompter.say(f"Existing config at {identity.config_path}: press Enter to keep a value.")

    def port_ok(text: str) -> bool | str:
        if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
            return "enter a port number (1-65535)"
        return choice_problem(identity, env, proposal, int(text), flags.workspace) or True

    port = int(prompter.text(f"Gateway base port{keep}", str(flags.port), port_ok))

    def workspace_ok(text: str) -> bool | str:
        if not text.strip():
            return "enter a directory"
        path = Path(text).expanduser()
        return choice_problem(identity, env, proposal, port, path) or True

    workspace = (
        Path(prompter.text(f"Workspace{keep}", str(flags.workspace), workspace_ok))
        .expanduser()
        .resolve()
    )
    auth = prompter.select("Gateway auth", ["token", "password"], flags.auth)
    plan = Plan(
        port=port,
        workspace=workspace,
        auth=auth,
        model=flags.model,
        install_daemon=flags.install_daemon,
    )
    if auth == "token":
        plan.new_token = flags.new_token or (
            proposal.has_token and not prompter.confirm("Keep the current token?", True)
        )
    elif proposal.has_password and prompter.confirm("Keep the current password?", True):
        plan.password = None
    else:
        plan.password = _new_password(prompter)
    model = prompter.text(
        f"Default model, provider/model (empty: none){keep}",
        flags.model or "",
        lambda t: model_problem(t) or True,
    )
    plan.model = model.strip() or None
    if plan.model and not flags.api_key:
        provider = plan.model.split("/", 1)[0]
        key = prompter.password(
            f"API key for {provider} (stored in the state dir, 0600; empty: use the environment)"
        )
        plan.api_key, plan.api_key_source = (key.strip() or None), "prompt"
    else:
        plan.api_key, plan.api_key_source = flags.api_key, flags.api_key_source
    verb = "Reinstall" if proposal.service_installed else "Install"
    plan.install_daemon = prompter.confirm(
        f"{verb} the gateway as a user service (starts at login/boot)?",
        flags.install_daemon or not proposal.service_installed,
    )
    if check is None:
        from moltbot.instance.resolve import resolve_instance

        check = channel_check(resolve_instance(identity, proposal.config, env), env, probe=False)
    plan.channels, plan.remove_channels = interview_channels(prompter, env, proposal, flags, check)
    plan.rescue_targets = flags.rescue_targets
    if proposal.rescue_offer and flags.rescue_targets == proposal.rescue_offer:
        names = ", ".join(proposal.rescue_offer)
        question = f"Let this rescue bot diagnose and repair {names} (rescue.targets)?"
        plan.rescue_targets = proposal.rescue_offer if prompter.confirm(question, True) else None
    return plan


def interview_channels(
    prompter: Prompter,
    env: Mapping[str, str],
    proposal: Proposal,
    flags: Plan,
    check: Callable[[ChannelPlan], str | None],
) -> tuple[list[ChannelPlan], list[str]]:
    """The channel questions: keep/change/remove each configured channel, offer the others.

    Channels the flags already set are not asked about. Each channel's answers
    go through ``check`` before the next question; a refusal is shown and the
    channel asked again (or skipped).
    """
    plans, removals = list(flags.channels), list(flags.remove_channels)
    given = {plan.name for plan in plans} | set(removals)
    if proposal.channels:
        prompter.say("Configured channels:")
        for name, row in proposal.channels.items():
            prompter.say(f"  {row_text(name, row)}")
    for manifest in registry.manifests().values():
        name, label = manifest.id, manifest.label
        current = proposal.channels.get(name)
        if name in given:
            prompter.say(f"{label}: set by the command-line flags")
            continue
        if current is not None:
            action = prompter.select(
                f"{label}: keep, change or remove it?", ["keep", "change", "remove"], "keep"
            )
            if action == "remove":
                removals.append(name)
            if action != "change":
                continue
        elif not prompter.confirm(f"Connect a {label} {manifest.noun}?", False):
            continue
        while True:
            plan = ChannelPlan(
                name,
                {
                    **ask_fields(prompter, env, manifest, current),
                    **ask_dm_policy(prompter, manifest, current),
                },
            )
            problem = check(plan)
            if problem is None:
                plan.checked = True
                plans.append(plan)
                break
            prompter.say(f"{label}: {problem}")
            if not prompter.confirm(f"Enter the {label} settings again?", True):
                break
    return plans, removals


def ask_fields(
    prompter: Prompter,
    env: Mapping[str, str],
    manifest: ChannelManifest,
    current: dict[str, Any] | None,
) -> dict[str, Any]:
    """The manifest's setup questions, in order; a field bound to a connection mode
    is asked only in that mode. An empty secret keeps the current one."""
    answers: dict[str, Any] = {}
    keep = "; empty: keep the current one" if current else ""
    for field in manifest.setup:
        if field.prompt is None:
            continue
        if field.mode and manifest.mode_answer and answers.get(manifest.mode_answer) != field.mode:
            continue
        now = (current or {}).get(field.key)
        if field.choices:
            default = now if now in field.choices else field.choices[0]
            answers[field.answer] = prompter.select(field.prompt, list(field.choices), default)
        elif manifest.secret(field.key):
            value = prompter.password(
                f"{field.prompt} (or ${{VAR}}: read from the environment{keep})",
                secret_problem(manifest.id, field.key, env, optional=current is not None),
            )
            answers[field.answer] = value.strip() or None
        else:
            value = prompter.text(field.prompt, str(now or ""))
            answers[field.answer] = value.strip() or None
    return answers


def ask_dm_policy(
    prompter: Prompter, manifest: ChannelManifest, current: dict[str, Any] | None
) -> dict[str, Any]:
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
            f"Allowed sender ids, comma-separated ({manifest.label} {manifest.sender_hint})",
            ",".join(now),
        )
        allow = [part.strip() for part in text.split(",") if part.strip()]
    return {
        "dm_policy": policy,
        "allow_from": allow_from_answer(policy, allow, (current or {}).get("allowFrom") or []),
    }


def _new_password(prompter: Prompter) -> str:
    while True:
        first = prompter.password("Gateway password (at least 8 characters)")
        if len(first) < 8:
            prompter.say("Too short.")
            continue
        if prompter.password("Repeat the password") == first:
            return first
        prompter.say("The passwords differ; try again.")


def row_text(name: str, row: dict[str, Any]) -> str:
    if row.get("error"):
        return f"{name}: invalid config: {row['error']}"
    return (
        f"{name} {row.get('accountId')}: {row.get('mode')}, dm {row.get('dmPolicy')}, "
        f"token from {row.get('tokenSource')}"
    )
