"""Seed data for `admin seed-demo` and `make demo`.

A small company: Ann Lee (1001) shares +15550001001 with Bo Diaz (1002) and Cy Park
(1003), so the demo shows sharer headers; Dee Ng (1004) has her own number, so two
extensions can text each other on one server; Eve Stone (1005) has none, to show the
"No SMS number assigned" path. Contacts include Bob Roe with a mobile and a work number.
This module must never speak SQL: it only calls `ServerStore`.
"""

from __future__ import annotations

import io
from typing import Final

from glosmsd.server.db import ServerStore

ANN_NUMBER: Final = "+15550001001"
DEE_NUMBER: Final = "+15550001004"
BOB_MOBILE: Final = "+15557654321"

EXTENSIONS: Final = (
    ("1001", "Ann Lee", (222, 96, 72)),
    ("1002", "Bo Diaz", (64, 140, 200)),
    ("1003", "Cy Park", (90, 170, 90)),
    ("1004", "Dee Ng", (170, 110, 190)),
    ("1005", "Eve Stone", (200, 160, 60)),
)
NUMBERS: Final = (
    ("1001", ANN_NUMBER),
    ("1002", ANN_NUMBER),
    ("1003", ANN_NUMBER),
    ("1004", DEE_NUMBER),
)
CONTACTS: Final = (
    ("Bob Roe", (("mobile", BOB_MOBILE), ("work", "+15557654322"))),
    ("Carla Mendes", (("mobile", "+15557650001"),)),
    ("Dee Ng", (("work", DEE_NUMBER),)),
    ("Pizza Palace", (("work", "+15557650099"),)),
)


def avatar_png(rgb: tuple[int, int, int], size: int = 64) -> bytes:
    """A plain round avatar in one colour (Pillow, in memory)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((0, 0, size - 1, size - 1), fill=(*rgb, 255))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def seed(store: ServerStore) -> str:
    """Fill `store` with the demo company; returns a fresh token for extension 1001."""
    for ext, name, rgb in EXTENSIONS:
        store.add_extension(ext, name, avatar_png(rgb))
    for ext, number in NUMBERS:
        store.assign_number(ext, number)
    if not store.contacts("", 1):
        for name, numbers in CONTACTS:
            store.add_contact(name, list(numbers))
    if not store.messages_of(ANN_NUMBER):
        store.receive(BOB_MOBILE, ANN_NUMBER, "Hi Ann, are we still on for Thursday?")
        store.send("1001", "demo-1", BOB_MOBILE, "Yes! 10am at the office.", [], from_=ANN_NUMBER)
        store.send("1002", "demo-2", BOB_MOBILE, "Bo here: I'll join too.", [], from_=ANN_NUMBER)
        store.receive(BOB_MOBILE, ANN_NUMBER, "Great, see you both there 👍")
        store.send("1004", "demo-3", ANN_NUMBER, "Lunch today?", [], from_=DEE_NUMBER)
        for outbound in store.pending_outbound():
            store.set_state(outbound.id, "sent", None)
    return store.new_token("1001")
