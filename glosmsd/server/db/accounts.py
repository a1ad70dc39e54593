"""The server store's accounts part: extensions, numbers, tokens, hello, the directory."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from glosmsd.core.errors import BadInput, NotFound
from glosmsd.core.filetypes import sniff
from glosmsd.server.db.base import E164, EXTENSION, DbBase, normalize_number

#: Hex digits of a token's hash that name it in `admin tokens` and `admin revoke-token`.
TOKEN_ID_DIGITS: Final = 16
#: The fewest digits of a token id `revoke-token` accepts (an unambiguous prefix).
TOKEN_ID_MIN: Final = 8
_HEX: Final = re.compile(r"[0-9a-f]+")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token_hash: str) -> str:
    """How a token is named where the token itself must not show: its hash's first digits."""
    return token_hash[:TOKEN_ID_DIGITS]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """One valid token as `admin tokens` lists it (the token itself is never stored)."""

    id: str
    ext: str
    name: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "ext": self.ext, "name": self.name, "at": self.at}


class AccountsDb(DbBase):
    """Who may log in, on which numbers, and the company directory."""

    # ------------------------------------------------------------------ accounts

    def add_extension(self, ext: str, name: str, avatar: bytes | None = None) -> None:
        if not EXTENSION.fullmatch(ext):
            raise BadInput(f"Extension {ext[:40]!r} must be 1 to 32 letters, digits, . _ or -.")
        if not name.strip():
            raise BadInput("An extension needs a display name (--name).")
        avatar_sha = None
        mime = None
        if avatar is not None:
            mime = sniff(avatar)
            if mime is None or not mime.startswith("image/"):
                raise BadInput("The avatar must be an image (JPEG, PNG, GIF, BMP or WebP).")
        with self._write() as db:
            if avatar is not None and mime is not None:
                # In the transaction: see `files` on blobs and sweeps.
                avatar_sha = self._store_blob(avatar, mime)
                self._insert_file(avatar_sha, mime, len(avatar))
            db.execute(
                "INSERT INTO extensions (ext, name, avatar) VALUES (?, ?, ?) "
                "ON CONFLICT (ext) DO UPDATE SET name = excluded.name, "
                "avatar = COALESCE(excluded.avatar, avatar)",
                (ext, name.strip(), avatar_sha),
            )

    def _require_ext(self, ext: str) -> None:
        if self.conn.execute("SELECT 1 FROM extensions WHERE ext = ?", (ext,)).fetchone() is None:
            raise NotFound(f"No extension {ext!r}: add it first with `admin add-extension`.")

    def assign_number(self, ext: str, number: str) -> list[str]:
        """Put `ext` on `number`; returns every extension now on it (sharers included)."""
        number = normalize_number(number)
        if not E164.fullmatch(number):
            raise BadInput(
                f"An SMS number must be in E.164 form like +15550001001, not {number!r}."
            )
        with self._write() as db:
            self._require_ext(ext)
            pos = db.execute(
                "SELECT COALESCE(MAX(pos), -1) + 1 FROM numbers WHERE ext = ?", (ext,)
            ).fetchone()[0]
            db.execute(
                "INSERT OR IGNORE INTO numbers (number, ext, pos) VALUES (?, ?, ?)",
                (number, ext, pos),
            )
            self._accounts_changed()
            return [
                r[0]
                for r in db.execute(
                    "SELECT ext FROM numbers WHERE number = ? ORDER BY ext", (number,)
                )
            ]

    def unassign_number(self, ext: str, number: str) -> None:
        """Take `ext` off `number`: from the next commit on it sees nothing of the number
        (no new events, no history, no files, no sends from it); the server closes its
        open connections so their devices sign in again and learn it at hello."""
        number = normalize_number(number)
        with self._write() as db:
            cur = db.execute("DELETE FROM numbers WHERE ext = ? AND number = ?", (ext, number))
            if cur.rowcount == 0:
                raise NotFound(f"Extension {ext} is not on {number}.")
            self._accounts_changed()

    def new_token(self, ext: str) -> str:
        """A fresh token for `ext`; only its hash is stored."""
        token = secrets.token_urlsafe(32)
        with self._write() as db:
            self._require_ext(ext)
            db.execute(
                "INSERT INTO tokens (hash, ext, at) VALUES (?, ?, ?)",
                (_hash_token(token), ext, time.time()),
            )
        return token

    def ext_for_token(self, token: str) -> str | None:
        signed = self.sign_in(token)
        return signed[0] if signed else None

    def sign_in(self, token: str) -> tuple[str, str] | None:
        """(extension, token id) of a valid token, else None."""
        digest = _hash_token(token)
        row = self.conn.execute("SELECT ext FROM tokens WHERE hash = ?", (digest,)).fetchone()
        return (str(row[0]), token_id(digest)) if row else None

    def tokens(self, ext: str | None = None) -> list[TokenInfo]:
        """Every valid token (of `ext`), oldest first."""
        if ext is not None:
            self._require_ext(ext)
        rows = self.conn.execute(
            "SELECT t.hash, t.ext, e.name, t.at FROM tokens t JOIN extensions e ON e.ext = t.ext "
            "WHERE ? IS NULL OR t.ext = ? ORDER BY t.at, t.hash",
            (ext, ext),
        ).fetchall()
        return [TokenInfo(token_id(r[0]), r[1], r[2], float(r[3])) for r in rows]

    def revoke_tokens(self, which: str = "", *, ext: str | None = None) -> list[TokenInfo]:
        """Revoke one token (named by its id from `tokens`, an unambiguous prefix of at
        least `TOKEN_ID_MIN` digits, or the token itself), or every token of `ext`.
        Returns what was revoked; the server closes connections signed in with them."""
        with self._write() as db:
            if ext is not None:
                gone = self.tokens(ext)
                db.execute("DELETE FROM tokens WHERE ext = ?", (ext,))
            else:
                digest = self._token_hash(which.strip())
                gone = [t for t in self.tokens() if t.id == token_id(digest)]
                db.execute("DELETE FROM tokens WHERE hash = ?", (digest,))
            if gone:
                self._accounts_changed()
            return gone

    def _token_hash(self, which: str) -> str:
        """The stored hash `which` names (a token id, a prefix of one, or a token)."""
        if (
            which
            and self.conn.execute(
                "SELECT 1 FROM tokens WHERE hash = ?", (_hash_token(which),)
            ).fetchone()
        ):
            return _hash_token(which)
        if len(which) < TOKEN_ID_MIN or not _HEX.fullmatch(which):
            raise BadInput(
                f"No token {which[:20]!r}: give a token id from `admin tokens` (at least "
                f"{TOKEN_ID_MIN} hex digits), the token itself, or --ext EXT for all of an "
                "extension's tokens."
            )
        rows = self.conn.execute(
            "SELECT hash FROM tokens WHERE substr(hash, 1, ?) = ?", (len(which), which)
        ).fetchall()
        if len(rows) != 1:
            raise NotFound(
                f"No token with id {which!r}: see `admin tokens`."
                if not rows
                else f"{len(rows)} tokens have ids starting {which!r}: give more digits."
            )
        return str(rows[0][0])

    def _accounts_changed(self) -> None:
        """Inside a write: tokens or numbers changed (the server's watcher checks its open
        connections when this counter moves)."""
        self._set_meta("accounts_changed", str(self.accounts_version() + 1))

    def accounts_version(self) -> int:
        return int(self._meta("accounts_changed", "0"))

    def still_signed_in(
        self, peers: Sequence[tuple[str, str]]
    ) -> tuple[set[str], dict[str, list[str]]]:
        """For the server's open connections, as (extension, token id) pairs: the token
        ids still valid, and each extension's numbers now."""
        with self._read():
            valid = {t.id for t in self.tokens()}
            return valid, {ext: self.numbers_of(ext) for ext, _ in peers}

    def hello(self, ext: str) -> dict[str, Any]:
        """The account part of the hello result."""
        with self._read() as db:
            numbers = []
            for number in self.numbers_of(ext):
                others = [
                    self._person(r[0])
                    for r in db.execute(
                        "SELECT ext FROM numbers WHERE number = ? AND ext != ? ORDER BY ext",
                        (number, ext),
                    )
                ]
                numbers.append({"number": number, "shared_with": others})
            return {"extension": self._person(ext), "numbers": numbers, "settings": self.settings()}

    def add_contact(self, name: str, numbers: Sequence[tuple[str, str]]) -> int:
        if not name.strip():
            raise BadInput("A contact needs a name.")
        if not numbers:
            raise BadInput("A contact needs at least one number (--number label=+1555...).")
        cleaned = [(label.strip() or "other", normalize_number(n)) for label, n in numbers]
        with self._write() as db:
            cid = int(
                db.execute("INSERT INTO contacts (name) VALUES (?)", (name.strip(),)).lastrowid or 0
            )
            db.executemany(
                "INSERT INTO contact_numbers (contact_id, pos, label, number) VALUES (?, ?, ?, ?)",
                [(cid, i, label, n) for i, (label, n) in enumerate(cleaned)],
            )
        return cid

    def contacts(self, query: str, limit: int) -> list[dict[str, Any]]:
        """The company directory filtered by name or number (it is the same for everyone)."""
        q = query.strip()
        digits = re.sub(r"[^0-9+]", "", q)
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        num_like = "%" + digits + "%" if digits.strip("+") else None
        with self._read() as db:
            rows = db.execute(
                """SELECT id, name FROM contacts c WHERE ? = '' OR c.name LIKE ? ESCAPE '\\'
                   OR (? IS NOT NULL AND EXISTS (SELECT 1 FROM contact_numbers n
                       WHERE n.contact_id = c.id AND n.number LIKE ?))
                   ORDER BY name COLLATE NOCASE, id LIMIT ?""",
                (q, like, num_like, num_like, limit),
            ).fetchall()
            out = []
            for row in rows:
                nums = [
                    {"label": n["label"], "number": n["number"]}
                    for n in db.execute(
                        "SELECT label, number FROM contact_numbers WHERE contact_id = ? "
                        "ORDER BY pos",
                        (row["id"],),
                    )
                ]
                out.append({"id": row["id"], "name": row["name"], "numbers": nums})
            return out
