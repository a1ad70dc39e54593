"""The server store's files part: uploads (type checked by content, a quota of unsent
bytes per extension, expiry of what was never sent), downloads, avatars.

A blob is written, and an unused one removed, inside the write transaction that adds or
drops its row, so a sweep in one process never removes a blob another process has just
found on disk and is about to reference.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from typing import Any, Final

from glosmsd.core.errors import BadInput, LimitExceeded, NotFound
from glosmsd.core.filetypes import check_type, sniff
from glosmsd.core.wire import MAX_CHUNK, SHA256, clean_file_name
from glosmsd.server.db.accounts import AccountsDb
from glosmsd.server.db.base import VISIBLE
from glosmsd.server.db.records import FileInfo

#: Bytes of uploads not yet sent in a message that one extension may hold (`--upload-quota`).
DEFAULT_UPLOAD_QUOTA: Final = 20 * 1024 * 1024
#: Seconds an upload no message references is kept (`--upload-max-age`): a day.
DEFAULT_UPLOAD_MAX_AGE: Final = 86_400.0

#: "No message, avatar or upload uses file `x`": a constant spliced into queries.
_UNUSED: Final = """
    NOT EXISTS (SELECT 1 FROM message_files mf WHERE mf.sha256 = x.sha256)
    AND NOT EXISTS (SELECT 1 FROM extensions e WHERE e.avatar = x.sha256)
    AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.sha256 = x.sha256)
"""


class FilesDb(AccountsDb):
    """Files a message can carry, and who may fetch them."""

    def upload(
        self,
        ext: str,
        data: bytes,
        name: str,
        *,
        quota: int = DEFAULT_UPLOAD_QUOTA,
        max_age: float = DEFAULT_UPLOAD_MAX_AGE,
    ) -> FileInfo:
        """Store an MMS attachment after checking its type by content, its size, and that
        the extension's unsent uploads stay within `quota` bytes with it."""
        settings = self.settings()
        limit = int(settings["mms_max_bytes"])
        if len(data) > limit:
            raise BadInput(
                f"The file is {len(data)} bytes; a message may carry at most {limit} bytes "
                "of files."
            )
        mime = check_type(data, list(settings["mms_types"]))
        sha = hashlib.sha256(data).hexdigest()
        with self._write() as db:
            held = self.unsent_upload_bytes(ext, but=sha)
            if held + len(data) > quota:
                raise LimitExceeded(
                    f"Your uploads not yet sent in a message hold {held} of your {quota} "
                    f"bytes, and this file is {len(data)}: send them (or wait: unsent "
                    f"uploads are removed after {_duration(max_age)}), then upload again.",
                    data={"limit_bytes": quota, "held_bytes": held},
                )
            self._store_blob(data, mime)
            self._insert_file(sha, mime, len(data))
            db.execute(
                "INSERT INTO uploads (ext, sha256, at) VALUES (?, ?, ?) "
                "ON CONFLICT DO UPDATE SET at = excluded.at",
                (ext, sha, time.time()),
            )
        return FileInfo(sha, clean_file_name(name), mime, len(data))

    def unsent_upload_bytes(self, ext: str, but: str = "") -> int:
        """Bytes of what `ext` uploaded that no message carries (`but` that file)."""
        row = self.conn.execute(
            """SELECT COALESCE(SUM(x.size), 0) FROM uploads u JOIN files x ON x.sha256 = u.sha256
               WHERE u.ext = ? AND u.sha256 != ? AND NOT EXISTS
                   (SELECT 1 FROM message_files mf WHERE mf.sha256 = u.sha256)""",
            (ext, but),
        ).fetchone()
        return int(row[0])

    def expire_uploads(self, max_age: float, now: float | None = None) -> tuple[int, int]:
        """Forget uploads older than `max_age` seconds that no message carries, and remove
        the files nothing uses any more; returns (files removed, their bytes)."""
        cut = (time.time() if now is None else now) - max_age
        with self._write() as db:
            db.execute(
                """DELETE FROM uploads WHERE at < ? AND NOT EXISTS
                       (SELECT 1 FROM message_files mf WHERE mf.sha256 = uploads.sha256)""",
                (cut,),
            )
            unused = db.execute(
                f"SELECT sha256, size FROM files x WHERE {_UNUSED}"  # noqa: S608
            ).fetchall()
            db.executemany("DELETE FROM files WHERE sha256 = ?", [(r[0],) for r in unused])
            for sha, _size in unused:
                with contextlib.suppress(FileNotFoundError):
                    self._blob_path(sha).unlink()
        return len(unused), sum(int(r[1]) for r in unused)

    def store_inbound_file(self, data: bytes) -> tuple[str, str]:
        """A file that arrived from the carrier (or `admin inject`): (sha256, mime).
        Inside a write transaction only: the message that uses it must commit with it,
        or a sweep could take the file away in between."""
        mime = sniff(data) or "application/octet-stream"
        sha = self._store_blob(data, mime)
        self._insert_file(sha, mime, len(data))
        return sha, mime

    def can_download(self, ext: str, sha256: str) -> bool:
        row = self.conn.execute(
            f"""SELECT 1 FROM message_files f JOIN messages m ON m.id = f.message_id
                WHERE f.sha256 = :sha AND {VISIBLE} LIMIT 1""",  # noqa: S608
            {"sha": sha256, "ext": ext},
        ).fetchone()
        return row is not None

    def download(self, ext: str, sha256: str, offset: int, length: int) -> dict[str, Any]:
        """A chunk of a file the extension can see; anything else is `not-found`."""
        with self._read() as db:
            allowed = SHA256.fullmatch(sha256) is not None and self.can_download(ext, sha256)
            row = db.execute("SELECT mime, size FROM files WHERE sha256 = ?", (sha256,)).fetchone()
        if not allowed or row is None:
            raise NotFound("No such file in your messages.")
        return self._chunk(sha256, row["mime"], int(row["size"]), offset, length)

    def _chunk(self, sha: str, mime: str, size: int, offset: int, length: int) -> dict[str, Any]:
        length = max(0, min(length, MAX_CHUNK))
        try:
            with open(self._blob_path(sha), "rb") as fh:
                fh.seek(offset)
                data = fh.read(length)
        except FileNotFoundError as exc:
            raise NotFound("The file is missing from the server's file store.") from exc
        return {"data": data, "size": size, "mime": mime}

    def avatar(self, ext: str) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT f.sha256, f.mime, f.size FROM extensions e JOIN files f "
            "ON f.sha256 = e.avatar WHERE e.ext = ?",
            (ext,),
        ).fetchone()
        if row is None:
            raise NotFound(f"Extension {ext} has no avatar.")
        return self._chunk(row["sha256"], row["mime"], int(row["size"]), 0, MAX_CHUNK)

    def read_blob(self, sha256: str) -> bytes:
        return self._blob_path(sha256).read_bytes()


def _duration(seconds: float) -> str:
    """'1 day', '6 hours', '90 seconds': how long, for a message."""
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} seconds"
