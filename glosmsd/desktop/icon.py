"""The tray icon, drawn with Pillow: the app's speech bubble and the red unread badge.

Pure: it takes the numbers (size, unread count, how the link is) and returns an image. It
never touches the tray, a display or a file, so every look is tested without X.

The bubble sits on a white-ringed tile with a dark outline so it reads on light and dark
panels alike. Offline and disabled/unassigned look grey (disabled also gets a stroke
through it) so a glance tells "no messages" apart from "not connected".
"""

from __future__ import annotations

import enum
import functools
from typing import TYPE_CHECKING, Final

# Pillow's drawing and fonts (about 2 MB) are imported by the drawing functions: the desktop
# bridge reads `Look` here in every daemon, and a headless one never draws (issue 16).
if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

    Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

#: Sizes trays ask for (16-48 px, and twice that on HiDPI panels).
TRAY_SIZES: Final = (16, 22, 24, 32, 48, 64, 96)
SUPERSAMPLE: Final = 4
#: At or below this size the badge takes more of the icon (see `_badge_geometry`).
SMALL_ICON: Final = 24
MIN_BADGE_FONT: Final = 7
#: The smallest the count may shrink to so that "99+" still fits a 16 px icon.
TINY_BADGE_FONT: Final = 6
BLUE: Final = (30, 136, 229, 255)
GREY: Final = (128, 134, 140, 255)
RED: Final = (220, 30, 30, 255)
WHITE: Final = (255, 255, 255, 255)
OUTLINE: Final = (20, 24, 28, 255)
FONT_FILES: Final = (
    "DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "Arial Bold.ttf",
    "arialbd.ttf",
    "/System/Library/Fonts/Supplemental/Arial Bold.ttf",
)
NARROW_FONT_FILES: Final = (
    "DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "Arial Narrow Bold.ttf",
    "ARIALNB.TTF",
    "/System/Library/Fonts/Supplemental/Arial Narrow Bold.ttf",
)


class Look(enum.Enum):
    ONLINE = "online"
    OFFLINE = "offline"
    DISABLED = "disabled"  # SMS switched off on this desktop, or no SMS number


def badge_text(unread: int) -> str | None:
    """What the red circle says: nothing at zero, the count up to 99, then "99+"."""
    if unread <= 0:
        return None
    return str(unread) if unread <= 99 else "99+"


@functools.lru_cache(maxsize=32)
def _font(px: int, *, narrow: bool = False) -> Font:
    from PIL import ImageFont

    for name in (*NARROW_FONT_FILES, *FONT_FILES) if narrow else FONT_FILES:
        try:
            return ImageFont.truetype(name, px)
        except OSError:
            continue
    return ImageFont.load_default(px)


def _bubble(draw: ImageDraw.ImageDraw, s: int, look: Look) -> None:
    """The app icon on an `s`-pixel canvas (already supersampled)."""
    fill = BLUE if look is Look.ONLINE else GREY
    pad = s * 0.06
    ring = max(1.0, s * 0.035)
    box = (pad, pad, s - pad, s - pad * 0.5 - s * 0.14)
    radius = s * 0.22
    tail = [(s * 0.26, box[3] - ring), (s * 0.22, s - pad), (s * 0.48, box[3] - ring)]
    # Dark outline, then the white ring, then the fill: readable on any panel colour.
    draw.rounded_rectangle(box, radius, fill=OUTLINE)
    draw.polygon([(x, y + ring) for x, y in tail], fill=OUTLINE)
    inner = (box[0] + ring, box[1] + ring, box[2] - ring, box[3] - ring)
    draw.rounded_rectangle(inner, radius - ring, fill=WHITE)
    draw.polygon(tail, fill=WHITE)
    core = (inner[0] + ring, inner[1] + ring, inner[2] - ring, inner[3] - ring)
    draw.rounded_rectangle(core, radius - 2 * ring, fill=fill)
    small = [(x, y - ring * 1.6) for x, y in tail]
    draw.polygon(
        [(small[0][0] + ring, small[0][1]), small[1], (small[2][0] - ring, small[2][1])], fill=fill
    )
    # Three text lines in the bubble.
    left, right = core[0] + s * 0.12, core[2] - s * 0.12
    top, bottom = core[1], core[3]
    line = max(1.0, s * 0.06)
    for i, frac in enumerate((0.3, 0.5, 0.7)):
        y = top + (bottom - top) * frac
        end = right if i < 2 else left + (right - left) * 0.6
        draw.rounded_rectangle((left, y - line / 2, end, y + line / 2), line / 2, fill=WHITE)
    if look is Look.DISABLED:
        width = max(2.0, s * 0.09)
        draw.line((s * 0.1, s * 0.9, s * 0.9, s * 0.1), fill=OUTLINE, width=round(width * 1.8))
        draw.line((s * 0.1, s * 0.9, s * 0.9, s * 0.1), fill=RED, width=round(width))


def _badge_geometry(size: int, text: str) -> tuple[tuple[float, float, float, float], Font]:
    """The badge's box (x1, y1, x2, y2) on a `size` icon, and the font of its count.

    Small icons give the badge more of their room: at 16 px a two-digit count needs most
    of the width to stay legible. A count too wide for the icon ("99+" at 16 px) takes a
    condensed face first and shrinks only after that.
    """
    small = size <= SMALL_ICON
    if len(text) == 1:
        height = size * (0.62 if small else 0.56)
        font_px = round(height * 0.84)
    else:
        height = size * (0.6 if small else 0.52)
        font_px = round(height * (0.8 if small else 0.7))
    font_px = max(MIN_BADGE_FONT, font_px)
    pad = max(1.0, height * (0.22 if len(text) == 1 else 0.18))
    font = _font(font_px)
    if _text_width(text, font) + 2 * pad > size:
        pad = 1.0
        font = _font(font_px, narrow=True)
        while _text_width(text, font) + 2 * pad > size and font_px > TINY_BADGE_FONT:
            font_px -= 1
            font = _font(font_px, narrow=True)
    width = min(float(size), max(height, _text_width(text, font) + 2 * pad))
    return (size - width, 0.0, float(size), height), font


def _text_width(text: str, font: Font) -> float:
    left, _top, right, _bottom = font.getbbox(text, anchor="mm")
    return float(right - left)


def _badge_pill(img: Image.Image, box: tuple[float, float, float, float], scale: int) -> None:
    """The red pill with its white ring, drawn at `scale` times the icon's size."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(img)
    x1, y1, x2, y2 = (v * scale for v in box)
    height = y2 - y1
    ring = max(1.0, img.width * 0.03)
    draw.rounded_rectangle((x1, y1, x2, y2), height / 2, fill=WHITE)
    draw.rounded_rectangle(
        (x1 + ring, y1 + ring, x2 - ring, y2 - ring), (height - 2 * ring) / 2, fill=RED
    )


def _badge_count(
    img: Image.Image, box: tuple[float, float, float, float], font: Font, text: str
) -> None:
    """The count, drawn at the icon's own size so the font's hinting keeps it crisp (drawn
    large and shrunk, the digits of a 16-24 px icon blurred into each other)."""
    from PIL import ImageDraw

    x1, y1, x2, y2 = box
    centre = (round((x1 + x2) / 2), round((y1 + y2) / 2))
    ImageDraw.Draw(img).text(centre, text, font=font, fill=WHITE, anchor="mm")


def draw_icon(size: int, unread: int = 0, look: Look = Look.ONLINE) -> Image.Image:
    """The tray icon, `size` x `size` RGBA, antialiased by drawing larger and shrinking."""
    if size < 8:
        raise ValueError(f"an icon of {size} px is too small to read")
    from PIL import Image, ImageDraw

    s = size * SUPERSAMPLE
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    _bubble(ImageDraw.Draw(img), s, look)
    text = badge_text(unread)
    if text is None:
        return img.resize((size, size), Image.Resampling.LANCZOS)
    box, font = _badge_geometry(size, text)
    _badge_pill(img, box, SUPERSAMPLE)
    icon = img.resize((size, size), Image.Resampling.LANCZOS)
    _badge_count(icon, box, font, text)
    return icon


def flatten(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """The icon over a solid panel colour (for trays that cannot show transparency)."""
    from PIL import Image

    base = Image.new("RGB", image.size, background)
    base.paste(image, (0, 0), image)
    return base
