"""The gateway: one aiohttp server for the WebSocket protocol and the HTTP APIs
(:mod:`.server`), run by :mod:`.run`. Import the modules you need."""

__all__: list[str] = []
