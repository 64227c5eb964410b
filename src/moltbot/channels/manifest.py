"""The channel manifest: everything outside a channel's package knows about it.

Each channel is a package ``channels/<name>/`` whose ``manifest.py`` defines
``MANIFEST``, a frozen :class:`ChannelManifest`. The registry
(:mod:`moltbot.channels.registry`) finds the manifests; from them come the
``channels add`` sub-commands and flags, ``onboard``'s flags and wizard
questions, the gateway's webhook routes, the secret checks and the labels of
``channels.status``. Generic code never branches on a channel's name: what
differs between platforms is either data here or a method of the channel class.

A manifest module imports nothing heavy: the channel class and the webhook
handlers are named ``"module:attribute"`` and imported only when used, so
``moltbot --help`` and the CLI's config-only commands load no platform SDK.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moltbot.channels.config import AccountConfig


@dataclass(frozen=True)
class Capabilities:
    """What the platform can do (reported by ``channels.status``; the pipeline
    uses ``typing``)."""

    chat_types: tuple[str, ...] = ("direct", "group")
    threads: bool = False
    media: bool = False
    reactions: bool = False
    edits: bool = False
    typing: bool = False
    reply: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "chatTypes": list(self.chat_types),
            "threads": self.threads,
            "media": self.media,
            "reactions": self.reactions,
            "edits": self.edits,
            "typing": self.typing,
            "reply": self.reply,
        }


@dataclass(frozen=True)
class Secret:
    """A config key holding a credential: never shown, format-checked when set."""

    key: str
    """Config key (camelCase), e.g. ``botToken``."""
    label: str
    """Short name for messages and summaries, e.g. ``bot token``."""
    pattern: str | None = None
    """A full-match regular expression every valid value matches (None: any value)."""
    looks_like: str = ""
    """What a valid value looks like, for the error message."""
    env: str | None = None
    """Environment variable supplying it for the default account, e.g. ``TELEGRAM_BOT_TOKEN``."""


@dataclass(frozen=True)
class SetupField:
    """One setting ``channels add`` (and possibly ``onboard`` and its wizard) can set."""

    answer: str
    """Keyword of :func:`moltbot.channels.setup.add_channel`, e.g. ``bot_token``."""
    key: str
    """Config key it writes, e.g. ``botToken``."""
    flags: tuple[str, ...]
    """``channels add`` flags; the first is the main one (``--bot-token``)."""
    help: str
    choices: tuple[str, ...] = ()
    mode: str | None = None
    """Only used in this connection mode (the value of the manifest's ``mode_answer``)."""
    onboard: bool = False
    """Also an ``onboard`` flag, ``--<channel>-<flag>`` (a secret also gets ``...-env VAR``)."""
    prompt: str | None = None
    """The wizard's question; None: the wizard does not ask it."""
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return self.flags[0]

    @property
    def stem(self) -> str:
        """The main flag without its dashes: ``bot-token``."""
        return self.flag.lstrip("-")

    def onboard_flag(self, channel: str) -> str:
        return f"--{channel}-{self.stem}"

    def onboard_param(self, channel: str) -> str:
        """The click parameter name of :meth:`onboard_flag`."""
        return f"{channel}_{self.answer}".replace("-", "_")


@dataclass(frozen=True)
class Route:
    """An HTTP route on the gateway's port: ``POST path`` and ``POST path/<accountId>``."""

    path: str
    handler: str
    """``"module:function"``, ``async def handle(request, manager, runner) -> Response``
    (see :mod:`moltbot.channels.webhook`)."""


@dataclass(frozen=True)
class ChannelManifest:
    """A channel's description. Frozen: build one per channel, at import."""

    id: str
    """Lower-case name: the config section ``channels.<id>`` and the CLI argument."""
    label: str
    """Display name (``Telegram``)."""
    channel: str
    """``"module:Class"`` of the :class:`~moltbot.channels.base.Channel` subclass."""
    config_model: str
    """``"module:Class"`` of the account config model (a subclass of ``AccountConfig``)."""
    detail_label: str = ""
    """``channels.status`` ``detailLabel`` (``Telegram Bot``); default: the label."""
    noun: str = "bot"
    """What the user connects, for questions: "Connect a Telegram *bot*?"."""
    secrets: tuple[Secret, ...] = ()
    token_sources: tuple[str, ...] = ()
    """Other config keys that supply a credential (Telegram ``tokenFile``)."""
    token_kinds: tuple[tuple[str, str], ...] = ()
    """(prefix, what a value with that prefix is), to say "this one looks like an app
    token" when a secret has the wrong prefix."""
    setup: tuple[SetupField, ...] = ()
    mode_answer: str | None = None
    """The setup answer choosing the connection mode (fields with ``mode`` depend on it)."""
    groups_key: str = "groups"
    """The per-group map written by ``channels add --group``."""
    sender_hint: str = "user ids"
    """What an ``allowFrom`` entry looks like, for questions and help."""
    capabilities: Capabilities = field(default_factory=Capabilities)
    routes: tuple[Route, ...] = ()
    chat_key: str = "chatId"
    """Key naming the conversation in ``send`` results (``chatId``; Slack ``channelId``)."""
    order: int = 100
    """Position in lists, questions and ``channelOrder`` (then by id)."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", self.id):
            raise ValueError(f"invalid channel id {self.id!r}: use a-z, 0-9, '-' and '_'")
        for name in ("channel", "config_model"):
            if ":" not in getattr(self, name):
                raise ValueError(f"channel {self.id}: {name} must be 'module:Class'")

    @property
    def detail(self) -> str:
        return self.detail_label or self.label

    @property
    def env_tokens(self) -> dict[str, str]:
        """Config key → environment variable supplying it for the default account."""
        return {s.key: s.env for s in self.secrets if s.env}

    @property
    def credential_keys(self) -> tuple[str, ...]:
        """Config keys that, set at the top level, make the ``default`` account exist."""
        return (*(s.key for s in self.secrets), *self.token_sources)

    @property
    def main_env(self) -> str | None:
        """The variable that alone configures the default account (the first secret's)."""
        return next(iter(self.env_tokens.values()), None)

    def secret(self, key: str) -> Secret | None:
        return next((s for s in self.secrets if s.key == key), None)

    def field_for(self, answer: str) -> SetupField | None:
        """The setup field of ``answer`` (its name or one of its flags' stems)."""
        for item in self.setup:
            if answer == item.answer or answer in (
                f.lstrip("-").replace("-", "_") for f in item.flags
            ):
                return item
        return None

    def field_for_key(self, key: str) -> SetupField | None:
        return next((f for f in self.setup if f.key == key), None)

    def load_channel(self) -> type[Any]:
        """Import the channel class. Raises ModuleNotFoundError for a missing SDK."""
        return load_handler(self.channel)  # type: ignore[no-any-return]

    def load_config_model(self) -> type[AccountConfig]:
        """Import the account config model."""
        return load_handler(self.config_model)  # type: ignore[no-any-return]


def load_handler(target: str) -> Any:
    """Import ``"module:function"``."""
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)
