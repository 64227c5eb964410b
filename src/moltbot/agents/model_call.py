"""One model call of a run, over the agent's model chain.

The models are tried in order. One that cools down is skipped (see
:mod:`moltbot.agents.failover`), as is one whose provider is unknown or has no
key. A failure is judged by where it happened (:class:`ProviderError`):

- the provider's (an HTTP status, its stream, its network) and failover-class:
  the model cools down and the next model is tried, taking back the text the
  failed one had streamed. The *last* model left is first retried with backoff
  (``agents.defaults.modelRetry``) when the failure is transient (429, 5xx,
  timeout, a broken stream), and cools down only when every try failed;
- the provider's and not failover-class (a bad request): the call ends;
- ours (``internal``: a closed client, a bug): the call ends and no model is
  blamed. Cancellation (an abort, a restart) is never caught here.
"""

from __future__ import annotations

import asyncio
import logging

from moltbot.agents.events import RunEvents
from moltbot.agents.model_pool import ModelPool
from moltbot.agents.models import ModelRef, ResolvedProvider, accepts_images
from moltbot.agents.providers import (
    Finished,
    Message,
    ModelRequest,
    ProviderError,
    TextDelta,
    ToolSpec,
)
from moltbot.agents.providers.base import scrub
from moltbot.agents.run import Run
from moltbot.config.schema import ModelRetry
from moltbot.errors import ConfigError, MoltbotError


class NotConfigured(ConfigError):
    """No model of the chain can be called; ``text`` explains how to configure one
    (the run answers with that notice instead of failing)."""

    def __init__(self, text: str) -> None:
        super().__init__(text, hint="run `moltbot onboard` or set agents.defaults.model")
        self.text = text


class AllModelsFailed(MoltbotError):
    """Every model of the chain failed (``UNAVAILABLE``); ``kinds`` are the failures'
    kinds, in order."""

    def __init__(self, message: str, kinds: list[str]) -> None:
        super().__init__(message)
        self.kinds = kinds

    @property
    def kind(self) -> str:
        """``rate_limit`` when every model was rate-limited, else the last failure's kind."""
        if self.kinds and all(k == "rate_limit" for k in self.kinds):
            return "rate_limit"
        return self.kinds[-1] if self.kinds else "server"


async def call_models(
    run: Run,
    chain: list[ModelRef],
    system: str,
    messages: list[Message],
    tools: tuple[ToolSpec, ...],
    *,
    models: ModelPool,
    events: RunEvents,
    log: logging.Logger,
) -> tuple[Finished, ModelRef, ResolvedProvider]:
    """The answer of the first model that gives one, streaming its text into ``run``.

    Raises :class:`NotConfigured` when no model could be tried,
    :class:`AllModelsFailed` when every one failed, and a non-failover
    :class:`ProviderError` as it comes.
    """
    failures: list[str] = []
    kinds: list[str] = []
    order = models.cooldowns.order(chain, str)
    tried_any = False
    for index, (ref, cooling) in enumerate(order):
        if cooling:
            why = f"cooling down {models.cooldowns.cooling(str(ref)):.0f}s"
            log.info("run %s: skipping model %s (%s)", run.id, ref, why)
            failures.append(f"{ref}: {why}")
            continue
        provider = models.provider(ref)
        if provider is None or not provider.usable:
            why = "unknown provider" if provider is None else "no API key"
            log.warning("run %s: model %s unusable (%s)", run.id, ref, why)
            failures.append(f"{ref}: {why}")
            continue
        remaining = [r for r, c in order[index + 1 :] if not c]
        definition = provider.models.get(ref.model)
        request = ModelRequest(
            model=ref.model,
            system=system,
            messages=tuple(messages),
            tools=tools,
            max_tokens=definition.max_tokens if definition else None,
            timeout=provider.timeout,
            images=accepts_images(provider, ref.model),
            reasoning=run.thinking if definition and definition.reasoning else None,
        )
        tried_any = True
        retry = models.config.agents.defaults.model_retry
        attempts = 1 if remaining else retry.attempts
        for attempt in range(1, attempts + 1):
            text_before = run.text
            run.mark("requested")
            try:
                finished = await _stream(run, models, provider, request, events)
            except ProviderError as exc:
                exc.message = scrub(exc.message, provider.api_key)
                if run.text != text_before:  # partial output of the failed try
                    events.text_reset(run, text_before)
                if exc.internal or not exc.failover:
                    log.warning("run %s: model %s failed (%s)", run.id, ref, exc.describe())
                    raise
                delay = backoff(retry, attempt, exc.retry_after) if exc.transient else None
                if attempt < attempts and delay is not None:
                    log.warning(
                        "run %s: model %s failed (%s); retry %d/%d in %.1fs",
                        run.id,
                        ref,
                        exc.describe(),
                        attempt,
                        attempts - 1,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                failures.append(f"{ref}: {exc.describe()}")
                kinds.append(exc.kind)
                wait = models.cooldowns.fail(str(ref), exc.kind, exc.retry_after)
                log.warning(
                    "run %s: model %s failed (%s); cooling down %.0fs%s",
                    run.id,
                    ref,
                    exc.describe(),
                    wait,
                    f"; trying {remaining[0]}" if remaining else "",
                )
                break
            models.cooldowns.succeed(str(ref))
            if failures or attempt > 1:
                log.info(
                    "run %s: answered by %s%s",
                    run.id,
                    ref,
                    f" after: {'; '.join(failures)}" if failures else f" on try {attempt}",
                )
            return finished, ref, provider
    if not tried_any:
        raise NotConfigured(models.unconfigured_text(chain))
    raise AllModelsFailed("every model failed: " + "; ".join(failures), kinds)


async def _stream(
    run: Run,
    models: ModelPool,
    provider: ResolvedProvider,
    request: ModelRequest,
    events: RunEvents,
) -> Finished:
    """One request: its text streamed into ``run``, its result returned."""
    finished: Finished | None = None
    async with models.lease(provider) as client:
        async for event in client.stream(request):
            if isinstance(event, TextDelta):
                events.text(run, event.text)
            elif isinstance(event, Finished):
                finished = event
    if finished is None:
        raise ProviderError("malformed", "the stream ended without a result")
    return finished


def backoff(retry: ModelRetry, attempt: int, retry_after: float | None) -> float | None:
    """Seconds to wait before try ``attempt + 1``; None when the provider asks for
    longer than ``maxDelayMs`` (then retrying now is pointless)."""
    delay = min(retry.max_delay_ms, retry.min_delay_ms * 2 ** (attempt - 1)) / 1000
    if retry_after:
        if retry_after > retry.max_delay_ms / 1000:
            return None
        delay = max(delay, retry_after)
    return delay
