"""The tray icon drawing: badge text, sizes, looks (pure, no display)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from glosmsd.desktop.icon import TRAY_SIZES, Look, badge_text, draw_icon, flatten


def pixels(img: Image.Image) -> list[tuple[int, ...]]:
    """Every pixel as a tuple of its bands (RGB or RGBA images)."""
    return [tuple(px) for px in img.get_flattened_data()]  # type: ignore[arg-type]


def _red(img: Image.Image) -> int:
    rgb = flatten(img, (255, 255, 255)) if img.mode == "RGBA" else img
    return sum(1 for r, g, b in pixels(rgb) if r > 180 and g < 80 and b < 80)


def test_badge_text() -> None:
    assert badge_text(0) is None
    assert badge_text(-1) is None
    assert badge_text(1) == "1"
    assert badge_text(99) == "99"
    assert badge_text(100) == "99+"
    assert badge_text(120) == "99+"


@given(st.integers(min_value=-5, max_value=100_000))
def test_badge_text_is_short(n: int) -> None:
    text = badge_text(n)
    assert text is None or len(text) <= 3


@pytest.mark.parametrize("size", TRAY_SIZES)
def test_every_tray_size_draws_with_a_badge_only_when_unread(size: int) -> None:
    empty = draw_icon(size, 0)
    three = draw_icon(size, 3)
    assert empty.size == three.size == (size, size)
    assert empty.mode == "RGBA"
    assert _red(empty) == 0
    assert _red(three) > 0


def test_looks_differ_and_offline_has_no_blue() -> None:
    online = flatten(draw_icon(48, 0, Look.ONLINE), (0, 0, 0))
    offline = flatten(draw_icon(48, 0, Look.OFFLINE), (0, 0, 0))
    disabled = flatten(draw_icon(48, 0, Look.DISABLED), (0, 0, 0))
    assert online.tobytes() != offline.tobytes() != disabled.tobytes()
    blue = sum(1 for r, g, b in pixels(offline) if b > 180 and r < 80)
    assert blue == 0
    assert _red(disabled) > 0  # the stroke through it


def test_readable_on_light_and_dark_panels() -> None:
    """The outline and white ring keep an edge against both panel colours."""
    img = draw_icon(24, 0)
    for panel in ((0, 0, 0), (255, 255, 255)):
        flat = flatten(img, panel)
        far = sum(
            1
            for px in pixels(flat)
            if sum(abs(a - b) for a, b in zip(px, panel, strict=True)) > 200
        )
        assert far > 24 * 24 // 4


def test_too_small() -> None:
    with pytest.raises(ValueError, match="too small"):
        draw_icon(4)
