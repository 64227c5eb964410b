"""The model providers of the current config, their clients and each agent's model chain.

A provider's client is built on first use and shared by every run. A run holds
the client it streams through with :meth:`ModelPool.lease`. A reload does not
close clients under runs: a client whose provider changed (URL, key, headers,
API) or vanished is *retired* (:meth:`ModelPool.retire_stale`), so the next
lease builds a new one while runs in flight finish on the old one, which is
closed when its last lease ends; an unchanged provider keeps its client.
:meth:`ModelPool.close` (shutdown, after the runs have ended) closes everything.
:attr:`ModelPool.cooldowns` remembers failed models across runs and reconfigures.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping

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

KNOWN_MODELS_TTL_S = 300.0


class ModelPool:
    config: Config
    providers: dict[str, ResolvedProvider]

    def __init__(self, instance: Instance, env: Mapping[str, str], log: logging.Logger) -> None:
        """Call :meth:`configure` before anything else."""
        self.instance = instance
        self.env = env
        self.log = log
        self.cooldowns = Cooldowns()
        self._clients: dict[str, tuple[tuple[object, ...], Provider]] = {}
        """provider id -> (the connection settings it was built with, client)"""
        self._leases: dict[int, int] = {}
        """id(client) -> runs streaming through it now."""
        self._retired: dict[int, Provider] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._known: dict[str, tuple[float, list[str]]] = {}
        """provider id -> (when it was asked, the model ids its /models named)"""

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
        """The shared client of ``provider``, built on first use (imports its SDK), and
        again when the provider changed or its client was closed."""
        wanted = _connection(provider)
        found = self._clients.get(provider.id)
        if found is not None:
            if found[0] == wanted and not found[1].closed:
                return found[1]
            self._retire(found[1])
        client = build(
            provider.api, provider.id, provider.base_url, provider.api_key, provider.headers
        )
        self._clients[provider.id] = (wanted, client)
        return client

    @contextlib.asynccontextmanager
    async def lease(self, provider: ResolvedProvider) -> AsyncIterator[Provider]:
        """The shared client of ``provider``, kept open until the block ends even if a
        reload retires it meanwhile."""
        client = self.client(provider)
        key = id(client)
        self._leases[key] = self._leases.get(key, 0) + 1
        try:
            yield client
        finally:
            left = self._leases[key] - 1
            if left:
                self._leases[key] = left
            else:
                del self._leases[key]
                retired = self._retired.pop(key, None)
                if retired is not None:
                    self._close_later(retired)

    def in_use(self) -> int:
        """Runs streaming through a client now (any client, current or retired)."""
        return sum(self._leases.values())

    def retired(self) -> int:
        """Retired clients still open for the runs that use them."""
        return len(self._retired)

    def retire_stale(self) -> None:
        """Retire the clients of providers that changed or vanished with the config."""
        for provider_id, (built, client) in list(self._clients.items()):
            current = self.providers.get(provider_id)
            if current is None or _connection(current) != built:
                del self._clients[provider_id]
                self._retire(client)

    def _retire(self, client: Provider) -> None:
        if self._leases.get(id(client)):
            self._retired[id(client)] = client
        else:
            self._close_later(client)

    async def close(self) -> None:
        """Close every client, retired ones included (when no run is left)."""
        old, self._clients = self._clients, {}
        retired, self._retired = self._retired, {}
        for client in (*(c for _, c in old.values()), *retired.values()):
            self._close_later(client)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _close_later(self, client: Provider) -> None:
        task = asyncio.get_running_loop().create_task(self._close_quietly(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_quietly(self, client: Provider) -> None:
        try:
            await client.close()
        except Exception as exc:  # a client that fails to close is only logged
            self.log.debug("closing a provider client failed: %s", exc)

    async def known(self) -> dict[str, list[str]]:
        """Model ids per usable provider, from its ``/models`` (cached 5 minutes)."""
        now = time.monotonic()

        async def one(provider: ResolvedProvider) -> tuple[str, list[str]]:
            cached = self._known.get(provider.id)
            if cached is not None and now - cached[0] < KNOWN_MODELS_TTL_S:
                return provider.id, cached[1]
            try:
                async with self.lease(provider) as client:
                    ids = await asyncio.wait_for(client.list_models(5.0), 6.0)
            except Exception as exc:  # noqa: BLE001 - a listing is a nicety, never an error
                self.log.info("models of provider %s not listed: %s", provider.id, exc)
                ids = []
            self._known[provider.id] = (now, ids)
            return provider.id, ids

        # configured providers, and built-in ones the user gave a key (not every preset)
        configured = set(self.config.models.providers)
        usable = [
            p
            for p in self.providers.values()
            if p.usable and (p.id in configured or p.key_source != "none")
        ]
        return dict(await asyncio.gather(*(one(p) for p in usable)))

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


def _connection(provider: ResolvedProvider) -> tuple[object, ...]:
    """What a client is built from: a change of any of these needs a new client."""
    return (
        provider.api,
        provider.base_url,
        provider.api_key,
        tuple(sorted(provider.headers.items())),
    )
