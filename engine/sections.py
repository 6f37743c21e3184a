"""Validation shared by the list sections of a program document (badges, rewards, …).

A section is a list of objects, each decoded into a msgspec struct; a mistake is a
:class:`~engine.errors.DefinitionError` whose ``field`` is the full JSON path of the offending value
(``$.badges[2].rule.count``), and a key may appear only once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec

from engine.errors import DefinitionError

T = TypeVar("T")

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD = re.compile(r"(?:unknown|missing required) field `(?P<name>[^`]+)`")


def located(message: str, path: str) -> tuple[str, str]:
    """A msgspec message without its location, and the full path it points at (``unknown field `x``` → ``….x``)."""
    match = _AT.search(message)
    where = path + (match.group("path") if match else "")
    if match:
        message = message[: match.start()]
    named = _FIELD.search(message)
    if named:
        where = f"{where}.{named.group('name')}"
    return message, where


def convert_object(data: Any, type_: type[T], *, path: str, noun: str) -> T:
    """Decode one object of a section into ``type_``.

    Raises:
        DefinitionError: not an object, or a value that does not fit (``field`` is its full path).
    """
    if not isinstance(data, Mapping):
        raise DefinitionError(f"a {noun} must be an object", field=path)
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        message, where = located(str(exc), path)
        raise DefinitionError(message, field=where) from exc


def parse_list(
    data: Any, parse: Callable[[Any, str], T], *, key: Callable[[T], str], path: str, noun: str, plural: str, most: int
) -> list[T]:
    """Validate a list section: ``None`` is empty, at most ``most`` items, each ``parse(item, path)``, keys unique.

    Raises:
        DefinitionError: not a list, too long, a bad item, or a key given twice; ``field`` names where.
    """
    if data is None:
        return []
    if not isinstance(data, list):
        raise DefinitionError(f"the {plural} section is a list of {plural}", field=path)
    if len(data) > most:
        raise DefinitionError(f"a program has at most {most} {plural}", field=path)
    parsed: list[T] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(data):
        where = f"{path}[{index}]"
        value = parse(item, where)
        name = key(value)
        if name in seen:
            raise DefinitionError(
                f"{noun} {name!r} is defined twice (first at {path}[{seen[name]}])", field=f"{where}.key"
            )
        seen[name] = index
        parsed.append(value)
    return parsed
