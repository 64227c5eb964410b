"""Fixtures for the browser tests.

Every test here that launches Chromium uses the real Debian ``/usr/bin/chromium``;
``kill_leftover_browsers`` (autouse) kills any Chromium whose user-data dir lies
in the test's HOME, whatever happened in the test.
"""

from browser_helpers import browser_service, kill_leftover_browsers

__all__ = ["browser_service", "kill_leftover_browsers"]
