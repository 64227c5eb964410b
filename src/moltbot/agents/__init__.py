"""Agents: the runtime (:mod:`.runtime`, subsystem ``agents``), prompt assembly,
model calls with fallback, providers and tools. Import the modules you need."""

__all__: list[str] = []
