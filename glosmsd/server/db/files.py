"""The server store's files part: uploads (type checked by content), downloads, avatars."""

from __future__ import annotations

from typing import Any

from glosmsd.core.errors import BadInput, NotFound
from glosmsd.core.filetypes import check_type, sniff
from glosmsd.core.wire import MAX_CHUNK, SHA256, clean_file_name
from glosmsd.server.db.accounts import AccountsDb
from glosmsd.server.db.base import VISIBLE
from glosmsd.server.db.records import FileInfo


class FilesDb(AccountsDb):
    """Files a message can carry, and who may fetch them."""

    def upload(self, ext: str, data: bytes, name: str) -> FileInfo:
        """Store an MMS attachment after checking its type by content and its size."""
        settings = self.settings()
        limit = int(settings["mms_max_bytes"])
        if len(data) > limit:
            raise BadInput(
                f"The file is {len(data)} bytes; a message may carry at most {limit} bytes "
                "of files."
            )
        mime = check_type(data, list(settings["mms_types"]))
        sha = self._store_blob(data, mime)
        with self._write() as db:
            self._insert_file(sha, mime, len(data))
            db.execute("INSERT OR IGNORE INTO uploads (ext, sha256) VALUES (?, ?)", (ext, sha))
        return FileInfo(sha, clean_file_name(name), mime, len(data))

    def store_inbound_file(self, data: bytes) -> tuple[str, str]:
        """A file that arrived from the carrier (or `admin inject`): (sha256, mime)."""
        mime = sniff(data) or "application/octet-stream"
        sha = self._store_blob(data, mime)
        with self._write():
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
