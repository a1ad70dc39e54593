"""The contacts cache: the server's directory as last looked up, and finding in it.

Conversation display names follow the contacts: a conversation takes the name of the
first contact with a number whose last digits (`search.phone_tail`) match its remote.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from glosmsd.core.search import digits_of, fold, fts_query, phone_needles, phone_tail
from glosmsd.daemon.store.base import log
from glosmsd.daemon.store.incoming import dumps, is_int
from glosmsd.daemon.store.records import Records
from glosmsd.daemon.store.rows import ContactNumber, ContactRow


class Contacts(Records):
    """The contacts cache."""

    def replace_contacts(self, contacts: Sequence[Mapping[str, Any]]) -> int:
        """Replace the contacts cache with a server lookup result; returns how many were kept.

        Entries that are not `{"id": int, "name": str, "numbers": [{"label","number"}]}`
        are skipped. Conversation display names follow the new contacts.
        """
        with self._write() as db:
            db.execute("DELETE FROM contacts")
            kept = 0
            for c in contacts:
                if not (
                    isinstance(c, Mapping)
                    and is_int(c.get("id"))
                    and isinstance(c.get("name"), str)
                    and isinstance(c.get("numbers", []), list)
                ):
                    log.warning("contacts: skipped a malformed entry")
                    continue
                numbers = [
                    {"label": str(n.get("label") or ""), "number": n["number"]}
                    for n in c.get("numbers", [])
                    if isinstance(n, Mapping) and isinstance(n.get("number"), str)
                ]
                all_digits = " ".join(digits_of(n["number"]) for n in numbers)
                db.execute(
                    "INSERT OR REPLACE INTO contacts (id, name, numbers, digits) "
                    "VALUES (?, ?, ?, ?)",
                    (c["id"], c["name"], dumps(numbers), all_digits),
                )
                db.executemany(
                    "INSERT INTO contact_numbers (contact_id, label, number, tail) "
                    "VALUES (?, ?, ?, ?)",
                    [(c["id"], n["label"], n["number"], phone_tail(n["number"])) for n in numbers],
                )
                kept += 1
            db.execute(
                """UPDATE conversations SET name = (
                       SELECT c.name FROM contact_numbers n JOIN contacts c ON c.id = n.contact_id
                       WHERE n.tail = conversations.remote_tail AND n.tail != ''
                       ORDER BY c.id LIMIT 1)"""
            )
            self._conv_keys = None  # the names are the search keys
            # SQLite's lower() folds ASCII only, so the search key is folded here.
            db.executemany(
                "UPDATE conversations SET name_key = ? WHERE id = ?",
                [
                    (fold(r[1] or ""), r[0])
                    for r in db.execute("SELECT id, name FROM conversations").fetchall()
                ],
            )
            return kept

    def find_contacts(self, query: str, limit: int = 50) -> list[ContactRow]:
        """Cached contacts whose name or number matches `query` (empty query: all, by name)."""
        with self._read() as db:
            if not query.strip():
                ids = [
                    r[0]
                    for r in db.execute(
                        "SELECT id FROM contacts ORDER BY name, id LIMIT ?", (limit,)
                    )
                ]
                return self._contacts_by_ids(ids)
            return self._find_contacts(query, limit)

    def _contacts_by_ids(self, ids: Sequence[int]) -> list[ContactRow]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._conn.execute(
            f"SELECT id, name, numbers FROM contacts WHERE id IN ({marks})",  # noqa: S608
            list(ids),
        ).fetchall()
        by_id = {
            r["id"]: ContactRow(
                r["id"],
                r["name"],
                tuple(ContactNumber(n["label"], n["number"]) for n in json.loads(r["numbers"])),
            )
            for r in rows
        }
        return [by_id[i] for i in ids if i in by_id]

    def _find_contacts(self, text: str, limit: int) -> list[ContactRow]:
        ids: list[int] = []
        for needle in phone_needles(text):
            ids += [
                r[0]
                for r in self._conn.execute(
                    "SELECT id FROM contacts WHERE instr(digits, ?) > 0 ORDER BY name, id LIMIT ?",
                    (needle, limit),
                )
            ]
        query = fts_query(text)
        if query is not None:
            ids += [
                r[0]
                for r in self._conn.execute(
                    "SELECT c.id FROM contacts_fts f JOIN contacts c ON c.id = f.rowid "
                    "WHERE contacts_fts MATCH ? ORDER BY c.name, c.id LIMIT ?",
                    (query, limit),
                )
            ]
        unique = list(dict.fromkeys(ids))[:limit]
        return self._contacts_by_ids(unique)
