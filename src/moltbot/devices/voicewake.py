"""Voice wake words shared by the nodes of one gateway: ``<state>/settings/voicewake.json``.

Nodes with a microphone (phone apps) listen for these words; the gateway stores
them (``voicewake.get``/``voicewake.set``) and sends each node the list when it
connects and whenever it changes (``voicewake.changed {triggers}``). At most 32
words of at most 64 characters; an empty list means the defaults.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from moltbot.fsutil import write_json_atomic

DEFAULT_TRIGGERS = ("openclaw", "claude", "computer")
MAX_TRIGGERS = 32
MAX_TRIGGER_CHARS = 64

__all__ = ["DEFAULT_TRIGGERS", "VoiceWake", "normalize_triggers"]


def normalize_triggers(words: list[str]) -> list[str]:
    cleaned = [w.strip()[:MAX_TRIGGER_CHARS] for w in words if w.strip()][:MAX_TRIGGERS]
    return cleaned or list(DEFAULT_TRIGGERS)


class VoiceWake:
    def __init__(self, path: Path) -> None:
        self.path = path

    def triggers(self) -> list[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return list(DEFAULT_TRIGGERS)
        words = data.get("triggers") if isinstance(data, dict) else None
        if not isinstance(words, list):
            return list(DEFAULT_TRIGGERS)
        return normalize_triggers([w for w in words if isinstance(w, str)])

    def set(self, words: list[str]) -> list[str]:
        triggers = normalize_triggers(words)
        write_json_atomic(self.path, {"triggers": triggers, "updatedAtMs": int(time.time() * 1000)})
        return triggers
