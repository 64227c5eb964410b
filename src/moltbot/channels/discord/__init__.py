"""The Discord channel (discord.py): bot token, guild channels, threads and DMs."""

__all__: list[str] = []
