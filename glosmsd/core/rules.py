"""SMS/MMS rules: the GSM-7/UCS-2 segment counter, text and file limits, supported types.

This module owns the carrier arithmetic that every part of glosmsd must agree on: the
quick-send counter, `glosms count`, the daemon before it queues a send, and the reference
server before it accepts one. It is pure: it must never do I/O, read a clock, import
asyncio, Pillow or any adapter. Sizes come in as numbers; file bytes never come here.

Carrier rules (3GPP TS 23.038 / GSM 03.38):

- A text made only of characters of the GSM 03.38 basic table (1 septet each) and of its
  extension table (``^ { } \\ [ ~ ] | €`` and form feed: an escape plus the character, 2
  septets) is sent as GSM-7: 160 septets in a single segment, 153 per segment once split
  (7 septets go to the concatenation header). An escape pair is never split across
  segments; a segment that cannot take the whole pair ends one septet short.
- Anything else (emoji, CJK, most accented letters, U+0000 NUL, U+001B itself) makes the
  whole text UCS-2: 70 UTF-16 code units in a single segment, 67 once split. A character
  outside the BMP takes a surrogate pair (2 units), which is never split either.
- An SMS is at most `Limits.sms_max_segments` segments. A longer text goes as MMS when the
  server allows MMS; otherwise it does not fit.

Choices made where the carrier rules say nothing:

- The empty text counts as 1 segment with the whole single-segment budget remaining (the
  counter of an empty box shows "160 left"), while `split_segments("")` is ``[]``: there
  is nothing to send.
- A ``str`` that holds an unpaired surrogate (what ``surrogateescape`` makes of undecodable
  bytes) cannot be encoded for any carrier, so every text function raises `BadInput`
  instead of guessing a unit count for it.
- `pick_files` keeps files in the user's order and skips a file that does not fit in what
  is left of the byte budget, but still keeps later, smaller files that do: the user gets
  as many of the files they chose as the limits allow, and the message names what was
  dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence

from glosmsd.core.errors import BadInput, LimitExceeded, Unsupported
from glosmsd.core.record import record, replace

TYPE_CHECKING = False  # typing costs `glosms count` ~2 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from typing import Any, Final, Literal

    Encoding = Literal["GSM-7", "UCS-2"]
    Kind = Literal["sms", "mms"]
else:

    def __getattr__(name: str) -> object:
        # `Encoding` and `Kind` (the daemon's schema lists them with get_args) are made on
        # first use, so that `glosms count` does not import typing for them.
        if name not in ("Encoding", "Kind"):
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from typing import Literal

        value = Literal["GSM-7", "UCS-2"] if name == "Encoding" else Literal["sms", "mms"]
        globals()[name] = value
        return value


MAX_FILES_MESSAGE: Final = "Maximum size of attached files for MMS reached."
#: What an attached JPEG or PNG counts for until the send fits it: the daemon re-encodes
#: those to share what the other files leave, so at attach time (the composers' discard
#: of the excess, the counter's kilobytes) one takes at most what a fitted image usually
#: takes.
FITTED_IMAGE: Final = 48 * 1024

#: The reference server's default MMS types, one canonical spelling each, as
#: `glosmsd.core.filetypes.sniff` reports them. WAV is ``audio/x-wav`` and M4A is ``audio/mp4``
#: because that is what the `filetype` library and most phones say; vCard is ``text/vcard``
#: (RFC 6350), not the older ``text/x-vcard``.
DEFAULT_MMS_TYPES: Final[tuple[str, ...]] = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/bmp",
    "image/webp",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/amr",
    "audio/x-wav",
    "audio/ogg",
    "video/mp4",
    "video/3gpp",
    "video/quicktime",
    "text/vcard",
    "text/plain",
    "application/pdf",
)

GSM7_SINGLE: Final = 160
GSM7_MULTI: Final = 153
UCS2_SINGLE: Final = 70
UCS2_MULTI: Final = 67

# GSM 03.38 basic table in code order; position 0x1B (the escape) is left out because it
# is not a character a user can type: a literal U+001B forces UCS-2 like any control.
_GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION: Final = frozenset("\f^{}\\[~]|€")
_GSM7: Final = _GSM7_BASIC | _GSM7_EXTENSION
_SURROGATE: Final = re.compile("[\ud800-\udfff]")

# A concatenated SMS carries its part number in one octet of the header.
_MAX_SEGMENTS_CEILING: Final = 255


# --------------------------------------------------------------------------- limits


@record
class Limits:
    """What the server allows; sent to clients as the hello's ``settings``."""

    mms_enabled: bool = True
    mms_max_bytes: int = 512_000  # 500 KB of 1024 bytes
    mms_max_files: int = 10
    mms_max_text: int = 1000
    sms_max_segments: int = 4
    mms_types: tuple[str, ...] = DEFAULT_MMS_TYPES

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Limits:
        """Limits from a settings dict; missing keys keep defaults, unknown keys are ignored.

        Raises `BadInput` naming the setting when a value has the wrong type or range.
        """
        values: dict[str, Any] = {}
        if "mms_enabled" in settings:
            flag = settings["mms_enabled"]
            if not isinstance(flag, bool):
                raise BadInput(f"Setting 'mms_enabled' must be true or false, not {flag!r}.")
            values["mms_enabled"] = flag
        for key, low, high in (
            ("mms_max_bytes", 0, None),
            ("mms_max_files", 0, None),
            ("mms_max_text", 0, None),
            ("sms_max_segments", 1, _MAX_SEGMENTS_CEILING),
        ):
            if key in settings:
                values[key] = _int_setting(key, settings[key], low, high)
        if "mms_types" in settings:
            values["mms_types"] = _types_setting(settings["mms_types"])
        return cls(**values)

    def to_settings(self) -> dict[str, Any]:
        """The JSON form `from_settings` reads back to an equal `Limits`."""
        return {
            "mms_enabled": self.mms_enabled,
            "mms_max_bytes": self.mms_max_bytes,
            "mms_max_files": self.mms_max_files,
            "mms_max_text": self.mms_max_text,
            "sms_max_segments": self.sms_max_segments,
            "mms_types": list(self.mms_types),
        }


def _int_setting(key: str, value: Any, low: int, high: int | None) -> int:
    # bool is an int subclass, but `true` is not a byte count.
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadInput(f"Setting {key!r} must be a whole number, not {value!r}.")
    if value < low or (high is not None and value > high):
        wanted = f"at least {low}" if high is None else f"from {low} to {high}"
        raise BadInput(f"Setting {key!r} must be {wanted}, not {value}.")
    return value


def _types_setting(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise BadInput(f"Setting 'mms_types' must be a list of MIME types, not {value!r}.")
    types: list[str] = []
    for item in value:
        if not isinstance(item, str) or "/" not in item or item != item.strip():
            raise BadInput(
                f"Setting 'mms_types' must hold MIME types like 'image/jpeg', not {item!r}."
            )
        types.append(item.lower())
    return tuple(types)


# --------------------------------------------------------------------------- the counter


@record
class Count:
    """What the counter shows for a text (and the files attached to it)."""

    kind: Kind
    encoding: Encoding
    segments: int
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    remaining: int  # units left in the last segment
    fits: bool
    chars: int  # code points, what a user calls characters
    bytes_left: int | None = None  # MMS with files only; negative when over
    chars_left: int | None = None  # MMS only; negative when over
    reason: str | None = None  # why it does not fit, for the user

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "kind": self.kind,
            "encoding": self.encoding,
            "segments": self.segments,
            "units": self.units,
            "remaining": self.remaining,
            "fits": self.fits,
        }
        if self.bytes_left is not None:
            obj["bytes_left"] = self.bytes_left
        if self.chars_left is not None:
            obj["chars_left"] = self.chars_left
        if self.reason is not None:
            obj["reason"] = self.reason
        return obj


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in the GSM 03.38 tables, else UCS-2."""
    return "GSM-7" if _GSM7.issuperset(text) else "UCS-2"


def split_segments(text: str) -> list[str]:
    """The pieces a carrier sends, in order; ``[]`` for the empty text.

    Raises `BadInput` for a text with an unpaired surrogate.
    """
    _require_valid(text)
    pieces: list[str] = []
    start = 0
    for end, _ in _segments(text, encoding_of(text)):
        pieces.append(text[start:end])
        start = end
    return pieces


def count_text(
    text: str, *, files: int = 0, file_bytes: int = 0, limits: Limits = Limits()
) -> Count:
    """Count `text` (with `files` attachments of `file_bytes` in total) against `limits`.

    Raises `BadInput` for an unpaired surrogate or a negative file count or size.
    """
    _require_valid(text)
    if files < 0 or file_bytes < 0:
        raise BadInput(f"File count and size must not be negative (got {files}, {file_bytes}).")
    encoding = encoding_of(text)
    layout = list(_segments(text, encoding))
    units = sum(used for _, used in layout)
    segments = max(len(layout), 1)
    if len(layout) <= 1:
        remaining = (GSM7_SINGLE if encoding == "GSM-7" else UCS2_SINGLE) - units
    else:
        remaining = (GSM7_MULTI if encoding == "GSM-7" else UCS2_MULTI) - layout[-1][1]
    chars = len(text)
    sms = Count(
        kind="sms",
        encoding=encoding,
        segments=segments,
        units=units,
        remaining=remaining,
        fits=True,
        chars=chars,
    )
    if files:
        reason = _files_problem(files, file_bytes, limits) or _mms_text_problem(chars, limits)
        return replace(
            sms,
            kind="mms",
            fits=reason is None,
            bytes_left=limits.mms_max_bytes - file_bytes,
            chars_left=limits.mms_max_text - chars,
            reason=reason,
        )
    if segments <= limits.sms_max_segments:
        return sms
    if limits.mms_enabled:
        reason = _mms_text_problem(chars, limits)
        return replace(
            sms,
            kind="mms",
            fits=reason is None,
            chars_left=limits.mms_max_text - chars,
            reason=reason,
        )
    return replace(sms, fits=False, reason=_sms_too_long(segments, limits))


def check_message(text: str, file_sizes: Sequence[int], limits: Limits) -> Kind:
    """Whether a message may be sent, and as what; raises with the reason when not.

    Raises `BadInput` (empty message, unpaired surrogate, negative size), `Unsupported`
    (files or an over-long text while MMS is switched off) or `LimitExceeded`.
    """
    _require_valid(text)
    if any(size < 0 for size in file_sizes):
        raise BadInput("A file size must not be negative.")
    if not text and not file_sizes:
        raise BadInput("The message is empty: type some text or attach a file.")
    count = count_text(text, files=len(file_sizes), file_bytes=sum(file_sizes), limits=limits)
    if count.fits:
        return count.kind
    reason = count.reason or "The message does not fit the server's limits."
    if not limits.mms_enabled:
        raise Unsupported(reason)
    raise LimitExceeded(reason)


@record
class FilePick:
    """Which files (by index in the user's order) go with the message."""

    kept: tuple[int, ...]
    dropped: tuple[int, ...]
    message: str | None  # `MAX_FILES_MESSAGE` when anything was dropped


def pick_files(sizes: Sequence[int], limits: Limits) -> FilePick:
    """Keep files in order while both the count and the byte budget allow.

    A file that would go over the byte budget is dropped, and later smaller files that
    still fit are kept. Whether MMS is switched on is `check_message`'s business.
    Raises `BadInput` for a negative size.
    """
    if any(size < 0 for size in sizes):
        raise BadInput("A file size must not be negative.")
    kept: list[int] = []
    dropped: list[int] = []
    total = 0
    for index, size in enumerate(sizes):
        if len(kept) < limits.mms_max_files and total + size <= limits.mms_max_bytes:
            kept.append(index)
            total += size
        else:
            dropped.append(index)
    return FilePick(
        kept=tuple(kept),
        dropped=tuple(dropped),
        message=MAX_FILES_MESSAGE if dropped else None,
    )


def attach_budget(size: int, *, fittable: bool) -> int:
    """What a file of `size` bytes takes of the byte budget when attached (`fittable`: a
    JPEG or PNG, which the send fits)."""
    return min(size, FITTED_IMAGE) if fittable else size


def drop_reasons(pick: FilePick, limits: Limits) -> dict[int, str]:
    """Why each dropped file of `pick` was dropped, by index, in the user's words."""
    reasons = {}
    for index in pick.dropped:
        kept_before = sum(1 for k in pick.kept if k < index)
        reasons[index] = (
            f"more than {limits.mms_max_files} files"
            if kept_before >= limits.mms_max_files
            else f"over the {limits.mms_max_bytes // 1024} KB limit for the files of one message"
        )
    return reasons


def mms_off_reason() -> str:
    """Why no file can go while the server has MMS switched off."""
    return (
        "MMS is switched off on the server: files cannot be sent, "
        "remove them to send the text as SMS."
    )


def _files_problem(files: int, file_bytes: int, limits: Limits) -> str | None:
    if not limits.mms_enabled:
        return mms_off_reason()
    if files > limits.mms_max_files:
        return f"{MAX_FILES_MESSAGE} {files} files, at most {limits.mms_max_files}."
    if file_bytes > limits.mms_max_bytes:
        return (
            f"{MAX_FILES_MESSAGE} {_kb_up(file_bytes)} of files, "
            f"at most {_kb_up(limits.mms_max_bytes)}."
        )
    return None


def _mms_text_problem(chars: int, limits: Limits) -> str | None:
    if chars <= limits.mms_max_text:
        return None
    return f"Too long for an MMS: {chars} characters, at most {limits.mms_max_text}."


def _sms_too_long(segments: int, limits: Limits) -> str:
    return (
        f"Too long for an SMS: {segments} segments, at most {limits.sms_max_segments}. "
        "MMS is switched off on the server, so shorten the text."
    )


def _kb_up(size: int) -> str:
    # Rounded up: "501 KB, at most 500 KB" must never read "500 KB, at most 500 KB".
    return f"{-(-size // 1024)} KB"


def _require_valid(text: str) -> None:
    found = _SURROGATE.search(text)
    if found is not None:
        raise BadInput(
            "Text contains an unpaired surrogate (invalid Unicode); it usually comes from "
            f"bytes that are not UTF-8 (at character {found.start() + 1}). "
            "Re-enter the text or fix its encoding."
        )


def _segments(text: str, encoding: Encoding) -> Iterator[tuple[int, int]]:
    """Each segment's end index and the units it holds; nothing for the empty text."""
    if encoding == "GSM-7":
        single, multi = GSM7_SINGLE, GSM7_MULTI
        sizes = [2 if ch in _GSM7_EXTENSION else 1 for ch in text]
    else:
        single, multi = UCS2_SINGLE, UCS2_MULTI
        sizes = [2 if ch > "\uffff" else 1 for ch in text]
    total = sum(sizes)
    if not text:
        return
    if total <= single:
        yield len(text), total
        return
    used = 0
    for index, size in enumerate(sizes):
        # A 2-unit character that does not fit whole starts the next segment.
        if used + size > multi:
            yield index, used
            used = 0
        used += size
    yield len(text), used
