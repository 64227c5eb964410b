"""Sessions: the per-agent index (``sessions.json``) and JSONL transcripts."""

from moltbot.sessions.keys import agent_of, main_key, normalize_agent_id, normalize_key
from moltbot.sessions.origin import Origin
from moltbot.sessions.store import SessionEntry, SessionStore
from moltbot.sessions.transcript import Transcript, TranscriptRead, ordered_messages

__all__ = [
    "Origin",
    "SessionEntry",
    "SessionStore",
    "Transcript",
    "TranscriptRead",
    "agent_of",
    "main_key",
    "normalize_agent_id",
    "normalize_key",
    "ordered_messages",
]
