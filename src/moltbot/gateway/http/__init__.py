"""The gateway's HTTP APIs (see :mod:`.api` for what they share)."""
