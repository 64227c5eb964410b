"""Protocol methods, one module per family, registered in :mod:`.registry`."""

__all__: list[str] = []
