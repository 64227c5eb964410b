"""Telegram: the Bot API through python-telegram-bot, long polling or webhook."""

__all__: list[str] = []
