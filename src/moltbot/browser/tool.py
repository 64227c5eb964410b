"""Where :data:`moltbot.agents.tools.TOOLS` looks for the ``browser`` tool.

The tool lives with the other agent tools in :mod:`moltbot.agents.tools.browser`.
"""

from moltbot.agents.tools.browser import BrowserTool

__all__ = ["BrowserTool"]
