"""Strict cattrs hooks for JSON: camelCase keys, no coercion, and field paths for their errors.

The building blocks of the request's converters (:mod:`.types` registers its
classes with them):

- *strict*: camelCase keys, unknown keys refused, missing required keys named,
  no coercion (``"3000"``, ``true`` and ``3000.0`` are not integers; NaN and
  Infinity are not numbers; ``null`` only where a field is optional);
- *lenient* (``lenient=True``): never raises for bad input; a value missing or
  of the wrong type becomes :data:`UNKNOWN` and unknown keys are ignored, so
  the checks can still look at the rest after the strict pass failed.

:func:`field_errors` turns the strict converter's exception groups into
:class:`~preview_actors.errors.FieldError` s with the JSON's own paths
(``previewRequest.steps[2].durationMs``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from cattrs import Converter
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, override

from ..errors import FieldError

__all__ = [
    "STRUCTURE_ERRORS",
    "UNKNOWN",
    "Hook",
    "Invalid",
    "array_hook",
    "camel",
    "camel_renames",
    "choice_hook",
    "expected",
    "field_errors",
    "is_tuple_of",
    "join",
    "known",
    "leaf",
    "make_converter",
    "object_hook",
]

_T = TypeVar("_T")

#: A structure hook: ``(value, type) -> structured``.
Hook = Callable[[object, type], Any]


class Invalid(ValueError):
    """A value of the wrong type or form; the message is shown as is."""


#: What the strict converter raises for bad input (the lenient one raises nothing).
STRUCTURE_ERRORS: tuple[type[Exception], ...] = (ClassValidationError, IterableValidationError, Invalid)


class _Unknown:
    """The type of :data:`UNKNOWN`."""

    def __repr__(self) -> str:
        return "UNKNOWN"


#: What the lenient converter puts where a value is missing or of the wrong
#: type (the strict pass has reported it): the checks skip it. Typed ``Any``
#: because it stands in for a value of any field's type.
UNKNOWN: Any = _Unknown()


def known(value: object) -> bool:
    """Whether ``value`` is not :data:`UNKNOWN`."""
    return value is not UNKNOWN


def join(path: str, name: str) -> str:
    """The field path of ``name`` inside ``path`` (``path.name``; ``name`` at the root)."""
    return f"{path}.{name}" if path else name


def camel(name: str) -> str:
    """``duration_ms`` → ``durationMs``."""
    return re.sub(r"_([a-z0-9])", lambda match: match.group(1).upper(), name)


def camel_renames(cls: type) -> dict[str, Any]:
    """cattrs overrides naming each attrs field of ``cls`` by its camelCase JSON key."""
    return {field.name: override(rename=camel(field.name)) for field in attrs.fields(cls)}


def expected(value: object, what: str) -> Invalid:
    """The error for ``value`` when ``what`` was expected (``null`` gets its own message)."""
    return Invalid("must not be null" if value is None else f"must be {what}")


# --- leaves --------------------------------------------------------------------


def _structure_int(value: object, _: type) -> int:
    # type() rather than isinstance(): bool is an int subclass, and 3000.0 is a float.
    if type(value) is not int:
        raise expected(value, "an integer")
    return value


def _structure_float(value: object, _: type) -> float:
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise Invalid("must be a finite number") from None
    if type(value) is not float:
        raise expected(value, "a number")
    if not math.isfinite(value):
        raise Invalid("must be a finite number")
    return value


def _structure_str(value: object, _: type) -> str:
    if type(value) is not str:
        raise expected(value, "a string")
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
        raise Invalid("must be valid Unicode (no lone surrogates)") from None
    return value


def _structure_bool(value: object, _: type) -> bool:
    if type(value) is not bool:
        raise expected(value, "true or false")
    return value


def _lenient(hook: Callable[[object, type], _T]) -> Hook:
    """``hook``, with :data:`UNKNOWN` for a value it refuses."""

    def structure(value: object, type_: type) -> Any:
        try:
            return hook(value, type_)
        except Invalid:
            return UNKNOWN

    return structure


def leaf(hook: Callable[[object, type], _T], *, lenient: bool) -> Hook:
    """``hook`` as is, or (``lenient``) with :data:`UNKNOWN` for a value it refuses."""
    return _lenient(hook) if lenient else hook


def choice_hook(choices: tuple[str, ...], *, lenient: bool = False) -> Hook:
    """A structure hook for a string that must be one of ``choices``."""

    def structure(value: object, _: type) -> str:
        text = _structure_str(value, str)
        if text not in choices:
            raise Invalid("must be one of " + ", ".join(repr(name) for name in choices))
        return text

    return leaf(structure, lenient=lenient)


def make_converter(*, lenient: bool = False) -> Converter:
    """A converter with the strict (or ``lenient``) JSON leaves: int, float, str and bool.

    Register the classes on it leaves first: a class's structure function
    resolves its fields' hooks when it is generated.
    """
    converter = Converter(forbid_extra_keys=not lenient, detailed_validation=not lenient)
    converter.register_structure_hook(int, leaf(_structure_int, lenient=lenient))
    converter.register_structure_hook(float, leaf(_structure_float, lenient=lenient))
    converter.register_structure_hook(str, leaf(_structure_str, lenient=lenient))
    converter.register_structure_hook(bool, leaf(_structure_bool, lenient=lenient))
    return converter


# --- containers ----------------------------------------------------------------


def object_hook(converter: Converter, cls: type, *, lenient: bool = False, **overrides: Any) -> Hook:
    """A structure hook for attrs class ``cls`` from a JSON object with camelCase keys.

    ``overrides`` are cattrs ``override`` s by attribute name. ``lenient``:
    anything but an object is :data:`UNKNOWN`, and a missing required key is
    structured from :data:`UNKNOWN` (which its hook keeps).
    """
    generated: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, converter, **(camel_renames(cls) | overrides))
    required = {camel(field.name): UNKNOWN for field in attrs.fields(cls) if field.default is attrs.NOTHING}

    def structure(value: object, _: type) -> Any:
        if type(value) is not dict:
            if lenient:
                return UNKNOWN
            raise expected(value, "an object")
        return generated(required | value if lenient else value, cls)

    return structure


def array_hook(converter: Converter, item_type: type, *, lenient: bool = False) -> Callable[[object, type], tuple[Any, ...]]:
    """A structure hook for ``tuple[item_type, ...]`` from a JSON array (and nothing else).

    ``lenient``: anything but an array is :data:`UNKNOWN` (so are items, by their own hook).
    """
    item_hook = converter.get_structure_hook(item_type)

    def structure(value: object, tuple_type: type) -> Any:
        if type(value) is not list:
            if lenient:
                return UNKNOWN
            raise expected(value, "an array")
        if lenient:
            return tuple(item_hook(item, item_type) for item in value)
        items: list[Any] = []
        errors: list[Exception] = []
        for index, item in enumerate(value):
            try:
                items.append(item_hook(item, item_type))
            except Exception as exc:  # regrouped, as cattrs does
                note = IterableValidationNote(f"Structuring @ index {index}", index, item_type)
                # __notes__ is typed from Python 3.11 on; cattrs reads it on 3.10 as well.
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {tuple_type!r}", errors, tuple_type)
        return tuple(items)

    return structure


def is_tuple_of(item_type: type) -> Callable[[Any], bool]:
    """A cattrs predicate for ``tuple[item_type, ...]``."""
    return lambda type_: bool(type_ == tuple[item_type, ...])  # type: ignore[valid-type]  # built at run time from a variable item type


# --- errors --------------------------------------------------------------------


def field_errors(exc: BaseException, path: str = "") -> list[FieldError]:
    """A strict converter's exception groups as :class:`FieldError` s with JSON paths (``a.b[2].c``).

    Like :func:`cattrs.transform_error`, but the path uses the camelCase JSON
    names rather than the attribute names, without the ``$`` root. Re-raises
    an exception that is not about the input (a bug in a hook).
    """
    errors: list[FieldError] = []
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            errors += field_errors(sub, join(path, camel(note.name)))
        for sub in without:
            errors += field_errors(sub, path)
    elif isinstance(exc, IterableValidationError):
        with_indices, without_index = exc.group_exceptions()
        for sub, item_note in with_indices:
            errors += field_errors(sub, f"{path}[{item_note.index}]")
        for sub in without_index:
            errors += field_errors(sub, path)
    elif isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields, key=str):
            errors.append(FieldError(join(path, str(key)), "unknown field"))
    elif isinstance(exc, KeyError):
        errors.append(FieldError(path, "is required"))
    elif isinstance(exc, Invalid):
        errors.append(FieldError(path, str(exc)))
    else:  # a bug in a hook, not bad input
        raise exc
    return errors
