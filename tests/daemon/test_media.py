"""Tests for glosmsd/daemon/media.py: fitting on real photographs, hostile files, names, drops."""

from __future__ import annotations

import io
import struct
import zlib
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from glosmsd.core import rules
from glosmsd.core.errors import BadInput
from glosmsd.daemon import media
from tests.support import photos

SIZE = (2000, 1500)  # 3 MP: realistic multi-hundred-KB JPEGs, fast enough for 2 cores


def _limits(max_bytes: int = 512_000, max_files: int = 10) -> rules.Limits:
    return rules.Limits(mms_max_bytes=max_bytes, mms_max_files=max_files)


def _decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.copy()


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


# --------------------------------------------------------------------------- fitting


def test_small_files_pass_untouched() -> None:
    small = photos.photo_jpeg("chelsea", 300, 200)
    prepared = media.prepare_attachments([("cat.jpg", small), ("note.txt", b"hello")], _limits())
    assert prepared.message is None
    assert prepared.dropped == ()
    assert [a.data for a in prepared.kept] == [small, b"hello"]
    assert not any(a.fitted for a in prepared.kept)
    assert [a.mime for a in prepared.kept] == ["image/jpeg", "text/plain"]


def test_several_photos_share_the_budget() -> None:
    items = [(f"{name}.jpg", photos.photo_jpeg(name, *SIZE)) for name in photos.PHOTOS[:3]]
    text = ("notes.txt", b"x" * 20_000)
    budget = 300_000
    prepared = media.prepare_attachments([*items, text], _limits(budget))
    assert prepared.message is None, prepared.dropped
    assert sum(a.size for a in prepared.kept) <= budget
    assert [a.name for a in prepared.kept] == [
        "astronaut.jpg",
        "coffee.jpg",
        "chelsea.jpg",
        "notes.txt",
    ]
    for attachment in prepared.kept[:3]:
        assert attachment.fitted
        assert attachment.size == len(attachment.data) < attachment.original_size
        assert attachment.mime == "image/jpeg"
        # the budget is shared, not given to the first image
        assert attachment.size > budget // 5
    assert prepared.kept[3].data == text[1]


@pytest.mark.parametrize("budget", [512_000, 150_000])
def test_fit_beats_naive_stepping_on_real_photos(budget: int) -> None:
    ours_total = naive_total = 0.0
    for name in photos.PHOTOS[:3]:
        data = photos.photo_jpeg(name, *SIZE)
        original = _decoded(data)
        prepared = media.prepare_attachments([(name + ".jpg", data)], _limits(budget))
        (attachment,) = prepared.kept
        assert attachment.size <= budget
        naive = photos.naive_fit(original, budget)
        ours_ssim, naive_ssim = photos.ssim(original, attachment.data), photos.ssim(original, naive)
        assert ours_ssim >= naive_ssim - 0.002, (name, ours_ssim, naive_ssim)
        ours_total += ours_ssim
        naive_total += naive_ssim
    assert ours_total > naive_total


def test_resolution_lowered_only_as_needed() -> None:
    data = photos.photo_jpeg("coffee", *SIZE)
    fitted = _decoded(media.prepare_attachments([("c.jpg", data)], _limits(100_000)).kept[0].data)
    # naive halving would give 1000x750 or less; we keep the aspect and more pixels
    assert 1000 < fitted.width < SIZE[0]
    assert abs(fitted.width / fitted.height - SIZE[0] / SIZE[1]) < 0.01


def test_exif_orientation_applied_and_metadata_stripped() -> None:
    image = photos.photo_image("rocket", 1200, 800).copy()
    image.paste((255, 0, 0), (0, 0, 100, 100))  # mark the stored top-left corner red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (48.0, 51.0, 29.0)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, exif=exif.tobytes())
    data = out.getvalue()
    assert b"PhoneMaker" in data
    prepared = media.prepare_attachments([("img.jpg", data)], _limits(len(data) // 2))
    (attachment,) = prepared.kept
    assert attachment.fitted
    assert b"Exif" not in attachment.data
    assert b"PhoneMaker" not in attachment.data
    fitted = _decoded(attachment.data)
    assert not fitted.getexif()
    assert fitted.height > fitted.width  # displayed portrait
    # the stored top-left corner is now the displayed top-right corner
    scale = fitted.width / 800
    r, g, b = fitted.convert("RGB").getpixel((fitted.width - 1 - int(50 * scale), int(50 * scale)))  # type: ignore[misc]
    assert r > 200
    assert g < 60
    assert b < 60


def test_opaque_png_photo_becomes_jpeg_only_when_needed() -> None:
    data = photos.photo_png("astronaut", 800, 600)
    kept = media.prepare_attachments([("shot.PNG", data)], _limits(len(data) * 2)).kept[0]
    assert not kept.fitted
    assert kept.mime == "image/png"
    kept = media.prepare_attachments([("shot.PNG", data)], _limits(150_000)).kept[0]
    assert kept.fitted
    assert kept.mime == "image/jpeg"
    assert kept.name == "shot.jpg"
    assert kept.size <= 150_000


def test_png_with_transparency_keeps_alpha() -> None:
    image = photos.photo_image("chelsea", 800, 600).convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    data = _png(image)
    kept = media.prepare_attachments([("logo.png", data)], _limits(100_000)).kept[0]
    assert kept.fitted
    assert kept.mime == "image/png"
    assert kept.size <= 100_000
    fitted = _decoded(kept.data).convert("RGBA")
    low, high = cast("tuple[int, int]", fitted.getchannel("A").getextrema())
    assert low < 50
    assert high > 200


# --------------------------------------------------------------------------- drops


def test_files_beyond_count_are_dropped_with_message() -> None:
    items = [(f"n{i}.txt", b"note %d" % i) for i in range(12)]
    prepared = media.prepare_attachments(items, _limits())
    assert [a.name for a in prepared.kept] == [f"n{i}.txt" for i in range(10)]
    assert [d.name for d in prepared.dropped] == ["n10.txt", "n11.txt"]
    assert prepared.message == rules.MAX_FILES_MESSAGE
    assert "10 files" in prepared.dropped[0].reason


def test_files_beyond_budget_are_dropped_with_message() -> None:
    items = [("a.txt", b"a" * 300_000), ("b.txt", b"b" * 300_000), ("c.txt", b"c" * 100)]
    prepared = media.prepare_attachments(items, _limits())
    assert prepared.message == "Maximum size of attached files for MMS reached."
    assert "b.txt" in [d.name for d in prepared.dropped]
    assert sum(a.size for a in prepared.kept) <= 512_000


# --------------------------------------------------------------------------- hostile files


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _bomb_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("width", "height"), [(8000, 8000), (12_000, 12_000), (60_000, 60_000)]
)  # over our limit; over Pillow's warning; over Pillow's error
def test_decompression_bombs_refused(width: int, height: int) -> None:
    with pytest.raises(BadInput, match=r"bomb\.png.*megapixels|bomb\.png.*too large"):
        media.prepare_attachments([("bomb.png", _bomb_png(width, height))], _limits())
    with pytest.raises(BadInput):
        media.thumbnail(_bomb_png(width, height), 64)


def test_truncated_jpeg_refused() -> None:
    data = photos.photo_jpeg("coffee", 600, 400)
    with pytest.raises(BadInput, match=r"cut\.jpg"):
        media.prepare_attachments([("cut.jpg", data[: len(data) // 2])], _limits())


def test_truncated_png_refused() -> None:
    data = photos.photo_png("coffee", 300, 200)
    with pytest.raises(BadInput, match=r"cut\.png"):
        media.prepare_attachments([("cut.png", data[: len(data) // 2])], _limits())


def test_lying_png_refused() -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20
    with pytest.raises(BadInput, match=r"liar\.png"):
        media.prepare_attachments([("liar.png", data)], _limits())


def test_empty_file_refused() -> None:
    with pytest.raises(BadInput, match=r"empty.*0 bytes"):
        media.prepare_attachments([("ok.txt", b"ok"), ("empty.jpg", b"")], _limits())


def test_unsupported_type_refused_by_content_not_name() -> None:
    elf = b"\x7fELF\x02\x01\x01" + bytes(200)
    with pytest.raises(BadInput, match=r"holiday\.jpg"):
        media.prepare_attachments([("holiday.jpg", elf)], _limits())


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.JPG", "photo.JPG"),
        ("..", "file"),
        ("", "file"),
        (".bashrc", "bashrc"),
        ("a..b...jpg", "a.b.jpg"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("new\nline.txt", "newline.txt"),
        ("con.txt", "_con.txt"),
        ("what?.png", "what_.png"),
    ],
)
def test_safe_name_examples(raw: str, expected: str) -> None:
    assert media.safe_name(raw) == expected


def test_safe_name_keeps_extension_when_bounding() -> None:
    name = media.safe_name("x" * 500 + ".jpeg")
    assert name.endswith(".jpeg")
    assert len(name) == media.MAX_NAME_CHARS


@given(st.text())
def test_safe_name_is_always_safe(raw: str) -> None:
    name = media.safe_name(raw)
    assert name
    assert "/" not in name
    assert "\\" not in name
    assert ".." not in name
    assert not name.startswith(".")
    assert len(name) <= media.MAX_NAME_CHARS
    assert len(name.encode()) <= 240
    assert all(ch.isprintable() for ch in name)
    assert media.safe_name(name) == name


# --------------------------------------------------------------------------- small helpers


def test_thumbnail_is_small_upright_png() -> None:
    data = photos.photo_jpeg("astronaut", 1200, 800)
    png = media.thumbnail(data, 128)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    thumb = _decoded(png)
    assert thumb.size == (128, 85)
    with pytest.raises(BadInput):
        media.thumbnail(b"not a picture", 128)
    with pytest.raises(BadInput):
        media.thumbnail(data, 0)


@pytest.mark.parametrize(
    ("mimes", "label"),
    [
        (["image/jpeg"], "Picture"),
        (["image/jpeg", "image/png"], "2 pictures"),
        (["image/jpeg", "audio/mpeg"], "2 files"),
        (["application/pdf"], "PDF document"),
        (["text/vcard"], "Contact"),
        (["application/octet-stream"], "File"),
        ([], "No files"),
    ],
)
def test_describe(mimes: list[str], label: str) -> None:
    assert media.describe(mimes) == label


# --------------------------------------------------------------------------- metadata


def _private_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    if orientation != 1:
        exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 31.0, 12.0)
    return exif


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">SECRET-XMP</x:xmpmeta>'


def _pixels(data: bytes) -> bytes:
    return _decoded(data).convert("RGBA").tobytes()


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("orientation", [1, 6])
def test_a_jpeg_that_fits_loses_exif_xmp_comments_and_trailers_but_not_a_pixel(
    progressive: bool, orientation: int
) -> None:
    image = photos.photo_image("chelsea", 320, 240)
    out = io.BytesIO()
    image.save(
        out,
        "JPEG",
        quality=90,
        progressive=progressive,
        exif=_private_exif(orientation).tobytes(),
        comment=b"SECRET-COMMENT",
        xmp=XMP,
        icc_profile=b"\0" * 128 + b"fake-icc",
    )
    original = out.getvalue() + b"TRAILING-SECRET"
    prepared = media.prepare_attachments([("cat.jpg", original)], _limits())
    sent = prepared.kept[0].data
    assert not prepared.kept[0].fitted
    for secret in (b"PhoneMaker", b"SECRET-COMMENT", b"SECRET-XMP", b"TRAILING-SECRET"):
        assert secret in original
        assert secret not in sent
    assert b"fake-icc" in sent  # the colour profile stays
    assert _pixels(sent) == _pixels(original)  # lossless: the same scan data
    with Image.open(io.BytesIO(sent)) as img:
        exif = img.getexif()
        assert dict(exif) == ({} if orientation == 1 else {0x0112: orientation})


def test_a_png_that_fits_loses_its_text_and_exif_chunks() -> None:
    image = photos.photo_image("coffee", 200, 150)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "SECRET-TEXT")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info, exif=_private_exif().tobytes())
    original = out.getvalue()
    sent = media.prepare_attachments([("a.png", original)], _limits()).kept[0].data
    for secret in (b"SECRET-TEXT", b"SECRET-XMP", b"PhoneMaker"):
        assert secret in original
        assert secret not in sent
    assert _pixels(sent) == _pixels(original)


def test_a_png_with_an_exif_rotation_is_turned_upright_losslessly() -> None:
    image = photos.photo_image("coffee", 200, 150)
    out = io.BytesIO()
    image.save(out, "PNG", exif=_private_exif(6).tobytes())
    sent = media.strip_metadata(out.getvalue(), "image/png")
    assert b"PhoneMaker" not in sent
    upright = _decoded(sent)
    assert upright.size == (150, 200)
    assert upright.tobytes() == image.transpose(Image.Transpose.ROTATE_270).tobytes()


def test_webp_and_gif_lose_their_metadata() -> None:
    image = photos.photo_image("rocket", 120, 90)
    out = io.BytesIO()
    image.save(out, "WEBP", exif=_private_exif().tobytes(), xmp=XMP, quality=80)
    webp = out.getvalue()
    sent = media.strip_metadata(webp, "image/webp")
    assert b"PhoneMaker" in webp
    assert b"PhoneMaker" not in sent
    assert b"SECRET-XMP" not in sent
    assert _pixels(sent) == _pixels(webp)

    out = io.BytesIO()
    frames = [image.quantize(64), image.rotate(90).quantize(64)]
    frames[0].save(
        out, "GIF", save_all=True, append_images=frames[1:], comment=b"SECRET-GIF", loop=0
    )
    gif = out.getvalue()
    sent = media.strip_metadata(gif, "image/gif")
    assert b"SECRET-GIF" in gif
    assert b"SECRET-GIF" not in sent
    with Image.open(io.BytesIO(sent)) as img:
        assert getattr(img, "n_frames", 1) == 2  # still animated


def test_a_jpeg_the_walker_cannot_follow_is_re_encoded_without_metadata() -> None:
    out = io.BytesIO()
    photos.photo_image("chelsea", 64, 48).save(out, "JPEG", exif=_private_exif().tobytes())
    data = out.getvalue()
    # Junk between two segments: decoders skip it, the segment walker does not guess.
    broken = data[:20] + b"\x00\x00" + data[20:]
    assert _decoded(broken).size == (64, 48)
    sent = media.strip_metadata(broken, "image/jpeg")
    assert b"PhoneMaker" not in sent
    assert _decoded(sent).size == (64, 48)


# --------------------------------------------------------------------------- fitting fast paths


def _oriented_jpeg(width: int, height: int, orientation: int) -> bytes:
    image = photos.photo_image("rocket", width, height).copy()
    image.paste((255, 0, 0), (0, 0, width // 10, width // 10))  # the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def test_a_large_jpeg_fits_through_half_scale_decoding_and_stays_upright() -> None:
    width, height = 3200, 2400
    data = _oriented_jpeg(width, height, 6)
    budget = len(data) // 30
    # The picture is far over its budget: it is decoded at half scale, not in full.
    assert media._decode_for_fit(data, "image/jpeg", "x", budget).size == (1600, 1200)
    assert media._decode_for_fit(data, "image/jpeg", "x", len(data) // 2).size == (width, height)
    (attachment,) = media.prepare_attachments([("big.jpg", data)], _limits(budget)).kept
    assert attachment.fitted
    assert attachment.size <= budget
    assert b"PhoneMaker" not in attachment.data
    fitted = _decoded(attachment.data)
    assert not fitted.getexif()
    assert fitted.height > fitted.width  # displayed portrait
    assert fitted.height < width // 2  # below half scale, as the probe said
    # the stored top-left corner is now the displayed top-right corner
    mark = fitted.width * 0.05
    pixel = fitted.convert("RGB").getpixel((fitted.width - 1 - int(mark), int(mark)))
    r, g, b = cast("tuple[int, int, int]", pixel)
    assert r > 200
    assert g < 60
    assert b < 60


@pytest.mark.parametrize("budget", [40_000, 90_000, 200_000, 350_000])
def test_the_sampled_quality_search_always_meets_the_budget(budget: int) -> None:
    # 1500 rows: sizes are estimated from bands, only the chosen encode is a full one.
    data = photos.photo_jpeg("coffee", *SIZE)
    (attachment,) = media.prepare_attachments([("c.jpg", data)], _limits(budget)).kept
    assert attachment.size <= budget
    # within a few percent of the budget: the estimate is aimed, not only safe
    assert attachment.size > 0.85 * budget


def test_a_large_icc_profile_is_counted_once_not_per_band() -> None:
    icc = bytes(range(256)) * 200  # 51,200 bytes, kept in the output like any profile
    image = photos.photo_image("chelsea", *SIZE)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92, icc_profile=icc)
    data = out.getvalue()
    budget = 200_000
    (attachment,) = media.prepare_attachments([("p.jpg", data)], _limits(budget)).kept
    assert attachment.size <= budget
    assert attachment.size > 0.85 * budget
    assert _decoded(attachment.data).info.get("icc_profile") == icc


@pytest.mark.parametrize(("budget", "max_files"), [(10**7, 10), (20_000, 10), (10**7, 1)])
def test_a_damaged_jpeg_is_refused_whether_fitted_or_not(budget: int, max_files: int) -> None:
    # A bogus table segment before EOI: the metadata walker passes it, only decoding fails.
    # Fitted, fitting decodes it; sent as it is or dropped for count, it is still decoded.
    data = photos.photo_jpeg("coffee", 600, 400)
    damaged = data[:-2] + b"\xff\xc4\x00\x03\x00" + data[-2:]
    files = [("ok.jpg", data), ("bad.jpg", damaged)] if max_files == 1 else [("bad.jpg", damaged)]
    with pytest.raises(BadInput, match=r"bad\.jpg.*damaged"):
        media.prepare_attachments(files, _limits(budget, max_files))
