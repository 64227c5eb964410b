"""Supervision of one channel account: start, serve, retry with backoff, retire.

:class:`AccountRunner` runs one account in its own task. A start or connection
failure is retried with exponential backoff (:class:`Backoff`: 1 s doubling to
60 s, with jitter; a run that stayed up 30 s starts over at 1 s) and recorded in
the account's :class:`~moltbot.channels.types.AccountStatus` (``retrying``,
``lastError``, ``reconnectAttempts``, ``nextRetryAt``); refused credentials
(:class:`~moltbot.channels.errors.ChannelAuthFailed`) stop the account
(``failed``) until the config changes.

An inbound message is confirmed to the channel (its ``on_inbound`` returns) once
the pipeline has queued it durably for the agent; the reply is sent in the
background. A replaced connection keeps running until the replies it owes are
sent (:meth:`AccountRunner._retire`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moltbot.channels.base import Channel, channel_context
from moltbot.channels.config import ResolvedAccount
from moltbot.channels.errors import ChannelAuthFailed, ChannelError, ChannelNotReady
from moltbot.channels.manifest import ChannelManifest
from moltbot.channels.types import AccountState, AccountStatus, InboundMessage
from moltbot.errors import RetryLaterError

if TYPE_CHECKING:
    from moltbot.channels.manager import ChannelManager

log = logging.getLogger(__name__)


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


class AccountRunner:
    """Runs and supervises one channel account."""

    def __init__(
        self, manager: ChannelManager, cls: type[Channel], account: ResolvedAccount[Any]
    ) -> None:
        self.manager = manager
        self.cls = cls
        self.manifest: ChannelManifest = cls.manifest
        self.account = account
        config = account.config
        missing = config.missing()
        self.status = AccountStatus(
            channel=self.manifest.id,
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
        return (self.manifest.id, self.account.account_id)

    @property
    def runnable(self) -> bool:
        return self.status.enabled and self.status.configured

    def start(self) -> None:
        if self.runnable and self._task is None:
            self._task = asyncio.create_task(
                self._supervise(), name=f"channel:{self.manifest.id}:{self.account.account_id}"
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
        context = channel_context(
            self.manager.instance,
            self.account,
            self.status,
            self._on_inbound,
            self.manager.native_commands(),
            self.manager.pipeline.owners,
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
                log.info("%s account %s running", self.manifest.id, self.account.account_id)
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
                    self.manifest.id,
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
                self.manifest.id,
                self.account.account_id,
                status.last_error,
                delay,
            )
            await asyncio.sleep(delay)

    async def _retire(self, channel: Channel) -> None:
        """Close ``channel`` now, or once the replies it owes are sent (in the background)."""
        owed = {t for t in self._inbound.pop(channel, set()) if not t.done()}
        if owed:
            self.manager.spawn(self._close_after(channel, owed), name=f"retire:{self.manifest.id}")
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
                "%s account %s: error while stopping", self.manifest.id, self.account.account_id
            )
