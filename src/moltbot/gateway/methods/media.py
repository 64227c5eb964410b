"""Voice: ``talk.mode``, ``voicewake.get|set`` and ``tts.*``.

Talk mode and wake words are for nodes with a microphone (phone apps): the gateway
keeps the wake words (``<state>/settings/voicewake.json``) and announces changes
(``voicewake.changed``, also sent to each node as it connects); ``talk.mode`` is
relayed to every client (``talk.mode``). Text to speech uses an OpenAI-compatible
speech endpoint (:mod:`moltbot.agents.speech`); the ElevenLabs and Edge backends
of upstream are answered "not supported by this gateway".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moltbot.errors import MoltbotError, UsageError
from moltbot.gateway.methods.registry import MethodCall, NoParams, Params, method
from moltbot.gateway.state import now_ms
from moltbot.subsystems import NODES
from moltbot.validation import Field

if TYPE_CHECKING:
    from moltbot.agents.speech import Speech

MOBILE = ("ios", "android")


class TalkModeParams(Params):
    enabled: bool
    phase: str | None = None


@method("talk.mode", params=TalkModeParams, scope="write")
def talk_mode(call: MethodCall, params: TalkModeParams) -> dict[str, Any]:
    """Relay talk mode to the clients. A WebChat/Control UI client needs a connected
    phone node to talk through (as upstream)."""
    from moltbot.devices.registry import platform_id

    if call.connection.mode in ("webchat", "ui"):
        nodes = call.runtime.subsystem(NODES)
        phones = [
            n
            for n in (nodes.connected() if nodes else [])
            if platform_id(n.platform, n.device_family) in MOBILE
        ]
        if not phones:
            raise MoltbotError("talk disabled: no connected iOS/Android nodes")
    payload = {"enabled": params.enabled, "phase": params.phase, "ts": now_ms()}
    call.runtime.broadcast("talk.mode", payload, drop_if_slow=True)
    return payload


@method("voicewake.get", scope="read")
def voicewake_get(call: MethodCall, params: NoParams) -> dict[str, Any]:
    return {"triggers": call.runtime.voicewake.triggers()}


class VoicewakeSetParams(Params):
    triggers: list[Any]


@method("voicewake.set", params=VoicewakeSetParams, scope="write")
def voicewake_set(call: MethodCall, params: VoicewakeSetParams) -> dict[str, Any]:
    words = [w for w in params.triggers if isinstance(w, str)]
    triggers = call.runtime.voicewake.set(words)
    call.runtime.broadcast("voicewake.changed", {"triggers": triggers}, drop_if_slow=True)
    return {"triggers": triggers}


def _speech(call: MethodCall) -> Speech:
    from moltbot.agents.speech import Speech  # loaded with the first TTS call, not at start

    runtime = call.runtime
    return Speech(runtime.instance, runtime.config, runtime.env)


@method("tts.status", scope="read")
def tts_status(call: MethodCall, params: NoParams) -> dict[str, Any]:
    return _speech(call).status()


@method("tts.providers", scope="read")
def tts_providers(call: MethodCall, params: NoParams) -> dict[str, Any]:
    return _speech(call).providers()


@method("tts.enable", scope="write")
def tts_enable(call: MethodCall, params: NoParams) -> dict[str, Any]:
    _speech(call).set_pref("enabled", True)
    return {"enabled": True}


@method("tts.disable", scope="write")
def tts_disable(call: MethodCall, params: NoParams) -> dict[str, Any]:
    _speech(call).set_pref("enabled", False)
    return {"enabled": False}


class SetProviderParams(Params):
    provider: str


@method("tts.setProvider", params=SetProviderParams, scope="write")
def tts_set_provider(call: MethodCall, params: SetProviderParams) -> dict[str, Any]:
    provider = params.provider.strip()
    if provider in ("elevenlabs", "edge"):
        raise UsageError(f"TTS provider {provider} is not supported by this gateway (use openai)")
    from moltbot.agents.speech import SUPPORTED

    if provider not in SUPPORTED:
        raise UsageError("Invalid provider. Use openai, elevenlabs, or edge.")
    _speech(call).set_pref("provider", provider)
    return {"provider": provider}


class ConvertParams(Params):
    text: str = Field(default="")
    channel: str | None = None


@method("tts.convert", params=ConvertParams, scope="write")
async def tts_convert(call: MethodCall, params: ConvertParams) -> dict[str, Any]:
    text = params.text.strip()
    if not text:
        raise UsageError("tts.convert requires text")
    return await _speech(call).convert(text)
