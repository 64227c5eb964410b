"""One model call of a run, over the agent's model chain.

The models are tried in order. One that cools down is skipped (see
:mod:`moltbot.agents.failover`), as is one whose provider is unknown or has no
key. A failover-class :class:`ProviderError` starts the model's cooldown and
moves on to the next model, taking back the text it had streamed; any other
``ProviderError`` ends the call. The last model left gets the SDK's retries.
"""

from __future__ import annotations

import logging

from moltbot.agents.events import RunEvents
from moltbot.agents.model_pool import ModelPool
from moltbot.agents.models import ModelRef, ResolvedProvider
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


class NotConfigured(Exception):
    """No model of the chain can be called; ``text`` explains how to configure one."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class AllModelsFailed(Exception):
    """Every model of the chain failed; ``kinds`` are the failures' kinds, in order."""

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
            max_retries=0 if remaining else 2,
            timeout=provider.timeout,
        )
        text_before = run.text
        tried_any = True
        run.mark("requested")
        try:
            client = models.client(provider)
            finished: Finished | None = None
            async for event in client.stream(request):
                if isinstance(event, TextDelta):
                    events.text(run, event.text)
                elif isinstance(event, Finished):
                    finished = event
            if finished is None:
                raise ProviderError("malformed", "the stream ended without a result")
        except ProviderError as exc:
            exc.message = scrub(exc.message, provider.api_key)
            failures.append(f"{ref}: {exc.describe()}")
            kinds.append(exc.kind)
            if exc.failover:
                wait = models.cooldowns.fail(str(ref), exc.kind, exc.retry_after)
                log.warning(
                    "run %s: model %s failed (%s); cooling down %.0fs%s",
                    run.id,
                    ref,
                    exc.describe(),
                    wait,
                    f"; trying {remaining[0]}" if remaining else "",
                )
            else:
                log.warning("run %s: model %s failed (%s)", run.id, ref, exc.describe())
                raise
            if run.text != text_before:  # partial output from the failed model
                events.text_reset(run, text_before)
            continue
        models.cooldowns.succeed(str(ref))
        if failures:
            log.info("run %s: answered by %s after: %s", run.id, ref, "; ".join(failures))
        return finished, ref, provider
    if not tried_any:
        raise NotConfigured(models.unconfigured_text(chain))
    raise AllModelsFailed("every model failed: " + "; ".join(failures), kinds)
