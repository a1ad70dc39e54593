"""The one numbers module: parsing what people type, the canonical form, showing it."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from glosmsd.core import numbers
from glosmsd.core.errors import BadInput, InvalidNumber
from glosmsd.core.numbers import PhoneNumber, conversation_id, looks_like_number, parse


@pytest.mark.parametrize(
    ("typed", "region", "e164"),
    [
        # The three forms (issue 14 / issue 12 item 6).
        ("555-123-4567", "US", "+15551234567"),
        ("+1 (555) 123-4567", "US", "+15551234567"),
        ("+1 (555) 123-4567", None, "+15551234567"),
        ("0044 20 7946 0958", "US", "+442079460958"),  # 00 also where the prefix is 011
        ("0044 20 7946 0958", None, "+442079460958"),
        ("0044 20 7946 0958", "GB", "+442079460958"),
        # The demo's and tests' fictional +1 555 numbers: possible, not valid.
        ("+15550001001", None, "+15550001001"),
        ("+15557654321", "DE", "+15557654321"),
        ("(555) 765-4321", "us", "+15557654321"),
        ("555.765.4321", "US", "+15557654321"),
        ("1 555 765 4321", "US", "+15557654321"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("0011 44 20 7946 0958", "AU", "+442079460958"),
        ("٥٥٥-١٢٣-٤٥٦٧", "US", "+15551234567"),  # Arabic-Indic digits
        ("+1\u00a0555\u2011765\u20114321", None, "+15557654321"),  # no-break space/hyphen
        # Short codes: national service numbers of 3 to 8 digits, kept as digits.
        ("12345", "US", "12345"),
        ("12345", None, "12345"),
        ("55512345", None, "55512345"),  # no country to judge a short code by
        (" 72000 ", "GB", "72000"),
        ("911", "US", "911"),
    ],
)
def test_parse(typed: str, region: str | None, e164: str) -> None:
    assert parse(typed, region).e164 == e164


@pytest.mark.parametrize(
    ("typed", "region", "words"),
    [
        ("12", "US", "too short to be a phone number"),
        ("+1555", None, "check the digits"),
        ("1234567", "US", "a local number: add the area code"),
        ("555-123-45", "US", "neither a phone number nor a short code in US"),
        ("555-123-4567", None, "has no country code"),
        ("+1 555 123 4567 9999", None, "not a possible phone number"),
        ("1" * 30, "US", "too long"),
        ("Bob Roe", None, "is not a phone number"),
        ("+1 555 CALL NOW", "US", "is not a phone number"),
        ("555+1234", "US", "is not a phone number"),
        ("", "US", "is not a phone number"),
    ],
)
def test_refusals_say_what_is_wrong_and_show_the_form(
    typed: str, region: str | None, words: str
) -> None:
    with pytest.raises(InvalidNumber, match=words) as info:
        parse(typed, region)
    assert isinstance(info.value, BadInput)
    # The form to use: an example with its country code (the region's own, when known).
    example = "+1 201-555-0123" if region == "US" else "+44 20 7946 0958"
    assert example in info.value.message


def test_showing_a_number() -> None:
    bob = parse("+15557654321")
    assert bob == PhoneNumber("+15557654321", "US")
    assert bob.national() == "(555) 765-4321"
    assert bob.international() == "+1 555-765-4321"
    assert bob.shown("US") == "(555) 765-4321"
    assert bob.shown("GB") == "+1 555-765-4321"
    assert bob.shown(None) == "+1 555-765-4321"
    london = parse("0044 20 7946 0958")
    assert (london.region, london.national(), london.international()) == (
        "GB",
        "020 7946 0958",
        "+44 20 7946 0958",
    )
    code = parse("12345")
    assert code.short_code
    assert code.region is None
    assert code.shown("US") == code.national() == code.international() == "12345"


def test_looks_like_number() -> None:
    for text in ("+1 (555) 765-4321", "555.765.4321", "12345", "١٢٣", "12", "555/765 43"):
        assert looks_like_number(text), text
    for text in ("Bob Roe", "555-CALL-NOW", "room 101", "", "  ", "+", "()-", "5+5", "#12"):
        assert not looks_like_number(text), text


def test_default_region_server_then_own_number_then_locale() -> None:
    assert numbers.default_region(setting="gb", own_number="+15550001001", locale="de_DE") == "GB"
    assert numbers.default_region(setting="", own_number="+15550001001", locale="de_DE") == "US"
    assert numbers.default_region(setting="XX", own_number=None, locale="de_DE.UTF-8") == "DE"
    assert numbers.default_region(own_number="+442079460958") == "GB"
    assert numbers.default_region(locale="C.UTF-8") is None
    assert numbers.default_region() is None


@pytest.mark.parametrize(
    ("locale", "region"),
    [
        ("en_US.UTF-8", "US"),
        ("de_DE@euro", "DE"),
        ("sr_RS.UTF-8@latin", "RS"),
        ("pt_br", "BR"),
        ("C", None),
        ("C.UTF-8", None),
        ("POSIX", None),
        ("en", None),
        ("en_ZZ.UTF-8", None),
        (None, None),
    ],
)
def test_region_from_locale(locale: str | None, region: str | None) -> None:
    assert numbers.region_from_locale(locale) == region


def test_region_of_an_own_number() -> None:
    assert numbers.region_of("+15550001001") == "US"
    assert numbers.region_of("+442079460958") == "GB"
    assert numbers.region_of("+80012345678") is None  # non-geographic (freephone)
    assert numbers.region_of("12345") is None
    assert numbers.region_of(None) is None


@pytest.mark.parametrize(
    ("typed", "cid"),
    [("7", 7), (" 42 ", 42), ("123456789", 123456789), ("1234567890", None), ("007", None)],
)
def test_conversation_id(typed: str, cid: int | None) -> None:
    assert conversation_id(typed) == cid


def test_conversation_id_is_never_a_number_with_punctuation_or_plus() -> None:
    for typed in ("+1", "555-1234", "١٢", "1 2", ""):
        assert conversation_id(typed) is None, typed


# --------------------------------------------------------------------------- properties

_COUNTRIES = st.sampled_from([("US", 1, 10), ("GB", 44, 10), ("DE", 49, 11), ("FR", 33, 9)])


@given(_COUNTRIES, st.data())
@example(("US", 1, 10), None)  # the demo's numbers: +1 555 ...
def test_a_possible_number_survives_every_way_of_showing_it(
    country: tuple[str, int, int], data: st.DataObject | None
) -> None:
    region, code, length = country
    if data is None:
        national = "5557654321"
    else:
        first = data.draw(st.integers(2, 9))
        rest = data.draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
        national = f"{first}{rest}"
    try:
        number = parse(f"+{code}{national}")
    except InvalidNumber:
        return  # not possible for that country: nothing to round-trip
    assert number.e164 == f"+{code}{national}"
    assert parse(number.e164) == number
    assert parse(number.international()) == number
    assert parse(number.national(), region) == number
    assert parse("00" + number.e164[1:], "US" if region != "US" else "GB") == number


@given(st.text(max_size=30))
@example("0044")
@example("00")
@example("+0")
def test_parse_refuses_with_invalid_number_or_gives_a_canonical_form(text: str) -> None:
    try:
        number = parse(text, "US")
    except InvalidNumber:
        return  # refused: the refusals' words are pinned by the tests above
    assert looks_like_number(text)
    if number.short_code:
        assert number.e164.isdigit()
        assert 3 <= len(number.e164) <= 8
    else:
        assert number.e164.startswith("+")
        assert number.e164[1:].isdigit()
    assert parse(number.e164, "US") == number  # canonical: parsing it again changes nothing


@given(st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=5), st.text())
def test_text_with_a_letter_is_never_a_number(letters: str, rest: str) -> None:
    assert not looks_like_number(letters + rest)
    assert not looks_like_number(rest + letters)
