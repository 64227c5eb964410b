"""moltbot: a personal-assistant Gateway, isolated per profile."""

__version__ = "2026.1.30"
__all__ = ["__version__"]
