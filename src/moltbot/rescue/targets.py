"""Which instances a rescue instance may act on, and who may ask it to.

``rescue.targets`` grants profiles by name (``default`` is the default instance) or
``"*"`` for every other instance of this user on the host (the host registry finds
them under this HOME). An instance never targets itself: nothing here reaches the
rescue instance's own config or state. ``rescue.owners`` lists, per channel, the
senders who may use the chat commands; pairing with the bot is not enough.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from moltbot.config.schema import Config
from moltbot.errors import NotFoundError
from moltbot.instance import env as envvars
from moltbot.instance.registry import KnownInstance, discover
from moltbot.instance.resolve import Instance
from moltbot.rescue.errors import NotOwner, TargetRefused


@dataclass(frozen=True)
class RescueTarget:
    """A granted instance, as the host registry knows it now."""

    name: str
    known: KnownInstance

    @property
    def instance(self) -> Instance:
        return self.known.instance


def target_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment rescue uses for a target: without this instance's identity and
    gateway secrets, so nothing of the rescue instance leaks into the target (its state
    dir, port or token)."""
    return envvars.without_identity(env)


class Grants:
    """``rescue.targets`` of the instance ``me``, resolved against the host."""

    def __init__(self, me: Instance, config: Config, env: Mapping[str, str]) -> None:
        self.me = me
        self.settings = config.rescue
        self.env = target_env(env)

    def _others(self) -> list[KnownInstance]:
        mine = self.me.state_dir.resolve()
        return [k for k in discover(self.me.home, self.env) if k.key.resolve() != mine]

    def names(self) -> list[str]:
        """The granted targets that exist on the host now (for help and listings)."""
        granted = set(self.settings.targets)
        return [
            k.instance.profile
            for k in self._others()
            if "*" in granted or k.instance.profile in granted
        ]

    def resolve(self, name: str) -> RescueTarget:
        """The granted instance ``name``. :class:`TargetRefused` when it is not granted
        or is this instance; :class:`NotFoundError` when no such instance exists here."""
        granted = self.settings.targets
        if not granted:
            raise TargetRefused(
                f"this instance (profile {self.me.profile}) has no rescue targets",
                hint="grant some in rescue.targets, e.g. `moltbot --profile rescue config set "
                "rescue.targets '[\"default\"]'`",
            )
        if name == self.me.profile:
            raise TargetRefused(f"profile {name} is this instance itself: rescue acts on others")
        if "*" not in granted and name not in granted:
            raise TargetRefused(
                f"profile {name} is not a rescue target of this instance "
                f"(granted: {', '.join(granted)})",
                hint="add it to rescue.targets of this instance",
            )
        found = [k for k in self._others() if k.instance.profile == name]
        if not found:
            raise NotFoundError(
                f"no instance with profile {name} on this host",
                hint=f"known here: {', '.join(self.names()) or 'none'}",
            )
        return RescueTarget(name, found[0])


def check_owner(
    owners: Mapping[str, list[str]],
    channel: str,
    sender_keys: Collection[str],
    normalize: Callable[[str], str],
    who: str,
) -> None:
    """Refuse (:class:`NotOwner`) a sender whose keys match no entry of
    ``rescue.owners.<channel>`` (entries normalised by the channel, as ``allowFrom``)."""
    entries = {normalize(entry) for entry in owners.get(channel, [])}
    entries.discard("*")
    if not entries & {key for key in sender_keys if key}:
        raise NotOwner(
            f"only the owners in rescue.owners.{channel} may use /rescue ({who} is not one)"
        )


__all__ = ["Grants", "RescueTarget", "check_owner", "target_env"]
