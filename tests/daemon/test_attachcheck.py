"""Tests for glosmsd/daemon/attachcheck.py: the attach-time verdict equals the send's rules."""

from __future__ import annotations

import io

from PIL import Image

from glosmsd.core import filetypes, rules
from glosmsd.daemon import attachcheck, media
from glosmsd.daemon.attachcheck import HEAD_BYTES, Offered


def _offer(name: str, data: bytes) -> Offered:
    return Offered(name, len(data), data[:HEAD_BYTES])


def _jpeg(size: tuple[int, int] = (1600, 1200)) -> bytes:
    out = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(out, "JPEG", quality=95)
    return out.getvalue()


def test_an_eleventh_file_is_discarded_with_the_products_message() -> None:
    files = [_offer(f"n{i}.txt", b"note %d\n" % i) for i in range(11)]
    verdict = attachcheck.judge(files, rules.Limits())
    assert [f["kept"] for f in verdict["files"]] == [True] * 10 + [False]
    assert verdict["files"][10]["reason"] == "more than 10 files"
    assert verdict["message"] == "Maximum size of attached files for MMS reached."
    assert verdict["bytes"] == sum(f.size for f in files[:10])


def test_a_big_jpeg_counts_as_fitted_and_the_send_agrees() -> None:
    photo = _jpeg()
    assert len(photo) > 600 * 1024
    pdf = b"%PDF-1.4\n" + b"0" * 300_000
    verdict = attachcheck.judge([_offer("a.jpg", photo), _offer("b.pdf", pdf)], rules.Limits())
    assert [(f["mime"], f["kept"]) for f in verdict["files"]] == [
        ("image/jpeg", True),
        ("application/pdf", True),
    ]
    assert verdict["files"][0]["budget"] == rules.FITTED_IMAGE
    assert verdict["message"] is None
    # The send keeps both too (the photo is fitted into what the PDF leaves).
    prepared = media.prepare_attachments([("a.jpg", photo), ("b.pdf", pdf)], rules.Limits())
    assert [a.name for a in prepared.kept] == ["a.jpg", "b.pdf"]


def test_past_the_byte_budget_the_excess_goes_and_later_small_files_stay() -> None:
    big = b"x" * 300_000
    files = [_offer("a.txt", big), _offer("b.txt", big), _offer("c.txt", b"small\n")]
    verdict = attachcheck.judge(files, rules.Limits())
    assert [f["kept"] for f in verdict["files"]] == [True, False, True]
    assert verdict["files"][1]["reason"] == "over the 500 KB limit for the files of one message"
    assert verdict["message"] == rules.MAX_FILES_MESSAGE
    assert verdict["bytes"] == 300_006


def test_type_is_judged_from_the_head_as_from_the_whole_file() -> None:
    # A text file longer than the head, cut inside a character: still text, as a whole.
    text = ("é" * 40_000).encode()  # 80,000 bytes; byte 65,537 is mid-character
    head_verdict = attachcheck.judge([_offer("long.txt", text)], rules.Limits())
    assert head_verdict["files"][0]["mime"] == "text/plain" == filetypes.sniff(text)
    exe = b"MZ\x90\x00" + bytes(200)
    bad = attachcheck.judge([_offer("tool.exe", exe), _offer("e.txt", b"")], rules.Limits())
    assert [f["kept"] for f in bad["files"]] == [False, False]
    assert bad["files"][0]["reason"].startswith("tool.exe: This file is not a supported MMS")
    assert bad["files"][1]["reason"] == "e.txt is empty (0 bytes): attach the file again."
    assert bad["message"] == bad["files"][0]["reason"]


def test_with_mms_off_no_file_is_kept() -> None:
    verdict = attachcheck.judge([_offer("a.txt", b"hi\n")], rules.Limits(mms_enabled=False))
    assert verdict["files"][0]["kept"] is False
    assert verdict["message"] == rules.mms_off_reason()
