"""The daemon's use cases: the one layer the socket, the tray and notifications call.

Owns what each use case means (send, resend, list, read, search, mark read, delete,
contacts, download, export, prefs, emoji, count, status) in terms of the store (what the
user has) and the link (what the server must hear), plus the link's callbacks (hello,
sync batches, live events, status). Work the server must hear about while the link is
down (read marks, deletions) is kept in the store and replayed after the next hello, so
nothing the user did is lost. Sends go through the outbox (`Sender`), committed before
the caller hears back.

It must never open a socket or speak SQL itself; it never imports websockets or sqlite3.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import os
import random
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from glosmsd import __version__
from glosmsd.core import numbers, rules
from glosmsd.core.errors import (
    AmbiguousRecipient,
    AuthFailed,
    BadInput,
    GlosmsdError,
    InvalidNumber,
    LimitExceeded,
    LinkClosed,
    NoSmsNumber,
    NotFound,
    Unsupported,
)
from glosmsd.core.outbox import Done, Failed, Outbox, QueuedItem, Retry, new_client_id
from glosmsd.core.protocol import LinkStatus, State
from glosmsd.daemon import attachcheck, emojidata, media
from glosmsd.daemon.files import save_unique
from glosmsd.daemon.hub import Event, Hub
from glosmsd.daemon.store import (
    EVENT_KINDS,
    FILE_STATES,
    AsyncStore,
    ConversationRow,
    OutboxItem,
    Store,
)
from glosmsd.daemon.store import STATES as MESSAGE_STATES
from glosmsd.system.atomicwrite import write_atomic

__all__ = ["EVENT_KINDS", "FILE_STATES", "MESSAGE_STATES", "PREFS", "Service"]

log = logging.getLogger(__name__)

#: Reading an attachment stops here: far beyond anything that can be fitted into an MMS.
MAX_SOURCE_FILE: Final = 64 * 1024 * 1024
DOWNLOAD_CHUNK: Final = 262144

#: Preferences a user may set: default, type, and what it means.
PREFS: Final[Mapping[str, tuple[Any, type, str]]] = {
    "notify": (False, bool, "Notify me when I receive a new SMS message"),
    "sound": (True, bool, "New SMS Message Received (play a sound with the notification)"),
    "sms_enabled": (True, bool, "Enable the SMS messaging on Desktop (server older than 7 only)"),
    "hide_text": (False, bool, "Hide message text in notifications (privacy)"),
    "auto_download": (True, bool, "Download incoming files under the MMS size limit"),
}


class ServerLink(Protocol):
    """What the service needs of the link (`glosmsd.daemon.link.Link`)."""

    @property
    def status(self) -> LinkStatus: ...

    def describe(self) -> str: ...

    async def call(self, method: str, params: dict[str, Any], timeout: float = 30.0) -> Any: ...  # noqa: ASYNC109


@dataclass(slots=True)
class Account:
    """What the server said at hello; empty until the first hello (also kept in the store)."""

    ext: str | None = None
    name: str | None = None
    numbers: tuple[Mapping[str, Any], ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    limits: rules.Limits = field(default_factory=rules.Limits)

    @classmethod
    def from_hello(cls, hello: Mapping[str, Any]) -> Account:
        ext = hello.get("extension") or {}
        settings = hello.get("settings") or {}
        try:
            limits = rules.Limits.from_settings(settings)
        except GlosmsdError:
            log.warning("server settings malformed; using the default limits")
            limits = rules.Limits()
        return cls(
            ext=ext.get("ext"),
            name=ext.get("name"),
            numbers=tuple(hello.get("numbers") or ()),
            settings=dict(settings),
            limits=limits,
        )

    @property
    def number(self) -> str | None:
        return str(self.numbers[0]["number"]) if self.numbers else None

    @property
    def shared_with(self) -> list[dict[str, Any]]:
        return [dict(s) for s in (self.numbers[0].get("shared_with") or ())] if self.numbers else []

    @property
    def pbx_major(self) -> int | None:
        version = str(self.settings.get("pbx_version") or "")
        match = re.match(r"(\d+)", version)
        return int(match.group(1)) if match else None


def locale_name(env: Mapping[str, str] | None = None) -> str | None:
    """The locale that says how this user writes numbers (POSIX order: LC_ALL,
    LC_TELEPHONE, LANG); only its territory is used (`en_GB.UTF-8` -> GB)."""
    env = os.environ if env is None else env
    for key in ("LC_ALL", "LC_TELEPHONE", "LANG"):
        if env.get(key):
            return env[key]
    return None


class Service:
    """The use cases. Build it, `attach` the link, then serve it on the socket."""

    def __init__(
        self,
        store: AsyncStore,
        hub: Hub,
        *,
        files_dir: Path,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.files_dir = files_dir
        self.clock = clock
        self.locale = locale_name()
        self.account = Account()
        self._link: ServerLink | None = None
        self.sender = Sender(self, rng or random.Random())
        self._downloads: dict[str, asyncio.Task[None]] = {}
        # Who wants to hear how far a download got: sha256 -> callbacks(done, size).
        self._fetch_watchers: dict[str, list[Callable[[int, int], None]]] = {}
        self._download_slots = asyncio.Semaphore(2)
        self._chores: set[asyncio.Task[Any]] = set()
        self._flush_lock = asyncio.Lock()
        self.started_at = clock()

    # ------------------------------------------------------------------ wiring

    def attach(self, link: ServerLink) -> None:
        self._link = link

    @property
    def link(self) -> ServerLink:
        if self._link is None:
            raise LinkClosed("The daemon is starting; try again in a moment.")
        return self._link

    async def load(self) -> None:
        """Restore what the store knows (account from the last hello) before the link runs."""
        hello = await self.store.run(Store.account)
        if hello:
            self.account = Account.from_hello(hello)

    async def seed_prefs(self, defaults: Mapping[str, Any]) -> None:
        """Take the config file's [prefs] as the starting values; the user's changes win."""
        stored = await self.store.run(Store.prefs)
        for key, value in defaults.items():
            if key in PREFS and key not in stored:
                await self.store.run(Store.set_pref, key, value)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._chores.add(task)
        task.add_done_callback(self._chore_done)

    def _chore_done(self, task: asyncio.Task[Any]) -> None:
        self._chores.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def close(self) -> None:
        for task in [*self._chores, *self._downloads.values()]:
            task.cancel()
        for task in [*self._chores, *self._downloads.values()]:
            with contextlib.suppress(BaseException):
                await task

    # ------------------------------------------------------------------ link callbacks

    async def on_hello(self, hello: dict[str, Any]) -> None:
        await self.store.run(Store.set_account, hello)
        self.account = Account.from_hello(hello)
        self.sender.wake_all()
        self._spawn(self._after_hello())

    async def _after_hello(self) -> None:
        await self.flush_pending_ops()
        with contextlib.suppress(GlosmsdError):
            contacts = await self.link.call("contacts", {"query": "", "limit": 500})
            if isinstance(contacts, list):
                await self.store.run(Store.replace_contacts, contacts)
        await self.queue_auto_downloads()

    async def apply_batch(
        self,
        events: list[dict[str, Any]],
        cursor: int,
        reset: bool,
        *,
        snapshot: tuple[int, int | None] | None = None,
    ) -> None:
        new = await self.store.run(
            Store.apply_sync,
            events,
            cursor,
            reset=reset,
            own_ext=self.account.ext,
            snapshot=snapshot,
        )
        if any(ev.kind == "message" for ev in new):
            self._spawn(self.queue_auto_downloads())

    async def on_server_event(self, event: dict[str, Any]) -> None:
        seq = event.get("seq")
        if isinstance(seq, int):
            await self.apply_batch([event], seq, False)

    def on_link_status(self, status: LinkStatus) -> None:
        payload = {
            "state": status.state.value,
            "online": status.online,
            "detail": status.detail,
            "line": self._link.describe() if self._link else status.describe(self.clock()),
        }
        self._spawn(self.store.run(Store.append_event, "link", payload))

    async def replay(self, after: int, up_to: int) -> tuple[list[Event], bool]:
        events: list[Event] = []
        gap = False
        cursor = after
        while cursor < up_to:
            batch, truncated = await self.store.run(
                Store.events_since, cursor, up_to=up_to, limit=1000
            )
            gap = gap or truncated
            if not batch:
                break
            events.extend(batch)
            cursor = batch[-1].id
        return events, gap

    # ------------------------------------------------------------------ status

    def _require_signed_in(self) -> None:
        """Refuse, before anything is queued, what cannot be sent as this account: the
        server refused the token, or it never answered a hello (so no account is known and
        "no SMS number" would be a guess; issue 12 items 8 and 10)."""
        link = self._link
        if link is not None and link.status.state is State.AUTH_FAILED:
            raise AuthFailed(
                "glosmsd is not signed in: the server refused its token. Nothing was queued. "
                "Get a new token from your administrator and run `glosmsd setup`."
            )
        if self.account.ext is None:
            line = link.describe() if link is not None else "starting"
            raise LinkClosed(
                f"The server has not answered yet ({line}), so glosmsd does not know your "
                "account or SMS number. Nothing was queued: try again once `glosms status` "
                "shows the server connected."
            )

    def _require_number(self) -> str:
        self._require_signed_in()
        number = self.account.number
        if number is None:
            ext = self.account.ext or "your extension"
            raise NoSmsNumber(
                f"No SMS number assigned: ask your administrator to assign one to extension {ext}."
            )
        return number

    async def _sms_enabled(self) -> bool:
        return bool(await self.store.run(Store.get_pref, "sms_enabled", True))

    async def status(self) -> dict[str, Any]:
        unread = await self.store.run(Store.unread)
        link = self._link
        st = link.status if link else LinkStatus(State.DISCONNECTED)
        return {
            "version": __version__,
            "link": {
                "state": st.state.value,
                "online": st.online,
                "detail": st.detail,
                "line": link.describe() if link else "Starting",
                # Events from the server that could not be used (logged, skipped).
                "skipped": st.skipped,
                "last_skipped": st.last_skipped,
            },
            "extension": {"ext": self.account.ext, "name": self.account.name},
            "number": self.account.number,
            "shared_with": self.account.shared_with,
            "sms_enabled": await self._sms_enabled(),
            "unread": unread.total,
            "outbox": len(self.sender.core),
            "skipped_events": (await self.store.run(Store.skipped_events))["count"],
            "settings": dict(self.account.settings),
        }

    async def number(self) -> dict[str, Any]:
        number = self.account.number
        if number is None and self.account.ext is None:
            return {
                "number": None,
                "shared": False,
                "shared_with": [],
                "message": "The server has not answered yet, so your SMS number is not known: "
                "see `glosms status`.",
            }
        sharers = self.account.shared_with
        return {
            "number": number,
            "shared": bool(sharers),
            "shared_with": sharers,
            "message": None
            if number
            else "No SMS number assigned: sending and receiving SMS is not possible.",
        }

    # ------------------------------------------------------------------ reading

    async def conversations(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        return [c.to_json() for c in await self.store.run(Store.conversations, limit, offset)]

    @property
    def number_region(self) -> str | None:
        """The region of numbers typed without a country code (`numbers.default_region`)."""
        return numbers.default_region(
            setting=self.account.settings.get("region"),
            own_number=self.account.number,
            locale=self.locale,
        )

    async def resolve_conversation(self, ref: int | str) -> ConversationRow:
        """The conversation `ref` names (see `resolve_conversations`); of a contact with
        several, the most recent."""
        return (await self.resolve_conversations(ref))[0]

    async def resolve_conversations(self, ref: int | str) -> list[ConversationRow]:
        """Every conversation `ref` names, most recent first.

        An int is a conversation id. Text is decided here, once, for every caller: a
        conversation id when it can be one (`numbers.conversation_id`) and that
        conversation exists, else a phone number, else the conversations of the contact
        it names (each of its numbers; an exact name wins over a partial one), else the
        one conversation a search finds.
        """
        if isinstance(ref, int):
            conv = await self.store.run(Store.conversation, ref)
            if conv is None:
                raise NotFound(f"No conversation {ref}. List them with `glosms ls`.")
            return [conv]
        text = ref.strip()
        cid = numbers.conversation_id(text)
        if cid is not None:
            conv = await self.store.run(Store.conversation, cid)
            if conv is not None:
                return [conv]
        own = self.account.number or ""
        if numbers.looks_like_number(text):
            with contextlib.suppress(InvalidNumber):  # not a number: a partial one, searched
                remote = numbers.parse(text, self.number_region).e164
                conv = await self.store.run(Store.conversation_by_remote, own, remote)
                if conv is not None:
                    return [conv]
        found = await self._contact_conversations(text, own)
        if found:
            return found
        hits = await self.store.run(Store.search, text, 5)
        if len(hits.conversations) == 1:
            return [hits.conversations[0]]
        if cid is not None:
            raise NotFound(
                f"No conversation {ref}: none has that id or that number. "
                "List them with `glosms ls`."
            )
        raise NotFound(f"No conversation matches {ref!r}. List them with `glosms ls`.")

    async def _contact_conversations(self, name: str, own: str) -> list[ConversationRow]:
        """The conversations with the contacts `name` names: exact names (case-folded)
        when any contact has it, else every contact it matches; most recent first."""
        contacts = await self.store.run(Store.find_contacts, name, 10)
        exact = [c for c in contacts if c.name.casefold() == name.casefold()]
        found: dict[int, ConversationRow] = {}
        for contact in exact or contacts:
            for num in contact.numbers:
                conv = await self.store.run(Store.conversation_by_remote, own, num.number)
                if conv is not None and conv.last_at is not None:  # not deleted
                    found.setdefault(conv.id, conv)
        return sorted(found.values(), key=lambda c: (c.last_at or 0.0, c.id), reverse=True)

    async def messages(
        self, conversation: int | str, before: int | None = None, limit: int = 50
    ) -> dict[str, Any]:
        conv = await self.resolve_conversation(conversation)
        rows = await self.store.run(Store.messages, conv.id, before=before, limit=limit)
        return {"conversation": conv.to_json(), "messages": [m.to_json() for m in rows]}

    async def search(self, query: str, limit: int = 20) -> dict[str, Any]:
        return (await self.store.run(Store.search, query, limit)).to_json()

    async def contacts(self, query: str, limit: int = 20) -> list[dict[str, Any]]:
        return [c.to_json() for c in await self.store.run(Store.find_contacts, query, limit)]

    # ------------------------------------------------------------------ sending

    async def resolve_recipient(self, to: str, pick: int | None = None) -> str:
        """A phone number for `to` (a number, or a contact name; several numbers need `pick`)."""
        text = to.strip()
        if numbers.looks_like_number(text):
            # Refused here, before anything is queued: a number the server cannot take
            # would only fail later and leave a conversation with it behind.
            return numbers.parse(text, self.number_region).e164
        contacts = await self.store.run(Store.find_contacts, text, 20)
        exact = [c for c in contacts if c.name.casefold() == text.casefold()]
        matches = exact or contacts
        if not matches:
            raise NotFound(
                f"No contact named {to!r}. Give a phone number, or look names up with "
                "`glosms contacts NAME`."
            )
        if len(matches) > 1:
            names = ", ".join(c.name for c in matches[:10])
            raise AmbiguousRecipient(
                f"{to!r} matches several contacts: {names}. Use the full name or a number.",
                data={"contacts": [c.to_json() for c in matches[:10]]},
            )
        contact = matches[0]
        choices = contact.numbers
        if not choices:
            raise BadInput(f"{contact.name} has no phone number.")
        if pick is not None:
            if not 1 <= pick <= len(choices):
                raise BadInput(
                    f"{contact.name} has {len(choices)} numbers; pick 1 to {len(choices)}."
                )
            return choices[pick - 1].number
        if len(choices) > 1:
            listing = "; ".join(f"{i}) {n.label} {n.number}" for i, n in enumerate(choices, 1))
            raise AmbiguousRecipient(
                f"{contact.name} has {len(choices)} numbers: {listing}. Choose one with "
                "--pick N (or the `pick` param).",
                data={
                    "contact": contact.name,
                    "choices": [
                        {"pick": i, "label": n.label, "number": n.number}
                        for i, n in enumerate(choices, 1)
                    ],
                },
            )
        return choices[0].number

    async def send(
        self,
        to: str,
        text: str = "",
        files: Sequence[str] = (),
        client_id: str | None = None,
        pick: int | None = None,
        *,
        drop_excess: bool = True,
    ) -> dict[str, Any]:
        if client_id is not None:
            existing = await self.store.run(Store.message_by_client_id, client_id)
            if existing is not None:
                return {"message": existing.to_json(), "dropped": [], "notice": None}
        number = self._require_number()
        if not await self._sms_enabled():
            raise Unsupported(
                'SMS messaging on this desktop is switched off. Turn on "Enable the SMS '
                'messaging on Desktop" (glosms prefs sms_enabled true).'
            )
        if not text and not files:
            raise BadInput("Nothing to send: give a text, files, or both.")
        remote = await self.resolve_recipient(to, pick)
        limits = self.account.limits
        items = [await asyncio.to_thread(_read_source, f) for f in files]
        prepared = await asyncio.to_thread(media.prepare_attachments, items, limits)
        if prepared.dropped and not drop_excess:
            names = ", ".join(d.name for d in prepared.dropped)
            raise LimitExceeded(
                f"{prepared.message or rules.MAX_FILES_MESSAGE} Not sent, nothing was queued: "
                f"{names} would be left out (at most {limits.mms_max_files} files and "
                f"{limits.mms_max_bytes // 1024} KB). Send fewer files, or let the excess be "
                "dropped (glosms send --drop-excess).",
                data={"dropped": [{"name": d.name, "reason": d.reason} for d in prepared.dropped]},
            )
        if files and not prepared.kept:
            raise BadInput(
                f"None of the files can be sent: {prepared.message or 'they are too big'}",
                data={"dropped": [{"name": d.name, "reason": d.reason} for d in prepared.dropped]},
            )
        rules.check_message(text, [a.size for a in prepared.kept], limits)
        stored = [await asyncio.to_thread(self._keep_outgoing, a) for a in prepared.kept]
        cid = client_id or new_client_id()
        row = await self.store.run(Store.enqueue_send, cid, number, remote, text, stored)
        self.sender.add(cid, row.id)
        emojis = _emoji_in(text)
        if emojis:
            await self.store.run(Store.emoji_used, emojis)
        return {
            "message": row.to_json(),
            "dropped": [{"name": d.name, "reason": d.reason} for d in prepared.dropped],
            "notice": prepared.message,
        }

    def _keep_outgoing(self, att: media.Attachment) -> dict[str, Any]:
        """Write a prepared file where the outbox finds it again after a crash."""
        sha = hashlib.sha256(att.data).hexdigest()
        out = self.files_dir / "outgoing"
        out.mkdir(parents=True, exist_ok=True)
        path = out / sha
        if not path.exists():
            # Named by content: sends of the same file at once each stage their own
            # temporary file (unique names) and the renames all put the same bytes there.
            write_atomic(path, att.data, mode=0o600)
        return {
            "sha256": sha,
            "name": att.name,
            "mime": att.mime,
            "size": att.size,
            "path": str(path),
            "uploaded": False,
        }

    async def sent(self, client_id: str) -> dict[str, Any]:
        """The message a send with `client_id` stored, or None: what a client asks after
        losing the connection mid-send, to learn whether it was queued (issue 13 item 13)."""
        row = await self.store.run(Store.message_by_client_id, client_id)
        return {"message": row.to_json() if row is not None else None}

    async def resend(self, id: int) -> dict[str, Any]:
        item = await self.store.run(Store.resend, id, new_client_id())
        self.sender.add(item.client_id, item.message_id)
        message = await self.store.run(Store.message, item.message_id)
        return {"message": message.to_json() if message else None}

    # ------------------------------------------------------------------ changes the server hears

    async def _tell_server(self, method: str, params: dict[str, Any]) -> None:
        """Send a read mark or deletion now, or keep it (in the store) for after the next
        hello. While older kept changes wait, a new one queues behind them, so the server
        hears them in the order the user made them."""
        if not await self.store.run(Store.pending_ops, 1):
            try:
                await self.link.call(method, params)
            except LinkClosed:
                pass
            except GlosmsdError as exc:
                log.warning("server refused %s %s: %s", method, params, exc.message)
                return
            else:
                return
        await self.store.run(Store.add_pending_op, method, params)
        log.info("offline: %s kept until the server is back", method)
        if self._link is not None and self._link.status.online:
            self._spawn(self.flush_pending_ops())

    async def flush_pending_ops(self) -> None:
        """Tell the server the kept changes, oldest first; stop at the first network error."""
        async with self._flush_lock:
            while ops := await self.store.run(Store.pending_ops, 100):
                for op_id, method, params in ops:
                    try:
                        await self.link.call(method, params)
                    except LinkClosed:
                        return
                    except GlosmsdError as exc:
                        log.warning("server refused queued %s: %s", method, exc.message)
                    await self.store.run(Store.remove_pending_op, op_id)

    async def mark_read(self, conversation: int | str | None = None) -> dict[str, Any]:
        """Mark the conversations `conversation` names read (all of them when it names a
        contact with several numbers), or every one; the answer says which."""
        if conversation is None:
            before = {c.id: c for c, _n in (await self.store.run(Store.unread)).per_conversation}
            marks = await self.store.run(Store.mark_read_local, None)
            named = [before[m.conversation_id] for m in marks if m.conversation_id in before]
        else:
            named = await self.resolve_conversations(conversation)
            marks = []
            for conv in named:
                marks += await self.store.run(Store.mark_read_local, conv.id)
        for mark in marks:
            await self._tell_server(
                "read", {"number": mark.number, "remote": mark.remote, "up_to": mark.up_to}
            )
        unread = await self.store.run(Store.unread)
        return {
            "marked": len(marks),
            "unread": unread.total,
            "conversations": [{"id": c.id, "title": c.title, "remote": c.remote} for c in named],
        }

    async def mark_unread(self, conversation: int | str) -> dict[str, Any]:
        """Mark a conversation as unread on this desktop (its newest incoming message).

        Kept here only: the server's read marks only move forward, so opening it (here or
        on any device) marks it read again, everywhere.
        """
        conv = await self.resolve_conversation(conversation)
        await self.store.run(Store.mark_unread_local, conv.id)
        unread = await self.store.run(Store.unread)
        return {"marked": 1, "unread": unread.total}

    async def delete_message(self, id: int) -> dict[str, Any]:
        server_id = await self.store.run(Store.delete_message_local, id)
        if server_id is not None:
            await self._tell_server("delete_message", {"id": server_id})
        return {"deleted": id}

    async def delete_conversation(self, conversation: int | str) -> dict[str, Any]:
        found = await self.resolve_conversations(conversation)
        if len(found) > 1:
            listing = "; ".join(f"{c.id} ({c.remote})" for c in found)
            raise AmbiguousRecipient(
                f"{conversation!r} names {len(found)} conversations: {listing}. Delete one "
                "by its id (glosms delete --conversation ID).",
                data={"conversations": [c.to_json() for c in found]},
            )
        conv = found[0]
        ref = await self.store.run(Store.delete_conversation_local, conv.id)
        if ref.up_to is not None:  # what arrived after what this device had is not deleted
            await self._tell_server(
                "delete_conversation",
                {"number": ref.number, "remote": ref.remote, "up_to": ref.up_to},
            )
        return {"deleted": conv.id}

    # ------------------------------------------------------------------ drafts

    async def draft_get(self, conversation: int | str) -> dict[str, Any]:
        conv = await self.resolve_conversation(conversation)
        return (await self.store.run(Store.draft, conv.id)).to_json()

    async def draft_set(self, conversation: int | str, text: str) -> dict[str, Any]:
        conv = await self.resolve_conversation(conversation)
        return (await self.store.run(Store.set_draft, conv.id, text)).to_json()

    async def drafts(self) -> list[dict[str, Any]]:
        return [d.to_json() for d in await self.store.run(Store.drafts)]

    # ------------------------------------------------------------------ files

    async def local_file(self, sha256: str) -> tuple[Path, str] | None:
        """Where the file with this sha256 is in the files dir, and its name: a download,
        or the copy of a file this device sent. None when it is not here (not downloaded
        yet), or when what the store says points outside the files dir."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            return None
        path, state = await self.store.run(Store.file_state, sha256)
        if state == "done" and path:
            found = await asyncio.to_thread(_inside, Path(path), self.files_dir)
            if found is not None:
                return found, found.name
        outgoing = await asyncio.to_thread(
            _inside, self.files_dir / "outgoing" / sha256, self.files_dir
        )
        if outgoing is not None:
            return outgoing, await self.store.run(Store.file_name, sha256) or "file"
        return None

    async def queue_auto_downloads(self) -> None:
        if not await self.store.run(Store.get_pref, "auto_download", True):
            return
        for f in await self.store.run(
            Store.pending_downloads, max_size=self.account.limits.mms_max_bytes
        ):
            if f.sha256 and f.sha256 not in self._downloads:
                self._start_download(f.sha256, f.name)

    def _start_download(self, sha256: str, name: str) -> asyncio.Task[None]:
        task = asyncio.ensure_future(self._download(sha256, name))
        self._downloads[sha256] = task
        task.add_done_callback(lambda t: self._download_done(sha256, t))
        return task

    def _download_done(self, sha256: str, task: asyncio.Task[None]) -> None:
        self._downloads.pop(sha256, None)
        # An automatic download nobody awaits must not end as "Task exception was never
        # retrieved" with a traceback: `_download` has logged why and marked it failed.
        if not task.cancelled():
            task.exception()

    async def _download(self, sha256: str, name: str) -> None:
        async with self._download_slots:
            path, state = await self.store.run(Store.file_state, sha256)
            if state == "done" and path and await asyncio.to_thread(os.path.exists, path):
                return
            await self.store.run(Store.set_file_state, sha256, None, "downloading")
            try:
                data = await self._fetch(sha256)
                dest = await asyncio.to_thread(save_unique, self.files_dir, name, data)
            except GlosmsdError as exc:
                log.info("download of %s failed: %s", name, exc.message)
                await self.store.run(Store.set_file_state, sha256, None, "failed")
                raise
            await self.store.run(Store.set_file_state, sha256, str(dest), "done")

    async def _fetch(self, sha256: str) -> bytes:
        chunks: list[bytes] = []
        offset = 0
        while True:
            reply = await self.link.call(
                "download", {"sha256": sha256, "offset": offset, "length": DOWNLOAD_CHUNK}
            )
            try:
                chunk = base64.b64decode(reply["data"], validate=True)
                size = int(reply["size"])
            except (KeyError, TypeError, ValueError, binascii.Error) as exc:
                raise BadInput("The server sent a malformed file chunk.") from exc
            chunks.append(chunk)
            offset += len(chunk)
            for watcher in self._fetch_watchers.get(sha256, ()):
                watcher(offset, size)
            if offset >= size or not chunk:
                break
        data = b"".join(chunks)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise BadInput("The downloaded file does not match its checksum; try again.")
        return data

    async def download(
        self,
        id: int,
        file: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        message = await self.store.run(Store.message, id)
        if message is None:
            raise NotFound(f"No message {id}.")
        if not message.files:
            raise NotFound(f"Message {id} has no files.")
        chosen = list(enumerate(message.files))
        if file is not None:
            if file >= len(message.files):
                raise NotFound(
                    f"Message {id} has {len(message.files)} files (0 to {len(message.files) - 1})."
                )
            chosen = [chosen[file]]
        out = []
        total = sum(f.size or 0 for _i, f in chosen)
        finished = 0
        for _i, f in chosen:
            if not f.sha256:
                continue
            watcher = None
            if progress is not None:
                base = finished

                def watcher(done: int, _size: int, base: int = base) -> None:
                    progress(base + done, total)

                self._fetch_watchers.setdefault(f.sha256, []).append(watcher)
            try:
                task = self._downloads.get(f.sha256) or self._start_download(f.sha256, f.name)
                await task
            finally:
                if watcher is not None:
                    self._fetch_watchers[f.sha256].remove(watcher)
                    if not self._fetch_watchers[f.sha256]:
                        del self._fetch_watchers[f.sha256]
            finished += f.size or 0
            if progress is not None:
                progress(finished, total)
            path, state = await self.store.run(Store.file_state, f.sha256)
            out.append({"name": f.name, "path": path, "state": state, "size": f.size})
        return {"files": out}

    async def export(
        self, dir: str, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, Any]:
        from glosmsd.daemon.export import export_history

        if not await self.store.run(Store.has_history):
            raise NotFound("There is no SMS history to export yet.")
        target = await asyncio.to_thread(os.path.expanduser, dir)
        result: dict[str, Any] = await export_history(self, Path(target), progress)
        return result

    # ------------------------------------------------------------------ prefs, emoji, count

    async def prefs_get(self, key: str | None = None) -> Any:
        stored = await self.store.run(Store.prefs)
        values = {k: stored.get(k, default) for k, (default, _t, _d) in PREFS.items()}
        if key is None:
            return values
        if key not in PREFS:
            raise BadInput(f"Unknown preference {key!r}. Known: {', '.join(PREFS)}.")
        return values[key]

    async def prefs_set(self, key: str, value: Any) -> dict[str, Any]:
        if key not in PREFS:
            raise BadInput(f"Unknown preference {key!r}. Known: {', '.join(PREFS)}.")
        _default, kind, _desc = PREFS[key]
        if isinstance(value, str) and kind is bool:
            lowered = value.strip().lower()
            if lowered in ("true", "on", "yes", "1"):
                value = True
            elif lowered in ("false", "off", "no", "0"):
                value = False
        if not isinstance(value, kind):
            raise BadInput(f"Preference {key!r} takes {kind.__name__}, e.g. true or false.")
        if key == "sms_enabled":
            major = self.account.pbx_major
            if major is not None and major >= 7:
                version = self.account.settings.get("pbx_version")
                raise Unsupported(
                    "Enable the SMS messaging on Desktop can be changed only when the phone "
                    f"system is older than version 7 (this one is {version})."
                )
        await self.store.run(Store.set_pref, key, value)
        await self.store.run(Store.append_event, "prefs", {"key": key, "value": value})
        values: dict[str, Any] = await self.prefs_get(None)
        return values

    async def emoji_recent(self, limit: int = 20) -> list[str]:
        return await self.store.run(Store.emoji_recent, limit)

    async def emoji_used(self, emoji: Sequence[str]) -> list[str]:
        await self.store.run(Store.emoji_used, list(emoji))
        return await self.store.run(Store.emoji_recent, 20)

    async def emoji_catalog(self) -> dict[str, Any]:
        return await asyncio.to_thread(emojidata.catalog_json)

    async def attach_check(self, files: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        offered = [
            attachcheck.Offered(f["name"], f["size"], _head_bytes(i, f["head"]))
            for i, f in enumerate(files)
        ]
        return attachcheck.judge(offered, self.account.limits)

    async def count(self, text: str, files: int = 0, bytes: int = 0) -> dict[str, Any]:
        return rules.count_text(
            text, files=files, file_bytes=bytes, limits=self.account.limits
        ).to_json()


class Sender:
    """Delivers the outbox: at most 4 in flight, exactly once (idempotent client ids)."""

    def __init__(self, service: Service, rng: random.Random) -> None:
        self.service = service
        self.core = Outbox(rng)
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, client_id: str, order: int) -> None:
        self.core.add(QueuedItem(client_id, order, 0, 0.0))
        self._wake.set()

    def wake_all(self) -> None:
        self.core.wake(self.service.clock())
        self._wake.set()

    async def run(self) -> None:
        items = await self.service.store.run(Store.outbox_items)
        self.core.load(_queued(i) for i in items)
        try:
            while True:
                now = self.service.clock()
                for item in self.core.take(now):
                    task = asyncio.create_task(self._attempt(item))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                nxt = self.core.next_wakeup()
                timeout = None if nxt is None else max(0.0, nxt - self.service.clock())
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _attempt(self, item: QueuedItem) -> None:
        svc = self.service
        store = svc.store
        try:
            queued = await store.run(Store.outbox_item, item.client_id)
            if queued is None:  # deleted or already done
                self.core.settle(item.client_id, svc.clock(), result=None)
                return
            result = await self._deliver(queued)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            verdict = self.core.settle(item.client_id, svc.clock(), error=exc)
        else:
            verdict = self.core.settle(item.client_id, svc.clock(), result=result)
        match verdict:
            case Done(message=message):
                if message is not None:
                    await store.run(
                        Store.outbox_done, item.client_id, message, own_ext=svc.account.ext
                    )
            case Failed(reason=reason):
                await store.run(Store.outbox_failed, item.client_id, reason)
            case Retry(at=at, reason=reason):
                log.info("send %s will retry: %s", item.client_id, reason)
                await store.run(Store.outbox_defer, item.client_id, at, reason)
        self._wake.set()

    async def _deliver(self, queued: OutboxItem) -> Any:
        link = self.service.link
        files = [dict(f) for f in queued.files]
        changed = False
        for f in files:
            if f.get("uploaded"):
                continue
            data = await asyncio.to_thread(Path(str(f["path"])).read_bytes)
            reply = await link.call(
                "upload",
                {"data": base64.b64encode(data).decode(), "name": f["name"]},
                timeout=120,
            )
            f.update(sha256=reply["sha256"], mime=reply["mime"], size=reply["size"], uploaded=True)
            changed = True
        if changed:
            await self.service.store.run(Store.outbox_update_files, queued.client_id, files)
        return await link.call(
            "send",
            {
                "client_id": queued.client_id,
                "to": queued.remote,
                "text": queued.text,
                "files": [{"sha256": f["sha256"], "name": f["name"]} for f in files],
                "from": queued.number,
            },
        )


def _inside(path: Path, directory: Path) -> Path | None:
    """`path` with its links resolved, if it is a regular file inside `directory`."""
    try:
        real = path.resolve(strict=True)
        base = directory.resolve(strict=True)
    except OSError:
        return None
    if not real.is_relative_to(base) or not real.is_file():
        return None
    return real


def _queued(item: OutboxItem) -> QueuedItem:
    # Nothing is in flight after a restart; the server dedupes a repeated client id.
    return QueuedItem(item.client_id, item.order, item.attempts, 0.0)


def _read_source(ref: str) -> tuple[str, bytes]:
    """(name, bytes) of a file path or a data: URI, refusing what is unreadable or huge."""
    if ref.startswith("data:"):
        return _read_data_uri(ref)
    path = Path(ref).expanduser()
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise BadInput(f"{ref} is not a regular file.")
        if size > MAX_SOURCE_FILE:
            raise BadInput(
                f"{path.name} is {size // (1024 * 1024)} MiB: too big to attach, even compressed."
            )
        return path.name, path.read_bytes()
    except FileNotFoundError as exc:
        raise BadInput(f"No such file: {ref}") from exc
    except PermissionError as exc:
        raise BadInput(f"Cannot read {ref}: permission denied.") from exc
    except IsADirectoryError as exc:
        raise BadInput(f"{ref} is a directory, not a file.") from exc


def _read_data_uri(uri: str) -> tuple[str, bytes]:
    header, sep, payload = uri.partition(",")
    if not sep:
        raise BadInput("A data: URI needs a comma before its payload (data:image/png;base64,...).")
    params = header[5:].split(";")
    name = "file"
    for p in params:
        if p.startswith("name="):
            name = urllib.parse.unquote(p[5:]) or name
    if len(payload) > MAX_SOURCE_FILE * 4 // 3 + 4:
        raise BadInput("The data: URI is too big to attach.")
    try:
        data = (
            base64.b64decode(payload, validate=True)
            if "base64" in params
            else urllib.parse.unquote_to_bytes(payload)
        )
    except (binascii.Error, ValueError) as exc:
        raise BadInput("The data: URI is not valid base64.") from exc
    return name, data


def _head_bytes(index: int, head: str) -> bytes:
    try:
        return base64.b64decode(head, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput(
            f"files[{index}].head is not valid base64: send the file's first bytes, base64-encoded."
        ) from exc


def _emoji_in(text: str) -> list[str]:
    if text.isascii():
        return []
    import emoji

    return [e["emoji"] for e in emoji.emoji_list(text)]
