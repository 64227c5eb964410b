"""Slack: slack_sdk in Socket Mode or HTTP Events mode (signed requests)."""

__all__: list[str] = []
