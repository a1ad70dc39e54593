"""The daemon's use cases: the one layer the socket, the tray and notifications call.

Owns what each use case means (send, resend, list, read, search, mark read, delete,
contacts, download, export, prefs, emoji, count, status) in terms of the store (what the
user has) and the link (what the server must hear), plus the link's callbacks (hello,
sync batches, live events, status). Work the server must hear about while the link is
down (read marks, deletions) is kept in the store and replayed after the next hello, so
nothing the user did is lost. Sends go through the outbox (`glosmsd.daemon.sender`),
committed before the caller hears back; files come in through `glosmsd.daemon.downloads`.
Its background work (what follows a hello, telling the server kept changes, downloads) runs
as chores of the supervisor the composition root gives it.

It must never open a socket or speak SQL itself; it never imports websockets or sqlite3.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

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
from glosmsd.core.outbox import new_client_id
from glosmsd.core.protocol import LinkStatus, State
from glosmsd.daemon import attachcheck, emojidata
from glosmsd.daemon.account import Account, locale_name
from glosmsd.daemon.attachments import decode_head, keep_outgoing, read_source
from glosmsd.daemon.downloads import Downloads, Progress
from glosmsd.daemon.export import export_history
from glosmsd.daemon.hub import Event, Hub
from glosmsd.daemon.ports import ServerLink
from glosmsd.daemon.sender import Sender
from glosmsd.daemon.store import (
    EVENT_KINDS,
    FILE_STATES,
    AsyncStore,
    ConversationRow,
    OutboxItem,
    Store,
)
from glosmsd.daemon.store import STATES as MESSAGE_STATES
from glosmsd.system.supervisor import Supervisor

if TYPE_CHECKING:  # media loads at the first file (issue 16), not at start
    from glosmsd.daemon import media

__all__ = ["EVENT_KINDS", "FILE_STATES", "MESSAGE_STATES", "PREFS", "Account", "Service"]

log = logging.getLogger(__name__)

#: Preferences a user may set: default, type, and what it means.
PREFS: Final[Mapping[str, tuple[Any, type, str]]] = {
    "notify": (False, bool, "Notify me when I receive a new SMS message"),
    "sound": (True, bool, "New SMS Message Received (play a sound with the notification)"),
    "sms_enabled": (True, bool, "Enable the SMS messaging on Desktop (server older than 7 only)"),
    "hide_text": (False, bool, "Hide message text in notifications (privacy)"),
    "auto_download": (True, bool, "Download incoming files under the MMS size limit"),
}


class Service:
    """The use cases. Build it, `attach` the link, then serve it on the socket."""

    def __init__(
        self,
        store: AsyncStore,
        hub: Hub,
        *,
        files_dir: Path,
        tasks: Supervisor,
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
        self.tasks = tasks
        self.sender = Sender(
            store,
            link=lambda: self.link,
            own_ext=lambda: self.account.ext,
            clock=clock,
            rng=rng or random.Random(),
        )
        self.downloads = Downloads(
            store,
            files_dir,
            tasks,
            link=lambda: self.link,
            max_auto=lambda: self.account.limits.mms_max_bytes,
        )
        self._flush_lock = asyncio.Lock()
        #: The `sms_enabled` pref as last stored, once read: every write of a pref goes
        #: through this service (`prefs_set`, `seed_prefs`) and one daemon owns the data
        #: dir, so it never goes stale; a send read it from the store every time (issue 16).
        self._sms_enabled_pref: bool | None = None
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
        self._sms_enabled_pref = None

    # ------------------------------------------------------------------ link callbacks

    async def on_hello(self, hello: dict[str, Any]) -> None:
        await self.store.run(Store.set_account, hello)
        self.account = Account.from_hello(hello)
        self.sender.wake_all()
        self.tasks.spawn(self._after_hello(), name="after hello")

    async def _after_hello(self) -> None:
        await self.flush_pending_ops()
        with contextlib.suppress(GlosmsdError):
            contacts = await self.link.call("contacts", {"query": "", "limit": 500})
            if isinstance(contacts, list):
                await self.store.run(Store.replace_contacts, contacts)
        await self.downloads.queue_auto()

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
        self._applied(new)

    async def on_server_event(self, event: dict[str, Any]) -> None:
        seq = event.get("seq")
        if not isinstance(seq, int):
            return
        # A live message is one short write on its way to the screen (`run_light`); other
        # kinds (a read mark, a deleted conversation) may touch many rows: the thread's.
        run = self.store.run_light if event.get("kind") == "message" else self.store.run
        self._applied(
            await run(Store.apply_sync, [event], seq, reset=False, own_ext=self.account.ext)
        )

    def _applied(self, new: list[Event]) -> None:
        if any(_brings_files(ev) for ev in new):
            self.tasks.spawn(self.downloads.queue_auto(), name="auto downloads")

    def on_link_status(self, status: LinkStatus) -> None:
        payload = {
            "state": status.state.value,
            "online": status.online,
            "detail": status.detail,
            "line": self._link.describe() if self._link else status.describe(self.clock()),
        }
        self.tasks.spawn(self.store.run(Store.append_event, "link", payload), name="link status")

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
        if self._sms_enabled_pref is None:
            self._sms_enabled_pref = bool(await self.store.run(Store.get_pref, "sms_enabled", True))
        return self._sms_enabled_pref

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
        setting = self.account.settings.get("region")
        if setting is not None and not isinstance(setting, str):  # not a key for the cache
            return numbers.default_region(
                setting=setting, own_number=self.account.number, locale=self.locale
            )
        return _default_region(setting, self.account.number, self.locale)

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
        # The same client id again returns the message it made, whatever this call says.
        # With files that is looked up first (their copies are not made again); a text
        # alone is checked first, and `accept_send` finds the message in the transaction
        # that would add it (a lookup before it was one more store trip on every send).
        if client_id is not None and files:
            existing = await self.store.run(Store.message_by_client_id, client_id)
            if existing is not None:
                return {"message": existing.to_json(), "dropped": [], "notice": None}
        try:
            number, remote, prepared = await self._checked_send(
                to, text, files, pick, drop_excess=drop_excess
            )
        except GlosmsdError:
            if client_id is not None and not files:
                existing = await self.store.run(Store.message_by_client_id, client_id)
                if existing is not None:
                    return {"message": existing.to_json(), "dropped": [], "notice": None}
            raise
        stored = [await asyncio.to_thread(keep_outgoing, self.files_dir, a) for a in prepared.kept]
        cid = client_id or new_client_id()
        row, new = await self.store.run(Store.accept_send, cid, number, remote, text, stored)
        if not new:
            return {"message": row.to_json(), "dropped": [], "notice": None}
        item = OutboxItem.accepted(cid, row, number, remote, text, files=stored)
        self.sender.add(cid, row.id, item)
        emojis = _emoji_in(text)
        if emojis:
            await self.store.run(Store.emoji_used, emojis)
        return {
            "message": row.to_json(),
            "dropped": [{"name": d.name, "reason": d.reason} for d in prepared.dropped],
            "notice": prepared.message,
        }

    async def _checked_send(
        self, to: str, text: str, files: Sequence[str], pick: int | None, *, drop_excess: bool
    ) -> tuple[str, str, media.Prepared]:
        """What a send would queue: (own number, recipient, prepared files); raises what
        refuses it before anything is queued."""
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
        from glosmsd.daemon import media  # loaded at the first file (issue 16)

        items = [await asyncio.to_thread(read_source, f) for f in files]
        prepared = (
            await asyncio.to_thread(media.prepare_attachments, items, limits)
            if items
            else media.prepare_attachments((), limits)  # nothing to decode: no thread trip
        )
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
        return number, remote, prepared

    async def sent(self, client_id: str) -> dict[str, Any]:
        """The message a send with `client_id` stored, or None: what a client asks after
        losing the connection mid-send, to learn whether it was queued (issue 13 item 13)."""
        row = await self.store.run(Store.message_by_client_id, client_id)
        return {"message": row.to_json() if row is not None else None}

    async def resend(self, id: int) -> dict[str, Any]:
        """Send a failed message again, once: asked again, the answer is the message it
        already went again as, and nothing more is queued."""
        message, item = await self.store.run(Store.resend, id, new_client_id())
        if item is not None:
            self.sender.add(item.client_id, item.order, item)
        return {"message": message.to_json()}

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
            self.tasks.spawn(self.flush_pending_ops(), name="flush kept changes")

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
        return await self.downloads.local_file(sha256)

    async def download(
        self, id: int, file: int | None = None, progress: Progress | None = None
    ) -> dict[str, Any]:
        return await self.downloads.download(id, file, progress)

    async def export(self, dir: str, progress: Progress | None = None) -> dict[str, Any]:
        if not await self.store.run(Store.has_history):
            raise NotFound("There is no SMS history to export yet.")
        target = await asyncio.to_thread(os.path.expanduser, dir)
        return await export_history(
            self.store,
            Path(target),
            own_name=self.account.name or "me",
            fetch=self.downloads.fetch,
            progress=progress,
        )

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
        try:
            await self.store.run(Store.set_pref, key, value)
        finally:
            self._sms_enabled_pref = None  # read again: the write may or may not be in
        await self.store.run(Store.append_event, "prefs", {"key": key, "value": value})
        if key == "auto_download" and value:
            # What waited while it was off (new files start it only when they come).
            self.tasks.spawn(self.downloads.queue_auto(), name="auto downloads")
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
            attachcheck.Offered(f["name"], f["size"], decode_head(i, f["head"]))
            for i, f in enumerate(files)
        ]
        return attachcheck.judge(offered, self.account.limits)

    async def count(self, text: str, files: int = 0, bytes: int = 0) -> dict[str, Any]:
        return rules.count_text(
            text, files=files, file_bytes=bytes, limits=self.account.limits
        ).to_json()


def _brings_files(event: Event) -> bool:
    """An incoming message with files: what may start automatic downloads. Each message
    event started them, and so read a pref and scanned the incoming files on the store
    thread behind every text (issue 16)."""
    if event.kind != "message":
        return False
    msg = event.data.get("message")
    return isinstance(msg, Mapping) and msg.get("direction") == "in" and bool(msg.get("files"))


def _emoji_in(text: str) -> list[str]:
    if text.isascii():
        return []
    import emoji

    return [e["emoji"] for e in emoji.emoji_list(text)]


@functools.lru_cache(maxsize=16)
def _default_region(setting: str | None, own_number: str | None, locale: str | None) -> str | None:
    """`numbers.default_region`, remembered: it parses the own number (40 us), and every
    send asks it with the same three values."""
    return numbers.default_region(setting=setting, own_number=own_number, locale=locale)
