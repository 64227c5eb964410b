"""Where :data:`moltbot.agents.tools.TOOLS` looks for the ``canvas`` tool.

The tool lives with the other agent tools in :mod:`moltbot.agents.tools.canvas`.
"""

from moltbot.agents.tools.canvas import CanvasTool

__all__ = ["CanvasTool"]
