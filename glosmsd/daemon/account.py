"""Who this device is, as the server said at hello: extension, numbers, settings, limits.

Owns reading the hello's account part (a malformed settings block falls back to the default
limits) and the locale a user's numbers are written in. It holds no state of its own
beyond the hello it was built from and never talks to the store or the link.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from glosmsd.core import rules
from glosmsd.core.errors import GlosmsdError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Account:
    """What the server said at hello; empty until the first hello (also kept in the store)."""

    ext: str | None = None
    name: str | None = None
    numbers: tuple[Mapping[str, Any], ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    limits: rules.Limits = field(default_factory=rules.Limits)

    @classmethod
    def from_hello(cls, hello: Mapping[str, Any]) -> Account:
        ext = hello.get("extension") or {}
        settings = hello.get("settings") or {}
        try:
            limits = rules.Limits.from_settings(settings)
        except GlosmsdError:
            log.warning("server settings malformed; using the default limits")
            limits = rules.Limits()
        return cls(
            ext=ext.get("ext"),
            name=ext.get("name"),
            numbers=tuple(hello.get("numbers") or ()),
            settings=dict(settings),
            limits=limits,
        )

    @property
    def number(self) -> str | None:
        return str(self.numbers[0]["number"]) if self.numbers else None

    @property
    def shared_with(self) -> list[dict[str, Any]]:
        return [dict(s) for s in (self.numbers[0].get("shared_with") or ())] if self.numbers else []

    @property
    def pbx_major(self) -> int | None:
        version = str(self.settings.get("pbx_version") or "")
        match = re.match(r"(\d+)", version)
        return int(match.group(1)) if match else None


def locale_name(env: Mapping[str, str] | None = None) -> str | None:
    """The locale that says how this user writes numbers (POSIX order: LC_ALL,
    LC_TELEPHONE, LANG); only its territory is used (`en_GB.UTF-8` -> GB)."""
    env = os.environ if env is None else env
    for key in ("LC_ALL", "LC_TELEPHONE", "LANG"):
        if env.get(key):
            return env[key]
    return None
