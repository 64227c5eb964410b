"""The gateway's HTTP APIs (see :mod:`.api` for what they share)."""

__all__: list[str] = []
