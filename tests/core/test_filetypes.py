"""Content sniffing of MMS files: real files built here, and bytes that only look alike."""

from __future__ import annotations

import io
import random
import struct
import wave

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from glosmsd.core import filetypes
from glosmsd.core.errors import BadInput
from glosmsd.core.filetypes import canonical, check_type, sniff
from glosmsd.core.rules import DEFAULT_MMS_TYPES


def _image(fmt: str, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (8, 6), "red" if mode != "P" else 3).save(out, fmt)
    return out.getvalue()


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x01" * 800)
    return out.getvalue()


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    box = struct.pack(">I", 8 + len(body)) + b"ftyp" + body
    # An mdat box after it, with bytes that are not text.
    return box + struct.pack(">I", 16) + b"mdat" + bytes(range(200, 208))


def _random(seed: int, size: int = 4096) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (_image("PNG"), "image/png"),
        (_image("PNG", "RGBA"), "image/png"),
        (_image("JPEG"), "image/jpeg"),
        (_image("GIF", "P"), "image/gif"),
        (_image("BMP"), "image/bmp"),
        (_image("WEBP"), "image/webp"),
        (_wav(), "audio/x-wav"),
        (b"#!AMR\n" + bytes([0x3C]) + _random(1, 31), "audio/amr"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + _random(2, 100), "audio/mpeg"),
        (b"\xff\xfb\x90\x64" + _random(3, 100), "audio/mpeg"),
        (b"\xff\xf1\x50\x80" + _random(4, 100), "audio/aac"),
        (b"OggS\x00\x02" + _random(5, 100), "audio/ogg"),
        (_ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"), "audio/mp4"),
        # A known major brand decides; the compatible brands only help when it is unknown.
        (_ftyp(b"mp42", b"M4A ", b"isom"), "video/mp4"),
        (_ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), "video/mp4"),
        (_ftyp(b"3gp4", b"isom", b"3gp4"), "video/3gpp"),
        (_ftyp(b"3gp5", b"3gp5", b"isom"), "video/3gpp"),
        (_ftyp(b"qt  ", b"qt  "), "video/quicktime"),
        (_ftyp(b"XYZ1", b"abcd", b"3gp6"), "video/3gpp"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "application/pdf"),
        # An uncompressed PDF can be pure ASCII; it is still a PDF, not text.
        (b"%PDF-1.1\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n", "application/pdf"),
        (b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada Lovelace\r\nEND:VCARD\r\n", "text/vcard"),
        (b"\xef\xbb\xbf\n begin:vcard\nVERSION:4.0\nFN:J\xc3\xb6rg\nEND:VCARD\n", "text/vcard"),
        # vCard 2.1 from an old phone, in Latin-1: not UTF-8, still a contact card.
        (b"BEGIN:VCARD\r\nVERSION:2.1\r\nN:J\xf6rg\r\nEND:VCARD\r\n", "text/vcard"),
        (b"Meet at 5?\n", "text/plain"),
        ("Grüße 👋 日本語\r\n\ttabbed\n".encode(), "text/plain"),
        ("\ufeffwith a BOM".encode(), "text/plain"),
        (b"\x1b[31mred log line\x1b[0m\n", "text/plain"),
    ],
)
def test_sniff_real_content(data: bytes, mime: str) -> None:
    assert sniff(data) == mime
    assert check_type(data, DEFAULT_MMS_TYPES) == mime


def test_types_outside_the_default_list_are_still_named() -> None:
    assert sniff(b"#!AMR-WB\n" + bytes([0x24]) + _random(1, 31)) == "audio/amr-wb"
    assert sniff(_ftyp(b"3g2a", b"3g2a")) == "video/3gpp2"
    assert sniff(_ftyp(b"heic", b"mif1", b"heic")) == "image/heic"
    assert sniff(_ftyp(b"XYZ1", b"abcd")) is None


def test_apng_counts_as_png() -> None:
    out = io.BytesIO()
    frames = [Image.new("RGB", (4, 4), c) for c in ("red", "blue")]
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:])
    assert sniff(out.getvalue()) == "image/png"


@pytest.mark.parametrize(
    "text",
    [
        b"BMW service on Monday",  # "BM" is filetype's whole BMP signature
        b"ID3 tags explained",  # "ID3" is an MP3's
        b"CWS report attached",  # "CWS" is a Flash file's
        b"OTTO is a name",  # "OTTO" is an OpenType font's
        b"MThd at noon",  # a MIDI file's
        b"abcdftypisom and more text",  # an MP4's box header, in letters
        b"OggS is a prefix",
    ],
)
def test_text_that_starts_like_a_binary_signature_is_text(text: bytes) -> None:
    assert sniff(text) == "text/plain"


def test_a_text_file_named_jpg_is_text() -> None:
    # The name never reaches sniff; this is what "photo.jpg" holding a note looks like.
    name, data = "photo.jpg", b"not a picture, just a note\n"
    assert name.endswith(".jpg")
    assert sniff(data) == "text/plain"
    with pytest.raises(BadInput, match=r"detected: text/plain"):
        check_type(data, ["image/jpeg", "image/png"])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00\x00\x00",
        b"hello\x00world",  # NUL: binary, not text
        b"\x01\x02\x03 mostly controls \x04\x05\x06",
        b"BM" + _random(6, 100),  # BMP magic without a DIB header
        _random(7),
        _random(8, 16),
        b"\xff\xfe" + "UTF-16 text".encode("utf-16-le"),
        b"\xef\xbb\xbf",  # a BOM and nothing else
    ],
)
def test_unknown_content_is_none_and_refused(data: bytes) -> None:
    assert sniff(data) is None
    with pytest.raises(BadInput) as info:
        check_type(data, DEFAULT_MMS_TYPES)
    assert info.value.message == (
        "This file is not a supported MMS file type (detected: unknown). "
        "Supported: images, audio, video, vCard, text, PDF."
    )
    assert info.value.data is not None
    assert info.value.data["detected"] is None


def test_known_but_unsupported_type_names_what_was_detected() -> None:
    zipped = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + _random(9, 64)
    with pytest.raises(BadInput, match=r"\(detected: application/zip\)"):
        check_type(zipped, DEFAULT_MMS_TYPES)


def test_check_type_understands_aliases_in_the_allowed_list() -> None:
    wav = _wav()
    assert check_type(wav, ["audio/wav"]) == "audio/x-wav"
    assert check_type(b"BEGIN:VCARD\nEND:VCARD\n", ["text/x-vcard"]) == "text/vcard"
    assert check_type(_image("JPEG"), ["IMAGE/JPG; q=1"]) == "image/jpeg"
    assert canonical("Audio/MP3") == "audio/mpeg"


def test_refusal_lists_only_the_groups_the_server_allows() -> None:
    with pytest.raises(BadInput) as info:
        check_type(_wav(), ["image/jpeg", "application/pdf", "model/gltf+json"])
    assert info.value.message.endswith("Supported: images, PDF, model/gltf+json.")
    with pytest.raises(BadInput, match=r"Supported: none \(MMS files are not accepted\)\."):
        check_type(_wav(), [])


def test_text_detection_looks_at_a_prefix_of_long_files() -> None:
    # A multi-byte character cut at the sample boundary must not make text binary.
    long_text = ("é" * (filetypes._TEXT_SAMPLE // 2 + 7)).encode()
    assert len(long_text) > filetypes._TEXT_SAMPLE
    assert sniff(long_text) == "text/plain"
    # A complete short file that ends mid-character is not valid UTF-8.
    assert sniff("abcé".encode()[:-1]) is None


def test_canonical_types_match_the_default_list() -> None:
    assert all(canonical(mime) == mime for mime in DEFAULT_MMS_TYPES)
    assert set(filetypes.ALIASES.values()) - set(DEFAULT_MMS_TYPES) == set()


@given(st.binary(max_size=300))
def test_sniff_never_raises_and_answers_in_canonical_form(data: bytes) -> None:
    mime = sniff(data)
    assert mime is None or mime == canonical(mime)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1))
def test_printable_utf8_is_text_or_a_text_document(text: str) -> None:
    data = text.encode()
    assert sniff(data) in {
        "text/plain",
        "text/vcard",
        "application/pdf",
        "application/rtf",
        "application/postscript",
    }


@pytest.mark.parametrize(
    ("name", "mime", "sent_as"),
    [
        ("pdf.png", "application/pdf", "pdf.pdf"),  # the probe's cases (issue 13 item 14)
        ("script.png", "text/plain", "script.txt"),
        ("IMG_0001.JPEG", "image/jpeg", "IMG_0001.JPEG"),  # a fitting name is kept as it is
        ("card.VCF", "text/vcard", "card.VCF"),
        ("notes", "text/plain", "notes.txt"),  # no extension: one is added
        ("photo.heic", "image/jpeg", "photo.jpg"),
        ("report.final.docx", "application/pdf", "report.final.pdf"),
        ("page.html", "text/plain", "page.txt"),
        ("scan.tiff", "image/tiff", "scan.tiff"),  # a type we know no extension of
        ("x.jpg", "image/jpg", "x.jpg"),  # aliases count as their canonical type
    ],
)
def test_a_file_is_named_by_the_type_of_its_content(name: str, mime: str, sent_as: str) -> None:
    assert filetypes.name_for(name, mime) == sent_as


@given(st.text(min_size=1, max_size=40), st.sampled_from(sorted(filetypes.EXTENSIONS)))
def test_the_name_given_says_the_type_and_is_kept_the_second_time(name: str, mime: str) -> None:
    named = filetypes.name_for(name, mime)
    assert named.lower().endswith(filetypes.EXTENSIONS[mime])
    assert filetypes.name_for(named, mime) == named
