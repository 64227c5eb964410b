"""DM policy, group policy and mention gating: pure decisions."""

from __future__ import annotations

import pytest

from moltbot.channels.access import decide_dm, decide_group, group_entry, matches_patterns
from moltbot.channels.config import GroupConfig


@pytest.mark.parametrize(
    ("policy", "sender", "allow", "paired", "action"),
    [
        ("pairing", {"1"}, [], [], "pair"),
        ("pairing", {"1"}, ["1"], [], "allow"),
        ("pairing", {"1", "@ann"}, ["@ann"], [], "allow"),
        ("pairing", {"1"}, [], ["1"], "allow"),
        ("allowlist", {"1"}, [], [], "drop"),
        ("allowlist", {"1"}, [], ["1"], "allow"),
        ("allowlist", {"2"}, ["*"], [], "allow"),
        ("open", {"9"}, ["*"], [], "allow"),
        ("disabled", {"1"}, ["1"], ["1"], "drop"),
    ],
)
def test_dm_policy(
    policy: str, sender: set[str], allow: list[str], paired: list[str], action: str
) -> None:
    assert decide_dm(policy, sender, allow, paired).action == action  # type: ignore[arg-type]


def groups(**entries: dict[str, object]) -> dict[str, GroupConfig]:
    return {
        key.replace("_", "-"): GroupConfig.model_validate(value) for key, value in entries.items()
    }


def decide(**kwargs: object) -> str:
    base: dict[str, object] = {
        "policy": "allowlist",
        "groups": None,
        "group_id": "-1",
        "sender_keys": {"1"},
        "group_allow_from": ["1"],
        "mentioned": True,
    }
    base.update(kwargs)
    return decide_group(**base).action  # type: ignore[arg-type]


def test_group_policy_table() -> None:
    assert decide() == "reply"
    assert decide(mentioned=False) == "history"
    assert decide(mentioned=False, can_detect_mention=False) == "reply"
    assert decide(mentioned=False, bypass_mention=True) == "reply"
    assert decide(policy="disabled") == "drop"
    assert decide(sender_keys={"2"}) == "drop"
    assert decide(policy="open", sender_keys={"2"}) == "reply"
    # a groups map is also the list of allowed groups
    assert decide(groups=groups(_2={})) == "drop"
    assert decide(groups=groups(_1={})) == "reply"
    assert decide(groups={"*": GroupConfig()}) == "reply"
    assert decide(groups=groups(_1={"enabled": False})) == "drop"
    assert decide(groups=groups(_1={"requireMention": False}), mentioned=False) == "reply"
    # a group's own allowFrom replaces groupAllowFrom
    assert (
        decide(groups=groups(_1={"allowFrom": ["2"]}), sender_keys={"2"}, group_allow_from=[])
        == "reply"
    )
    assert decide(groups=groups(_1={"allowFrom": ["2"]})) == "drop"


def test_group_aliases_and_topics() -> None:
    config = {
        "C0GEN": GroupConfig(require_mention=True),
        "#ops": GroupConfig(require_mention=False),
        "-100": GroupConfig.model_validate(
            {
                "requireMention": True,
                "systemPrompt": "be brief",
                "topics": {"42": {"requireMention": False}},
            }
        ),
    }
    assert group_entry(config, "C0OPS", aliases=["#ops"]).require_mention is False  # type: ignore[union-attr]
    topic = group_entry(config, "-100", "42")
    assert topic is not None and topic.require_mention is False
    assert topic.system_prompt == "be brief"
    assert group_entry(config, "-100", "7").require_mention is True  # type: ignore[union-attr]
    assert group_entry(config, "nope") is None


def test_mention_patterns() -> None:
    assert matches_patterns("Hey MOLTY, help", [r"\bmolty\b"])
    assert not matches_patterns("moltbot", [r"\bmolty\b"])
    assert not matches_patterns("anything", ["(unclosed"])
    assert matches_patterns("hey molty", ["(unclosed", r"\bmolty\b"])  # the rest still count


def test_reply_reason_says_whether_it_was_mentioned() -> None:
    kwargs = {
        "policy": "open",
        "groups": None,
        "group_id": "g",
        "sender_keys": {"1"},
        "group_allow_from": [],
    }
    assert decide_group(**kwargs, mentioned=True).reason == "mentioned"  # type: ignore[arg-type]
    free = decide_group(**kwargs, mentioned=False, can_detect_mention=False)  # type: ignore[arg-type]
    assert (free.action, free.reason) == ("reply", "no mention required")


def test_every_channel_takes_the_dm_block_and_discord_guild_rules() -> None:
    from moltbot.channels import access
    from moltbot.channels.discord.config import DiscordAccountConfig
    from moltbot.channels.matrix.config import MatrixAccountConfig

    matrix = MatrixAccountConfig.model_validate(
        {
            "homeserver": "http://hs",
            "accessToken": "t",
            "dm": {"policy": "allowlist", "allowFrom": ["@a:hs"]},
        }
    )
    assert (matrix.dm_policy, matrix.allow_from) == ("allowlist", ["@a:hs"])
    off = DiscordAccountConfig.model_validate({"token": "x", "dm": {"enabled": False}})
    assert off.dm_policy == "disabled"
    discord = DiscordAccountConfig.model_validate(
        {
            "token": "x",
            "guilds": {
                "111": {"requireMention": False, "channels": {"222": {"systemPrompt": "ops"}}},
                "333": {"allowFrom": ["42"]},
            },
        }
    )
    groups = discord.group_entries()
    assert groups is not None

    def decide(channel: str, guild: str, sender: str = "42") -> access.Decision:
        return access.decide_group(
            policy="open",
            groups=groups,
            group_id=channel,
            group_aliases=(f"guild:{guild}",),
            sender_keys={sender},
            group_allow_from=[],
            mentioned=False,
        )

    listed = decide("222", "111")
    assert listed.action == "reply" and listed.group and listed.group.system_prompt == "ops"
    assert decide("999", "111").action == "drop"  # the guild lists its channels: not this one
    assert decide("444", "333").action == "history"  # whole guild, mention required
    assert decide("444", "333", sender="7").action == "drop"  # guild allowFrom
    assert decide("555", "666").action == "drop"  # guild not listed
