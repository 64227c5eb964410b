"""``channels.toy``: one token, which the webhook's callers must present."""

from __future__ import annotations

from moltbot.channels.config import AccountConfig


class ToyAccountConfig(AccountConfig):
    token: str | None = None

    def missing(self) -> list[str]:
        return [] if self.token else ["token"]
