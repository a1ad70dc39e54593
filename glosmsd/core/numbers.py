"""Phone numbers: what a user typed in, one canonical form out, and how to show it.

The one place glosmsd parses numbers (the daemon's send and lookup paths, the reference
server, the frontends through the daemon), built on `phonenumbers` (Google's
libphonenumber). It owns:

- whether a piece of text is meant as a number (`looks_like_number`: digits and the
  punctuation people type in numbers, nothing else) or as a contact name;
- `parse`: `555-123-4567` (in the default region), `+1 (555) 123-4567`,
  `0044 20 7946 0958` (the international prefix 00, also where the region's own prefix
  is another, such as 011 in the US) and short codes of 3 to 8 digits, each to one
  canonical form (`PhoneNumber.e164`); anything else is `InvalidNumber`, whose message
  shows the form to use. A number is accepted when libphonenumber calls it *possible*
  (its length fits its country), not only when it is *valid*: the demo's and the tests'
  +1 555 numbers are fictional and must keep working;
- the default region for numbers typed without a country code (`default_region`: the
  server's `region` setting, else the country of the user's own SMS number, else the
  locale's territory);
- showing a number in national or international form (`PhoneNumber.national`,
  `.international`, `.shown`);
- "id or number?" (`conversation_id`): the one rule that says when what a user typed to
  name a conversation may be a conversation id; the daemon tries it as an id first and
  as a number next, so `glosms read 12345` finds the conversation `glosms send 12345`
  started.

Pure: text in, values out; nothing here reads the environment (callers pass the locale),
a clock or a file. `phonenumbers` (and its metadata) loads on the first parse, so a
process that never parses a number never pays for it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from glosmsd.core.errors import InvalidNumber

__all__ = [
    "E164_PATTERN",
    "MAX_CONVERSATION_ID_DIGITS",
    "SHORT_CODE_DIGITS",
    "PhoneNumber",
    "conversation_id",
    "default_region",
    "is_region",
    "looks_like_number",
    "parse",
    "region_from_locale",
    "region_of",
]

#: E.164 as the wire carries it: `+`, a country code not starting with 0, 7 to 15 digits.
E164_PATTERN: Final = r"\+[1-9][0-9]{6,14}"
#: A short code (a service's number, national only) has this many digits.
SHORT_CODE_DIGITS: Final = (3, 8)
#: What people type between the digits of a number (hyphens and spaces of every kind).
_PUNCTUATION: Final = frozenset(" \t+-()./\u00a0\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
#: A conversation id is at most this long; a longer run of digits is only ever a number.
MAX_CONVERSATION_ID_DIGITS: Final = 9
#: Longer text is not a number whatever it holds (and libphonenumber refuses 250+).
_MAX_CHARS: Final = 64
_E164: Final = re.compile(E164_PATTERN)


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A parsed number. `e164` is the canonical form the wire and the store use:
    `+15557654321`, or the digits of a short code (`12345`)."""

    e164: str
    #: The number's country (`US`, `GB`), None for a short code or a non-geographic number.
    region: str | None

    @property
    def short_code(self) -> bool:
        return not self.e164.startswith("+")

    def international(self) -> str:
        """`+1 555-765-4321`, `+44 20 7946 0958`; a short code as its digits."""
        if self.short_code:
            return self.e164
        import phonenumbers as pn  # here, not at the top: see the docstring

        return str(pn.format_number(pn.parse(self.e164, None), pn.PhoneNumberFormat.INTERNATIONAL))

    def national(self) -> str:
        """`(555) 765-4321`, `020 7946 0958`: how it is dialled inside its country."""
        if self.short_code:
            return self.e164
        import phonenumbers as pn  # here, not at the top: see the docstring

        return str(pn.format_number(pn.parse(self.e164, None), pn.PhoneNumberFormat.NATIONAL))

    def shown(self, home: str | None) -> str:
        """National when the number is in the `home` region, else international."""
        if self.short_code or (home is not None and self.region == home.upper()):
            return self.national()
        return self.international()


def looks_like_number(text: str) -> bool:
    """True when `text` is digits and number punctuation only (a number, not a name).

    `+1 (555) 765-4321`, `555.765.4321`, `12345` and `١٢٣` are meant as numbers (good or
    bad: `parse` judges); `Bob Roe`, `555-CALL-NOW` and `room 101` are names.
    """
    stripped = text.strip()
    if not stripped or len(stripped) > _MAX_CHARS or "+" in stripped[1:]:
        return False
    has_digit = False
    for ch in stripped:
        if ch.isdecimal():
            has_digit = True
        elif ch not in _PUNCTUATION:
            return False
    return has_digit


def _digits(text: str) -> str:
    # Decimal digits of any script count, as ASCII ("٥٥٥" is "555").
    return "".join(str(unicodedata.decimal(ch, 0)) for ch in text if ch.isdecimal())


def is_region(code: str | None) -> bool:
    """Whether `code` is a region libphonenumber knows (`US`, `GB`; not `ZZ`, `EN`)."""
    import phonenumbers as pn

    return bool(code) and str(code).upper() in pn.SUPPORTED_REGIONS


def region_of(number: str | None) -> str | None:
    """The main region of an E.164 number's country code (`+1...` is `US`), or None."""
    if not number or not _E164.fullmatch(number):
        return None
    import phonenumbers as pn  # here, not at the top: see the docstring

    try:
        code = pn.parse(number, None).country_code
    except pn.NumberParseException:
        return None
    return _region_for(code)


def region_from_locale(locale: str | None) -> str | None:
    """The territory of a POSIX locale name: `en_US.UTF-8` is `US`; `C`, `POSIX` are None."""
    if not locale:
        return None
    name = locale.split(".", 1)[0].split("@", 1)[0]
    _lang, sep, territory = name.partition("_")
    if not sep:
        return None
    return territory.upper() if is_region(territory) else None


def default_region(
    *, setting: object = None, own_number: str | None = None, locale: str | None = None
) -> str | None:
    """Where a number typed without a country code is: the server's `region` setting,
    else the country of the user's own SMS number, else the locale's territory."""
    if isinstance(setting, str) and is_region(setting):
        return setting.upper()
    return region_of(own_number) or region_from_locale(locale)


def conversation_id(text: str) -> int | None:
    """The conversation id `text` may be: plain ASCII digits, no leading zero, at most
    `MAX_CONVERSATION_ID_DIGITS` of them. Callers try it as an id first, then as a number
    (a number never reads as an id that does not exist)."""
    stripped = text.strip()
    if (
        stripped.isascii()
        and stripped.isdigit()
        and not stripped.startswith("0")
        and len(stripped) <= MAX_CONVERSATION_ID_DIGITS
    ):
        return int(stripped)
    return None


def _example(region: str | None) -> str:
    import phonenumbers as pn  # here, not at the top: see the docstring

    if region is not None:
        example = pn.example_number(region)
        if example is not None:
            return str(pn.format_number(example, pn.PhoneNumberFormat.INTERNATIONAL))
    return "+44 20 7946 0958"


def parse(text: str, region: str | None = None) -> PhoneNumber:
    """The number `text` means, with `region` for numbers without a country code.

    Raises `InvalidNumber` (a `BadInput`) saying what is wrong and showing the form to use.
    """
    region = region.upper() if region and is_region(region) else None
    return _parse(text.strip(), region)


@lru_cache(maxsize=4096)
def _parse(text: str, region: str | None) -> PhoneNumber:
    # Cached: the server and the daemon parse the same few numbers over and over, and a
    # parse costs ~10 µs. Refusals raise, and raising is not cached.
    example = _example(region)
    shown = text if len(text) <= 40 else text[:40] + "…"
    if not looks_like_number(text):
        raise InvalidNumber(
            f"{shown!r} is not a phone number: use digits, like {example}, "
            f"or a short code of {SHORT_CODE_DIGITS[0]} to {SHORT_CODE_DIGITS[1]} digits."
        )
    digits = _digits(text)
    plus = text.startswith("+")
    short = not plus and SHORT_CODE_DIGITS[0] <= len(digits) <= SHORT_CODE_DIGITS[1]
    if short and region is not None and _short_for(digits, region):
        return PhoneNumber(digits, None)  # 8888 in Germany is a service, not +49 8888
    if plus:
        found = _possible("+" + digits, None)
    else:
        found = _possible(digits, region) if region is not None else None
        if found is None and digits.startswith("00") and len(digits) > 4:
            found = _possible("+" + digits[2:], None)  # 00 is the ITU international prefix
    if found is not None:
        return found
    if short and region is None:
        return PhoneNumber(digits, None)  # no country to judge it by: the carrier will
    if short and region is not None:
        if _local_only(digits, region):
            raise InvalidNumber(
                f"{shown!r} is a local number: add the area code (and the country code), "
                f"like {example}."
            )
        raise InvalidNumber(
            f"{shown!r} is neither a phone number nor a short code in {region}: write the "
            f"number with its country code, like {example}."
        )
    if not plus and region is None:
        raise InvalidNumber(
            f"{shown!r} has no country code, and glosmsd does not know which country "
            f"you are in: write it with its country code, like {example}."
        )
    if len(digits) < 7:
        why = "too short to be a phone number"
    elif len(digits) > 15:
        why = "too long to be a phone number"
    else:
        why = "not a possible phone number (the length does not fit its country)"
    if plus:
        raise InvalidNumber(
            f"{shown!r} is {why}: check the digits; with its country code a number looks "
            f"like {example}."
        )
    raise InvalidNumber(
        f"{shown!r} is {why}: write it with its country code, like {example}, or give a "
        f"short code of {SHORT_CODE_DIGITS[0]} to {SHORT_CODE_DIGITS[1]} digits."
    )


def _possible(text: str, region: str | None) -> PhoneNumber | None:
    """The number when libphonenumber parses `text` as a possible one (no extension)."""
    import phonenumbers as pn  # here, not at the top: see the docstring

    try:
        number = pn.parse(text, region)
    except pn.NumberParseException:
        return None
    if number.extension:
        return None
    if pn.is_possible_number_with_reason(number) != pn.ValidationResult.IS_POSSIBLE:
        return None
    e164 = str(pn.format_number(number, pn.PhoneNumberFormat.E164))
    if not _E164.fullmatch(e164):
        return None
    return PhoneNumber(e164, _region_for(number.country_code))


def _region_for(country_code: int | None) -> str | None:
    """The main region of a country code (1 is US, 44 GB); None for non-geographic ones."""
    import phonenumbers as pn  # here, not at the top: see the docstring

    if country_code is None:
        return None
    region = str(pn.region_code_for_country_code(country_code))
    return None if region in (pn.UNKNOWN_REGION, "001") else region


def _short_for(digits: str, region: str) -> bool:
    """Whether `digits` can be a short number (a service's code) in `region`."""
    import phonenumbers as pn  # here, not at the top: see the docstring
    from phonenumbers import shortnumberinfo

    try:
        number = pn.parse(digits, region)
    except pn.NumberParseException:
        return False
    return bool(shortnumberinfo.is_possible_short_number_for_region(number, region))


def _local_only(digits: str, region: str) -> bool:
    import phonenumbers as pn  # here, not at the top: see the docstring

    try:
        number = pn.parse(digits, region)
    except pn.NumberParseException:
        return False
    reason = pn.is_possible_number_with_reason(number)
    return bool(reason == pn.ValidationResult.IS_POSSIBLE_LOCAL_ONLY)
