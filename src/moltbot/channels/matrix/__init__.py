"""The Matrix channel (matrix-nio): any homeserver, DMs, rooms, threads, media, E2EE."""

__all__: list[str] = []
