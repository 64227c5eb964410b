"""The model providers of the current config, their clients and each agent's model chain.

A provider's client is built on first use and shared by every run;
:meth:`ModelPool.reset_clients` closes them (runs in flight keep the client they
hold). :attr:`ModelPool.cooldowns` remembers failed models across runs and
reconfigures.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Iterable, Mapping

from moltbot.agents.failover import Cooldowns
from moltbot.agents.models import (
    DEFAULT_CONTEXT_WINDOW,
    ModelRef,
    ResolvedProvider,
    model_chain,
    parse_ref,
    read_credentials,
    resolve_providers,
)
from moltbot.agents.providers import APIS, Provider, build
from moltbot.config.schema import Config
from moltbot.errors import ConfigError
from moltbot.instance.resolve import Instance
from moltbot.sessions.store import SessionEntry


class ModelPool:
    config: Config
    providers: dict[str, ResolvedProvider]

    def __init__(self, instance: Instance, env: Mapping[str, str], log: logging.Logger) -> None:
        """Call :meth:`configure` before anything else."""
        self.instance = instance
        self.env = env
        self.log = log
        self.cooldowns = Cooldowns()
        self._clients: dict[str, Provider] = {}

    def configure(self, config: Config) -> None:
        """Resolve the providers and their keys (reads the credentials file)."""
        self.config = config
        credentials = read_credentials(self.instance.credentials_dir)
        self.providers = resolve_providers(config, self.env, credentials)

    # ---- chains --------------------------------------------------------------

    def chain(self, agent_id: str, entry: SessionEntry | None) -> list[ModelRef]:
        """Primary then fallbacks; a session's model override goes first.

        Raises :class:`ConfigError` for a model that is not a valid reference.
        """
        chain = model_chain(self.config, agent_id, self.providers)
        if entry is not None and entry.model_override:
            override = parse_ref(entry.model_override, self.config)
            chain = [override, *(r for r in chain if r != override)]
        return chain

    def chain_or_empty(self, agent_id: str) -> list[ModelRef]:
        """The agent's configured chain; ``[]`` when none, or when the config's is invalid."""
        try:
            return model_chain(self.config, agent_id, self.providers)
        except ConfigError:
            return []

    def retry_after(self, agent_id: str) -> float | None:
        """Seconds until a model of the agent's chain leaves its cooldown; None when one
        is available now (or the agent has no model)."""
        waits = [self.cooldowns.cooling(str(ref)) for ref in self.chain_or_empty(agent_id)]
        return min(waits) if waits and min(waits) > 0 else None

    def configured(self, agent_id: str) -> bool:
        """Whether a model of the agent's chain can be called (known provider, key)."""
        return any(self.usable(ref) for ref in self.chain_or_empty(agent_id))

    # ---- providers and clients -----------------------------------------------

    def provider(self, ref: ModelRef) -> ResolvedProvider | None:
        return self.providers.get(ref.provider)

    def usable(self, ref: ModelRef) -> bool:
        provider = self.providers.get(ref.provider)
        return provider is not None and provider.usable

    def context_window(self, ref: ModelRef) -> int:
        provider = self.providers.get(ref.provider)
        definition = provider.models.get(ref.model) if provider else None
        if definition and definition.context_window:
            return definition.context_window
        return DEFAULT_CONTEXT_WINDOW

    def client(self, provider: ResolvedProvider) -> Provider:
        """The shared client of ``provider``, built on first use (imports its SDK)."""
        client = self._clients.get(provider.id)
        if client is None:
            client = build(
                provider.api, provider.id, provider.base_url, provider.api_key, provider.headers
            )
            self._clients[provider.id] = client
        return client

    async def reset_clients(self) -> None:
        """Close every client; the next use builds a new one."""
        old, self._clients = self._clients, {}
        for client in old.values():
            with contextlib.suppress(Exception):
                await client.close()

    async def warm(self, agent_ids: Iterable[str]) -> None:
        """Import the model SDKs the agents use and build their clients now, so the
        first message does not pay for it (``import anthropic`` takes seconds)."""
        used: dict[str, ResolvedProvider] = {}
        for agent_id in agent_ids:
            for ref in self.chain_or_empty(agent_id):
                provider = self.providers.get(ref.provider)
                if provider is not None and provider.usable:
                    used[provider.id] = provider
        for provider in used.values():
            target = APIS.get(provider.api)
            if target is None:
                continue
            try:
                await asyncio.to_thread(importlib.import_module, target.partition(":")[0])
                self.client(provider)
            except Exception as exc:  # the first run reports it properly
                self.log.debug("warming provider %s failed: %s", provider.id, exc)

    # ---- explaining ------------------------------------------------------------

    def unconfigured_text(self, chain: list[ModelRef] | None) -> str:
        """The reply when no model of ``chain`` can be called, with how to fix it."""
        profile = self.instance.profile
        flag = "" if profile == "default" else f" --profile {profile}"
        lines = ["I can't answer yet: no AI model is configured for this assistant."]
        if chain:
            for ref in chain:
                provider = self.providers.get(ref.provider)
                if provider is None:
                    lines.append(
                        f'- {ref}: there is no provider "{ref.provider}" '
                        f"(add models.providers.{ref.provider})"
                    )
                elif not provider.usable:
                    lines.append(f"- {ref}: no API key — {provider.missing_key_hint()}")
        lines += [
            "",
            f"To set one up, run `moltbot{flag} onboard`, or set the config keys, e.g.:",
            f"  moltbot{flag} config set agents.defaults.model openai/gpt-4o   "
            "(and export OPENAI_API_KEY)",
            f"  moltbot{flag} config set agents.defaults.model anthropic/claude-opus-4-5   "
            "(and export ANTHROPIC_API_KEY)",
            "For a local server (Ollama, vLLM, LM Studio): models.providers.<id> = "
            '{baseUrl: "http://127.0.0.1:11434/v1", api: "openai-completions", '
            'models: [{id: "llama3.2"}]} and agents.defaults.model = "<id>/llama3.2".',
        ]
        return "\n".join(lines)
