"""Tests for glosmsd/core/migrations.py, on real SQLite files (the runner itself is pure)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from glosmsd.core import migrations
from glosmsd.core.errors import SchemaTooNew
from glosmsd.core.migrations import Schema, Step


def schema(*steps: Step) -> Schema:
    return Schema(what="the test database", program="testprog", advice="Upgrade it.", steps=steps)


def fill(conn: migrations.Connection) -> None:
    conn.execute("INSERT INTO t (x) VALUES ('from a function')")


STEPS = (
    Step(
        1,
        "a table and a trigger whose body holds semicolons",
        sql=(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)",
            "CREATE TABLE log (what TEXT)",
            """CREATE TRIGGER t_log AFTER INSERT ON t BEGIN
                INSERT INTO log (what) VALUES ('one;');
                INSERT INTO log (what) VALUES ('two; three');
            END""",
            "INSERT INTO t (x) VALUES ('a;b')",
        ),
    ),
    Step(2, "a function step", run=fill),
)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    yield c
    c.close()


def test_runs_every_step_once_in_order(conn: sqlite3.Connection) -> None:
    assert migrations.migrate(conn, schema(*STEPS), "t.db") == [1, 2]
    assert migrations.read_version(conn) == 2
    assert conn.execute("SELECT x FROM t ORDER BY id").fetchall() == [
        ("a;b",),
        ("from a function",),
    ]
    # The trigger body's two statements both ran, twice (one per insert).
    assert [r[0] for r in conn.execute("SELECT what FROM log")] == ["one;", "two; three"] * 2
    assert migrations.migrate(conn, schema(*STEPS), "t.db") == []


def test_an_older_database_gets_only_the_missing_steps(conn: sqlite3.Connection) -> None:
    migrations.migrate(conn, schema(STEPS[0]), "t.db")
    assert migrations.migrate(conn, schema(*STEPS), "t.db") == [2]
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2


def test_a_failing_step_leaves_the_steps_before_it(conn: sqlite3.Connection) -> None:
    broken = Step(2, "half a step", sql=("CREATE TABLE half (x)", "INSERT INTO nowhere VALUES (1)"))
    with pytest.raises(sqlite3.OperationalError) as info:
        migrations.migrate(conn, schema(STEPS[0], broken), "t.db")
    assert any("schema version 2: half a step" in n for n in info.value.__notes__)
    assert migrations.read_version(conn) == 1
    assert not conn.in_transaction
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "half" not in tables  # the step's own statements went with it
    assert "t" in tables


def test_a_newer_database_is_refused_before_prepare_runs(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("CREATE TABLE future (x)")
    c.execute("PRAGMA user_version = 7")
    c.close()
    before = path.read_bytes()
    prepared: list[bool] = []
    c = sqlite3.connect(path, isolation_level=None)
    try:
        with pytest.raises(SchemaTooNew) as info:
            migrations.migrate(
                c, schema(*STEPS), str(path), prepare=lambda _c: prepared.append(True)
            )
    finally:
        c.close()
    assert prepared == []
    assert info.value.data == {"path": str(path), "version": 7, "supported": 2}
    assert "newer testprog (schema version 7; this one knows up to 2). Upgrade it." in str(
        info.value
    )
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.db"]


def test_a_step_another_connection_ran_meanwhile_is_skipped(tmp_path: Path) -> None:
    # Two processes opening one file at once (the server and its admin command): both
    # read version 0, the second runs the steps while the first waits; the first must
    # not run them again.
    path = tmp_path / "race.db"
    first = sqlite3.connect(path, isolation_level=None)
    second = sqlite3.connect(path, isolation_level=None)
    try:

        def other_process_wins(_c: migrations.Connection) -> None:
            assert migrations.migrate(second, schema(*STEPS), str(path)) == [1, 2]

        assert (
            migrations.migrate(first, schema(*STEPS), str(path), prepare=other_process_wins) == []
        )
        assert first.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    finally:
        first.close()
        second.close()


def test_schemas_are_numbered_and_steps_have_one_body() -> None:
    with pytest.raises(ValueError, match="numbered"):
        schema(STEPS[1])
    with pytest.raises(ValueError, match="either"):
        Step(1, "nothing")
    with pytest.raises(ValueError, match="either"):
        Step(1, "both", sql=("SELECT 1",), run=fill)
    assert schema(*STEPS).version == 2
