"""The verdict on files a composer attaches, before any of them is sent or fitted.

A composer that cannot read the files itself (the SMS window's page) sends each file's
name, size and first bytes; this module says, with the same rules the send applies, what
type each one is (from its content, never its name), what it takes of the byte budget (a
JPEG or PNG at most `rules.FITTED_IMAGE`, since the send fits those) and which files are
kept: the product discards the excess at attach time ("Maximum size of attached files for
MMS reached."), so the user sees what will go before pressing Send.

It is pure computation over the bytes it is given: no file system, socket or clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from glosmsd.core import filetypes, rules
from glosmsd.core.errors import GlosmsdError

#: The first bytes of a file that `filetypes.sniff` reads, plus one: with them it judges a
#: file exactly as it judges the whole file (it looks at 64 KiB, and needs to know whether
#: the file goes on past them).
HEAD_BYTES: Final = 64 * 1024 + 1


@dataclass(frozen=True, slots=True)
class Offered:
    """One file as a composer describes it: its name, size and first `HEAD_BYTES`."""

    name: str
    size: int
    head: bytes


def judge(files: Sequence[Offered], limits: rules.Limits) -> dict[str, Any]:
    """Which of `files` (in the user's order) the message keeps, and why not the others.

    The answer: ``files`` (per file: ``mime``, ``budget``, ``kept``, ``reason``), ``bytes``
    (the kept files' budget, what `count` takes as ``bytes``) and ``message``, what to tell
    the user: `rules.MAX_FILES_MESSAGE` when the count or size limit discarded any, else
    why a file cannot go at all, else null.
    """
    from glosmsd.daemon.media import FITTABLE_TYPES  # media loads at the first file

    mimes: list[str | None] = []
    problems: dict[int, str] = {}
    for index, item in enumerate(files):
        mime, problem = _type_of(item, limits)
        mimes.append(mime)
        if problem is not None:
            problems[index] = problem
    budgets = [
        rules.attach_budget(f.size, fittable=mimes[i] in FITTABLE_TYPES)
        for i, f in enumerate(files)
    ]
    candidates = [i for i in range(len(files)) if i not in problems]
    pick = rules.pick_files([budgets[i] for i in candidates], limits)
    kept = {candidates[k] for k in pick.kept}
    over = {candidates[d]: why for d, why in rules.drop_reasons(pick, limits).items()}
    message = pick.message or next(iter(problems.values()), None)
    return {
        "files": [
            {
                "mime": mimes[i],
                "budget": budgets[i],
                "kept": i in kept,
                "reason": problems.get(i) or over.get(i),
            }
            for i in range(len(files))
        ],
        "bytes": sum(budgets[i] for i in kept),
        "message": message,
    }


def _type_of(item: Offered, limits: rules.Limits) -> tuple[str | None, str | None]:
    """The file's type and, when it cannot go at all, why (naming it)."""
    if not limits.mms_enabled:
        return filetypes.sniff(item.head), rules.mms_off_reason()
    if item.size == 0 or not item.head:
        return None, f"{item.name} is empty (0 bytes): attach the file again."
    try:
        return filetypes.check_type(item.head, limits.mms_types), None
    except GlosmsdError as exc:
        return filetypes.sniff(item.head), f"{item.name}: {exc.message}"
