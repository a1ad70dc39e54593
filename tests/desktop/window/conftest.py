"""The SMS window page's fixtures (tests/support/windowpage.py) for every test here."""

from tests.support.windowpage import browser, playwright, window, window_world

__all__ = ["browser", "playwright", "window", "window_world"]
