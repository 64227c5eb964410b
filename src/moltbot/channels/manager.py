"""The ``channels`` subsystem: starts every configured channel account,
supervises it (:mod:`moltbot.channels.supervisor`), and reports its status.

Nothing a channel does can take the gateway down: a broken config section or
an account that keeps failing is reported in ``channels.status`` while the
subsystem itself stays ``running``. A config section no known channel reads
(``channels.whatsapp`` on a build without WhatsApp) is reported the same way
and logged, naming the known channels.

A reload that replaces an account stops its intake at once but keeps the old
connection open until the replies it owes are sent; a restart drains
(:meth:`ChannelManager.drain`) those replies first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from moltbot.channels import registry, routing
from moltbot.channels.base import Channel, NativeCommands
from moltbot.channels.config import DEFAULT_ACCOUNT_ID
from moltbot.channels.dispatch import AgentDispatcher, InboundPipeline, PipelineSettings
from moltbot.channels.errors import (
    ChannelConfigError,
    ChannelError,
    ChannelNotReady,
    UnknownChannel,
)
from moltbot.channels.pairing import PairingStore
from moltbot.channels.supervisor import AccountRunner, Backoff
from moltbot.channels.types import AccountState, ChannelReport, OutboundMessage, SendResult
from moltbot.commands import AgentControl
from moltbot.config.schema import Config
from moltbot.errors import RetryLaterError
from moltbot.lifecycle import State, SubsystemContext
from moltbot.sessions.media import MediaStore

log = logging.getLogger(__name__)

DRAIN_SLACK_S = 10.0
MENU_MAX = 100
"""Entries of a native command menu (Telegram accepts at most 100)."""
"""How much longer than the agents' grace a restart waits for channel replies."""

__all__ = ["AccountRunner", "Backoff", "ChannelManager"]


class ChannelManager:
    """Subsystem ``channels`` (see :mod:`moltbot.lifecycle`)."""

    name = "channels"

    def __init__(
        self,
        context: SubsystemContext,
        *,
        dispatcher: AgentDispatcher | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.context = context
        self.instance = context.instance
        self.config = context.config
        self.env = context.env
        self.state = State.CREATED
        self.backoff = backoff or Backoff()
        self._dispatcher = dispatcher
        self.runners: dict[tuple[str, str], AccountRunner] = {}
        self.errors: dict[str, str] = {}
        """Channels that could not be set up (invalid or unknown section): name -> why."""
        self.routing_error: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stores: dict[str, PairingStore] = {}
        self._routing = routing.RoutingTable()
        self.inflight: dict[str, asyncio.Future[Any]] = {}
        self.pipeline = InboundPipeline(
            routing_table=lambda: self._routing,
            dispatcher=self.dispatcher,
            pairing_store=self.pairing_store,
            settings=pipeline_settings(self.instance.profile, self.config),
            lookup=self.context.lookup,
            media_store=lambda agent_id: MediaStore(self.instance.sessions_dir(agent_id)),
        )

    # -- subsystem contract ---------------------------------------------------

    async def start(self) -> None:
        self.state = State.STARTING
        self._load(self.config)
        for runner in self.runners.values():
            runner.start()
        self.state = State.RUNNING

    async def stop(self) -> None:
        self.state = State.STOPPING
        await asyncio.gather(
            *(runner.stop() for runner in self.runners.values()), return_exceptions=True
        )
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.state = State.STOPPED

    async def drain(self, grace: float) -> None:
        """Before a restart: wait for the replies owed to senders. The agents end
        their runs within ``grace`` seconds, so a little longer is enough here."""
        pending = {task for task in self._tasks if not task.done()}
        if pending:
            log.info("waiting for %d inbound message(s) to be answered", len(pending))
            await asyncio.wait(pending, timeout=grace + DRAIN_SLACK_S)

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "errors": {
                **self.errors,
                **({"bindings": self.routing_error} if self.routing_error else {}),
            },
            "channels": {
                name: [r.status.snapshot() for r in self._of(name)] for name in self.channel_order()
            },
        }

    async def reconfigure(self, config: Any) -> bool:
        """Apply a changed config live: restart changed accounts, start new ones, stop removed
        (every account restarts when ``commands.native``, the command menu or who owns
        the commands changed, so native menus follow)."""
        old = {key: runner.account for key, runner in self.runners.items()}
        menu_before = self.native_commands()
        settings_before = self.pipeline.settings
        self.config = config
        self.pipeline.settings = pipeline_settings(self.instance.profile, config)
        menu_changed = (  # accounts register their menus at start
            self.native_commands() != menu_before
            or _owners_key(self.pipeline.settings) != _owners_key(settings_before)
        )
        previous = self.runners
        self.runners = {}
        self._load(config)
        keep: dict[tuple[str, str], AccountRunner] = {}
        for key, runner in self.runners.items():
            if (
                key in old
                and not menu_changed
                and old[key] == runner.account
                and previous[key].status.state not in (AccountState.FAILED, AccountState.STOPPED)
            ):
                keep[key] = previous[key]
        for key, runner in previous.items():
            if keep.get(key) is not runner:
                await runner.stop()
        for key, runner in self.runners.items():
            if key in keep:
                self.runners[key] = keep[key]
            else:
                runner.start()
        return True

    # -- setup ------------------------------------------------------------------

    def _load(self, config: Any) -> None:
        self.errors = {}
        self.routing_error = None
        try:
            self._routing = routing.RoutingTable.from_config(config)
        except ChannelConfigError as exc:
            self.routing_error = exc.message
            self._routing = routing.RoutingTable()
        channels = config.channels or {}
        for name in registry.unknown_sections(channels):
            self.errors[name] = registry.unknown_section_warning(name)
            log.warning("%s", self.errors[name])
        for name in registry.active_channels(channels, self.env):
            section = channels.get(name)
            if isinstance(section, dict) and section.get("enabled") is False:
                continue
            try:
                cls = registry.channel_class(name)
                accounts = registry.resolve_accounts(name, channels, self.env)
            except (ChannelConfigError, UnknownChannel) as exc:
                self.errors[name] = exc.message
                log.error("channel %s not started: %s", name, exc.message)
                continue
            for account in accounts:
                runner = AccountRunner(self, cls, account)
                self.runners[runner.key] = runner

    # -- used by the pipeline, WS methods, tools ---------------------------------

    def native_commands(self) -> NativeCommands:
        """``commands.native`` and the chat-command menu, for the channels' native menus:
        the commands, then (``commands.nativeSkills``) the default agent's skill commands;
        at most :data:`MENU_MAX` entries (Telegram's limit)."""
        commands = self.pipeline.commands
        menu = list(commands.menu())
        usages = [(c.name, c.usage) for c in commands.all() if c.usage]
        agents = self.dispatcher()
        if self.config.commands.native_skills is not False and isinstance(agents, AgentControl):
            try:
                skills = agents.skill_commands()
            except Exception:  # a broken skills folder must not keep the channels down
                log.exception("skill commands for the native menus")
                skills = []
            menu += [(name, (text or name)[:256]) for name, text in skills]
            usages += [(name, f"/{name} [request]") for name, _ in skills]
        owner_only = frozenset(c.name for c in commands.all() if c.owner_only)
        return NativeCommands(
            self.config.commands.native, tuple(menu[:MENU_MAX]), tuple(usages), owner_only
        )

    def dispatcher(self) -> AgentDispatcher | None:
        if self._dispatcher is not None:
            return self._dispatcher
        agents = self.context.lookup("agents")
        return agents if agents is not None and hasattr(agents, "respond") else None

    def pairing_store(self, channel: str) -> PairingStore:
        store = self._stores.get(channel)
        if store is None:
            store = self._stores[channel] = PairingStore(self.instance.credentials_dir, channel)
        return store

    def spawn(self, coro: Any, *, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not isinstance(error, RetryLaterError):
            log.error("inbound handling failed", exc_info=error)

    def channel_order(self) -> list[str]:
        """Channels with accounts (in registry order), then those with only an error."""
        names = [name for name in registry.names() if any(k[0] == name for k in self.runners)]
        return names + [name for name in self.errors if name not in names]

    def _of(self, name: str) -> list[AccountRunner]:
        return [runner for key, runner in self.runners.items() if key[0] == name]

    def runner(self, channel: str, account_id: str | None = None) -> AccountRunner:
        """The runner of ``channel``'s account (the default one when None)."""
        channel = channel.lower()
        if channel in self.errors and not self._of(channel):
            raise ChannelConfigError(self.errors[channel])
        runners = self._of(channel)
        if not runners:
            if channel not in registry.names():
                raise UnknownChannel(
                    f"unsupported channel: {channel}", hint=f"known channels: {registry.known()}"
                )
            raise UnknownChannel(
                f"channel {channel} is not configured", hint=f"moltbot channels add {channel}"
            )
        if account_id:
            found = self.runners.get((channel, account_id))
            if found is None:
                raise UnknownChannel(f"{channel} has no account {account_id!r}")
            return found
        by_id = {r.account.account_id: r for r in runners}
        return by_id.get(DEFAULT_ACCOUNT_ID) or runners[0]

    def running_channel(self, channel: str, account_id: str | None = None) -> Channel:
        runner = self.runner(channel, account_id)
        if runner.channel is None:
            status = runner.status
            detail = f" ({status.last_error})" if status.last_error else ""
            raise ChannelNotReady(
                f"{channel} account {runner.account.account_id} is {status.state.value}{detail}"
            )
        return runner.channel

    def default_channel(self) -> str:
        """The one configured channel (sections no known channel reads do not count)."""
        known = set(registry.names())
        names = [name for name in self.channel_order() if name in known]
        if len(names) == 1:
            return names[0]
        if not names:
            raise UnknownChannel(
                "no channel is configured", hint="moltbot channels add CHANNEL (see --help)"
            )
        raise UnknownChannel(
            f"several channels are configured ({', '.join(names)}); name one with channel"
        )

    async def send(
        self,
        channel: str | None,
        target: str,
        message: OutboundMessage,
        *,
        account_id: str | None = None,
    ) -> SendResult:
        """Send through a running account. Raises UnknownChannel, ChannelNotReady, TargetError."""
        name = channel or self.default_channel()
        instance = self.running_channel(name, account_id)
        result = await instance.send(target, message)
        instance.status.last_outbound_at = time.time()
        return result

    async def logout(self, channel: str, account_id: str | None = None) -> dict[str, Any]:
        """Stop the account, log it out on the platform and remove its credentials
        from the config (see :func:`moltbot.channels.setup.logout_account`); the
        config reload that follows leaves it unconfigured."""
        from moltbot.channels.setup import logout_account

        runner = self.runner(channel, account_id)
        await runner.stop()
        result = await logout_account(self.instance, self.env, runner.account)
        runner.status.error("logged out")
        return result

    def report(self) -> list[ChannelReport]:
        """Every channel with accounts or an error, in ``channelOrder``
        (shaped into ``channels.status`` by the gateway)."""
        return [
            ChannelReport(
                name,
                tuple(runner.status for runner in self._of(name)),
                self.errors.get(name),
            )
            for name in self.channel_order()
        ]

    async def probe_all(self, timeout: float) -> None:
        """Check every running account's credentials now (``status.probe``)."""

        async def one(runner: AccountRunner) -> None:
            channel = runner.channel
            if channel is None:
                return
            try:
                result = await asyncio.wait_for(channel.probe(), timeout)
            except TimeoutError:
                result = {"ok": False, "error": f"timed out after {timeout:.1f}s"}
            except ChannelError as exc:
                result = {"ok": False, "error": exc.message}
            runner.status.probe = result
            runner.status.last_probe_at = time.time()

        await asyncio.gather(*(one(r) for r in self.runners.values()))

    async def wait_running(self, timeout: float = 10.0) -> bool:
        """Wait until every runnable account has started once (or failed for good)."""
        results = await asyncio.gather(
            *(r.wait_ready(timeout) for r in self.runners.values() if r.runnable)
        )
        return all(results)


def _owners_key(settings: PipelineSettings) -> tuple[bool, tuple[str, ...]]:
    return settings.use_access_groups, settings.owner_allow_from


def pipeline_settings(profile: str, config: Config) -> PipelineSettings:
    """What the inbound pipeline reads of the config."""
    commands = config.commands
    return PipelineSettings(
        profile=profile,
        mention_patterns=tuple(config.messages.group_chat.mention_patterns),
        text_commands=commands.text,
        use_access_groups=commands.use_access_groups,
        owner_allow_from=tuple(commands.owner_allow_from),
    )
