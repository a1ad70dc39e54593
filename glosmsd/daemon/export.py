"""Export of the SMS history (F15): a new `SMS` folder, a text file per conversation.

Creates `SMS` in the folder the user picked (`SMS (2)`, `SMS (3)`, ... when taken; never
writes into an existing folder), one readable UTF-8 text file per conversation (date,
direction, sender, text, file names) and the MMS files beside them. Files not downloaded
yet are fetched when the server is reachable, else listed as not downloaded. Progress is
logged as `export` events, so a client watching the event stream can show a bar, and
reported to `progress(done, total)` per conversation when the caller passes one.

It reads the store and fetches through the function it is given (the downloads'), and
writes only inside the new folder.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glosmsd.core.errors import BadInput, GlosmsdError
from glosmsd.daemon.files import copy_unique, save_unique
from glosmsd.daemon.store import AsyncStore, Store

if TYPE_CHECKING:
    from glosmsd.daemon.store import ExportedConversation, MessageRow


def make_folder(parent: Path) -> Path:
    """Create a fresh `SMS` folder under `parent`, numbered when the name is taken."""
    if not parent.is_dir():
        raise BadInput(f"{parent} is not a folder; pick an existing folder to export into.")
    for n in range(1, 1000):
        folder = parent / ("SMS" if n == 1 else f"SMS ({n})")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except PermissionError as exc:
            raise BadInput(f"Cannot create a folder in {parent}: permission denied.") from exc
        return folder
    raise BadInput(f"{parent} already has too many SMS folders.")


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M")


def _line(msg: MessageRow, own_name: str) -> str:
    if msg.direction == "in":
        who = f"from {msg.remote}"
    elif msg.sender is not None:
        who = f"sent by {msg.sender.name}"
    else:
        who = f"sent by {own_name}"
    state = "" if msg.state == "sent" or msg.direction == "in" else f" [{msg.state}]"
    text = msg.text.replace("\r\n", "\n").replace("\n", "\n    ")
    lines = [f"{_when(msg.at)}  {'<-' if msg.direction == 'in' else '->'} {who}{state}"]
    if text:
        lines.append(f"    {text}")
    lines.extend(f"    [file: {f.name}]" for f in msg.files)
    return "\n".join(lines)


def write_conversation(folder: Path, conv: ExportedConversation, own_name: str) -> Path:
    c = conv.conversation
    title = c.name or c.remote
    header = [
        f"SMS conversation with {title}" + (f" ({c.remote})" if c.name else ""),
        f"Own number: {c.number}",
        f"Messages: {len(conv.messages)}",
        "",
    ]
    body = "\n\n".join(_line(m, own_name) for m in conv.messages)
    from glosmsd.daemon import media  # loaded at the first file (issue 16)

    name = media.safe_name(f"{title} {c.remote}.txt" if c.name else f"{c.remote}.txt")
    return save_unique(folder, name, ("\n".join(header) + body + "\n").encode("utf-8"))


async def export_history(
    store: AsyncStore,
    parent: Path,
    *,
    own_name: str,
    fetch: Callable[[str], Awaitable[bytes]],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Export into a new folder under `parent`; `fetch(sha256)` gets a file not here yet."""
    folder = await asyncio.to_thread(make_folder, parent)
    conversations = files = missing = 0
    total = max(1, len(await store.run(Store.conversations, limit=100000)))
    step = max(1, total // 10)
    async for conv in store.export_rows():
        await asyncio.to_thread(write_conversation, folder, conv, own_name)
        conversations += 1
        for msg in conv.messages:
            for f in msg.files:
                data: bytes | None = None
                local = Path(f.path) if f.path else None
                if local is not None and await asyncio.to_thread(local.is_file):
                    await asyncio.to_thread(copy_unique, local, folder, f.name)
                    files += 1
                    continue
                if f.sha256:
                    try:
                        data = await fetch(f.sha256)
                    except GlosmsdError:
                        data = None
                if data is None:
                    missing += 1
                else:
                    await asyncio.to_thread(save_unique, folder, f.name, data)
                    files += 1
        if progress is not None:
            progress(conversations, total)
        if conversations % step == 0:
            await store.run(
                Store.append_event,
                "export",
                {"folder": str(folder), "done": conversations, "total": total},
            )
    result = {
        "folder": str(folder),
        "conversations": conversations,
        "files": files,
        "missing_files": missing,
    }
    await store.run(Store.append_event, "export", {**result, "done": conversations, "total": total})
    return result
