"""How many file descriptors this process may open, and how many it has open.

A server that accepts until the table is full cannot open its own database, log file or
link any more, and asyncio then logs a traceback per failed accept. The socket servers
(the daemon's Unix socket, the reference server) size their connection caps from
`connection_cap`, which keeps a reserve of descriptors for everything else.
"""

from __future__ import annotations

from typing import Final

#: Descriptors kept for everything but client connections: the database and its WAL,
#: the log, the link, threads' pipes, files being sent or saved.
RESERVE: Final = 64


def limit() -> int | None:
    """The soft RLIMIT_NOFILE, or None where the OS has no such limit (or no limit)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    return int(soft)


def connection_cap(wanted: int, reserve: int = RESERVE) -> int:
    """At most `wanted` connections, fewer when the descriptor limit leaves no room for
    them and `reserve` more; at least 4, so a tiny limit still serves someone."""
    soft = limit()
    if soft is None:
        return wanted
    return max(4, min(wanted, soft - reserve))
