"""Benchmark of the daemon's local store, each figure next to a floor from the same run.

- catch-up: `Store.apply_sync` of 10,000 server messages in batches of 500 (conversations,
  FTS index, local event log, unread bookkeeping, cursor); floor: a plain batched
  `executemany` of the same rows into a bare table with the same columns.
- search at 1,000,000 messages: `Store.search` (contacts + conversations + messages, rows
  materialised) for a few typical queries; floors: the raw FTS5 MATCH alone on the same
  database, and a `LIKE '%word%'` scan (what a store without FTS would do).
- conversation list at 2,000 conversations: the first page (50) and the whole list with
  unread counts and previews, and `unread()`; floor: a bare ordered SELECT of the rows.

The 1M-message database is built once under `bench/.data/` (gitignored) from a seeded
generator and reused while its recipe version matches. Run:
`.venv/bin/python -m bench.bench_store` (first run builds the data: a few minutes on two
cores; later runs take about 20 s). `run()` returns the figures as a dict.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glosmsd.core import fastjson
from glosmsd.daemon.store import Store

SEED = 20251126
OWN = "+15550001001"
CATCH_UP = 10_000
BATCH = 500
BIG_MESSAGES = 1_000_000
BIG_CONVERSATIONS = 2_000
DATA_DIR = Path(__file__).resolve().parent / ".data"
BIG_DB = DATA_DIR / "store-1m-v3.db"
QUERIES = ("invoice", "meet tomorrow", "ha", "dentist appointment", "zebra", "xylophone")


def _vocabulary(rng: random.Random) -> list[str]:
    common = (  # noqa: SIM905 (reads better than a 60-item list)
        "the a to you i and it is for on at be we me my this that are can call see will "
        "meet tomorrow today ok thanks yes no please when where home work lunch dinner "
        "invoice payment order delivery appointment dentist office late soon here there "
        "love happy birthday great good morning night weekend monday friday car train"
    ).split()
    letters = "abcdefghijklmnopqrstuvwxyz"
    rare = {"".join(rng.choice(letters) for _ in range(rng.randint(4, 10))) for _ in range(6000)}
    rare -= {"zebra", "xylophone"}
    return [*common, *sorted(rare), "zebra"]


def _texts(rng: random.Random, n: int) -> list[str]:
    vocab = _vocabulary(rng)
    # Zipf-like: the common words dominate, the long tail is rare.
    cum = list(itertools.accumulate(1.0 / (i + 1) ** 1.1 for i in range(len(vocab))))
    return [" ".join(rng.choices(vocab, cum_weights=cum, k=rng.randint(3, 14))) for _ in range(n)]


def _remote(i: int) -> str:
    return f"+1555{2000000 + i:07d}"


def _catch_up_events(rng: random.Random) -> list[dict[str, Any]]:
    texts = _texts(rng, CATCH_UP)
    events = []
    for i, text in enumerate(texts, start=1):
        out = rng.random() < 0.3
        files = (
            [{"sha256": f"{i:064x}", "name": "p.jpg", "mime": "image/jpeg", "size": 40_000}]
            if rng.random() < 0.05
            else []
        )
        events.append(
            {
                "seq": i,
                "kind": "message",
                "at": 1.7e9 + i,
                "message": {
                    "id": i,
                    "client_id": f"c{i}" if out else None,
                    "number": OWN,
                    "remote": _remote(rng.randrange(200)),
                    "direction": "out" if out else "in",
                    "text": text,
                    "state": "sent",
                    "reason": None,
                    "at": 1.7e9 + i,
                    "files": files,
                    "sender": {"ext": "1001", "name": "Ann", "avatar": None} if out else None,
                },
            }
        )
    return events


def bench_catch_up(tmp: Path) -> dict[str, float]:
    events = _catch_up_events(random.Random(SEED))
    store = Store.open(tmp / "catchup.db")
    t0 = time.perf_counter()
    for start in range(0, len(events), BATCH):
        batch = events[start : start + BATCH]
        store.apply_sync(batch, batch[-1]["seq"], own_ext="1001")
    elapsed = time.perf_counter() - t0
    assert store.cursor() == CATCH_UP
    store.close()

    schema_floor = _schema_floor(tmp, events)

    conn = sqlite3.connect(tmp / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, server_id INTEGER, client_id TEXT, "
        "number TEXT, remote TEXT, direction TEXT, text TEXT, state TEXT, reason TEXT, "
        "at REAL, sender TEXT, files TEXT)"
    )
    rows = [
        (
            m["id"],
            m["client_id"],
            m["number"],
            m["remote"],
            m["direction"],
            m["text"],
            m["state"],
            m["reason"],
            m["at"],
            str(m["sender"]),
            str(m["files"]),
        )
        for m in (e["message"] for e in events)
    ]
    t0 = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO messages (server_id, client_id, number, remote, direction, text, "
            "state, reason, at, sender, files) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows[start : start + BATCH],
        )
        conn.execute("COMMIT")
    floor = time.perf_counter() - t0
    conn.close()
    return {
        "catch_up_s": elapsed,
        "catch_up_floor_s": floor,
        "catch_up_ratio": elapsed / floor,
        "catch_up_schema_floor_s": schema_floor,
        "catch_up_schema_ratio": elapsed / schema_floor,
    }


def _schema_floor(tmp: Path, events: list[dict[str, Any]]) -> float:
    """The same rows written straight into the store's own tables (messages, FTS, event log)
    with `executemany`: what SQLite must do whatever code drives it. Its JSON columns are
    encoded as the store encodes them (`fastjson.dumps`, orjson): with `json.dumps` the
    floor spent ~40 of its ~230 ms encoding, which is no work of SQLite's."""
    Store.open(tmp / "schema.db").close()
    conn = sqlite3.connect(tmp / "schema.db", isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    remotes = sorted({e["message"]["remote"] for e in events})
    conv = {r: i for i, r in enumerate(remotes, 1)}
    conn.executemany(
        "INSERT INTO conversations (id, number, remote, remote_digits, remote_tail) "
        "VALUES (?, ?, ?, '', '')",
        [(i, OWN, r) for r, i in conv.items()],
    )
    msgs = [e["message"] for e in events]
    t0 = time.perf_counter()
    for start in range(0, len(msgs), BATCH):
        part = msgs[start : start + BATCH]
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO messages (id, server_id, client_id, conversation_id, direction, text, "
            "state, at, sender, files) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    m["id"],
                    m["id"],
                    m["client_id"],
                    conv[m["remote"]],
                    m["direction"],
                    m["text"],
                    m["state"],
                    m["at"],
                    None,
                    fastjson.dumps(m["files"]),
                )
                for m in part
            ],
        )
        conn.executemany(
            "INSERT INTO messages_fts (rowid, text) VALUES (?, ?)",
            [(m["id"], m["text"]) for m in part],
        )
        conn.executemany(
            "INSERT INTO events (kind, at, payload) VALUES ('message', ?, ?)",
            [(m["at"], fastjson.dumps({"message": m})) for m in part],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def build_big(path: Path) -> float:
    """The 1M-message database: made with the store's own schema, filled with bulk SQL."""
    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for p in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        p.unlink(missing_ok=True)
    Store.open(partial).close()
    rng = random.Random(SEED + 1)
    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -200000")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO conversations (id, number, remote, remote_digits, remote_tail, name, "
        "name_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                c,
                OWN,
                _remote(c),
                _remote(c)[1:],
                _remote(c)[-10:],
                f"Person {c}" if c <= 500 else None,
                f"person {c}" if c <= 500 else "",
            )
            for c in range(1, BIG_CONVERSATIONS + 1)
        ],
    )
    conn.executemany(
        "INSERT INTO contacts (id, name, numbers, digits) VALUES (?, ?, '[]', ?)",
        [(c, f"Person {c}", _remote(c)[1:]) for c in range(1, 501)],
    )
    conn.execute("COMMIT")
    chunk = 50_000
    for start in range(0, BIG_MESSAGES, chunk):
        texts = _texts(rng, chunk)
        rows = []
        for k, text in enumerate(texts):
            i = start + k + 1
            rows.append(
                (
                    i,
                    i,
                    rng.randint(1, BIG_CONVERSATIONS),
                    "in" if rng.random() < 0.6 else "out",
                    text,
                    1.6e9 + i * 30.0,
                )
            )
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO messages (id, server_id, conversation_id, direction, text, state, at) "
            "VALUES (?, ?, ?, ?, ?, 'sent', ?)",
            rows,
        )
        conn.execute("COMMIT")
    conn.execute("BEGIN")
    conn.execute(
        "UPDATE conversations SET (last_at, last_message_id) = (SELECT at, id FROM messages "
        "WHERE conversation_id = conversations.id ORDER BY at DESC, id DESC LIMIT 1)"
    )
    # Everything read except the last few messages of every tenth conversation.
    conn.execute(
        "UPDATE conversations SET read_up_to = coalesce((SELECT max(server_id) FROM messages "
        "WHERE conversation_id = conversations.id), 0) - (CASE WHEN id % 10 = 0 THEN 3000 "
        "ELSE 0 END)"
    )
    conn.execute("COMMIT")
    # One bulk index build (the store indexes row by row; the result is the same index).
    conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    partial.rename(path)
    return time.perf_counter() - t0


def _timed(fn: Callable[[], object], repeat: int = 7) -> float:
    """Median seconds of `fn` over `repeat` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _search_one(store: Store, raw: sqlite3.Connection, q: str) -> dict[str, float]:
    words = q.split()
    # The MATCH text fts_query builds: quoted terms, the last one a prefix.
    match = " ".join([*(f'"{w}"' for w in words[:-1]), f'"{words[-1]}"*'])
    like_sql = (
        "SELECT id FROM messages WHERE "
        + " AND ".join("text LIKE ?" for _ in words)
        + " ORDER BY id DESC LIMIT 20"
    )
    like_args = [f"%{w}%" for w in words]
    fts_sql = (
        "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT 20"
    )
    return {
        "hits": len(store.search(q, 20).messages),
        "search_s": _timed(lambda: store.search(q, 20)),
        "fts_s": _timed(lambda: raw.execute(fts_sql, (match,)).fetchall()),
        "like_s": _timed(lambda: raw.execute(like_sql, like_args).fetchall(), repeat=3),
    }


def bench_search(path: Path) -> dict[str, Any]:
    store = Store.open(path)
    raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        per_query = {q: _search_one(store, raw, q) for q in QUERIES}
    finally:
        raw.close()
        store.close()
    ours_med = statistics.median(v["search_s"] for v in per_query.values())
    fts_med = statistics.median(v["fts_s"] for v in per_query.values())
    like_med = statistics.median(v["like_s"] for v in per_query.values())
    worst = max(per_query.values(), key=lambda v: v["like_s"])
    return {
        "search_queries": per_query,
        "search_s": ours_med,
        "search_fts_floor_s": fts_med,
        "search_like_s": like_med,
        "search_ratio_vs_fts": ours_med / fts_med,
        "search_like_worst_s": worst["like_s"],
        "search_at_like_worst_s": worst["search_s"],
    }


def bench_conversations(path: Path) -> dict[str, float]:
    store = Store.open(path)
    raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert len(store.conversations(limit=BIG_CONVERSATIONS)) == BIG_CONVERSATIONS
        page = _timed(lambda: store.conversations(limit=50))
        whole = _timed(lambda: store.conversations(limit=BIG_CONVERSATIONS), repeat=3)
        unread = _timed(store.unread, repeat=3)
        floor = _timed(
            lambda: raw.execute(
                "SELECT * FROM conversations WHERE last_at IS NOT NULL "
                "ORDER BY last_at DESC, id DESC LIMIT 50"
            ).fetchall()
        )
        floor_whole = _timed(
            lambda: raw.execute(
                "SELECT * FROM conversations WHERE last_at IS NOT NULL "
                "ORDER BY last_at DESC, id DESC"
            ).fetchall(),
            repeat=3,
        )
        total = store.unread().total
    finally:
        raw.close()
        store.close()
    return {
        "list_page_s": page,
        "list_page_floor_s": floor,
        "list_page_ratio": page / floor,
        "list_all_s": whole,
        "list_all_floor_s": floor_whole,
        "list_all_ratio": whole / floor_whole,
        "unread_s": unread,
        "unread_total": total,
    }


def run() -> dict[str, Any]:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        result.update(bench_catch_up(Path(d)))
    if not BIG_DB.exists():
        print(f"building {BIG_DB} ({BIG_MESSAGES:,} messages, once)...", flush=True)
        result["build_s"] = build_big(BIG_DB)
    result.update(bench_search(BIG_DB))
    result.update(bench_conversations(BIG_DB))
    return result


def main() -> dict[str, Any]:
    r = run()
    ms = 1000.0
    if "build_s" in r:
        print(f"built the 1M-message database in {r['build_s']:.0f} s")
    print(
        f"catch-up {CATCH_UP:,} msgs in batches of {BATCH}: {r['catch_up_s'] * ms:8.1f} ms"
        f"   floor (plain batched insert) {r['catch_up_floor_s'] * ms:7.1f} ms"
        f"   ratio {r['catch_up_ratio']:.1f}x"
    )
    print(
        f"   same rows via executemany into the store's own tables (messages, FTS, events): "
        f"{r['catch_up_schema_floor_s'] * ms:7.1f} ms   ratio {r['catch_up_schema_ratio']:.1f}x"
    )
    for q, v in r["search_queries"].items():
        print(
            f"search {q!r:24} hits {v['hits']:3d}: {v['search_s'] * ms:7.2f} ms"
            f"   raw FTS5 {v['fts_s'] * ms:7.2f} ms   LIKE scan {v['like_s'] * ms:8.1f} ms"
        )
    print(
        f"search at {BIG_MESSAGES:,} msgs (median): {r['search_s'] * ms:7.2f} ms"
        f"   floor (raw FTS5) {r['search_fts_floor_s'] * ms:7.2f} ms"
        f"   ratio {r['search_ratio_vs_fts']:.1f}x"
        f"   LIKE scan {r['search_like_s'] * ms:.1f} ms"
    )
    print(
        f"   worst LIKE case (no early stop, every row scanned): "
        f"LIKE {r['search_like_worst_s'] * ms:.0f} ms"
        f" vs search {r['search_at_like_worst_s'] * ms:.2f} ms"
    )
    print(
        f"conversation list, first 50 of {BIG_CONVERSATIONS:,}: {r['list_page_s'] * ms:7.2f} ms"
        f"   floor (bare SELECT) {r['list_page_floor_s'] * ms:6.2f} ms"
        f"   ratio {r['list_page_ratio']:.1f}x"
    )
    print(
        f"conversation list, all {BIG_CONVERSATIONS:,}: {r['list_all_s'] * ms:7.2f} ms"
        f"   floor (bare SELECT) {r['list_all_floor_s'] * ms:6.2f} ms"
        f"   ratio {r['list_all_ratio']:.1f}x"
    )
    print(f"unread summary ({r['unread_total']:,} unread): {r['unread_s'] * ms:7.2f} ms")
    return r


if __name__ == "__main__":
    main()
