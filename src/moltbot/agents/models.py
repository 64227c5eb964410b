"""Model refs (``provider/model``), providers and their keys, the per-agent model chain.

Providers are the built-ins below merged with ``models.providers.<id>`` from the
config (``models.mode: "replace"`` drops the built-ins). An API key comes from,
in order: the provider's ``apiKey`` in the config (``"${ENV}"`` allowed), the
credentials file ``<state>/credentials/model-providers.json``
(``{"<provider>": {"apiKey": "..."}}``, mode 0600), the provider's environment
variable (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...). Keys are never logged
and never appear in ``repr``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltbot.config.schema import Config, ModelChoice, ModelDefinition
from moltbot.errors import ConfigError

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "model-providers.json"


@dataclass(frozen=True)
class Preset:
    api: str
    base_url: str
    env_key: str | None
    key_required: bool = True
    default_model: str | None = None


BUILTIN: dict[str, Preset] = {
    "anthropic": Preset(
        "anthropic-messages",
        "https://api.anthropic.com",
        "ANTHROPIC_API_KEY",
        default_model="claude-opus-4-5",
    ),
    "openai": Preset(
        "openai-completions", "https://api.openai.com/v1", "OPENAI_API_KEY", default_model="gpt-4o"
    ),
    "openrouter": Preset(
        "openai-completions", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"
    ),
    "ollama": Preset(
        "openai-completions", "http://127.0.0.1:11434/v1", "OLLAMA_API_KEY", key_required=False
    ),
}
# Used (in this order) when no model is configured but a key is at hand.
AUTO_DEFAULTS = ("anthropic", "openai")

DEFAULT_TIMEOUT = 120.0
DEFAULT_CONTEXT_WINDOW = 200_000


@dataclass(frozen=True)
class ModelRef:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class ResolvedProvider:
    id: str
    api: str
    base_url: str
    api_key: str | None = field(repr=False)
    key_source: str
    """config | credentials | env | none"""
    key_required: bool
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    models: Mapping[str, ModelDefinition] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return bool(self.api_key) or not self.key_required

    def missing_key_hint(self) -> str:
        preset = BUILTIN.get(self.id)
        env = preset.env_key if preset else None
        via_env = f"export {env}=... before starting the gateway, or " if env else ""
        return f'{via_env}set models.providers.{self.id}.apiKey (e.g. "${{{env or "MY_API_KEY"}}}")'


_VISION_MODELS = {
    "anthropic": ("claude-",),
    "openai": ("gpt-4o", "gpt-4.1", "gpt-4-turbo", "gpt-5", "o1", "o3", "o4"),
}
"""Built-in providers' model families that take image input (when the config has
no ``models.providers.<id>.models[]`` entry saying otherwise)."""


def accepts_images(provider: ResolvedProvider, model: str) -> bool:
    """True when ``model`` takes image input: its definition's ``input`` lists
    ``"image"``, or (without a definition) it is a known vision model of a built-in
    provider."""
    definition = provider.models.get(model)
    if definition is not None and "input" in definition.model_fields_set:
        return "image" in definition.input
    return model.lower().startswith(_VISION_MODELS.get(provider.id, ()))


def parse_ref(text: str, config: Config) -> ModelRef:
    """``"provider/model"`` (split at the first ``/``), or an alias / a unique model id."""
    value = text.strip()
    aliases = _aliases(config)
    if value in aliases:
        value = aliases[value]
    if "/" in value:
        provider, model = value.split("/", 1)
        if provider and model:
            return ModelRef(provider.strip().lower(), model.strip())
    owners = [
        pid for pid, p in config.models.providers.items() if any(m.id == value for m in p.models)
    ]
    if len(owners) == 1:
        return ModelRef(owners[0], value)
    raise ConfigError(
        f'model "{text}" is not a "provider/model" reference',
        hint='write it as provider/model, e.g. "openai/gpt-4o"',
    )


def model_refs(config: Config) -> set[str]:
    """Every model reference the agents' config names (defaults and each agent)."""
    refs: set[str] = set()
    for choice in (config.agents.defaults.model, *(a.model for a in config.agents.entries)):
        if isinstance(choice, str):
            refs.add(choice)
        elif choice is not None:
            refs.update((choice.primary, *choice.fallbacks))
    return refs


def check_new_refs(before: Config | None, after: Config) -> None:
    """Refuse (:class:`ConfigError`) a model reference added by a change that is neither
    ``provider/model``, an alias, nor a unique model id of a configured provider."""
    for ref in sorted(model_refs(after) - (model_refs(before) if before else set())):
        parse_ref(ref, after)


def config_write_check(identity: Any, env: Mapping[str, str], *, host: bool = True) -> Any:
    """The check every config writer passes to ``update_config`` (``config set``, the
    protocol's ``config.*``, rescue): new model references must resolve, and (with
    ``host``) ports or paths the change moves must not clash with another instance."""
    from moltbot.instance.setup import check_change

    def check(before: Config | None, after: Config) -> None:
        check_new_refs(before, after)
        if host:
            check_change(identity, env, before, after)

    return check


def _aliases(config: Config) -> dict[str, str]:
    catalog = config.agents.defaults.models
    return {entry.alias: ref for ref, entry in catalog.items() if entry.alias}


def read_credentials(credentials_dir: Path) -> dict[str, str]:
    """Provider id → API key from the credentials file (missing file: empty)."""
    path = credentials_dir / CREDENTIALS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s (%s); ignoring it", path, type(exc).__name__)
        return {}
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for provider, value in data.items():
            key = value.get("apiKey") if isinstance(value, dict) else value
            if isinstance(key, str) and key.strip():
                out[str(provider).lower()] = key.strip()
    return out


def save_credential(credentials_dir: Path, provider: str, api_key: str) -> Path:
    """Store (or replace) a provider's API key in the credentials file, atomically, 0600."""
    credentials_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = credentials_dir / CREDENTIALS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (FileNotFoundError, ValueError):
        data = {}
    data[provider.lower()] = {"apiKey": api_key}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(data, indent=2).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def resolve_providers(
    config: Config, env: Mapping[str, str], credentials: Mapping[str, str]
) -> dict[str, ResolvedProvider]:
    out: dict[str, ResolvedProvider] = {}
    ids = list(config.models.providers)
    if config.models.mode == "merge":
        ids = [*BUILTIN, *(i for i in ids if i not in BUILTIN)]
    for pid in ids:
        custom = config.models.providers.get(pid)
        preset = BUILTIN.get(pid)
        api = (custom.api if custom and custom.api else None) or (preset.api if preset else None)
        base_url = (custom.base_url if custom and custom.base_url else None) or (
            preset.base_url if preset else None
        )
        if not api or not base_url:
            log.warning("models.providers.%s needs baseUrl and api; skipped", pid)
            continue
        key, source = None, "none"
        if custom and custom.api_key:
            key, source = custom.api_key, "config"
        elif credentials.get(pid.lower()):
            key, source = credentials[pid.lower()], "credentials"
        elif preset and preset.env_key and env.get(preset.env_key, "").strip():
            key, source = env[preset.env_key].strip(), "env"
        # A custom provider (local server) without a key is fine: the server decides.
        key_required = preset.key_required if preset and not (custom and custom.base_url) else False
        out[pid] = ResolvedProvider(
            id=pid,
            api=api,
            base_url=base_url.rstrip("/"),
            api_key=key,
            key_source=source,
            key_required=key_required,
            headers=dict(custom.headers) if custom else {},
            timeout=(
                custom.timeout_seconds if custom and custom.timeout_seconds else DEFAULT_TIMEOUT
            ),
            models={m.id: m for m in (custom.models if custom else [])},
        )
    return out


def model_choice(config: Config, agent_id: str) -> str | ModelChoice | None:
    for entry in config.agents.entries:
        if entry.id == agent_id and entry.model is not None:
            return entry.model
    return config.agents.defaults.model


def model_chain(
    config: Config, agent_id: str, providers: Mapping[str, ResolvedProvider]
) -> list[ModelRef]:
    """Primary then fallbacks for ``agent_id``; a default when none is configured.

    With no model configured: the first model of the first custom provider, else
    the built-in default of the first built-in provider that has a key; else [].
    """
    choice = model_choice(config, agent_id)
    if isinstance(choice, str):
        return [parse_ref(choice, config)]
    if isinstance(choice, ModelChoice):
        refs = [parse_ref(choice.primary, config)]
        refs += [parse_ref(f, config) for f in choice.fallbacks]
        return list(dict.fromkeys(refs))
    for pid, provider in config.models.providers.items():
        if provider.models and pid in providers:
            return [ModelRef(pid, provider.models[0].id)]
    for pid in AUTO_DEFAULTS:
        found = providers.get(pid)
        preset = BUILTIN[pid]
        if found is not None and found.api_key and preset.default_model:
            return [ModelRef(pid, preset.default_model)]
    return []


def catalog(
    config: Config, providers: Mapping[str, ResolvedProvider], agent_ids: list[str]
) -> list[dict[str, Any]]:
    """``models.list`` rows: declared models plus every model an agent refers to."""
    rows: dict[str, dict[str, Any]] = {}
    for pid, provider in providers.items():
        for model in provider.models.values():
            rows[f"{pid}/{model.id}"] = _row(pid, model.id, model)
    for ref_text, entry in config.agents.defaults.models.items():  # the catalogue
        provider_id, _, model_id = ref_text.partition("/")
        if provider_id and model_id:
            provider = providers.get(provider_id)
            definition = provider.models.get(model_id) if provider else None
            row = _row(provider_id, model_id, definition)
            if entry.alias and not (definition and definition.name):
                row["name"] = entry.alias
            rows.setdefault(ref_text, row)
    for agent_id in agent_ids:
        try:
            chain = model_chain(config, agent_id, providers)
        except ConfigError:
            continue
        for ref in chain:
            provider = providers.get(ref.provider)
            definition = provider.models.get(ref.model) if provider else None
            rows.setdefault(str(ref), _row(ref.provider, ref.model, definition))
    return list(rows.values())


def _row(provider: str, model: str, definition: ModelDefinition | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": model,
        "name": (definition.name if definition else None) or model,
        "provider": provider,
    }
    if definition is not None:
        if definition.context_window:
            row["contextWindow"] = definition.context_window
        row["reasoning"] = definition.reasoning
    return row
