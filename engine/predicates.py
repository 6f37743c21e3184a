"""The small predicate language shared by earning rules, challenges, badges, boards and eligibility.

A predicate is plain data (JSON or YAML)::

    {"all": [{"field": "properties.stars", "gte": 4},
             {"any": [{"field": "member.region", "eq": "north"},
                      {"not": {"field": "properties.channel", "in": ["kiosk"]}}]}]}

Leaves name a ``field`` — ``properties.<name>[.<name>…]``, ``member.<attribute>``, or ``type`` — and
exactly one operator: ``eq ne gt gte lt lte in not_in contains exists``. A ``{"segment": "<slug>"}`` leaf
holds when the member is in that named segment: whoever evaluates the predicate puts the member's segments
in the member view under :data:`SEGMENTS_KEY` (the pipeline's segments step, or an
``engine.grants.SegmentMembership`` outside it), so matching stays pure. :func:`parse_predicate`
validates a definition when it is saved, naming the path of a mistake; :func:`matches` is pure and never
raises on the data it is given (a missing field or a type mismatch simply does not match).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import msgspec

from engine.errors import DefinitionError

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists")
MAX_DEPTH = 8
MAX_NODES = 200
SEGMENTS_KEY = "@segments"
"""The member view's entry listing the member's segment slugs (no attribute can be named so: ``@`` is reserved)."""
_MISSING = object()


class Leaf(msgspec.Struct, frozen=True, kw_only=True):
    """A comparison of one field against a literal."""

    field: str
    op: str
    value: Any = None


class InSegment(msgspec.Struct, frozen=True, kw_only=True):
    """True when the member is in the named segment."""

    slug: str


class All(msgspec.Struct, frozen=True, kw_only=True):
    """True when every child is."""

    of: tuple[Predicate, ...]


class AnyOf(msgspec.Struct, frozen=True, kw_only=True):
    """True when at least one child is."""

    of: tuple[Predicate, ...]


class Not(msgspec.Struct, frozen=True, kw_only=True):
    """True when the child is not."""

    child: Predicate


Predicate = Leaf | InSegment | All | AnyOf | Not


def _check_field(field: Any, path: str) -> str:
    if not isinstance(field, str) or not field:
        raise DefinitionError("`field` must be a non-empty string", field=f"{path}.field")
    head, _, rest = field.partition(".")
    if head == "type" and not rest:
        return field
    if head in ("properties", "member") and rest and all(rest.split(".")):
        return field
    raise DefinitionError(
        f"unknown field {field!r}: use properties.<name>, member.<attribute> or type", field=f"{path}.field"
    )


def parse_predicate(data: Any, *, path: str = "filter") -> Predicate:
    """Validate plain data and build a :data:`Predicate`.

    Raises:
        DefinitionError: with ``field`` set to the path of the first mistake.
    """
    counter = [0]
    return _parse(data, path, 0, counter)


def _parse(data: Any, path: str, depth: int, counter: list[int]) -> Predicate:
    counter[0] += 1
    if depth > MAX_DEPTH or counter[0] > MAX_NODES:
        raise DefinitionError(f"a filter may nest {MAX_DEPTH} deep and hold {MAX_NODES} nodes", field=path)
    if not isinstance(data, Mapping):
        raise DefinitionError("a filter must be an object", field=path)
    keys = set(data)
    for group, cls in (("all", All), ("any", AnyOf)):
        if group in keys:
            if keys != {group}:
                raise DefinitionError(f"`{group}` must stand alone in its object", field=path)
            children = data[group]
            if not isinstance(children, Sequence) or isinstance(children, str) or not children:
                raise DefinitionError(f"`{group}` takes a non-empty list", field=f"{path}.{group}")
            return cls(of=tuple(_parse(c, f"{path}.{group}[{i}]", depth + 1, counter) for i, c in enumerate(children)))
    if "not" in keys:
        if keys != {"not"}:
            raise DefinitionError("`not` must stand alone in its object", field=path)
        return Not(child=_parse(data["not"], f"{path}.not", depth + 1, counter))
    if "segment" in keys:
        slug = data["segment"]
        if keys != {"segment"}:
            raise DefinitionError("`segment` must stand alone in its object", field=path)
        if not isinstance(slug, str) or not 0 < len(slug) <= 64:
            raise DefinitionError("`segment` takes a segment slug", field=f"{path}.segment")
        return InSegment(slug=slug)
    if "field" not in keys:
        raise DefinitionError("expected `all`, `any`, `not`, `segment` or a `field` comparison", field=path)
    return _parse_leaf(data, keys, path)


def _parse_leaf(data: Mapping[str, Any], keys: set[str], path: str) -> Leaf:
    field = _check_field(data["field"], path)
    ops = keys - {"field"}
    unknown = ops - set(COMPARISONS)
    if unknown:
        bad = sorted(unknown)[0]
        raise DefinitionError(f"unknown operator {bad!r}; use one of {', '.join(COMPARISONS)}", field=f"{path}.{bad}")
    if len(ops) != 1:
        raise DefinitionError("a comparison takes exactly one operator", field=path)
    (op,) = ops
    value = data[op]
    _check_value(op, value, f"{path}.{op}")
    if op in ("in", "not_in"):
        value = tuple(value)
    return Leaf(field=field, op=op, value=value)


def _check_value(op: str, value: Any, where: str) -> None:
    if op in ("in", "not_in") and (not isinstance(value, Sequence) or isinstance(value, str)):
        raise DefinitionError(f"`{op}` takes a list", field=where)
    if op in ("gt", "gte", "lt", "lte") and (isinstance(value, bool) or not isinstance(value, int | float | str)):
        raise DefinitionError(f"`{op}` takes a number or a string", field=where)
    if op == "exists" and not isinstance(value, bool):
        raise DefinitionError("`exists` takes true or false", field=where)
    if isinstance(value, Mapping):
        raise DefinitionError("comparison values must be literals, not objects", field=where)


def predicate_to_data(predicate: Predicate) -> dict[str, Any]:
    """The plain-data form of a predicate (the inverse of :func:`parse_predicate`)."""
    match predicate:
        case All(of=of):
            return {"all": [predicate_to_data(p) for p in of]}
        case AnyOf(of=of):
            return {"any": [predicate_to_data(p) for p in of]}
        case Not(child=child):
            return {"not": predicate_to_data(child)}
        case InSegment(slug=slug):
            return {"segment": slug}
        case Leaf(field=field, op=op, value=value):
            return {"field": field, op: list(value) if isinstance(value, tuple) else value}


@lru_cache(maxsize=4096)  # a program names few fields, looked up for every event and challenge
def _path(field: str) -> tuple[str, tuple[str, ...]]:
    """``field`` split once: its head (``type``, ``properties``, ``member``) and the keys below it."""
    head, _, rest = field.partition(".")
    return head, tuple(rest.split("."))


def _lookup(field: str, event_type: str, properties: Mapping[str, Any], member: Mapping[str, Any]) -> Any:
    head, parts = _path(field)
    if head == "type":
        return event_type
    current: Any = properties if head == "properties" else member
    for part in parts:
        # a dict first: the abstract Mapping check costs a registry look-up, on every event and challenge
        if (type(current) is not dict and not isinstance(current, Mapping)) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "exists":
        return (actual is not _MISSING and actual is not None) is expected
    if actual is _MISSING:
        return op in ("ne", "not_in")
    try:
        match op:
            case "eq":
                return bool(actual == expected)
            case "ne":
                return bool(actual != expected)
            case "gt":
                return bool(actual > expected)
            case "gte":
                return bool(actual >= expected)
            case "lt":
                return bool(actual < expected)
            case "lte":
                return bool(actual <= expected)
            case "in":
                return actual in expected
            case "not_in":
                return actual not in expected
            case "contains":
                return isinstance(actual, str | list | tuple) and expected in actual
    except TypeError:
        return False
    return False


def matches(
    predicate: Predicate | None,
    *,
    event_type: str = "",
    properties: Mapping[str, Any],
    member: Mapping[str, Any],
) -> bool:
    """Evaluate ``predicate`` (``None`` matches everything) against an event and a member's attributes."""
    match predicate:
        case None:
            return True
        case All(of=of):
            return all(matches(p, event_type=event_type, properties=properties, member=member) for p in of)
        case AnyOf(of=of):
            return any(matches(p, event_type=event_type, properties=properties, member=member) for p in of)
        case Not(child=child):
            return not matches(child, event_type=event_type, properties=properties, member=member)
        case Leaf(field=field, op=op, value=value):
            return _compare(op, _lookup(field, event_type, properties, member), value)
        case InSegment(slug=slug):
            held = member.get(SEGMENTS_KEY)
            return isinstance(held, frozenset | set | tuple | list) and slug in held
    return False


def segments_used(predicate: Predicate | None) -> set[str]:
    """The segment slugs ``predicate`` names."""
    match predicate:
        case InSegment(slug=slug):
            return {slug}
        case All(of=of) | AnyOf(of=of):
            return set().union(*(segments_used(p) for p in of))
        case Not(child=child):
            return segments_used(child)
    return set()


def member_keys(predicate: Predicate | None) -> set[str]:
    """The keys of the member view ``predicate`` reads.

    A ``member.<key>…`` field's first key, and :data:`SEGMENTS_KEY` for a segment leaf: two views equal on
    these keys give the predicate one answer.
    """
    match predicate:
        case Leaf(field=field):
            head, parts = _path(field)
            return {parts[0]} if head == "member" else set()
        case InSegment():
            return {SEGMENTS_KEY}
        case All(of=of) | AnyOf(of=of):
            return set().union(*(member_keys(p) for p in of))
        case Not(child=child):
            return member_keys(child)
    return set()


def with_segments(member: Mapping[str, Any], slugs: frozenset[str]) -> dict[str, Any]:
    """``member``'s view with its segments, for predicates with a ``segment`` leaf."""
    return {**member, SEGMENTS_KEY: slugs}


def matches_event(
    wanted_type: str,
    predicate: Predicate | None,
    *,
    event_type: str,
    properties: Mapping[str, Any],
    member: Mapping[str, Any],
) -> bool:
    """Whether an event of ``event_type`` is of ``wanted_type`` and passes ``predicate`` (the pattern every rule has)."""
    if event_type != wanted_type:
        return False
    return predicate is None or matches(predicate, event_type=event_type, properties=properties, member=member)
