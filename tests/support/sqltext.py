"""SQLite databases as SQL text: the frozen schema fixtures, and schema comparisons.

The fixtures under tests/*/fixtures/ are databases as some released version of glosmsd
or glosmsd-server left them, kept as text (never a binary .db) and never regenerated:
a migration test loads one, lets today's code bring it up to date, and compares the
result with a fresh database.

`sqlite3.Connection.iterdump` cannot be used: it writes FTS5 tables into sqlite_master
by hand (the load then fails with "no such table") and drops `user_version`. Here every
CREATE is replayed as SQLite stored it, rows are written with SQLite's own `quote()`, and
each FTS5 index is rebuilt from its content table.

    python -m tests.support.sqltext DB > fixture.sql    # dump a database
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

# What a virtual table FTS5 creates next to itself; it is rebuilt, not copied.
_SHADOW_SUFFIXES = ("_data", "_idx", "_content", "_docsize", "_config")


def _objects(conn: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
    return conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
    ).fetchall()


def _fts_tables(objects: list[tuple[str, str, str, str]]) -> list[str]:
    return [
        name
        for kind, name, _t, sql in objects
        if kind == "table" and sql.upper().startswith("CREATE VIRTUAL TABLE")
    ]


def _is_shadow(name: str, fts: list[str]) -> bool:
    return any(name == f"{v}{s}" for v in fts for s in _SHADOW_SUFFIXES)


def dump(path: Path, header: str = "") -> str:
    """The database at `path` as SQL text that `load` turns back into the same database."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        objects = _objects(conn)
        fts = _fts_tables(objects)
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        lines = [f"-- {line}".rstrip() for line in header.splitlines()]
        lines.append(f"PRAGMA user_version = {version};")
        later: list[str] = []
        for kind, name, _table, sql in objects:
            if _is_shadow(name, fts):
                continue
            (later if kind == "trigger" else lines).append(f"{sql};")
        tables = [n for k, n, _t, sql in objects if k == "table" and n not in fts]
        for name in [t for t in tables if not _is_shadow(t, fts)]:
            lines += _rows(conn, name)
        sequence = _rows(conn, "sqlite_sequence")
        if sequence:  # the inserts above moved it; it must be what it was (pruned ids)
            lines += ["DELETE FROM sqlite_sequence;", *sequence]
        lines += later
        lines += [f"INSERT INTO {v} ({v}) VALUES ('rebuild');" for v in fts]
        return "\n".join(lines) + "\n"
    finally:
        conn.close()


def _rows(conn: sqlite3.Connection, table: str) -> list[str]:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    if exists is None:
        return []
    columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
    quoted = " || ',' || ".join(f'quote("{c}")' for c in columns)
    order = "rowid" if table != "sqlite_sequence" else "name"
    try:
        rows = conn.execute(f'SELECT {quoted} FROM "{table}" ORDER BY {order}').fetchall()
    except sqlite3.OperationalError:  # WITHOUT ROWID
        rows = conn.execute(f'SELECT {quoted} FROM "{table}" ORDER BY 1').fetchall()
    names = ", ".join(f'"{c}"' for c in columns)
    return [f'INSERT INTO "{table}" ({names}) VALUES ({r[0]});' for r in rows]


def load(text: str, path: Path) -> None:
    """Make the database `text` describes at `path` (which must not exist yet)."""
    if path.exists():
        raise FileExistsError(path)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(text)
        conn.commit()
    finally:
        conn.close()


def schema_of(path: Path) -> dict[str, Any]:
    """What must be equal between an upgraded and a fresh database: every table, index,
    trigger and view as SQLite stores it, each table's columns, and the version."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        objects = sorted(
            conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name != 'sqlite_stat1'"
            ).fetchall(),
            key=lambda r: (r[0], r[1]),
        )
        columns = {
            name: conn.execute(f'PRAGMA table_xinfo("{name}")').fetchall()
            for kind, name, _t, _s in objects
            if kind == "table"
        }
        indexes = {
            name: conn.execute(f'PRAGMA index_xinfo("{name}")').fetchall()
            for kind, name, _t, _s in objects
            if kind == "index"
        }
        return {
            "version": conn.execute("PRAGMA user_version").fetchone()[0],
            "objects": objects,
            "columns": columns,
            "indexes": indexes,
        }
    finally:
        conn.close()


if __name__ == "__main__":
    sys.stdout.write(dump(Path(sys.argv[1]), "\n".join(sys.argv[2:])))
