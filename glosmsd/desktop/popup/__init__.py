"""The quick-send popup (Tk), run as `python -m glosmsd.desktop.popup` or `glosms compose`:
its window (`window`), socket calls off Tk's thread (`calls`), the emoji it draws and its
picker (`emoji`), and its dialogs (`dialogs`). A process of its own, never the daemon's."""

from __future__ import annotations

from glosmsd.desktop.popup.calls import Calls, as_error
from glosmsd.desktop.popup.dialogs import AskDiscard, NumberPicker
from glosmsd.desktop.popup.emoji import (
    EmojiPicker,
    Glyphs,
    colour_emoji_font,
    degraded_here,
    emoji_font,
    parse_charsets,
    picker_groups,
    place_beside,
    shown_text,
)
from glosmsd.desktop.popup.window import (
    Attachment,
    Popup,
    counter_line,
    has_fc_colour_font,
    main,
    pick_attachments,
)

__all__ = [
    "AskDiscard",
    "Attachment",
    "Calls",
    "EmojiPicker",
    "Glyphs",
    "NumberPicker",
    "Popup",
    "as_error",
    "colour_emoji_font",
    "counter_line",
    "degraded_here",
    "emoji_font",
    "has_fc_colour_font",
    "main",
    "parse_charsets",
    "pick_attachments",
    "picker_groups",
    "place_beside",
    "shown_text",
]
