"""The SMS/MMS rules core: carrier segment boundaries, limits, file picking, settings."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glosmsd.core.errors import BadInput, LimitExceeded, Unsupported
from glosmsd.core.rules import (
    DEFAULT_MMS_TYPES,
    MAX_FILES_MESSAGE,
    Count,
    Limits,
    check_message,
    count_text,
    encoding_of,
    pick_files,
    split_segments,
)

ESCAPES = "^{}\\[~]|€\f"
EMOJI = "😀"  # outside the BMP: a surrogate pair in UTF-16


def _units(piece: str, *, gsm: bool = True) -> int:
    """Units of `piece` counted independently of rules.py: septets or UTF-16 code units."""
    if gsm:
        return len(piece) + sum(ch in ESCAPES for ch in piece)
    return len(piece.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- encoding


def test_gsm7_covers_the_whole_basic_and_extension_tables() -> None:
    basic = (
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
        "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    )
    assert len(basic) == 127  # 128 positions less the escape
    assert encoding_of(basic + ESCAPES) == "GSM-7"
    assert count_text(basic).units == 127
    assert count_text(ESCAPES).units == 2 * len(ESCAPES)


@pytest.mark.parametrize(
    "char",
    [EMOJI, "ç", "á", "ê", "Ω" + "\u2126", "日", "\x00", "\x1b", "\t", "`", "\u00a0", "€\u200d"],
)
def test_one_character_outside_gsm7_makes_the_whole_text_ucs2(char: str) -> None:
    assert encoding_of("plain text " + char) == "UCS-2"


def test_empty_text_is_one_empty_gsm7_segment_with_nothing_to_send() -> None:
    count = count_text("")
    assert (count.kind, count.encoding, count.segments, count.units) == ("sms", "GSM-7", 1, 0)
    assert (count.remaining, count.fits, count.chars) == (160, True, 0)
    assert split_segments("") == []


# --------------------------------------------------------------------------- boundaries


@pytest.mark.parametrize(
    ("septets", "segments", "remaining"),
    [
        (159, 1, 1),
        (160, 1, 0),
        (161, 2, 145),
        (305, 2, 1),
        (306, 2, 0),
        (307, 3, 152),
        (459, 3, 0),
        (460, 4, 152),
        (461, 4, 151),
        (612, 4, 0),
        (613, 5, 152),
        (614, 5, 151),
    ],
)
def test_gsm7_segment_boundaries(septets: int, segments: int, remaining: int) -> None:
    text = "a" * septets
    count = count_text(text)
    assert (count.encoding, count.units, count.segments) == ("GSM-7", septets, segments)
    assert count.remaining == remaining
    assert len(split_segments(text)) == segments
    assert count.kind == ("sms" if segments <= 4 else "mms")


def test_gsm7_459_plain_septets_fill_three_segments_exactly() -> None:
    assert [len(p) for p in split_segments("a" * 459)] == [153, 153, 153]


def test_an_escape_at_the_single_segment_boundary_needs_two_segments() -> None:
    assert count_text("a" * 158 + "€").segments == 1
    count = count_text("a" * 159 + "€")
    assert (count.units, count.segments, count.chars) == (161, 2, 160)
    assert split_segments("a" * 159 + "€") == ["a" * 153, "a" * 6 + "€"]


@pytest.mark.parametrize("escape", list(ESCAPES))
def test_an_escape_straddling_a_split_moves_whole_to_the_next_segment(escape: str) -> None:
    text = "a" * 152 + escape + "b" * 100
    pieces = split_segments(text)
    assert pieces == ["a" * 152, escape + "b" * 100]
    assert _units(pieces[0]) == 152  # one septet of the first segment stays empty
    count = count_text(text)
    assert (count.units, count.segments, count.remaining) == (254, 2, 153 - 102)


def test_escapes_landing_at_every_multi_segment_boundary() -> None:
    # 152 plain + escape, three times: each escape is pushed into the next segment.
    text = ("a" * 152 + "€") * 3
    pieces = split_segments(text)
    assert pieces == ["a" * 152, "€" + "a" * 151, "a€" + "a" * 150, "aa€"]
    assert count_text(text).segments == 4
    # Units alone (462) would fit in 4 segments either way; with escapes exactly at 612:
    text = "€" * 306
    assert count_text(text).units == 612
    assert count_text(text).segments == 5  # 153 is odd: each segment carries 76 escapes
    assert [len(p) for p in split_segments(text)] == [76, 76, 76, 76, 2]


@pytest.mark.parametrize(
    ("units", "segments", "remaining"),
    [
        (70, 1, 0),
        (71, 2, 63),
        (134, 2, 0),
        (135, 3, 66),
        (201, 3, 0),
        (202, 4, 66),
        (268, 4, 0),
        (269, 5, 66),
    ],
)
def test_ucs2_segment_boundaries(units: int, segments: int, remaining: int) -> None:
    text = "日" * units
    count = count_text(text)
    assert (count.encoding, count.units, count.segments, count.remaining) == (
        "UCS-2",
        units,
        segments,
        remaining,
    )
    assert len(split_segments(text)) == segments


def test_a_surrogate_pair_is_never_split() -> None:
    # 69 units + an emoji = 71 units: no longer one segment.
    count = count_text("日" * 69 + EMOJI)
    assert (count.units, count.segments) == (71, 2)
    # 66 units then an emoji at the 67-unit boundary: the pair moves whole.
    text = "日" * 66 + EMOJI + "日" * 10
    assert split_segments(text) == ["日" * 66, EMOJI + "日" * 10]
    count = count_text(text)
    assert (count.units, count.segments, count.remaining) == (78, 2, 67 - 12)


def test_emoji_only_text_at_the_ucs2_boundaries() -> None:
    assert count_text(EMOJI * 35).segments == 1  # 70 units
    assert count_text(EMOJI * 36).segments == 2
    # 33 pairs per split segment: 67 is odd.
    assert [len(p) for p in split_segments(EMOJI * 134)] == [33, 33, 33, 33, 2]
    assert count_text(EMOJI * 132).segments == 4
    assert count_text(EMOJI * 133).segments == 5


def test_nul_is_ucs2() -> None:
    count = count_text("a\x00b")
    assert (count.encoding, count.units, count.chars) == ("UCS-2", 3, 3)


# --------------------------------------------------------------------------- properties

texts = st.text(max_size=800) | st.text(alphabet="a€{日😀", max_size=700)


@given(texts)
def test_split_respects_segment_size_and_loses_nothing(text: str) -> None:
    pieces = split_segments(text)
    assert "".join(pieces) == text
    gsm = encoding_of(text) == "GSM-7"
    single, multi = (160, 153) if gsm else (70, 67)
    limit = single if len(pieces) == 1 else multi
    for piece in pieces:
        assert piece
        assert _units(piece, gsm=gsm) <= limit
    if text:
        count = count_text(text)
        assert len(pieces) == count.segments
        assert count.units == sum(_units(p, gsm=gsm) for p in pieces)
        assert count.remaining == limit - _units(pieces[-1], gsm=gsm)


@given(texts)
def test_split_never_cuts_a_pair_or_an_escape_and_wastes_nothing(text: str) -> None:
    # A Python str holds code points, so a piece can only cut a pair or an escape by
    # mis-counting it; each piece must encode strictly on its own, and a segment may end
    # early only when its next character (a whole pair or escape) would not fit.
    pieces = split_segments(text)
    gsm = encoding_of(text) == "GSM-7"
    multi = 153 if gsm else 67
    for piece in pieces:
        piece.encode("utf-16-le")
    for piece, following in pairwise(pieces):
        assert _units(piece, gsm=gsm) + _units(following[0], gsm=gsm) > multi


@given(texts)
def test_count_is_consistent(text: str) -> None:
    count = count_text(text)
    assert count.chars == len(text)
    assert count.fits == (count.segments <= 4 or count.chars <= 1000)
    if count.segments <= 4:
        assert count.kind == "sms"
        assert count.chars_left is None
    else:
        assert count.kind == "mms"
        assert count.chars_left == 1000 - len(text)


# --------------------------------------------------------------------------- count_text


def test_over_four_segments_becomes_mms_when_mms_is_on() -> None:
    count = count_text("a" * 700)
    assert (count.kind, count.fits, count.chars_left, count.reason) == ("mms", True, 300, None)
    assert count.bytes_left is None
    assert count.to_json() == {
        "kind": "mms",
        "encoding": "GSM-7",
        "segments": 5,
        "units": 700,
        "remaining": 153 * 5 - 700,
        "fits": True,
        "chars_left": 300,
    }


def test_over_the_mms_text_limit_does_not_fit() -> None:
    count = count_text("日" * 1001)
    assert (count.kind, count.fits, count.chars_left) == ("mms", False, -1)
    assert count.reason == "Too long for an MMS: 1001 characters, at most 1000."


def test_over_four_segments_with_mms_off_does_not_fit() -> None:
    count = count_text("a" * 613, limits=Limits(mms_enabled=False))
    assert (count.kind, count.fits, count.segments) == ("sms", False, 5)
    assert count.reason is not None
    assert count.reason.startswith("Too long for an SMS: 5 segments, at most 4.")
    assert "switched off" in count.reason
    assert count.to_json()["reason"] == count.reason


def test_files_make_an_mms_and_report_bytes_left() -> None:
    count = count_text("hi", files=2, file_bytes=192_512)
    assert (count.kind, count.fits, count.bytes_left, count.chars_left) == (
        "mms",
        True,
        512_000 - 192_512,
        998,
    )
    assert count.to_json()["bytes_left"] == 319_488
    assert "reason" not in count.to_json()


@pytest.mark.parametrize(
    ("files", "size", "limits", "fits", "reason"),
    [
        (10, 512_000, Limits(), True, None),
        (11, 1, Limits(), False, f"{MAX_FILES_MESSAGE} 11 files, at most 10."),
        (1, 512_001, Limits(), False, f"{MAX_FILES_MESSAGE} 501 KB of files, at most 500 KB."),
        (1, 10, Limits(mms_enabled=False), False, "MMS is switched off on the server"),
    ],
)
def test_file_limits_in_the_counter(
    files: int, size: int, limits: Limits, fits: bool, reason: str | None
) -> None:
    count = count_text("", files=files, file_bytes=size, limits=limits)
    assert count.kind == "mms"
    assert count.fits is fits
    if reason is None:
        assert count.reason is None
    else:
        assert count.reason is not None
        assert count.reason.startswith(reason)


def test_custom_segment_limit() -> None:
    assert count_text("a" * 161, limits=Limits(sms_max_segments=1)).kind == "mms"
    assert count_text("a" * 160, limits=Limits(sms_max_segments=1)).kind == "sms"


def test_lone_surrogates_are_refused_everywhere() -> None:
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")
    for call in (
        lambda: count_text(bad),
        lambda: split_segments(bad),
        lambda: check_message(bad, [], Limits()),
    ):
        with pytest.raises(BadInput, match=r"unpaired surrogate \(invalid Unicode\).*character 4"):
            call()


def test_negative_file_numbers_are_refused() -> None:
    with pytest.raises(BadInput):
        count_text("x", files=-1)
    with pytest.raises(BadInput):
        count_text("x", files=1, file_bytes=-5)


def test_count_to_json_has_exactly_the_documented_keys() -> None:
    assert set(count_text("hello").to_json()) == {
        "kind",
        "encoding",
        "segments",
        "units",
        "remaining",
        "fits",
    }
    assert isinstance(count_text("hello"), Count)


# --------------------------------------------------------------------------- check_message


def test_check_message_says_sms_or_mms() -> None:
    assert check_message("hello", [], Limits()) == "sms"
    assert check_message("a" * 612, [], Limits()) == "sms"
    assert check_message("a" * 613, [], Limits()) == "mms"
    assert check_message("", [1000], Limits()) == "mms"
    assert check_message("look", [100] * 10, Limits()) == "mms"


@pytest.mark.parametrize(
    ("text", "sizes", "limits", "error", "message"),
    [
        ("", [], Limits(), BadInput, "The message is empty"),
        ("x", [-1], Limits(), BadInput, "must not be negative"),
        ("x", [1], Limits(mms_enabled=False), Unsupported, "MMS is switched off"),
        ("a" * 613, [], Limits(mms_enabled=False), Unsupported, "Too long for an SMS: 5 segm"),
        ("x", [1] * 11, Limits(), LimitExceeded, MAX_FILES_MESSAGE),
        ("x", [300_000, 300_000], Limits(), LimitExceeded, MAX_FILES_MESSAGE),
        ("a" * 1001, [], Limits(), LimitExceeded, "Too long for an MMS: 1001 characters"),
        ("a" * 1001, [5], Limits(), LimitExceeded, "Too long for an MMS"),
    ],
)
def test_check_message_refuses_with_a_reason(
    text: str, sizes: list[int], limits: Limits, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(")):
        check_message(text, sizes, limits)


# --------------------------------------------------------------------------- pick_files


@pytest.mark.parametrize(
    ("sizes", "limits", "kept", "dropped"),
    [
        ([], Limits(), (), ()),
        ([100, 200], Limits(), (0, 1), ()),
        ([512_000], Limits(), (0,), ()),
        ([512_001], Limits(), (), (0,)),
        ([300_000, 300_000, 100_000], Limits(), (0, 2), (1,)),
        ([1] * 12, Limits(), tuple(range(10)), (10, 11)),
        ([0] * 11, Limits(), tuple(range(10)), (10,)),
        ([100, 200, 300], Limits(mms_max_files=2), (0, 1), (2,)),
        # A file dropped for bytes frees a place for a later one within the count.
        ([600_000, *[1] * 10], Limits(), tuple(range(1, 11)), (0,)),
        ([10], Limits(mms_max_files=0), (), (0,)),
    ],
)
def test_pick_files(
    sizes: list[int], limits: Limits, kept: tuple[int, ...], dropped: tuple[int, ...]
) -> None:
    pick = pick_files(sizes, limits)
    assert (pick.kept, pick.dropped) == (kept, dropped)
    assert pick.message == (MAX_FILES_MESSAGE if dropped else None)


@given(st.lists(st.integers(0, 300_000), max_size=15))
def test_pick_files_stays_within_limits_and_keeps_order(sizes: list[int]) -> None:
    limits = Limits()
    pick = pick_files(sizes, limits)
    assert sorted(pick.kept + pick.dropped) == list(range(len(sizes)))
    assert list(pick.kept) == sorted(pick.kept)
    assert len(pick.kept) <= limits.mms_max_files
    assert sum(sizes[i] for i in pick.kept) <= limits.mms_max_bytes
    if sum(sizes) <= limits.mms_max_bytes and len(sizes) <= limits.mms_max_files:
        assert pick.dropped == ()


def test_pick_files_refuses_negative_sizes() -> None:
    with pytest.raises(BadInput):
        pick_files([1, -1], Limits())


# --------------------------------------------------------------------------- settings


def test_default_limits_match_the_design() -> None:
    limits = Limits()
    assert limits.mms_max_bytes == 500 * 1024
    assert (limits.mms_max_files, limits.mms_max_text, limits.sms_max_segments) == (10, 1000, 4)
    assert limits.mms_types == DEFAULT_MMS_TYPES
    assert len(set(DEFAULT_MMS_TYPES)) == len(DEFAULT_MMS_TYPES) == 17


def test_settings_round_trip() -> None:
    limits = Limits(
        mms_enabled=False,
        mms_max_bytes=1,
        mms_max_files=0,
        mms_max_text=5,
        sms_max_segments=255,
        mms_types=("image/png",),
    )
    assert Limits.from_settings(limits.to_settings()) == limits
    assert Limits.from_settings(Limits().to_settings()) == Limits()
    assert Limits.from_settings({}) == Limits()


def test_settings_ignore_unknown_keys_and_accept_lists() -> None:
    limits = Limits.from_settings(
        {"pbx_version": "7.1", "mms_types": ["Image/PNG", "text/plain"], "mms_max_files": 3}
    )
    assert limits == Limits(mms_max_files=3, mms_types=("image/png", "text/plain"))


@given(
    st.booleans(),
    st.integers(0, 10**9),
    st.integers(0, 100),
    st.integers(0, 10**5),
    st.integers(1, 255),
    st.lists(st.sampled_from(DEFAULT_MMS_TYPES), unique=True),
)
def test_settings_round_trip_property(
    on: bool, size: int, files: int, text: int, segments: int, types: list[str]
) -> None:
    limits = Limits(on, size, files, text, segments, tuple(types))
    assert Limits.from_settings(limits.to_settings()) == limits


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("mms_enabled", 1),
        ("mms_enabled", "yes"),
        ("mms_max_bytes", "512000"),
        ("mms_max_bytes", 512000.0),
        ("mms_max_bytes", True),
        ("mms_max_bytes", -1),
        ("mms_max_files", None),
        ("mms_max_text", -5),
        ("sms_max_segments", 0),
        ("sms_max_segments", 256),
        ("mms_types", "image/png"),
        ("mms_types", [1]),
        ("mms_types", ["png"]),
        ("mms_types", [" image/png"]),
    ],
)
def test_settings_with_wrong_types_are_refused(key: str, value: Any) -> None:
    with pytest.raises(BadInput, match=key):
        Limits.from_settings({key: value})
