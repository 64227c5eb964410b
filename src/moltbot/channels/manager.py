"""The ``channels`` subsystem: starts every configured channel account,
supervises it, and reports its status.

Each account runs in its own supervisor task. A start or connection failure
is retried with exponential backoff (1 s doubling to 60 s, with jitter) and
reported in ``channels.status`` (``state: retrying``, ``lastError``,
``reconnectAttempts``, ``nextRetryAt``); refused credentials stop the account
(``state: failed``) until the config changes. Nothing a channel does can take
the gateway down: the subsystem itself stays ``running``.

An inbound message is confirmed to the channel (its ``on_inbound`` returns) once
the agent has queued it durably; the reply is sent in the background. A reload
that replaces an account stops its intake at once but keeps the old connection
open until the replies it owes are sent; a restart drains (:meth:`ChannelManager.drain`)
those replies first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from moltbot.channels import registry, routing
from moltbot.channels.base import Channel, ChannelContext
from moltbot.channels.config import DEFAULT_ACCOUNT_ID, ResolvedAccount
from moltbot.channels.dispatch import AgentDispatcher, InboundPipeline, PipelineSettings
from moltbot.channels.errors import (
    ChannelAuthFailed,
    ChannelConfigError,
    ChannelError,
    ChannelNotReady,
    UnknownChannel,
)
from moltbot.channels.pairing import PairingStore
from moltbot.channels.types import (
    AccountState,
    AccountStatus,
    InboundMessage,
    OutboundMessage,
    SendResult,
)
from moltbot.config.schema import Config
from moltbot.errors import RetryLaterError
from moltbot.lifecycle import State, SubsystemContext

log = logging.getLogger(__name__)

DRAIN_SLACK_S = 10.0
"""How much longer than the agents' grace a restart waits for channel replies."""


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.1
    healthy_after: float = 30.0
    """A run that stayed up this long resets the delay to ``initial``."""

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * self.factor ** max(0, attempt - 1))
        return base * (1 + random.uniform(-self.jitter, self.jitter))


class _AccountLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['channel']}:{self.extra['account']}] {msg}", kwargs


class AccountRunner:
    """Runs and supervises one channel account."""

    def __init__(
        self, manager: ChannelManager, cls: type[Channel], account: ResolvedAccount[Any]
    ) -> None:
        self.manager = manager
        self.cls = cls
        self.account = account
        config = account.config
        missing = config.missing()
        self.status = AccountStatus(
            channel=cls.id,
            account_id=account.account_id,
            name=config.name,
            enabled=config.enabled,
            configured=not missing,
            mode=getattr(config, "mode", None),
            token_source=account.token_source,
            dm_policy=config.dm_policy,
        )
        if not config.enabled:
            self.status.state = AccountState.DISABLED
        elif missing:
            self.status.state = AccountState.FAILED
            self.status.error("not configured: missing " + ", ".join(missing))
        self.channel: Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._inbound: dict[Channel, set[asyncio.Task[Any]]] = {}
        """Replies in progress, by the channel object that must send them."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.cls.id, self.account.account_id)

    @property
    def runnable(self) -> bool:
        return self.status.enabled and self.status.configured

    def start(self) -> None:
        if self.runnable and self._task is None:
            self._task = asyncio.create_task(
                self._supervise(), name=f"channel:{self.cls.id}:{self.account.account_id}"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self.status.state = AccountState.STOPPING
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.status.state = AccountState.STOPPED
            self.status.last_stop_at = time.time()
            self.status.connected = False

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until the account has started once (tests, ``message send``)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self._ready.is_set()

    def _make_channel(self) -> Channel:
        logger = _AccountLog(
            logging.getLogger(f"moltbot.channels.{self.cls.id}"),
            {"channel": self.cls.id, "account": self.account.account_id},
        )
        context = ChannelContext(
            account=self.account,
            status=self.status,
            on_inbound=self._on_inbound,
            state_dir=self.manager.instance.state_dir / self.cls.id,
            logger=logger,
        )
        return self.cls(context)

    async def _on_inbound(self, message: InboundMessage) -> None:
        """Hand ``message`` to the pipeline; return once it is handled or durably
        queued for the agent. Raises :class:`ChannelNotReady` when it was not taken
        (the gateway is restarting): the channel must not confirm it."""
        channel = self.channel
        if channel is None:
            raise ChannelNotReady("the account is stopping")
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[None] = loop.create_future()

        def on_accepted() -> None:
            if not accepted.done():
                accepted.set_result(None)

        task = self.manager.spawn(
            self.manager.pipeline.handle(channel, message, on_accepted),
            name=f"inbound:{message.conversation_key}",
        )
        owed = self._inbound.setdefault(channel, set())
        owed.add(task)
        task.add_done_callback(owed.discard)
        await asyncio.wait({accepted, task}, return_when=asyncio.FIRST_COMPLETED)
        if accepted.done():
            return
        if task.cancelled():  # the gateway is stopping: it was never queued
            raise ChannelNotReady("the message was not queued: the gateway is stopping")
        error = task.exception()
        if isinstance(error, RetryLaterError):
            raise ChannelNotReady(error.message, retry_after=error.retry_after)
        # Any other failure was logged and answered; a redelivery would fail again.

    async def _supervise(self) -> None:
        backoff = self.manager.backoff
        attempt = 0
        status = self.status
        while True:
            status.state = AccountState.STARTING
            status.next_retry_at = None
            started = time.monotonic()
            channel = self._make_channel()
            try:
                await channel.start()
                self.channel = channel
                status.state = AccountState.RUNNING
                status.last_start_at = time.time()
                self._ready.set()
                log.info("%s account %s running", self.cls.id, self.account.account_id)
                await channel.serve()
                raise ChannelNotReady("the connection ended")
            except asyncio.CancelledError:
                self.channel = None
                await self._retire(channel)
                raise
            except ChannelAuthFailed as exc:
                status.error(exc.message)
                status.state = AccountState.FAILED
                status.connected = False
                self.channel = None
                await self._retire(channel)
                log.error(
                    "%s account %s: %s (not retrying; fix the token)",
                    self.cls.id,
                    self.account.account_id,
                    exc.message,
                )
                self._ready.set()
                return
            except Exception as exc:
                message = (
                    exc.message
                    if isinstance(exc, ChannelError)
                    else (str(exc) or type(exc).__name__)
                )
                status.error(message)
                status.connected = False
                self.channel = None
                await self._retire(channel)
                retry_after = exc.retry_after if isinstance(exc, ChannelNotReady) else None
            if time.monotonic() - started >= backoff.healthy_after:
                attempt = 0
            attempt += 1
            status.reconnect_attempts += 1
            status.restarts += 1
            delay = max(backoff.delay(attempt), retry_after or 0.0)
            status.state = AccountState.RETRYING
            status.next_retry_at = time.time() + delay
            log.warning(
                "%s account %s failed (%s); retrying in %.1fs",
                self.cls.id,
                self.account.account_id,
                status.last_error,
                delay,
            )
            await asyncio.sleep(delay)

    async def _retire(self, channel: Channel) -> None:
        """Close ``channel`` now, or once the replies it owes are sent (in the background)."""
        owed = {t for t in self._inbound.pop(channel, set()) if not t.done()}
        if owed:
            self.manager.spawn(self._close_after(channel, owed), name=f"retire:{self.cls.id}")
        else:
            await self._close(channel)

    async def _close_after(self, channel: Channel, owed: set[asyncio.Task[Any]]) -> None:
        """Close a replaced connection once the replies it owes are sent."""
        try:
            await asyncio.wait(owed)
        finally:
            await self._close(channel)

    async def _close(self, channel: Channel) -> None:
        try:
            await asyncio.shield(channel.stop())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "%s account %s: error while stopping", self.cls.id, self.account.account_id
            )


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
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stores: dict[str, PairingStore] = {}
        self._routing = routing.RoutingTable()
        self.inflight: dict[str, asyncio.Future[Any]] = {}
        self.pipeline = InboundPipeline(
            routing_table=lambda: self._routing,
            dispatcher=self.dispatcher,
            pairing_store=self.pairing_store,
            settings=PipelineSettings(
                profile=self.instance.profile, mention_patterns=_mention_patterns(self.config)
            ),
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
            "errors": dict(self.errors),
            "channels": {
                name: [r.status.snapshot() for r in self._of(name)] for name in self.channel_order()
            },
        }

    async def reconfigure(self, config: Any) -> bool:
        """Apply a changed config live: restart changed accounts, start new ones, stop removed."""
        old = {key: runner.account for key, runner in self.runners.items()}
        self.config = config
        self.pipeline.settings = PipelineSettings(
            profile=self.instance.profile, mention_patterns=_mention_patterns(config)
        )
        previous = self.runners
        self.runners = {}
        self._load(config)
        keep: dict[tuple[str, str], AccountRunner] = {}
        for key, runner in self.runners.items():
            if (
                key in old
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
        try:
            self._routing = routing.RoutingTable.from_config(config)
        except ChannelConfigError as exc:
            self.errors["bindings"] = exc.message
            self._routing = routing.RoutingTable()
        channels = config.channels or {}
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
        names = [name for name in registry.CHANNELS if any(k[0] == name for k in self.runners)]
        return names + [
            name for name in self.errors if name in registry.CHANNELS and name not in names
        ]

    def _of(self, name: str) -> list[AccountRunner]:
        return [runner for key, runner in self.runners.items() if key[0] == name]

    def runner(self, channel: str, account_id: str | None = None) -> AccountRunner:
        """The runner of ``channel``'s account (the default one when None)."""
        channel = channel.lower()
        if channel in self.errors and not self._of(channel):
            raise ChannelConfigError(self.errors[channel])
        runners = self._of(channel)
        if not runners:
            if channel not in registry.CHANNELS:
                raise UnknownChannel(f"unsupported channel: {channel}")
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
        names = self.channel_order()
        if len(names) == 1:
            return names[0]
        if not names:
            raise UnknownChannel("no channel is configured", hint="moltbot channels add telegram")
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

    async def channels_status(
        self, *, probe: bool = False, timeout_ms: int = 10_000
    ) -> dict[str, Any]:
        """The ``channels.status`` payload (protocol §4 Messaging)."""
        if probe:
            await self._probe_all(timeout_ms / 1000)
        return status_payload(
            self.channel_order(),
            {name: [r.status for r in self._of(name)] for name in self.channel_order()},
            self.errors,
        )

    def health_summary(self) -> dict[str, Any]:
        """The channel part of the gateway's ``health`` payload."""
        payload = status_payload(
            self.channel_order(),
            {name: [r.status for r in self._of(name)] for name in self.channel_order()},
            self.errors,
        )
        return {key: payload[key] for key in ("channels", "channelOrder", "channelLabels")}

    async def _probe_all(self, timeout: float) -> None:
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


def status_payload(
    order: list[str],
    statuses: Mapping[str, list[AccountStatus]],
    errors: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build the ``channels.status`` shape from account statuses."""
    errors = errors or {}
    channels: dict[str, Any] = {}
    accounts: dict[str, Any] = {}
    defaults: dict[str, str] = {}
    for name in order:
        items = statuses.get(name, [])
        snaps = [s.snapshot() for s in items]
        accounts[name] = snaps
        ids = [s.account_id for s in items]
        defaults[name] = DEFAULT_ACCOUNT_ID if DEFAULT_ACCOUNT_ID in ids or not ids else ids[0]
        errs = [s.last_error for s in items if s.last_error]
        states = {s.state for s in items}
        overall = next(
            (
                state.value
                for state in (
                    AccountState.RUNNING,
                    AccountState.RETRYING,
                    AccountState.STARTING,
                    AccountState.FAILED,
                    AccountState.DISABLED,
                )
                if state in states
            ),
            AccountState.FAILED.value if errors.get(name) else AccountState.STOPPED.value,
        )
        channels[name] = {
            "state": overall,
            "configured": any(s.configured for s in items),
            "running": any(s.state is AccountState.RUNNING for s in items),
            "connected": any(s.connected for s in items),
            "accounts": len(items),
            "lastError": errors.get(name) or (errs[0] if errs else None),
        }
    return {
        "ts": int(time.time() * 1000),
        "channelOrder": list(order),
        "channelLabels": {name: registry.LABELS.get(name, name.title()) for name in order},
        "channelDetailLabels": {name: _detail(name) for name in order},
        "channelMeta": [
            {
                "id": name,
                "label": registry.LABELS.get(name, name.title()),
                "detailLabel": _detail(name),
            }
            for name in order
        ],
        "channels": channels,
        "channelAccounts": accounts,
        "channelDefaultAccountId": defaults,
    }


def _detail(name: str) -> str:
    return {"telegram": "Telegram Bot", "slack": "Slack App"}.get(name, name.title())


def _mention_patterns(config: Config) -> tuple[str, ...]:
    return tuple(config.messages.group_chat.mention_patterns)


ManagerFactory = Callable[[SubsystemContext], ChannelManager]
