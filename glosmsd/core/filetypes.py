"""What kind of file a byte string is, from its content alone, in canonical MIME spellings.

This module owns the type check of MMS files for the client (before sending) and the
server (before accepting). A file's name is never consulted: a text file called
``photo.jpg`` is ``text/plain``. The spellings are the ones `rules.DEFAULT_MMS_TYPES`
uses; aliases a server may list (``audio/wav``, ``text/x-vcard``, ``image/jpg``, ...) are
understood by `check_type`.

It is pure: bytes in, a string out. It must never open files, sockets or images (no
Pillow), and never trust a file name or a sender-supplied MIME type.

Magic bytes come from the `filetype` library, with these corrections:

- ISO base media files (MP4, M4A, 3GP, MOV) are told apart by their ``ftyp`` major
  brand, then compatible brands: `filetype` reads 3GP's brand at the wrong offset and
  calls an M4A with an ``isom`` major brand a video.
- Data that is valid UTF-8 text is text (``text/vcard`` when it starts with
  ``BEGIN:VCARD``, else ``text/plain``) unless it starts with a document signature that
  is itself text (PDF, RTF, PostScript). `filetype` has many short ASCII signatures
  ("BM" is a BMP, "ID3" an MP3, "CWS" a Flash file), so a note starting "BMW ..." would
  otherwise be refused as a broken picture.
- A BMP must also carry a known DIB header size, so two stray bytes are not a picture.
- ``image/apng`` is reported as ``image/png``: an animated PNG is a valid PNG and every
  phone shows its first frame.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from typing import Final

from glosmsd.core.errors import BadInput

# Beyond this many characters, the text checks look at a prefix only: enough to tell
# text from binary, and a 500 KB file is not decoded twice.
_TEXT_SAMPLE: Final = 64 * 1024

_RENAMED: Final[dict[str, str]] = {"image/apng": "image/png"}

#: Spellings servers and phones use for the canonical types.
ALIASES: Final[dict[str, str]] = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/x-ms-bmp": "image/bmp",
    "image/x-bmp": "image/bmp",
    "audio/mp3": "audio/mpeg",
    "audio/mpeg3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
    "audio/m4a": "audio/mp4",
    "audio/x-m4a": "audio/mp4",
    "audio/aacp": "audio/aac",
    "audio/x-aac": "audio/aac",
    "audio/wav": "audio/x-wav",
    "audio/wave": "audio/x-wav",
    "audio/vnd.wave": "audio/x-wav",
    "application/ogg": "audio/ogg",
    "audio/vorbis": "audio/ogg",
    "video/3gp": "video/3gpp",
    "audio/3gpp": "video/3gpp",
    "video/mov": "video/quicktime",
    "text/x-vcard": "text/vcard",
    "text/directory": "text/vcard",
    "application/x-pdf": "application/pdf",
}

# ftyp brands, checked major brand first, then the compatible brands in order.
_BRANDS: Final[dict[bytes, str]] = {
    b"qt  ": "video/quicktime",
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
    b"M4P ": "audio/mp4",
    b"F4A ": "audio/mp4",
    b"3gp4": "video/3gpp",
    b"3gp5": "video/3gpp",
    b"3gp6": "video/3gpp",
    b"3gp7": "video/3gpp",
    b"3ge6": "video/3gpp",
    b"3ge7": "video/3gpp",
    b"3gg6": "video/3gpp",
    b"3gs7": "video/3gpp",
    b"3g2a": "video/3gpp2",
    b"3g2b": "video/3gpp2",
    b"3g2c": "video/3gpp2",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"avif": "image/avif",
    b"M4V ": "video/x-m4v",
    b"isom": "video/mp4",
    b"iso2": "video/mp4",
    b"iso4": "video/mp4",
    b"iso5": "video/mp4",
    b"iso6": "video/mp4",
    b"mp41": "video/mp4",
    b"mp42": "video/mp4",
    b"avc1": "video/mp4",
    b"dash": "video/mp4",
    b"mmp4": "video/mp4",
    b"MSNV": "video/mp4",
}

# BITMAPCOREHEADER, the OS/2 and Windows INFO/V2/V3/V4/V5 headers.
_DIB_SIZES: Final = frozenset({12, 16, 40, 52, 56, 64, 108, 124})

# C0 and C1 controls other than tab, newline, vertical tab, form feed, carriage return
# and escape (ANSI colours in a saved log are still text).
_CONTROL: Final = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f\x80-\x9f]")

SUPPORTED_SUMMARY: Final = "images, audio, video, vCard, text, PDF"

#: The file name extensions that say each type, the one `name_for` gives first.
EXTENSIONS: Final[dict[str, tuple[str, ...]]] = {
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "image/png": (".png",),
    "image/gif": (".gif",),
    "image/bmp": (".bmp", ".dib"),
    "image/webp": (".webp",),
    "image/heic": (".heic",),
    "image/heif": (".heif",),
    "image/avif": (".avif",),
    "audio/mpeg": (".mp3", ".mpga"),
    "audio/mp4": (".m4a", ".m4b", ".m4p"),
    "audio/aac": (".aac",),
    "audio/amr": (".amr",),
    "audio/amr-wb": (".awb", ".amr"),
    "audio/x-wav": (".wav",),
    "audio/ogg": (".ogg", ".oga", ".opus"),
    "video/mp4": (".mp4",),
    "video/x-m4v": (".m4v",),
    "video/3gpp": (".3gp", ".3gpp"),
    "video/3gpp2": (".3g2",),
    "video/quicktime": (".mov", ".qt"),
    "text/vcard": (".vcf", ".vcard"),
    "text/plain": (".txt", ".text", ".log", ".csv", ".md"),
    "application/pdf": (".pdf",),
}

# What counts as a name's extension to replace: a short run of letters and digits.
_EXTENSION: Final = re.compile(r"\.[A-Za-z0-9]{1,5}$")


def sniff(data: bytes) -> str | None:
    """The canonical MIME type of `data` judged by content only; `None` when unknown."""
    if not data:
        return None
    head = data[:_TEXT_SAMPLE]
    # AMR's signature ends in a newline and its frames may happen to be valid UTF-8.
    if head.startswith(b"#!AMR\n"):
        return "audio/amr"
    if head.startswith(b"#!AMR-WB\n"):
        return "audio/amr-wb"
    # Text first: a real binary format has a NUL or invalid UTF-8 within its header, and
    # text must never pass for a format just because of a few ASCII letters.
    # The library's signature tables (~0.3 MB) load at the first file that needs them,
    # not in every daemon and window server that may never see one (issue 16).
    import filetype

    if _is_text(head, whole=len(data) <= _TEXT_SAMPLE):
        if head.removeprefix(b"\xef\xbb\xbf").startswith((b"%PDF-", b"{\\rtf", b"%!PS")):
            return str(filetype.guess_mime(head) or "text/plain")
        return "text/vcard" if _is_vcard(head) else "text/plain"
    if _is_vcard(head):
        # An old vCard 2.1 in Latin-1 is still a contact card.
        return "text/vcard"
    brand = _iso_brand(head)
    if brand is not None:
        return brand
    guessed = filetype.guess_mime(head)
    if guessed is None:
        return None
    mime = _RENAMED.get(guessed, str(guessed))
    if mime == "image/bmp" and not _is_bmp(head):
        return None
    return mime


def check_type(data: bytes, allowed: Sequence[str]) -> str:
    """The canonical MIME type of `data` when `allowed` lists it (or an alias of it).

    Raises `BadInput` saying what was detected and what is supported.
    """
    mime = sniff(data)
    accepted = {canonical(item) for item in allowed}
    if mime is not None and mime in accepted:
        return mime
    detected = mime or "unknown"
    raise BadInput(
        f"This file is not a supported MMS file type (detected: {detected}). "
        f"Supported: {_summary(allowed)}.",
        data={"detected": mime, "supported": sorted(accepted)},
    )


def name_for(name: str, mime: str) -> str:
    """`name` with an extension that says `mime`, the type its content was found to be.

    The name a file arrives with is kept when its extension already fits (``IMG.JPEG``
    as ``image/jpeg``); otherwise its extension is replaced (a PDF called ``pdf.png``
    goes as ``pdf.pdf``, HTML called ``script.png`` as the text it is, ``script.txt``) or
    one is added (``notes`` as ``notes.txt``), so a phone never opens a file as what its
    name claims instead of what it is. A type without known extensions keeps its name.
    """
    wanted = EXTENSIONS.get(canonical(mime))
    if not wanted:
        return name
    old = _EXTENSION.search(name)
    if old is not None and old.group().lower() in wanted:
        return name
    stem = name[: old.start()] if old is not None and old.start() > 0 else name
    return stem + wanted[0]


def canonical(mime: str) -> str:
    """The spelling `sniff` uses for `mime` (lower case, aliases resolved)."""
    base = mime.split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)


def _summary(allowed: Sequence[str]) -> str:
    # The wording users know from the product, in its order, for the groups that are on.
    groups = {canonical(item) for item in allowed}
    names = [
        ("images", any(g.startswith("image/") for g in groups)),
        ("audio", any(g.startswith("audio/") for g in groups)),
        ("video", any(g.startswith("video/") for g in groups)),
        ("vCard", "text/vcard" in groups),
        ("text", "text/plain" in groups),
        ("PDF", "application/pdf" in groups),
    ]
    listed = [name for name, on in names if on]
    known = ("image/", "audio/", "video/", "text/vcard", "text/plain", "application/pdf")
    listed += sorted(g for g in groups if not g.startswith(known))
    return ", ".join(listed) if listed else "none (MMS files are not accepted)"


def _iso_brand(head: bytes) -> str | None:
    if len(head) < 16 or head[4:8] != b"ftyp":
        return None
    box = int.from_bytes(head[0:4], "big")
    brands = [head[8:12]]
    end = min(box, len(head)) if box >= 16 else 16
    brands += [head[i : i + 4] for i in range(16, end - 3, 4)]
    for brand in brands:
        mime = _BRANDS.get(brand)
        if mime is not None:
            return mime
    return None


def _is_text(head: bytes, *, whole: bool) -> bool:
    if b"\x00" in head:
        return False
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        # A cut sample may end inside a character; only the complete file must end clean.
        text = decoder.decode(head, final=whole)
    except UnicodeDecodeError:
        return False
    text = text.removeprefix("\ufeff")
    if not text:
        return False
    controls = len(_CONTROL.findall(text))
    return controls * 100 <= len(text)


def _is_vcard(head: bytes) -> bool:
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip()[:11]
    return start.upper() == b"BEGIN:VCARD"


def _is_bmp(head: bytes) -> bool:
    return len(head) >= 18 and int.from_bytes(head[14:18], "little") in _DIB_SIZES
