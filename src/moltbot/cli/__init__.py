"""The command line: thin click commands over the core. Imported lazily per command."""

__all__: list[str] = []
