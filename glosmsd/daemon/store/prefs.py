"""Preferences (any JSON value by key) and the recently used emoji."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Final

from glosmsd.daemon.store.base import StoreBase
from glosmsd.daemon.store.incoming import dumps

EMOJI_RECENTS: Final = 40


class Prefs(StoreBase):
    """Prefs and recent emoji."""

    def get_pref(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM prefs WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_pref(self, key: str, value: Any) -> None:
        """Set a preference to any JSON value."""
        encoded = dumps(value)
        with self._write() as db:
            db.execute(
                "INSERT INTO prefs (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, encoded),
            )

    def prefs(self) -> dict[str, Any]:
        return {
            r[0]: json.loads(r[1])
            for r in self._conn.execute("SELECT key, value FROM prefs ORDER BY key")
        }

    def emoji_used(self, emojis: Sequence[str], *, now: float | None = None) -> None:
        """Remember emojis just used; only the `EMOJI_RECENTS` most recent are kept."""
        when = time.time() if now is None else now
        with self._write() as db:
            # Later in the list = used later, so it sorts first among equal timestamps.
            for i, e in enumerate(emojis):
                if not e or len(e) > 32:
                    continue
                db.execute(
                    "INSERT INTO emoji (emoji, last_used, uses) VALUES (?, ?, 1) "
                    "ON CONFLICT (emoji) DO UPDATE SET last_used = excluded.last_used, "
                    "uses = uses + 1",
                    (e, when + i * 1e-6),
                )
            db.execute(
                "DELETE FROM emoji WHERE emoji NOT IN "
                "(SELECT emoji FROM emoji ORDER BY last_used DESC LIMIT ?)",
                (EMOJI_RECENTS,),
            )

    def emoji_recent(self, limit: int = EMOJI_RECENTS) -> list[str]:
        return [
            r[0]
            for r in self._conn.execute(
                "SELECT emoji FROM emoji ORDER BY last_used DESC LIMIT ?", (limit,)
            )
        ]
