"""README's "The code: where each concern lives" stays true of the tree (issue 14).

Its table names the layers in the order of the import-linter `layers` contract, every
folder of each layer, and every module and subpackage of each folder; each named module
exists. A module added, moved or split without the table following fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "glosmsd"


def _table() -> list[tuple[str, str, str]]:
    """(layer, folder, what) of each row; a row with an empty layer cell is the one above's."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## The code: where each concern lives", 1)[1].split("\n## ", 1)[0]
    rows: list[tuple[str, str, str]] = []
    layer = ""
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] == "layer" or cells[1].startswith("---"):
            continue  # not a row, the header, or the line under it
        layer = cells[0] or layer
        rows.append((layer, cells[1].strip("`"), cells[2]))
    return rows


def _layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layered = next(c for c in contracts if c["type"] == "layers")
    return [[p.strip() for p in entry.split("|")] for entry in layered["layers"]]


def _parts(folder: Path) -> set[str]:
    """The modules (`x.py`) and subpackages (`x/`) of a folder, without `__init__.py`."""
    found = {p.name for p in folder.glob("*.py") if p.name != "__init__.py"}
    found |= {f"{p.name}/" for p in folder.iterdir() if (p / "__init__.py").exists()}
    return found


def test_the_table_has_each_layer_and_folder_in_the_contracts_order() -> None:
    rows = _table()
    folders = [folder for _layer, folder, _what in rows]
    expected = [f"glosmsd/{name}/" for layer in _layers() for name in layer]
    assert folders == expected


def test_every_module_of_each_folder_is_named_and_every_name_exists() -> None:
    for _layer, folder, what in _table():
        named = set(re.findall(r"`([a-z_]+(?:\.py|/))`", what))
        assert named == _parts(ROOT / folder), folder
