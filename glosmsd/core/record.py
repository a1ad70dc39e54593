"""`record`: a frozen, slotted value class, as `@dataclass(frozen=True, slots=True)` makes
one, for the modules that `glosms` loads on every run.

Importing `dataclasses` imports `inspect` (and with it ast, dis and tokenize), and each
class it makes compiles its methods at import: `glosms count` and `glosms send` paid about
10 ms of a 30 ms floor for it (issue 16, `python -X importtime`). `record` gives the same
behaviour with neither: the fields are the class's annotations in order, their defaults
its class attributes (or `field(default_factory=...)`); `__init__` takes them by position
or by name; `__eq__` and `__hash__` compare the fields (of the same class only);
`__repr__` reads like a dataclass's; `__match_args__`, pickling and `copy` work; and
assigning to a field raises `FrozenInstanceError`. mypy reads it as a frozen dataclass
(`dataclass_transform`); `replace` is `dataclasses.replace`.

Not for: inheriting fields, `InitVar`, `__post_init__`, methods that call `super()` with
no arguments (the class is made anew with `__slots__`): use `dataclasses` there. This
module must never import anything at run time.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs `glosms` ~2 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    _T = TypeVar("_T")


class FrozenInstanceError(AttributeError):
    """A field of a record was assigned to or deleted."""


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], _T]) -> _T:
    """A field whose default is made anew for each record (`default_factory()`)."""
    # The record's class sees the marker; mypy sees the value.
    return _Factory(default_factory)  # type: ignore[return-value]


def _frozen(self: object, name: str, value: object = None) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _make(cls: type) -> type:
    own = cls.__dict__
    names = tuple(
        name
        for name, kind in own.get("__annotations__", {}).items()
        if not str(kind).startswith(("ClassVar", "typing.ClassVar"))
    )
    defaults: dict[str, Any] = {}
    for name in names:
        if name in own:
            defaults[name] = own[name]
        elif defaults:
            raise TypeError(f"non-default argument {name!r} follows default argument")
    count = len(names)
    title = cls.__qualname__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > count:
            raise TypeError(
                f"{title}.__init__() takes {count + 1} positional arguments "
                f"but {len(args) + 1} were given"
            )
        for name, value in zip(names, args, strict=False):
            object.__setattr__(self, name, value)
        for name in names[len(args) :]:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name in defaults:
                value = defaults[name]
                if isinstance(value, _Factory):
                    value = value.make()
            else:
                raise TypeError(f"{title}.__init__() missing required argument: {name!r}")
            object.__setattr__(self, name, value)
        if kwargs:
            name = next(iter(kwargs))
            why = "multiple values for" if name in names else "an unexpected keyword"
            raise TypeError(f"{title}.__init__() got {why} argument {name!r}")

    def _values(self: Any) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in names)

    def eq(self: Any, other: object) -> object:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return bool(_values(self) == _values(other))

    def hash_(self: Any) -> int:
        return hash(_values(self))

    def repr_(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{self.__class__.__qualname__}({shown})"

    def reduce(self: Any) -> tuple[Any, ...]:
        return (self.__class__, _values(self))

    body = {k: v for k, v in own.items() if k not in names and k not in ("__dict__", "__weakref__")}
    body.update(
        __slots__=names,
        __match_args__=names,
        __record_fields__=names,
        __init__=init,
        __eq__=eq,
        __hash__=hash_,
        __repr__=repr_,
        __reduce__=reduce,
        __setattr__=_frozen,
        __delattr__=_frozen,
    )
    return type(cls)(cls.__name__, cls.__bases__, body)


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of the record `obj` with `changes` to its fields."""
    names: tuple[str, ...] = obj.__class__.__record_fields__  # type: ignore[attr-defined]
    values = {name: getattr(obj, name) for name in names}
    values.update(changes)
    made: _T = obj.__class__(**values)
    return made


if TYPE_CHECKING:

    @dataclass_transform(frozen_default=True, field_specifiers=(field,))
    def record(cls: type[_T]) -> type[_T]: ...

else:

    def record(cls):
        """Make `cls` a frozen, slotted record (see the module's docstring)."""
        return _make(cls)
