"""Tests for glosmsd/core/emojicatalog.py: groups, names, versions and skin tones from UTS #51."""

from __future__ import annotations

from glosmsd.core import emojicatalog
from glosmsd.daemon import emojidata

SAMPLE = """\
# emoji-test.txt
# Version: 17.0

# group: Smileys & Emotion
# subgroup: face-smiling
1F600 ; fully-qualified # 😀 E1.0 grinning face
263A FE0F ; fully-qualified # ☺️ E0.6 smiling face
263A ; unqualified # ☺ E0.6 smiling face

# group: People & Body
1F44B ; fully-qualified # 👋 E0.6 waving hand
1F44B 1F3FB ; fully-qualified # 👋🏻 E1.0 waving hand: light skin tone
1F44B 1F3FC ; fully-qualified # 👋🏼 E1.0 waving hand: medium-light skin tone
1F44B 1F3FD ; fully-qualified # 👋🏽 E1.0 waving hand: medium skin tone
1F44B 1F3FE ; fully-qualified # 👋🏾 E1.0 waving hand: medium-dark skin tone
1F44B 1F3FF ; fully-qualified # 👋🏿 E1.0 waving hand: dark skin tone
1F91D ; fully-qualified # 🤝 E3.0 handshake
1F91D 1F3FB ; fully-qualified # 🤝🏻 E14.0 handshake: light skin tone
1FAF1 1F3FB 200D 1FAF2 1F3FF ; fully-qualified # x E14.0 handshake: light skin tone, dark skin tone
1F471 200D 2640 FE0F ; fully-qualified # 👱‍♀️ E4.0 woman: blond hair
1F471 1F3FB 200D 2640 FE0F ; fully-qualified # 👱🏻‍♀️ E4.0 woman: light skin tone, blond hair
1F471 1F3FC 200D 2640 FE0F ; fully-qualified # 👱🏼‍♀️ E4.0 woman: medium-light skin tone, blond hair
1F471 1F3FD 200D 2640 FE0F ; fully-qualified # 👱🏽‍♀️ E4.0 woman: medium skin tone, blond hair
1F471 1F3FE 200D 2640 FE0F ; fully-qualified # 👱🏾‍♀️ E4.0 woman: medium-dark skin tone, blond hair
1F471 1F3FF 200D 2640 FE0F ; fully-qualified # 👱🏿‍♀️ E4.0 woman: dark skin tone, blond hair

# group: Component
1F3FB ; component # 🏻 E1.0 light skin tone
"""


def _by_name(catalog: emojicatalog.Catalog) -> dict[str, emojicatalog.Emoji]:
    return {e.name: e for g in catalog.groups for e in g.emoji}


def test_groups_in_order_with_fully_qualified_emoji_only() -> None:
    catalog = emojicatalog.parse(SAMPLE)
    assert catalog.unicode == "17.0"
    assert [g.name for g in catalog.groups] == ["Smileys & Emotion", "People & Body"]
    smileys = catalog.groups[0].emoji
    assert [(e.chars, e.name, e.version) for e in smileys] == [
        ("😀", "grinning face", "1.0"),
        ("☺️", "smiling face", "0.6"),
    ]


def test_toned_forms_fold_into_their_base_when_all_five_exist() -> None:
    found = _by_name(emojicatalog.parse(SAMPLE))
    assert found["waving hand"].tones == ("👋🏻", "👋🏼", "👋🏽", "👋🏾", "👋🏿")
    # The tone sits in the middle of a sequence's name: still folded, hair kept.
    assert found["woman: blond hair"].tones[0] == "👱🏻‍♀️"
    assert found["woman: blond hair"].tones[4] == "👱🏿‍♀️"
    # One tone only (and one mixed form): no tones offered, and no toned entry listed.
    assert found["handshake"].tones == ()
    assert not any("skin tone" in name for name in found)


def test_json_has_the_tone_names_and_omits_empty_tones() -> None:
    obj = emojicatalog.parse(SAMPLE).to_json()
    assert obj["tones"][0] == "light skin tone"
    first = obj["groups"][0]["emoji"][0]
    assert first == {"emoji": "😀", "name": "grinning face", "version": "1.0"}
    assert len(obj["groups"][1]["emoji"][0]["tones"]) == 5


def test_the_shipped_data_file_gives_every_group_of_unicode() -> None:
    catalog = emojidata.catalog_json()
    names = [g["name"] for g in catalog["groups"]]
    assert names == [
        "Smileys & Emotion",
        "People & Body",
        "Animals & Nature",
        "Food & Drink",
        "Travel & Places",
        "Activities",
        "Objects",
        "Symbols",
        "Flags",
    ]
    every = [e for g in catalog["groups"] for e in g["emoji"]]
    assert len(every) > 1800
    assert len({e["emoji"] for e in every}) == len(every)
    toned = [e for e in every if "tones" in e]
    assert len(toned) > 250
    assert all(len(e["tones"]) == 5 for e in toned)
