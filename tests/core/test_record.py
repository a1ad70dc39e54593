"""`record` behaves as `@dataclass(frozen=True, slots=True)` does, without importing it.

Each behaviour is checked next to a real frozen dataclass of the same fields, so the two
cannot drift apart; and a fresh interpreter shows importing a record module loads
neither dataclasses nor typing.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pytest

from glosmsd.core.record import FrozenInstanceError, field, record, replace


@record
class Point:
    """A point."""

    x: int
    y: int = 0
    tags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.x + self.y

    @classmethod
    def origin(cls) -> Point:
        return cls(0)


@dataclasses.dataclass(frozen=True, slots=True)
class DataPoint:
    x: int
    y: int = 0
    tags: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@record
class Pair:
    a: int
    b: str = "b"


def test_init_by_position_and_by_name_with_defaults() -> None:
    for cls in (Point, DataPoint):
        assert (cls(1).x, cls(1).y, cls(1).tags) == (1, 0, {})
        p = cls(1, 2, {"k": 1})
        assert (p.x, p.y, p.tags) == (1, 2, {"k": 1})
        assert cls(y=3, x=4).y == 3
    assert Point(1).tags is not Point(1).tags  # a fresh default each time


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2, {}, 4), {}), ((1,), {"x": 2}), ((1,), {"z": 2})],
)
def test_wrong_calls_raise_type_error_as_a_dataclass_does(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    for cls in (Point, DataPoint):
        with pytest.raises(TypeError):
            cls(*args, **kwargs)


def test_equality_hash_and_repr() -> None:
    assert Pair(1) == Pair(1, "b")
    assert Pair(1) != Pair(2)
    assert hash(Pair(1)) == hash(Pair(1, "b"))
    assert len({Pair(1), Pair(1), Pair(2)}) == 2
    same_values: object = (1, "b")
    assert Pair(1) != same_values  # only the same class compares equal
    assert repr(Pair(1)) == "Pair(a=1, b='b')"
    assert repr(Point(1)) == repr(DataPoint(1)).replace("DataPoint", "Point")


def test_frozen_slotted_and_matchable() -> None:
    p = Pair(1)
    with pytest.raises(FrozenInstanceError):
        p.a = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.a
    assert not hasattr(p, "__dict__")
    assert Pair.__dict__["__slots__"] == ("a", "b") == Pair.__match_args__
    assert Point.__doc__ == "A point."
    assert (Point(2, 3).total, Point.origin()) == (5, Point(0))
    match Pair(7, "z"):
        case Pair(a, b):
            assert (a, b) == (7, "z")


def test_replace_copy_and_pickle() -> None:
    p = Point(1, 2, {"k": 1})
    assert replace(p, y=5) == Point(1, 5, {"k": 1})
    assert replace(p) == p
    assert copy.copy(p) == p
    assert copy.deepcopy(p) == p
    assert pickle.loads(pickle.dumps(p)) == p
    with pytest.raises(TypeError):
        replace(p, z=1)


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b'"):

        @record
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_importing_the_records_loads_neither_dataclasses_nor_typing() -> None:
    probe = (
        "import sys\n"
        "import glosmsd.core.rules, glosmsd.core.rpc, glosmsd.client.ipc\n"
        "print(sorted(m for m in ('dataclasses', 'typing', 'inspect') if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, timeout=30, check=True, env=env
    )
    assert proc.stdout.decode().split() == ["[]"]
