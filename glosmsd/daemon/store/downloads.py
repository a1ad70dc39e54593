"""Where downloaded files are, and which incoming files still wait for a download."""

from __future__ import annotations

from glosmsd.core.errors import BadInput
from glosmsd.daemon.store.records import Records
from glosmsd.daemon.store.rows import FILE_STATES, FileRow


class DownloadRows(Records):
    """The state of each file known by its sha256."""

    def set_file_state(self, sha256: str, path: str | None, state: str) -> None:
        """Record where a downloaded file is and its download state."""
        if state not in FILE_STATES:
            raise BadInput(f"file state must be one of {', '.join(FILE_STATES)}")
        with self._write() as db:
            db.execute(
                "INSERT INTO files (sha256, path, state) VALUES (?, ?, ?) ON CONFLICT (sha256) "
                "DO UPDATE SET path = excluded.path, state = excluded.state",
                (sha256, path, state),
            )

    def file_state(self, sha256: str) -> tuple[str | None, str]:
        """(local path or None, download state) of a file known by its sha256."""
        row = self._conn.execute(
            "SELECT path, state FROM files WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return (None, "none") if row is None else (row["path"], row["state"])

    def file_name(self, sha256: str) -> str | None:
        """The name a message gave the file with this sha256 (the newest such message)."""
        row = self._conn.execute(
            """SELECT j.value ->> 'name' FROM messages m, json_each(m.files) j
               WHERE m.files != '[]' AND j.value ->> 'sha256' = ?
               ORDER BY m.id DESC LIMIT 1""",
            (sha256,),
        ).fetchone()
        return None if row is None or not row[0] else str(row[0])

    def pending_downloads(self, max_size: int | None = None, limit: int = 50) -> list[FileRow]:
        """Files of incoming messages not downloaded yet (state none), newest message first.

        With `max_size`, only files at most that big (the automatic download rule).
        """
        rows = self._conn.execute(
            """SELECT DISTINCT j.value ->> 'sha256' AS sha256, j.value ->> 'name' AS name,
                      j.value ->> 'mime' AS mime, j.value ->> 'size' AS size
               FROM messages m, json_each(m.files) j
               LEFT JOIN files f ON f.sha256 = j.value ->> 'sha256'
               WHERE m.direction = 'in' AND m.files != '[]'
                 AND coalesce(f.state, 'none') = 'none'
                 AND (? IS NULL OR coalesce(j.value ->> 'size', 0) <= ?)
               ORDER BY m.id DESC LIMIT ?""",
            (max_size, max_size, limit),
        ).fetchall()
        return [
            FileRow(r["sha256"], r["name"] or "file", r["mime"], r["size"], None, "none")
            for r in rows
        ]
