"""What a search matches conversations by (contact name, number, number's digits), held in
memory so that a search looks for its words in one string instead of asking SQLite.

In SQL, a search's conversation part was an `instr` per word and column on every row:
at 2,000 conversations about 0.25 ms a search, half of a typical FTS5 match. The keys
change only when a conversation is created or the contacts are replaced, so the store
keeps a `ConversationKeys` until either happens on its connection, or another
connection commits (`PRAGMA data_version`). Reading them again costs about 1-2 ms at
2,000 conversations, once, on the first search after such a change.

Matching is exactly SQL's `instr(x, w) > 0` (a substring test): a conversation matches
when some phone needle is in its digits, or when every word is in its name key or its
number. Pure: no SQL, no I/O.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Final

# Joins the keys; never part of a word (words are letters, digits and marks) or of a
# needle (digits), so no match can span two keys.
_SEP: Final = "\x00"
# Past this many occurrences a test per conversation beats jumping from one to the next
# (measured: about 0.3 us an occurrence against 50 ns a conversation).
_FIND_LIMIT: Final = 256


class _Column:
    """Strings, one per conversation, joined into one text to search."""

    def __init__(self, values: Sequence[str]) -> None:
        self.values = values
        self.text = _SEP.join(values)
        starts: list[int] = []
        at = 0
        for v in values:
            starts.append(at)
            at += len(v) + 1
        self.starts = starts

    def having(self, needle: str, found: int | None = None) -> set[int]:
        """The positions of the values that contain `needle` (`found`: how many times the
        text holds it, when known)."""
        text = self.text
        if found is None:
            found = text.count(needle)
        if not found:
            return set()
        if found > _FIND_LIMIT:
            return {i for i, v in enumerate(self.values) if needle in v}
        out: set[int] = set()
        starts = self.starts
        last = len(starts) - 1
        pos = text.find(needle)
        while pos >= 0:
            i = bisect.bisect_right(starts, pos) - 1
            out.add(i)
            if i == last:
                break
            pos = text.find(needle, starts[i + 1])
        return out


class ConversationKeys:
    """Every conversation's search keys: (id, name key, number, number's digits) rows."""

    def __init__(self, rows: Iterable[tuple[int, str, str, str]]) -> None:
        self._rows = list(rows)
        self._ids = [r[0] for r in self._rows]
        # One key per conversation for the words: a word is in the name key or in the
        # number exactly when it is in both joined, as long as it has no _SEP.
        self._words = _Column([f"{r[1]}{_SEP}{r[2]}" for r in self._rows])
        self._digits = _Column([r[3] for r in self._rows])

    def matching(self, words: Sequence[str], needles: Sequence[str]) -> list[int]:
        """Ids of the conversations with a needle in their digits, or every word in their
        name key or number (none when there are neither words nor needles), in no order."""
        if any(_SEP in t for t in (*words, *needles)):
            return self._matching_each(words, needles)
        hits: set[int] = set()
        for needle in needles:
            hits |= self._digits.having(needle)
        if words:
            # The rarest word first; the others are looked for in its few hits only.
            col = self._words
            counted = sorted((col.text.count(w), w) for w in words)
            if counted[0][0]:
                common = col.having(counted[0][1], counted[0][0])
                values = col.values
                for _n, w in counted[1:]:
                    common = {i for i in common if w in values[i]}
                hits |= common
        ids = self._ids
        return [ids[i] for i in hits]

    def _matching_each(self, words: Sequence[str], needles: Sequence[str]) -> list[int]:
        """`matching` tested row by row (for words the joined keys cannot answer)."""
        return [
            cid
            for cid, name_key, remote, remote_digits in self._rows
            if any(n in remote_digits for n in needles)
            or (words and all(w in name_key or w in remote for w in words))
        ]
