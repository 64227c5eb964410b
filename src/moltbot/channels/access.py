"""Access control: who may talk to the bot, where. Pure functions.

DMs follow the account's ``dmPolicy``:

- ``pairing``: senders on the allowlist (config ``allowFrom`` plus senders
  approved with ``moltbot pairing approve``) pass; anyone else gets a one-time
  pairing code and the message is dropped;
- ``allowlist``: only the allowlist passes, others are dropped silently;
- ``open``: everyone passes (``allowFrom`` must contain ``"*"``);
- ``disabled``: every DM is dropped.

Groups: ``groupPolicy`` ``disabled`` drops everything; if the channel has a
groups map (Telegram ``groups``, Slack ``channels``) only listed groups (or
``"*"``) pass; with ``allowlist`` (default) only senders in ``groupAllowFrom``
(default: the DM allowlist) or the group's own ``allowFrom`` may trigger the
bot; finally, when the group requires a mention (default), an unmentioned
message is kept as context only (``history``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from moltbot.channels.config import DmPolicy, GroupConfig, GroupPolicy

DmAction = Literal["allow", "pair", "drop"]
GroupAction = Literal["reply", "history", "drop"]


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str
    group: GroupConfig | None = None


def allowlist_matches(entries: Iterable[str], sender_keys: Collection[str]) -> bool:
    """``entries`` and ``sender_keys`` are already normalised by the channel."""
    keys = {key for key in sender_keys if key}
    for entry in entries:
        if entry == "*" or entry in keys:
            return True
    return False


def decide_dm(
    policy: DmPolicy, sender_keys: Collection[str], allow_from: Iterable[str], paired: Iterable[str]
) -> Decision:
    if policy == "disabled":
        return Decision("drop", "dms disabled")
    if policy == "open":
        return Decision("allow", "open")
    allowed = allowlist_matches([*allow_from, *paired], sender_keys)
    if allowed:
        return Decision("allow", "allowlisted")
    if policy == "pairing":
        return Decision("pair", "unknown sender")
    return Decision("drop", "not on allowlist")


def group_entry(
    groups: Mapping[str, GroupConfig] | None,
    group_id: str,
    topic_id: str | None = None,
    *,
    aliases: Iterable[str] = (),
) -> GroupConfig | None:
    """The config of a group (its own entry, else ``"*"``), with a topic's entry laid over."""
    if not groups:
        return None
    entry = groups.get(group_id)
    if entry is None:
        entry = next((groups[a] for a in aliases if a in groups), None)
    if entry is None:
        entry = groups.get("*")
    if entry is None:
        return None
    if topic_id and (topic := entry.topics.get(topic_id) or entry.topics.get("*")):
        merged = entry.model_dump(exclude={"topics"}, exclude_unset=False)
        merged.update(topic.model_dump(exclude={"topics"}, exclude_unset=True))
        return GroupConfig.model_validate(merged)
    return entry


def decide_group(
    *,
    policy: GroupPolicy,
    groups: Mapping[str, GroupConfig] | None,
    group_id: str,
    topic_id: str | None = None,
    group_aliases: Iterable[str] = (),
    sender_keys: Collection[str],
    group_allow_from: Iterable[str],
    mentioned: bool,
    can_detect_mention: bool = True,
    bypass_mention: bool = False,
) -> Decision:
    if policy == "disabled":
        return Decision("drop", "groups disabled")
    entry = group_entry(groups, group_id, topic_id, aliases=group_aliases)
    if groups and entry is None:
        return Decision("drop", "group not in allowlist")
    if entry is not None and not entry.enabled:
        return Decision("drop", "group disabled", entry)
    if entry is not None and entry.allow_from is not None:
        if not allowlist_matches(entry.allow_from, sender_keys):
            return Decision("drop", "sender not in group allowFrom", entry)
    elif policy == "allowlist" and not allowlist_matches(group_allow_from, sender_keys):
        return Decision("drop", "sender not in groupAllowFrom", entry)
    require = entry.require_mention if entry and entry.require_mention is not None else True
    if require and can_detect_mention and not (mentioned or bypass_mention):
        return Decision("history", "not mentioned", entry)
    return Decision("reply", "mentioned" if mentioned else "no mention required", entry)


def matches_patterns(text: str, patterns: Iterable[str]) -> bool:
    """Case-insensitive regex mention patterns (``groupChat.mentionPatterns``).

    Invalid patterns are skipped."""
    for pattern in patterns:
        try:
            if re.search(pattern, text, re.IGNORECASE):
                return True
        except re.error:
            continue
    return False
