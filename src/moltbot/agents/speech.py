"""Text to speech through an OpenAI-compatible ``/audio/speech`` endpoint (``tts.*``).

The voice comes from one of ``models.providers`` (``messages.tts.openai.providerId``,
default ``openai``): its base URL and key, with ``messages.tts.openai.model`` and
``voice``. Whether replies are spoken and which backend is active are preferences
kept in ``<state>/settings/tts.json`` (``tts.enable``/``disable``/``setProvider``).
Audio files go to ``<state>/tts/`` (never a shared temp dir).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moltbot.errors import ConfigError, MoltbotError, UsageError
from moltbot.fsutil import write_atomic, write_json_atomic

if TYPE_CHECKING:
    from moltbot.config.schema import Config
    from moltbot.instance.resolve import Instance

OPENAI_MODELS = ("gpt-4o-mini-tts", "tts-1", "tts-1-hd")
OPENAI_VOICES = ("alloy", "ash", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer")
SUPPORTED = ("openai",)

__all__ = ["OPENAI_MODELS", "OPENAI_VOICES", "SUPPORTED", "Speech"]


@dataclass
class Speech:
    instance: Instance
    config: Config
    env: Mapping[str, str]

    @property
    def prefs_path(self) -> Path:
        return self.instance.settings_dir / "tts.json"

    def prefs(self) -> dict[str, Any]:
        try:
            data = json.loads(self.prefs_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def set_pref(self, key: str, value: Any) -> None:
        write_json_atomic(self.prefs_path, {**self.prefs(), key: value, "updatedAtMs": _now()})

    def enabled(self) -> bool:
        return bool(self.prefs().get("enabled", False))

    def active(self) -> str:
        chosen = self.prefs().get("provider")
        return chosen if chosen in SUPPORTED else self.config.messages.tts.provider

    def _provider(self) -> Any:
        from moltbot.agents.models import read_credentials, resolve_providers

        wanted = self.config.messages.tts.openai.provider_id
        providers = resolve_providers(
            self.config, self.env, read_credentials(self.instance.credentials_dir)
        )
        provider = providers.get(wanted)
        if provider is None:
            raise ConfigError(
                f"text to speech uses provider {wanted!r}, which is not configured",
                hint="set messages.tts.openai.providerId to one of models.providers",
            )
        if provider.api != "openai-completions":
            raise ConfigError(f"provider {wanted!r} is not OpenAI-compatible (api {provider.api})")
        return provider

    def configured(self) -> bool:
        try:
            return bool(self._provider().usable)
        except MoltbotError:
            return False

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled(),
            "auto": "always" if self.enabled() else "off",
            "provider": self.active(),
            "fallbackProvider": None,
            "fallbackProviders": [],
            "prefsPath": str(self.prefs_path),
            "hasOpenAIKey": self.configured(),
            "hasElevenLabsKey": False,
            "edgeEnabled": False,
        }

    def providers(self) -> dict[str, Any]:
        return {
            "providers": [
                {
                    "id": "openai",
                    "name": "OpenAI-compatible",
                    "configured": self.configured(),
                    "models": list(OPENAI_MODELS),
                    "voices": list(OPENAI_VOICES),
                }
            ],
            "active": self.active(),
        }

    async def convert(self, text: str) -> dict[str, Any]:
        """Speak ``text``; the audio is written to ``<state>/tts/<id>.mp3``."""
        import openai

        limit = self.config.messages.tts.max_text_length
        if len(text) > limit:
            raise UsageError(f"text is {len(text)} characters; at most {limit} are spoken")
        provider = self._provider()
        if not provider.usable:
            raise ConfigError(
                f"provider {provider.id} has no API key", hint=provider.missing_key_hint()
            )
        settings = self.config.messages.tts.openai
        client = openai.AsyncOpenAI(
            api_key=provider.api_key or "not-needed",
            base_url=provider.base_url,
            default_headers=dict(provider.headers),
            max_retries=0,
            timeout=provider.timeout,
        )
        try:
            response = await client.audio.speech.create(
                model=settings.model, voice=settings.voice, input=text, response_format="mp3"
            )
            audio = await response.aread()
        except openai.APIStatusError as exc:
            raise MoltbotError(
                f"TTS conversion failed: {provider.id} answered {exc.status_code}"
            ) from None
        except openai.APIError as exc:
            raise MoltbotError(f"TTS conversion failed: {exc}") from None
        finally:
            await client.close()
        path = self.instance.state_dir / "tts" / f"{uuid.uuid4().hex}.mp3"
        write_atomic(path, audio)
        return {
            "audioPath": str(path),
            "provider": "openai",
            "outputFormat": "mp3",
            "voiceCompatible": False,
        }


def _now() -> int:
    return int(time.time() * 1000)
