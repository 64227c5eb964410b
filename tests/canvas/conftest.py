"""Fixtures for the canvas tests: running canvas hosts (and browser services for the
tests that look at canvas pages in the real Chromium)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "browser"))

from browser_helpers import browser_service, canvas_host, kill_leftover_browsers  # noqa: E402

__all__ = ["browser_service", "canvas_host", "kill_leftover_browsers"]
