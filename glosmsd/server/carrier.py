"""Carrier adapters: how messages to numbers not hosted on this server leave it, and how
messages from the outside world come in.

The server hands each outbound message to `Carrier.deliver` and records the `Outcome` as
the message's final state (`sent` or `failed` with a reason the user can read). An
adapter hands inbound messages to the `Receive` callback it was given at construction.

A real carrier plugs in here: write a class with the same three methods (for SMPP, open
the bind in `start`, submit_sm in `deliver`, turn deliver_sm PDUs into `Inbound` for the
callback; for an HTTP SMS API, POST in `deliver` and serve its webhook in `start`), add
it to `ADAPTERS` and select it with `--carrier NAME`. `deliver` may be called again for a
message after a server restart (anything still `sending`), so pass the message id to the
carrier as its idempotency key where the carrier has one.

This module must never touch the database or the websocket layer: it gets data in and
returns outcomes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from glosmsd.server.db import CarrierMode, Outbound
from glosmsd.system.supervisor import Supervisor

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The carrier's answer: accepted, or refused with a reason for the user."""

    ok: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message from outside for a number hosted here."""

    sender: str
    to: str
    text: str
    files: tuple[tuple[bytes, str], ...] = ()


Receive = Callable[[Inbound], Awaitable[None]]
ModeSource = Callable[[], Awaitable[CarrierMode]]


class Carrier(Protocol):
    async def start(self, tasks: Supervisor) -> None:
        """Get ready; background work (replies, polling) runs as chores of `tasks`, the
        server's supervisor, which cancels and awaits it before `aclose`."""
        ...

    async def deliver(self, message: Outbound) -> Outcome: ...

    async def aclose(self) -> None: ...


class DemoCarrier:
    """An echo peer for `make demo`: accepts, then the remote answers a few seconds later."""

    def __init__(
        self, receive: Receive, *, accept_after: float = 0.4, reply_after: float = 3.0
    ) -> None:
        self._receive = receive
        self._accept_after = accept_after
        self._reply_after = reply_after
        self._tasks: Supervisor | None = None

    async def start(self, tasks: Supervisor) -> None:
        self._tasks = tasks

    async def deliver(self, message: Outbound) -> Outcome:
        await asyncio.sleep(self._accept_after)  # a carrier takes a moment to accept
        if self._tasks is not None:
            self._tasks.spawn(self._reply(message), name=f"demo echo to {message.number}")
        return Outcome(ok=True)

    async def _reply(self, message: Outbound) -> None:
        await asyncio.sleep(self._reply_after)
        quoted = message.text if len(message.text) <= 60 else message.text[:57] + "..."
        text = (
            f'Hi! This is the glosmsd demo echo. You wrote: "{quoted}"'
            if quoted
            else ("Hi! This is the glosmsd demo echo. Thanks for the files!")
        )
        try:
            await self._receive(Inbound(message.remote, message.number, text))
        except Exception:
            log.exception("demo carrier: the echo reply could not be stored")

    async def aclose(self) -> None:
        return None


class TestCarrier:
    """Accepts, fails or delays as `admin carrier-mode` says, read afresh for every send."""

    __test__ = False  # not a pytest class

    def __init__(self, receive: Receive, mode: ModeSource) -> None:
        del receive  # the test carrier never sends anything in: tests use `admin inject`
        self._mode = mode

    async def start(self, tasks: Supervisor) -> None:
        del tasks  # nothing runs in the background

    async def deliver(self, message: Outbound) -> Outcome:
        mode = await self._mode()
        if mode.mode == "fail":
            return Outcome(ok=False, reason=mode.reason)
        if mode.mode == "delay":
            await asyncio.sleep(mode.seconds)
        return Outcome(ok=True)

    async def aclose(self) -> None:
        return None


def build(name: str, receive: Receive, mode: ModeSource) -> Carrier:
    """The adapter named on the command line."""
    if name == "demo":
        return DemoCarrier(receive)
    if name == "test":
        return TestCarrier(receive, mode)
    raise ValueError(f"unknown carrier {name!r}; known: {', '.join(ADAPTERS)}")


ADAPTERS: Final = ("demo", "test")
