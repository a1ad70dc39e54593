"""The emoji picker's catalogue: Unicode's emoji groups, names and skin tones, from UTS #51.

This module turns the text of Unicode's ``emoji-test.txt`` (the keyboard data file of
UTS #51, in CLDR order) into what a picker shows: the groups in order ("Smileys &
Emotion", "People & Body", ...), each with its fully-qualified emoji, their CLDR short
names and the Emoji version that added them, and for an emoji that takes a skin tone its
five toned forms. It is pure: text in, values out; it must never open the file itself
(`glosmsd.daemon.emojidata` does).

Choices made where the data file leaves room:

- Only fully-qualified emoji are listed: the minimally- and unqualified forms draw the
  same picture, and the "Component" group (bare skin tones, hair) is not something a user
  sends on its own.
- A toned form is folded into its base emoji ("waving hand: medium skin tone" into
  "waving hand") when all its tones are one tone; forms with two different tones
  ("handshake: light skin tone, dark skin tone") are left out, as most pickers do: the
  picker offers one tone at a time.
- A base emoji keeps its tones only when all five exist, so the picker never falls back
  to the untoned form for one tone and not another.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

#: The skin tone names of UTS #51, lightest first (the Fitzpatrick modifiers 1F3FB-1F3FF).
TONES: Final[tuple[str, ...]] = (
    "light skin tone",
    "medium-light skin tone",
    "medium skin tone",
    "medium-dark skin tone",
    "dark skin tone",
)
#: Groups that hold parts, not emoji.
SKIPPED_GROUPS: Final = frozenset({"Component"})


@dataclass(frozen=True, slots=True)
class Emoji:
    chars: str
    name: str
    version: str  # the Emoji version that added it, "1.0" ... "17.0"
    tones: tuple[str, ...] = ()  # the five toned forms, lightest first; () when none

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"emoji": self.chars, "name": self.name, "version": self.version}
        if self.tones:
            obj["tones"] = list(self.tones)
        return obj


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    emoji: tuple[Emoji, ...]


@dataclass(frozen=True, slots=True)
class Catalog:
    unicode: str  # the data file's version
    groups: tuple[Group, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "unicode": self.unicode,
            "tones": list(TONES),
            "groups": [
                {"name": g.name, "emoji": [e.to_json() for e in g.emoji]} for g in self.groups
            ],
        }


@dataclass(frozen=True, slots=True)
class _Line:
    group: str
    chars: str
    name: str
    version: str


def parse(text: str) -> Catalog:
    """The catalogue in `text`, the content of an ``emoji-test.txt``."""
    version = ""
    order: list[str] = []
    bases: dict[str, list[_Line]] = {}
    toned: dict[str, dict[int, str]] = {}
    for value in _lines(text):
        if isinstance(value, str):
            version = version or value
            continue
        if value.group in SKIPPED_GROUPS:
            continue
        if value.group not in bases:
            order.append(value.group)
            bases[value.group] = []
        split = _tone_of(value.name)
        if split is None:
            bases[value.group].append(value)
        elif split[1] is not None:
            toned.setdefault(split[0], {})[split[1]] = value.chars
    groups = []
    for name in order:
        items = []
        for line in bases[name]:
            forms = toned.get(line.name, {})
            tones = tuple(forms[i] for i in range(len(TONES))) if len(forms) == len(TONES) else ()
            items.append(Emoji(line.chars, line.name, line.version, tones))
        if items:
            groups.append(Group(name, tuple(items)))
    return Catalog(version, tuple(groups))


def _lines(text: str) -> Iterator[str | _Line]:
    """The data file's version (a str), then its fully-qualified lines."""
    group = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("# Version:"):
            yield line.removeprefix("# Version:").strip()
        elif line.startswith("# group:"):
            group = line.removeprefix("# group:").strip()
        elif line and not line.startswith("#"):
            found = _data_line(line, group)
            if found is not None:
                yield found


def _data_line(line: str, group: str) -> _Line | None:
    # 1F44B 1F3FB ; fully-qualified # 👋🏻 E1.0 waving hand: light skin tone
    points, _, rest = line.partition(";")
    status, _, comment = rest.partition("#")
    if status.strip() != "fully-qualified":
        return None
    try:
        chars = "".join(chr(int(cp, 16)) for cp in points.split())
    except ValueError:
        return None
    _glyph, _, described = comment.strip().partition(" ")
    version, _, name = described.partition(" ")
    if not chars or not version.startswith("E") or not name:
        return None
    return _Line(group, chars, name.strip(), version[1:])


def _tone_of(name: str) -> tuple[str, int | None] | None:
    """(base name, tone index) of a toned form; index None when its tones differ; None
    when the name carries no skin tone."""
    head, sep, tail = name.partition(": ")
    if not sep:
        return None
    parts = tail.split(", ")
    tones = {TONES.index(p) for p in parts if p in TONES}
    if not tones:
        return None
    rest = [p for p in parts if p not in TONES]
    base = f"{head}: {', '.join(rest)}" if rest else head
    return base, (tones.pop() if len(tones) == 1 else None)
