"""Turning what a user typed into a safe full-text query, and phone numbers into digits.

Owns: splitting free text into search terms the way SQLite's `unicode61` tokenizer does
(letters, digits, private-use characters and combining marks make words; everything
else separates them), quoting each term so FTS5 reads it as a plain string whatever it
contains, and the digit normaliser that lets "+1 (555) 765-4321" find "15557654321".

Every term goes out as an FTS5 string (`"term"`, internal quotes doubled), so FTS5
operators (AND, OR, NOT, NEAR), column filters, colons, stars, carets, parentheses and
quotes typed by the user are only ever text. The last term becomes a prefix query so
results follow the typing. Terms are joined with spaces: implicit AND.

This module must never import sqlite3 or touch any I/O: it is a pure core.
"""

from __future__ import annotations

import unicodedata
from typing import Final

#: At most this many terms reach FTS5; more adds nothing a person types and costs time.
MAX_TERMS: Final = 16
#: A longer term is cut: nobody searches for a 200-letter word, and FTS5 terms stay small.
MAX_TERM_CHARS: Final = 64
#: A digits-only search needs this many digits before it matches numbers by substring.
MIN_NUMBER_DIGITS: Final = 3

# Categories unicode61 (with its default `categories` option "L* N* Co") treats as parts
# of a word; combining marks are kept with their letter so "café" stays one term.
_WORD_CATEGORIES: Final = frozenset("LNM")
# What people type inside a phone number besides digits.
_PHONE_PUNCTUATION: Final = frozenset("+-()./ \t")


def _is_word_char(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in _WORD_CATEGORIES or cat == "Co"


def terms(user_text: str) -> list[str]:
    """The search terms in `user_text`: runs of word characters, NFC-normalised.

    Operators and punctuation are not terms; at most `MAX_TERMS` terms of at most
    `MAX_TERM_CHARS` characters each are returned, in the order typed.
    """
    text = unicodedata.normalize("NFC", user_text)
    found: list[str] = []
    current: list[str] = []
    for ch in text:
        if _is_word_char(ch):
            current.append(ch)
            continue
        if current:
            found.append("".join(current)[:MAX_TERM_CHARS])
            current = []
            if len(found) == MAX_TERMS:
                return found
    if current:
        found.append("".join(current)[:MAX_TERM_CHARS])
    return found[:MAX_TERMS]


def fold(text: str) -> str:
    """`text` for case-insensitive matching: NFC-normalised and case-folded ("Zoë" -> "zoë")."""
    return unicodedata.normalize("NFC", text).casefold()


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_query(user_text: str) -> str | None:
    """A safe FTS5 MATCH expression for `user_text`, or None when nothing is searchable.

    `fts_query('say "hi" NEAR(x') == '"say" "hi" "NEAR" "x"*'`: every term is a quoted
    string, the last one a prefix, all of them required (implicit AND).
    """
    found = terms(user_text)
    if not found:
        return None
    quoted = [_quote(t) for t in found]
    quoted[-1] += "*"
    return " ".join(quoted)


def digits_of(text: str) -> str:
    """Only the digits of `text`, as ASCII: `digits_of("+1 (555) 765-4321") == "15557654321"`.

    Decimal digits of any script count ("٥٥٥" gives "555"), so a number typed on any
    keyboard matches.
    """
    return "".join(str(unicodedata.decimal(ch, 0)) for ch in text if ch.isdecimal())


def phone_digits(user_text: str) -> str | None:
    """The digits of `user_text` when it looks like (part of) a phone number, else None.

    It looks like one when it has only digits and phone punctuation (`+ - ( ) . /` and
    spaces) and at least `MIN_NUMBER_DIGITS` digits: "555 76" matches numbers containing
    "55576"; "room 101" is words, not a number.
    """
    stripped = user_text.strip()
    if not stripped or any(not (ch.isdecimal() or ch in _PHONE_PUNCTUATION) for ch in stripped):
        return None
    found = digits_of(stripped)
    return found if len(found) >= MIN_NUMBER_DIGITS else None


def phone_needles(user_text: str) -> list[str]:
    """Digit strings to look for in stored numbers when `user_text` looks like a number.

    A number typed with "+" starts with a country code of 1 to 3 digits that a contact
    saved in national form lacks, so "+1 (555) 765-43" looks for "155576543" and also
    "55576543", "5576543", "576543" (never fewer than `MIN_NUMBER_DIGITS` digits).
    """
    found = phone_digits(user_text)
    if found is None:
        return []
    needles = [found]
    if user_text.strip().startswith("+"):
        needles += [found[cut:] for cut in (1, 2, 3) if len(found) - cut >= MIN_NUMBER_DIGITS]
    return needles


def phone_tail(number: str) -> str:
    """The part of a number two spellings of it share: its last 10 digits.

    "+1 555 765 4321" and "(555) 765-4321" both give "5557654321", so a contact saved
    without the country code still names the conversation.
    """
    return digits_of(number)[-10:]
