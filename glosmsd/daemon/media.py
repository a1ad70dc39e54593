"""Preparing a message's attachments: type checks, safe names and the image-fit algorithm.

This module owns what happens to a user's files between "attach" and "send": each file's
type is taken from its content (never its name), names are made safe for the wire and for
disk (`safe_name`, also used by the download code), hostile images (decompression bombs,
truncated or lying files, empty files) are refused with `BadInput` naming the file, and
JPEG/PNG images are re-encoded so that all the files of one message share the MMS budget.
Whatever still does not fit, or comes after the file-count limit, is dropped with the
product's message.

It is pure computation over bytes with Pillow: it must never open a socket, touch asyncio,
a database or the file system, or read a clock. Callers on the event loop run it through
`asyncio.to_thread`; nothing here holds global state, so that is safe.

How the budget is shared (`prepare_attachments`):

1. Files after the first `mms_max_files` are dropped for count and take no budget.
2. If everything left fits as it is, nothing is touched.
3. Otherwise files that cannot be fitted (audio, video, GIF, ...) take their own size; the
   rest is shared among the JPEG/PNG images in proportion to their pixel counts (equal
   bytes per pixel is roughly equal quality). Water-filling: an image already smaller than
   its share stays untouched and its unused share goes back to the pool. The remaining
   images are fitted one by one in the user's order, each to its share of what is still
   left, so the slack an encode leaves under its target flows to the next image.
4. `rules.pick_files` then decides, on the sizes after fitting and in the user's order,
   which files are kept; the rest are listed in `Prepared.dropped` with the message.

Metadata (`strip_metadata`): every image that goes out as it is loses what it says about
the user (EXIF with GPS and the camera, XMP, IPTC, comments, text chunks, embedded
thumbnails and anything after the image's end), losslessly: the pixels are not touched.
JPEG keeps its tables, the ICC profile, the Adobe colour-transform segment and, when the
picture is not upright as stored, a fresh EXIF block holding only the Orientation tag (so
it still shows the right way up without a lossy re-encode). PNG keeps its critical and
colour chunks (an `eXIf` orientation other than 1 is applied instead, by a lossless PNG
re-encode); WebP drops its EXIF and XMP chunks; GIF its comments and non-animation
application blocks. A structure the walker cannot follow is re-encoded instead.

How one image is fitted (`_fit_image`):

- EXIF orientation is applied, then the pixels are re-encoded from scratch: no EXIF (GPS),
  XMP, comments or text chunks survive. The ICC colour profile is kept, since dropping it
  would change the colours of wide-gamut (e.g. Display P3) photos and it says nothing
  about the user.
- Opaque images become baseline JPEG (optimized Huffman tables). At the current resolution
  the search finds the highest quality in [`QUALITY_FLOOR`, `QUALITY_CEILING`] that fits.
  Only if even the floor does not fit is the resolution lowered, by the factor the floor
  encode's bytes per pixel predicts (then checked and corrected), and the quality is
  searched again at that size. Fixed steps (95, 85, 75, ... then halving) waste up to a
  whole step of quality and, worse, halve the resolution when a 10 % cut would do.
- The search is cheap (issue 16): it interpolates log(bytes) on unoptimized encodes, of a
  sample of 16 bands for a tall picture, and encodes only the chosen quality in full and
  optimized (a second time when that misses). A JPEG far over its target is decoded at
  half scale when that is provably enough, and a mild shrink is bilinear. Only what is
  returned is ever a real, checked encode: the size limit holds whatever the estimates.
- A PNG is first re-encoded losslessly when that could plausibly fit (screenshots); an
  opaque PNG photo becomes JPEG only when lossless does not fit. A PNG with real
  transparency (or a palette PNG, i.e. graphics) keeps PNG: it is quantized to 256 colours
  with its alpha and scaled down only as needed. WebP would be smaller, but PNG is what
  every phone shows and is always in the supported types when the input was PNG.
"""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from glosmsd.core import filetypes, rules
from glosmsd.core.errors import BadInput, GlosmsdError

# Pillow (about 4 MB of the daemon's memory) is imported by the functions that decode or
# encode a picture, so a daemon that never gets one does not load it (issue 16).
if TYPE_CHECKING:
    from PIL import Image, ImageFile

__all__ = [
    "FITTABLE_TYPES",
    "MAX_NAME_CHARS",
    "MAX_PIXELS",
    "QUALITY_CEILING",
    "QUALITY_FLOOR",
    "Dropped",
    "Prepared",
    "PreparedFile",
    "describe",
    "fit_jpeg",
    "prepare_attachments",
    "safe_name",
    "strip_metadata",
    "thumbnail",
]

#: Images with more pixels than this are refused before any pixel is decoded (50 MP: a
#: 48 MP phone photo passes, a decompression bomb does not).
MAX_PIXELS = 50_000_000
#: The lowest JPEG quality we use before lowering the resolution instead.
QUALITY_FLOOR = 70
#: Above this JPEG spends many bytes on differences nobody sees.
QUALITY_CEILING = 95
#: Longest safe file name, in characters (also bounded to 240 bytes of UTF-8).
MAX_NAME_CHARS = 100
_MAX_NAME_BYTES = 240
_MAX_EXT_CHARS = 10
#: Below this longest side an image is useless; fitting gives up and the file is dropped.
_MIN_SIDE = 32
_MAX_THUMBNAIL = 1024
#: Only JPEG and PNG are re-encoded to fit (F9); other images go as they are.
FITTABLE_TYPES = frozenset({"image/jpeg", "image/png"})

# Each supported image type opens through its own plugin class rather than `Image.open`:
# no guessing among formats, and no `DecompressionBombWarning` (a process-wide warning
# that `warnings.catch_warnings` can only silence in a thread-unsafe way). We check the
# pixel count ourselves right after the header is parsed, before decoding anything.
_OPENABLE = frozenset({"image/jpeg", "image/png", "image/gif", "image/bmp", "image/webp"})


def _opener(mime: str) -> Callable[[io.BytesIO], ImageFile.ImageFile] | None:
    """The plugin class that opens `mime` (one of `_OPENABLE`), or None."""
    from PIL import (
        BmpImagePlugin,
        GifImagePlugin,
        JpegImagePlugin,
        PngImagePlugin,
        WebPImagePlugin,
    )

    openers: dict[str, Callable[[io.BytesIO], ImageFile.ImageFile]] = {
        "image/jpeg": JpegImagePlugin.JpegImageFile,
        "image/png": PngImagePlugin.PngImageFile,
        "image/gif": GifImagePlugin.GifImageFile,
        "image/bmp": BmpImagePlugin.BmpImageFile,
        "image/webp": WebPImagePlugin.WebPImageFile,
    }
    return openers.get(mime)


_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png"}


@dataclass(frozen=True, slots=True)
class PreparedFile:
    """One file as it will be sent. `size == len(data)`; `fitted` if we re-encoded it."""

    name: str
    data: bytes
    mime: str
    size: int
    fitted: bool
    original_size: int


@dataclass(frozen=True, slots=True)
class Dropped:
    """A file left out of the message, and why, in the user's words."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Prepared:
    """The files of one message after fitting; `message` is set when any was dropped."""

    kept: tuple[PreparedFile, ...]
    dropped: tuple[Dropped, ...]
    message: str | None


# --------------------------------------------------------------------------- names

_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
_FORBIDDEN_CHARS = frozenset('<>:"|?*')


def safe_name(name: str) -> str:
    """A file name safe to send and to save: a bare, bounded name that keeps its extension.

    Only the last path component is kept (both `/` and `\\` count as separators); control
    and format characters (including right-to-left overrides) are removed; characters that
    Windows forbids become `_`; runs of dots collapse to one, so there is never a `..`;
    leading dots and spaces and trailing dots and spaces go; Windows device names get a
    `_` prefix. An empty result is `"file"`. `safe_name(safe_name(x)) == safe_name(x)`.
    """
    text = unicodedata.normalize("NFC", name)
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    chars: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if category[0] == "C":  # Cc, Cf (bidi overrides), Cs, Co, Cn
            continue
        if category[0] == "Z":  # every kind of space becomes a plain one
            chars.append(" ")
        elif ch in _FORBIDDEN_CHARS:
            chars.append("_")
        else:
            chars.append(ch)
    text = "".join(chars)
    while ".." in text:
        text = text.replace("..", ".")
    text = text.strip(" .")
    stem, dot, ext = text.rpartition(".")
    if not dot or not stem or len(ext) > _MAX_EXT_CHARS or " " in ext:
        stem, ext = text, ""
    else:
        ext = "." + ext
    stem = stem.strip(" .") or "file"
    if stem.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        stem = "_" + stem
    budget = min(MAX_NAME_CHARS - len(ext), _MAX_NAME_BYTES - len(ext.encode()))
    while len(stem) > budget or len(stem.encode()) > budget:
        stem = stem[:-1]
    stem = stem.rstrip(" .") or "file"
    return stem + ext


def _with_extension(name: str, ext: str) -> str:
    stem, dot, old = name.rpartition(".")
    if dot and stem and old.lower() in {"png", "jpg", "jpeg", "jpe"}:
        return safe_name(stem + ext)
    return safe_name(name + ext)


# --------------------------------------------------------------------------- decoding


def _open_image(data: bytes, mime: str, label: str) -> ImageFile.ImageFile:
    """Parse the header only, refusing bombs before a single pixel is decoded."""
    from PIL import Image

    opener = _opener(mime)
    if opener is None:
        raise BadInput(f"{label}: {mime} is not an image glosmsd can read.")
    try:
        image = opener(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadInput(f"{label}: the picture is far too large to open ({exc}).") from exc
    except (OSError, SyntaxError, ValueError, IndexError, TypeError, EOFError) as exc:
        raise BadInput(f"{label}: the file says it is {mime} but is damaged ({exc}).") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise BadInput(f"{label}: the picture has no pixels ({width}x{height}).")
    if width * height > MAX_PIXELS:
        raise BadInput(
            f"{label}: the picture is {width}x{height} pixels, more than the "
            f"{MAX_PIXELS // 1_000_000} megapixels glosmsd accepts."
        )
    return image


def _load(image: ImageFile.ImageFile, mime: str, label: str) -> None:
    """Decode the pixels, turning truncated or corrupt data into `BadInput`."""
    from PIL import Image

    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadInput(f"{label}: the picture is far too large to open ({exc}).") from exc
    except (OSError, SyntaxError, ValueError, IndexError, TypeError, EOFError) as exc:
        raise BadInput(f"{label}: the {mime} file is truncated or damaged ({exc}).") from exc


def _decode(
    data: bytes, mime: str, label: str, *, draft: tuple[int, int] | None = None
) -> Image.Image:
    """Open, check and fully decode an image; `draft` lets JPEG decode at a reduced scale."""
    image = _open_image(data, mime, label)
    if draft is not None and mime == "image/jpeg":
        image.draft(image.mode, draft)
    _load(image, mime, label)
    return image


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block just means no rotation."""
    from PIL import ImageOps

    try:
        if image.getexif().get(0x0112, 1) == 1:
            return image  # exif_transpose would copy the pixels (10-40 ms at 12 MP)
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, IndexError):
        return image


def _has_alpha(image: Image.Image) -> bool:
    if image.mode in {"RGBA", "LA", "PA"}:
        extrema = image.getchannel("A").getextrema()
        return bool(extrema[0] < 255)  # type: ignore[operator]
    return image.mode == "P" and "transparency" in image.info


# --------------------------------------------------------------------------- fitting


def _encode_jpeg(
    image: Image.Image, quality: int, icc: bytes | None, *, optimize: bool = True
) -> bytes:
    out = io.BytesIO()
    extra: dict[str, bytes] = {"icc_profile": icc} if icc else {}
    image.save(out, "JPEG", quality=quality, optimize=optimize, **extra)
    return out.getvalue()


def _encode_png(image: Image.Image, icc: bytes | None) -> bytes:
    out = io.BytesIO()
    extra: dict[str, bytes] = {"icc_profile": icc} if icc else {}
    image.save(out, "PNG", optimize=True, **extra)
    return out.getvalue()


def _scaled(image: Image.Image, scale: float) -> Image.Image:
    from PIL import Image

    if scale >= 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


#: Down to this scale a bilinear resize loses next to nothing (see `_scaled_photo`).
_BILINEAR_MIN_SCALE = 0.75


def _scaled_photo(image: Image.Image, scale: float) -> Image.Image:
    """`image` scaled by `scale` for a JPEG: bilinear for a mild shrink, else a box `reduce`
    by the whole factor and then bicubic.

    The resize is the fit's largest single cost. Measured on 12 MP photos at the 0.8-0.9
    scales a 500 KB budget asks for, bilinear takes half the time of LANCZOS or bicubic
    for an SSIM 0.0003 lower at equal quality, and its slightly softer result encodes
    about 2 % smaller, which the quality search gives back.
    """
    from PIL import Image

    if scale >= 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if scale >= _BILINEAR_MIN_SCALE:
        return image.resize(size, Image.Resampling.BILINEAR)
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=1.0)


#: Optimized Huffman tables save 2-12 % on photos at qualities 70-95, so an unoptimized
#: encode (2.5 times cheaper) above `target / _OPTIMIZED_MIN_RATIO` cannot fit optimized.
_OPTIMIZED_MIN_RATIO = 0.85
#: The ratio assumed until one optimized encode has measured it.
_OPTIMIZED_GUESS_RATIO = 0.95
#: How fast bytes grow with quality near the floor, as d log(bytes) / d quality.
_LOG_BYTES_PER_QUALITY = 0.03


#: A tall picture's unoptimized sizes are estimated from this many bands of this many rows
#: (multiples of the 16-row MCU), spread over its height: within 2.5 % on photos, and
#: the error is the same at every quality, so the ratio to the first real encode absorbs it.
_BANDS, _BAND_ROWS = 16, 32
#: About what a baseline JPEG's markers and tables take, counted once, not per band.
_JPEG_OVERHEAD = 600


def _band_sample(image: Image.Image) -> tuple[Image.Image, float] | None:
    """Bands of `image` stacked into one picture and how many times taller `image` is, or
    None when `image` is too short for sampling to save much."""
    from PIL import Image

    rows = _BANDS * _BAND_ROWS
    if image.height < 2 * rows:
        return None
    sample = Image.new(image.mode, (image.width, rows))
    step = image.height / _BANDS
    for band in range(_BANDS):
        top = int(band * step + (step - _BAND_ROWS) / 2) // 16 * 16
        strip = image.crop((0, top, image.width, top + _BAND_ROWS))
        sample.paste(strip, (0, band * _BAND_ROWS))
    return sample, image.height / rows


def _search_quality(image: Image.Image, target: int, icc: bytes | None) -> tuple[bytes | None, int]:
    """The highest-quality JPEG of `image` within `target` bytes (None if even the floor
    is too big), and the size of the floor encode (unoptimized when that alone decided).

    The quality is searched on unoptimized encodes, which cost 2.5 times less than
    optimized ones, against `target / ratio`, where `ratio` (optimized / unoptimized
    bytes) is measured once it is known; the search interpolates log(bytes), which is
    near-linear in the quality. Only the result, and its neighbour above when the
    prediction says it might fit, are encoded optimized: about 3 cheap and 1-2 full
    encodes instead of 7 full ones.
    """
    plain: dict[int, int] = {}  # estimated from the bands when sampled
    band_plain: dict[int, int] = {}
    optimized: dict[int, bytes] = {}
    sample = _band_sample(image)
    icc_bytes = len(icc) if icc else 0

    def plain_size(quality: int) -> int:
        if quality not in plain:
            if sample is None:
                plain[quality] = len(_encode_jpeg(image, quality, icc, optimize=False))
            else:
                bands, factor = sample
                size = band_plain[quality] = len(_encode_jpeg(bands, quality, None, optimize=False))
                plain[quality] = round((size - _JPEG_OVERHEAD) * factor) + _JPEG_OVERHEAD
                plain[quality] += icc_bytes
        return plain[quality]

    floor_size = plain_size(QUALITY_FLOOR)
    ratio = _OPTIMIZED_GUESS_RATIO
    if floor_size > target:
        if floor_size * _OPTIMIZED_MIN_RATIO > target:
            return None, floor_size
        floor = optimized[QUALITY_FLOOR] = _encode_jpeg(image, QUALITY_FLOOR, icc)
        ratio = len(floor) / floor_size
        floor_size = len(floor)
        if floor_size > target:
            return None, floor_size

    def bracket(ratio: float) -> int:
        """The highest quality whose predicted optimized size fits."""
        fits = [q for q in plain if plain[q] * ratio <= target]
        low = max(fits, default=QUALITY_FLOOR)
        high = min((q for q in plain if q > low), default=QUALITY_CEILING + 1)
        goal = math.log(target / ratio)
        for step in range(QUALITY_CEILING - QUALITY_FLOOR + 1):
            if high - low <= 1:
                break
            if high in plain:  # bracketed: interpolate, bisect once that is slow (convex)
                lo_log, hi_log = math.log(plain[low]), math.log(plain[high])
                guess = low + math.floor((goal - lo_log) / (hi_log - lo_log) * (high - low))
                if step >= 3:
                    guess = (low + high) // 2
            else:  # extrapolate from the slope measured up to `low`, or the usual one
                first = min(plain)
                slope = _LOG_BYTES_PER_QUALITY
                if first < low:  # over several steps: neighbours can share a table (74, 75)
                    slope = max(math.log(plain[low] / plain[first]) / (low - first), 1e-3)
                guess = low + math.floor((goal - math.log(plain[low])) / slope)
            guess = min(max(guess, low + 1), high - 1)
            if plain_size(guess) * ratio <= target:
                low = guess
            else:
                high = guess
        return low

    quality = bracket(ratio)
    if sample is not None and not optimized:
        # The optimized/unoptimized ratio of the bands, so the one full encode is aimed well.
        plain_size(quality)
        ratio = len(_encode_jpeg(sample[0], quality, None)) / band_plain[quality]
        quality = bracket(ratio)
    # Confirm with optimized encodes: down while too big, up while the next might fit.
    best, too_big = None, QUALITY_CEILING + 1
    while QUALITY_FLOOR <= quality < too_big:
        candidate = optimized.get(quality) or _encode_jpeg(image, quality, icc)
        if len(candidate) > target:
            too_big = quality
            if best is not None:
                break
            if quality == QUALITY_FLOOR:
                floor_size = len(candidate)
            # Aim again with the ratio this encode measured (it absorbs the bands' error).
            ratio = len(candidate) / plain_size(quality)
            quality = min(bracket(ratio), quality - 1)
            continue
        best = candidate
        ratio = len(candidate) / plain_size(quality)
        quality += 1
        if quality >= too_big or quality > QUALITY_CEILING:
            break
        if plain_size(quality) * ratio > target:
            break
    return best, floor_size


def _shrink_until(
    image: Image.Image,
    target: int,
    encode: Callable[[Image.Image], bytes],
) -> tuple[Image.Image, bytes] | None:
    """Lower the resolution until `encode` fits `target`; None when it never does.

    Each step predicts the scale from the last attempt's size (bytes grow roughly with
    pixel count, a little less than linearly, hence the 0.95 margin on the area).
    """
    scale = 1.0
    last_size: int | None = None
    for _ in range(12):
        if last_size is not None:
            scale *= math.sqrt(0.95 * target / last_size)
        candidate = _scaled(image, scale)
        if max(candidate.size) < _MIN_SIDE:
            return None
        result = encode(candidate)
        if len(result) <= target:
            return candidate, result
        last_size = len(result)
    return None


#: Bytes fall a little less than linearly with the pixel count, and a second resize costs
#: more than a few quality points: aim the area at this share of what the target allows.
_SHRINK_MARGIN = 0.95


def fit_jpeg(image: Image.Image, target: int, icc: bytes | None = None) -> bytes | None:
    """Encode an opaque image as the best JPEG within `target` bytes, or None if impossible.

    Full resolution with the highest quality that fits; only when the quality floor does
    not fit is the resolution lowered (predicted from the floor's bytes per pixel, then
    checked and corrected) and the quality searched again.
    """
    if image.mode not in {"RGB", "L"}:
        image = image.convert("RGB")
    best, floor_size = _search_quality(image, target, icc)
    area, last = 1.0, (1.0, floor_size)
    for attempt in range(12):
        if best is not None:
            return best
        # Bytes follow area ** exponent; below 1 (smooth content) a linear guess lands too
        # big every time, so after the first attempt the exponent is measured.
        exponent = 1.0
        if attempt and last[1] != floor_size and area != last[0]:
            exponent = math.log(floor_size / last[1]) / math.log(area / last[0])
            exponent = min(max(exponent, 0.5), 1.5)
        last = (area, floor_size)
        area *= (_SHRINK_MARGIN * target / floor_size) ** (1 / exponent)
        candidate = _scaled_photo(image, math.sqrt(area))
        if max(candidate.size) < _MIN_SIDE:
            return None
        best, floor_size = _search_quality(candidate, target, icc)
    return best


def _fit_palette_png(image: Image.Image, target: int, icc: bytes | None) -> bytes | None:
    """A 256-colour PNG (alpha kept) within `target`, lowering resolution only as needed."""
    from PIL import Image

    rgba = image.convert("RGBA")

    def encode(candidate: Image.Image) -> bytes:
        quantized = candidate.quantize(256, method=Image.Quantize.FASTOCTREE)
        return _encode_png(quantized, icc)

    shrunk = _shrink_until(rgba, target, encode)
    return None if shrunk is None else shrunk[1]


#: A JPEG this many times its target is first decoded at half scale (see `_decode_for_fit`).
_DRAFT_MIN_RATIO = 8


def _decode_for_fit(data: bytes, mime: str, label: str, target: int) -> Image.Image:
    """The decoded picture to fit, at half scale when a JPEG cannot fit above that.

    libjpeg decodes at 1/2 scale in about 40 % of the full decode's time, and what follows
    (resize, encodes) works on a quarter of the pixels. Whether half scale is enough is
    decided exactly: when even the quality floor of the half-scale picture does not fit,
    the fit ends below half scale anyway. Only a file much larger than its target is
    tried that way (the floor of a re-encode is a fraction of a camera JPEG's bytes), so
    the probe is rarely wasted on a picture that must then be decoded again in full.
    """
    if mime == "image/jpeg" and len(data) > _DRAFT_MIN_RATIO * target:
        opened = _open_image(data, mime, label)
        half = (opened.width // 2, opened.height // 2)
        if min(half) >= _MIN_SIDE:
            small = _decode(data, mime, label, draft=half)
            probe = small if small.mode in {"RGB", "L"} else small.convert("RGB")
            floor = _encode_jpeg(probe, QUALITY_FLOOR, None, optimize=False)
            if len(floor) * _OPTIMIZED_MIN_RATIO > target:
                return small
    return _decode(data, mime, label)


def _fit_image(data: bytes, mime: str, label: str, target: int) -> tuple[bytes, str] | None:
    """Re-encode one JPEG/PNG within `target` bytes: (data, mime), or None if impossible."""
    image = _decode_for_fit(data, mime, label, target)
    icc = image.info.get("icc_profile")
    icc = icc if isinstance(icc, bytes) and len(icc) <= 65_536 else None
    upright = _upright(image)
    if mime == "image/png":
        if _has_alpha(upright) or upright.mode in {"P", "1"}:
            lossless = _encode_png(upright, icc) if len(data) <= 2 * target else None
            if lossless is not None and len(lossless) <= target:
                return lossless, "image/png"
            fitted = _fit_palette_png(upright, target, icc)
            return None if fitted is None else (fitted, "image/png")
        if len(data) <= 2 * target:
            lossless = _encode_png(upright, icc)
            if len(lossless) <= target:
                return lossless, "image/png"
    if upright.mode in {"RGBA", "LA", "PA"}:
        upright = upright.convert("RGB")  # opaque alpha channel: nothing lost
    jpeg = fit_jpeg(upright, target, icc)
    return None if jpeg is None else (jpeg, "image/jpeg")


# --------------------------------------------------------------------------- metadata

#: JPEG markers without a length field (TEM, RSTn); SOI and EOI are handled apart.
_JPEG_BARE = frozenset({0x01, *range(0xD0, 0xD8)})
#: PNG ancillary chunks that only describe how to show the pixels.
_PNG_KEEP = frozenset(
    {b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"sBIT", b"pHYs", b"tRNS", b"bKGD", b"hIST"}
    | {b"cICP", b"mDCv", b"cLLi", b"acTL", b"fcTL", b"fdAT"}
)
_GIF_KEEP_APPS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")


class _UnparsableError(Exception):
    """The walker cannot follow this file's structure; re-encode instead."""


def _jpeg_orientation(data: bytes) -> int:
    from PIL import JpegImagePlugin

    try:
        with JpegImagePlugin.JpegImageFile(io.BytesIO(data)) as image:
            value = image.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block only means "as stored"
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _strip_jpeg(data: bytes) -> bytes:
    from PIL import Image

    if data[:2] != b"\xff\xd8":
        raise _UnparsableError("no SOI")
    out = [b"\xff\xd8"]
    orientation = _jpeg_orientation(data)
    pos, n = 2, len(data)
    header_done = False
    while True:
        if pos >= n or data[pos] != 0xFF:
            raise _UnparsableError(f"no marker at {pos}")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            raise _UnparsableError("truncated marker")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI: whatever follows (trailers, MPF pictures) is dropped
            out.append(b"\xff\xd9")
            return b"".join(out)
        if marker in _JPEG_BARE:
            out.append(bytes((0xFF, marker)))
            continue
        if pos + 2 > n:
            raise _UnparsableError("truncated length")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > n:
            raise _UnparsableError("bad segment length")
        payload = data[pos + 2 : pos + length]
        end = pos + length
        if not header_done and marker not in (0xE0,):
            header_done = True
            if orientation != 1:
                exif = Image.Exif()
                exif[0x0112] = orientation
                block = exif.tobytes()
                out.append(b"\xff\xe1" + (len(block) + 2).to_bytes(2, "big") + block)
        keep: bytes | None
        if marker == 0xE0:
            # JFIF without its thumbnail; other APP0 kinds (JFXX thumbnails) go.
            keep = payload[:12] + b"\x00\x00" if payload.startswith(b"JFIF\x00") else None
        elif marker == 0xE2:
            keep = payload if payload.startswith(b"ICC_PROFILE\x00") else None
        elif marker == 0xEE:
            keep = payload if payload.startswith(b"Adobe") else None
        elif 0xE0 <= marker <= 0xEF or marker == 0xFE:
            keep = None  # EXIF, XMP, IPTC, maker notes, comments
        else:
            keep = payload
        if keep is not None:
            out.append(bytes((0xFF, marker)) + (len(keep) + 2).to_bytes(2, "big") + keep)
        pos = end
        if marker == 0xDA:  # SOS: entropy-coded data runs to the next real marker
            start = pos
            while True:
                ff = data.find(b"\xff", pos)
                if ff < 0 or ff + 1 >= n:
                    raise _UnparsableError("scan without an end")
                nxt = data[ff + 1]
                if nxt == 0x00 or nxt in _JPEG_BARE or nxt == 0xFF:
                    pos = ff + 2 if nxt != 0xFF else ff + 1
                    continue
                out.append(data[start:ff])
                pos = ff
                break


def _png_orientation(chunk: bytes) -> int:
    from PIL import Image

    try:
        exif = Image.Exif()
        exif.load(chunk)
        value = exif.get(0x0112, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _strip_png(data: bytes) -> bytes:
    signature = b"\x89PNG\r\n\x1a\n"
    if not data.startswith(signature):
        raise _UnparsableError("no PNG signature")
    out = [signature]
    pos, n = len(signature), len(data)
    while pos + 12 <= n:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > n:
            raise _UnparsableError("truncated chunk")
        if kind == b"eXIf" and _png_orientation(data[pos + 8 : end - 4]) != 1:
            raise _UnparsableError("orientation to apply")
        if kind[:1].isupper() or kind in _PNG_KEEP:
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            return b"".join(out)
    raise _UnparsableError("no IEND")


def _strip_webp(data: bytes) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise _UnparsableError("not RIFF/WEBP")
    chunks: list[bytes] = []
    pos, n = 12, min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    while pos + 8 <= n:
        kind = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        end = pos + 8 + size + (size & 1)
        if pos + 8 + size > n:
            raise _UnparsableError("truncated chunk")
        chunk = data[pos : min(end, n)]
        if kind == b"VP8X" and size >= 10:
            flags = chunk[8] & ~0x0C  # no EXIF, no XMP
            chunk = chunk[:8] + bytes((flags,)) + chunk[9:]
        if kind not in (b"EXIF", b"XMP "):
            chunks.append(chunk + (b"\x00" if len(chunk) & 1 else b""))
        pos = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def _gif_sub_blocks(data: bytes, pos: int) -> int:
    """The position after a run of GIF data sub-blocks starting at `pos`."""
    while True:
        if pos >= len(data):
            raise _UnparsableError("truncated sub-blocks")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def _strip_gif(data: bytes) -> bytes:
    if data[:3] != b"GIF" or len(data) < 13:
        raise _UnparsableError("not GIF")
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    out = [data[:pos]]
    n = len(data)
    while pos < n:
        block = data[pos]
        if block == 0x3B:
            out.append(b"\x3b")
            return b"".join(out)
        if block == 0x2C:
            if pos + 10 > n:
                raise _UnparsableError("truncated image descriptor")
            local = data[pos + 9]
            start = pos
            pos += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0)
            pos = _gif_sub_blocks(data, pos + 1)  # +1: LZW minimum code size
            out.append(data[start:pos])
        elif block == 0x21:
            if pos + 2 > n:
                raise _UnparsableError("truncated extension")
            label = data[pos + 1]
            start = pos
            pos = _gif_sub_blocks(data, pos + 2)
            app = data[start + 3 : start + 14] if label == 0xFF else b""
            if label in {0xF9, 0x01} or app in _GIF_KEEP_APPS:
                out.append(data[start:pos])
        else:
            raise _UnparsableError(f"unknown GIF block {block:#x}")
    raise _UnparsableError("no GIF trailer")


_STRIPPERS: dict[str, Callable[[bytes], bytes]] = {
    "image/jpeg": _strip_jpeg,
    "image/png": _strip_png,
    "image/webp": _strip_webp,
    "image/gif": _strip_gif,
}


def strip_metadata(data: bytes, mime: str, label: str = "The picture") -> bytes:
    """`data` without metadata (see the module docstring); other types come back as they are.

    Lossless where the structure allows; a JPEG or PNG the walker cannot follow is
    re-encoded (JPEG at `QUALITY_CEILING`, PNG losslessly), upright. Raises `BadInput`
    for another image type it cannot follow.
    """
    strip = _STRIPPERS.get(mime)
    if strip is None:
        return data
    try:
        return strip(data)
    except (_UnparsableError, IndexError, ValueError) as exc:
        if mime not in FITTABLE_TYPES:
            raise BadInput(
                f"{label}: the {mime} file is damaged (its structure is broken)."
            ) from exc
    image = _upright(_decode(data, mime, label))
    icc = image.info.get("icc_profile")
    icc = icc if isinstance(icc, bytes) and len(icc) <= 65_536 else None
    if mime == "image/png":
        return _encode_png(image, icc)
    if image.mode not in {"RGB", "L", "CMYK"}:
        image = image.convert("RGB")
    return _encode_jpeg(image, QUALITY_CEILING, icc)


# --------------------------------------------------------------------------- the message


@dataclass(slots=True)
class _Item:
    name: str
    data: bytes
    mime: str
    pixels: int  # 0 for files we never re-encode
    fitted: bool = False
    #: Set for a JPEG whose pixels are not decoded yet: fitting decodes them anyway, so
    #: the check is left to `_verify` for those that end up not fitted.
    unverified: str | None = None  # the label to name the file with


def _check_one(index: int, raw_name: str, data: bytes, allowed: Sequence[str]) -> _Item:
    name = safe_name(raw_name)
    label = f"File {index + 1} ({name!r})"
    if not data:
        raise BadInput(f"{label} is empty (0 bytes): attach the file again.")
    try:
        mime = filetypes.check_type(data, allowed)
    except GlosmsdError as exc:
        raise BadInput(f"{label}: {exc.message}", data=exc.data) from exc
    pixels = 0
    if mime in _OPENABLE:
        image = _open_image(data, mime, label)
        if mime in FITTABLE_TYPES:
            pixels = image.width * image.height
        # Validate the whole file so a truncated picture is refused, not sent: now, or
        # for a JPEG (which fitting decodes anyway) in `_verify` if it is not fitted.
        if mime != "image/jpeg":
            _load(image, mime, label)
        data = strip_metadata(data, mime, label)
    # Named by what it is, not by what its name claims (issue 13 item 14).
    return _Item(
        name=safe_name(filetypes.name_for(name, mime)),
        data=data,
        mime=mime,
        pixels=pixels,
        unverified=label if mime == "image/jpeg" else None,
    )


def _verify(item: _Item) -> None:
    """Decode a JPEG that was not fitted, at 1/8 scale: the entropy decoder still reads
    every byte, so a truncated or corrupt file is refused with `BadInput`."""
    if item.unverified is None or item.fitted:
        return
    image = _open_image(item.data, item.mime, item.unverified)
    image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
    _load(image, item.mime, item.unverified)


def _allocate_and_fit(items: list[_Item], budget: int) -> None:
    """Share `budget` among the fittable images of `items` and fit them in place."""
    fixed = sum(len(item.data) for item in items if not item.pixels)
    pool = budget - fixed
    pending = [item for item in items if item.pixels]
    # Water-filling: an image smaller than its share keeps its bytes and frees the rest.
    changed = True
    while changed and pending:
        changed = False
        weight = sum(item.pixels for item in pending)
        for item in list(pending):
            if len(item.data) <= pool * item.pixels / weight:
                pending.remove(item)
                pool -= len(item.data)
                changed = True
    for position, item in enumerate(pending):
        weight = sum(other.pixels for other in pending[position:])
        target = math.floor(max(pool, 0) * item.pixels / weight)
        label = f"File {items.index(item) + 1} ({item.name!r})"
        result = _fit_image(item.data, item.mime, label, target) if target > 0 else None
        if result is not None:
            item.data, new_mime = result
            if new_mime != item.mime:
                item.name = _with_extension(item.name, _EXTENSIONS[new_mime])
            item.mime = new_mime
            item.fitted = True
        pool -= len(item.data)


def prepare_attachments(items: Sequence[tuple[str, bytes]], limits: rules.Limits) -> Prepared:
    """Check, fit and pick the files of one message, in the user's order.

    Raises `BadInput` naming the file for an empty, unsupported, damaged or oversized
    (pixel count) file: one bad file refuses the send, the user fixes it and retries.
    Files that are fine but do not fit (count or bytes) are dropped, not refused.
    """
    checked = [
        _check_one(index, name, data, tuple(limits.mms_types))
        for index, (name, data) in enumerate(items)
    ]
    originals = [len(item.data) for item in checked]
    candidates = checked[: limits.mms_max_files]
    if sum(len(item.data) for item in candidates) > limits.mms_max_bytes:
        _allocate_and_fit(candidates, limits.mms_max_bytes)
    for item in checked:
        _verify(item)
    pick = rules.pick_files([len(item.data) for item in checked], limits)
    kept = tuple(
        PreparedFile(
            name=checked[i].name,
            data=checked[i].data,
            mime=checked[i].mime,
            size=len(checked[i].data),
            fitted=checked[i].fitted,
            original_size=originals[i],
        )
        for i in pick.kept
    )
    reasons = rules.drop_reasons(pick, limits)
    dropped = tuple(Dropped(name=checked[i].name, reason=reasons[i]) for i in pick.dropped)
    message = (pick.message or rules.MAX_FILES_MESSAGE) if dropped else None
    return Prepared(kept=kept, dropped=dropped, message=message)


# --------------------------------------------------------------------------- small helpers


def thumbnail(data: bytes, size: int) -> bytes:
    """A PNG no larger than `size` x `size` pixels of a supported image, upright, no metadata."""
    if not 1 <= size <= _MAX_THUMBNAIL:
        raise BadInput(f"Thumbnail size must be 1..{_MAX_THUMBNAIL} pixels, not {size}.")
    if not data:
        raise BadInput("The picture is empty (0 bytes).")
    mime = filetypes.sniff(data)
    if mime not in _OPENABLE:
        raise BadInput(f"Cannot make a thumbnail of {mime or 'an unknown file type'}.")
    image = _decode(data, mime, "The picture", draft=(size, size))
    image = _upright(image)
    image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    from PIL import Image

    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


_KINDS = (
    ("image/", "Picture", "pictures"),
    ("audio/", "Audio", "audio files"),
    ("video/", "Video", "videos"),
    ("text/vcard", "Contact", "contacts"),
    ("text/x-vcard", "Contact", "contacts"),
    ("application/pdf", "PDF document", "PDF documents"),
    ("text/plain", "Text file", "text files"),
)


def _kind(mime: str) -> tuple[str, str]:
    for prefix, one, many in _KINDS:
        if mime.startswith(prefix):
            return one, many
    return "File", "files"


def describe(mimes: Sequence[str]) -> str:
    """A short label for a message's files: "Picture", "3 pictures", "2 files", ..."""
    if not mimes:
        return "No files"
    kinds = {_kind(mime) for mime in mimes}
    if len(mimes) == 1:
        return _kind(mimes[0])[0]
    if len(kinds) == 1:
        return f"{len(mimes)} {next(iter(kinds))[1]}"
    return f"{len(mimes)} files"
