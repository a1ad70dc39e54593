"""Numbered schema migrations, one runner for the daemon's and the server's databases.

A schema is a list of numbered steps, each with a description and either SQL statements
or a function; `PRAGMA user_version` holds the number of the last step a database has.
`migrate` reads that number before anything writes to the file and refuses a database
from a newer program (`SchemaTooNew`) while it is still byte for byte as it was; only
then does it run the caller's `prepare` (journal mode and the like) and the missing
steps, each in its own `BEGIN IMMEDIATE` transaction together with its new version, so
a step either happened with its number or not at all. A step re-reads the version under
the write lock, so two processes opening one file at once (the server and its admin
command) run each step once.

Statements are given one by one, never split out of a script: a `;` inside a trigger
body or a string is just text. Released steps are never edited, only appended to: a
database made fresh and one brought up from any older version must end up the same
(the frozen fixtures under tests/ check it).

Pure: it takes a DB-API connection in autocommit mode (sqlite3 with
`isolation_level=None`) and imports no database module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from glosmsd.core.errors import SchemaTooNew, StoreError


class Cursor(Protocol):
    def fetchone(self) -> Any: ...


class Connection(Protocol):
    """What the runner needs of a connection (sqlite3's has it)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...


@dataclass(frozen=True, slots=True)
class Step:
    """One migration: schema version `version` is reached by running it.

    `sql` is a sequence of single statements, run in order; `run` is a function given the
    connection, for what SQL alone cannot say. A step has one or the other.
    """

    version: int
    description: str
    sql: tuple[str, ...] = ()
    run: Callable[[Connection], None] | None = None

    def __post_init__(self) -> None:
        if bool(self.sql) == (self.run is not None):
            raise ValueError(f"step {self.version} needs either SQL statements or a function")


@dataclass(frozen=True, slots=True)
class Schema:
    """A database's numbered steps, and the words its errors use.

    `what` names the database ("the local database"), `program` what made it
    ("glosmsd"), `advice` what to do with a file from a newer program.
    """

    what: str
    program: str
    advice: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        numbers = [s.version for s in self.steps]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"steps must be numbered 1, 2, 3, ... in order, not {numbers}")

    @property
    def version(self) -> int:
        """The version a database has once every step ran."""
        return len(self.steps)

    def too_new(self, where: str, version: int) -> SchemaTooNew:
        return SchemaTooNew(
            f"{where} was written by a newer {self.program} (schema version {version}; this "
            f"one knows up to {self.version}). {self.advice} The file was left untouched.",
            data={"path": where, "version": version, "supported": self.version},
        )


def read_version(conn: Connection) -> int:
    """The database's `user_version` (0 for a new, empty one). Reads only."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check(conn: Connection, schema: Schema, where: str) -> int:
    """The database's version; `SchemaTooNew` when it is newer than `schema`. Reads only."""
    version = read_version(conn)
    if version > schema.version:
        raise schema.too_new(where, version)
    if version < 0:
        raise StoreError(
            f"{where} has schema version {version}, which no {schema.program} ever wrote. "
            "Move the file aside and start again."
        )
    return version


def migrate(
    conn: Connection,
    schema: Schema,
    where: str,
    *,
    prepare: Callable[[Connection], None] | None = None,
) -> list[int]:
    """Bring the database up to `schema.version`; returns the step numbers run here.

    The version is checked first, while nothing has written to the file; `prepare` runs
    after that check and before the first step (e.g. the switch to WAL, which writes the
    file header). `where` names the file in errors.
    """
    version = check(conn, schema, where)
    if prepare is not None:
        prepare(conn)
    return [s.version for s in schema.steps[version:] if _apply(conn, schema, s, where)]


def _apply(conn: Connection, schema: Schema, step: Step, where: str) -> bool:
    """Run one step in its own transaction; False when another connection already did."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = check(conn, schema, where)  # again, under the write lock now
        if current >= step.version:
            conn.execute("ROLLBACK")
            return False
        for statement in step.sql:
            conn.execute(statement)
        if step.run is not None:
            step.run(conn)
        # A PRAGMA takes no bound parameters; the version is an int from this module.
        conn.execute(f"PRAGMA user_version = {int(step.version)}")
        conn.execute("COMMIT")
    except BaseException as exc:
        exc.add_note(
            f"while migrating {where} to schema version {step.version}: {step.description}"
        )
        _rollback(conn)
        raise
    return True


def _rollback(conn: Connection) -> None:
    # SQLite ends the transaction by itself on some errors (a full disk, a lost lock);
    # then ROLLBACK fails, and the first error is the one to report.
    with contextlib.suppress(Exception):
        conn.execute("ROLLBACK")
