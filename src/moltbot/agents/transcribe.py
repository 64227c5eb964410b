"""Audio attachments to text, through an OpenAI-compatible ``audio/transcriptions``.

``tools.media.audio.models`` lists ``{provider, model}`` entries, tried in order;
the provider is one of ``models.providers`` (its ``baseUrl`` and key) with
``api: openai-completions``. Without entries (or with ``enabled: false``)
nothing is transcribed and the model sees the audio described. A failure is
logged and the next entry tried; audio no entry could transcribe stays
described, never blocks the message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from moltbot.sessions.media import StoredMedia

if TYPE_CHECKING:
    from moltbot.agents.model_pool import ModelPool
    from moltbot.config.schema import Config

AUDIO_KINDS = ("audio", "voice")
TIMEOUT_S = 60.0


async def transcribe_all(
    media: Sequence[StoredMedia], config: Config, models: ModelPool, log: logging.Logger
) -> tuple[StoredMedia, ...]:
    """``media`` with a ``transcript`` on each audio item a configured model transcribed."""
    audio = config.tools.media.audio
    if not audio.enabled or not audio.models:
        return tuple(media)
    out = []
    for item in media:
        if item.kind in AUDIO_KINDS and not item.transcript and item.size <= audio.max_bytes:
            text = await _transcribe(item, config, models, log)
            if text:
                item = replace(item, transcript=text)
        out.append(item)
    return tuple(out)


async def _transcribe(
    item: StoredMedia, config: Config, models: ModelPool, log: logging.Logger
) -> str | None:
    from openai import AsyncOpenAI, OpenAIError

    data = await asyncio.to_thread(_read, item.path)
    if data is None:
        return None
    for entry in config.tools.media.audio.models:
        provider = models.providers.get(entry.provider)
        if provider is None or provider.api != "openai-completions" or not provider.usable:
            log.warning(
                "audio transcription: provider %s is not an OpenAI-compatible provider "
                "with a key; skipped",
                entry.provider,
            )
            continue
        client = AsyncOpenAI(
            base_url=provider.base_url,
            api_key=provider.api_key or "none",
            default_headers=dict(provider.headers),
            timeout=TIMEOUT_S,
            max_retries=1,
        )
        try:
            result: Any = await client.audio.transcriptions.create(
                model=entry.model,
                file=(item.file_name or f"audio{_suffix(item.path)}", data, item.mime_type),
            )
        except OpenAIError as exc:
            log.warning(
                "audio transcription with %s/%s failed: %s", entry.provider, entry.model, exc
            )
            continue
        finally:
            await client.close()
        text = str(getattr(result, "text", "") or "").strip()
        if text:
            log.info("transcribed %s with %s/%s", item.kind, entry.provider, entry.model)
            return text
    return None


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _suffix(path: str) -> str:
    dot = path.rfind(".")
    return path[dot:] if dot > path.rfind("/") else ""
