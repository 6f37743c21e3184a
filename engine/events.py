"""The inbound event: what a brand tells Questline a member did.

:func:`decode_events` decodes a request body once, with typed decoders built at import: one event or
``{"events": [...]}``, reporting the JSON path of the first bad field. Properties arrive as raw JSON
(``msgspec.Raw``), so their size is known as sent, before they are decoded.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from engine.errors import PayloadTooLarge, ValidationError
from engine.textcheck import json_nul_path

if TYPE_CHECKING:
    from collections.abc import Mapping

ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")]
EventType = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\- ]+$")]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]

MAX_PROPERTIES_BYTES = 16 * 1024
MAX_PROPERTY_KEYS = 100
MAX_ABS_NUMBER = 1e12


class Event(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One thing a member did, as the brand's systems report it."""

    id: ExternalId
    """The client's idempotency key: a repeated id within a brand is a no-op."""
    member: ExternalId
    """The member's external id in the brand's systems."""
    type: EventType
    occurred_at: AwareDatetime
    """When it happened (RFC 3339 with an offset); decides windows, periods and streak days."""
    properties: dict[str, Any] = {}


class EventBatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Several events in one request, applied all or nothing."""

    events: list[Event]


_PATH = re.compile(r" - at `(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"(?:missing required|unknown) field `([^`]+)`")


def _raise_from_msgspec(exc: msgspec.ValidationError | msgspec.DecodeError) -> ValidationError:
    message = str(exc)
    match = _PATH.search(message)
    path = match.group("path") if match else "$"
    if match:
        message = message[: match.start()]
    named = _NAMED_FIELD.search(message)
    if named:  # "Object missing required field `member`": the path points at the object, name the field
        path = f"{path}.{named.group(1)}"
    return ValidationError(f"{message} (at {path})", field=path)


def _numbers_in_range(value: Any) -> bool:
    """Whether every number in ``value`` is finite and within ±:data:`MAX_ABS_NUMBER` (no paths built: the common case)."""
    kind = type(value)
    if kind is float or kind is int:
        return bool(value == value and abs(value) <= MAX_ABS_NUMBER)
    if kind is dict:
        return all(map(_numbers_in_range, value.values()))
    if kind is list:
        return all(map(_numbers_in_range, value))
    return True  # a string, a bool, null: or a subclass, which _check_number judges


def _check_number(value: Any, path: str) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        if value != value or abs(value) > MAX_ABS_NUMBER:  # NaN or out of range
            raise ValidationError(f"number out of range (±{MAX_ABS_NUMBER:g})", field=path)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_number(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_number(item, f"{path}[{index}]")


def check_properties(properties: dict[str, Any], *, path: str) -> None:
    """Enforce the size and range limits on free-form properties already decoded (a member's attributes).

    Raises:
        ValidationError: too many keys, too large once encoded, or a number out of range.
    """
    if len(properties) > MAX_PROPERTY_KEYS:
        raise ValidationError(f"at most {MAX_PROPERTY_KEYS} properties are allowed", field=path)
    if len(msgspec.json.encode(properties)) > MAX_PROPERTIES_BYTES:
        raise ValidationError(f"properties exceed {MAX_PROPERTIES_BYTES} bytes once encoded", field=path)
    _check_number(properties, path)


class _EventIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An event as sent: :class:`Event` with its properties still raw JSON."""

    id: ExternalId
    member: ExternalId
    type: EventType
    occurred_at: AwareDatetime
    properties: msgspec.Raw = msgspec.Raw(b"{}")


class _BatchIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    events: list[_EventIn]


_ONE = msgspec.json.Decoder(_EventIn)
_BATCH = msgspec.json.Decoder(_BatchIn)
_PROPERTIES = msgspec.json.Decoder(dict[str, Any])
#: What decoding one event reports first for a batch body: ``events`` is not a field of an event.
_BATCH_KEY = "Object contains unknown field `events`"


def _decode_properties(raw: msgspec.Raw, *, path: str) -> dict[str, Any]:
    """Decode one event's properties after checking their size as sent."""
    if len(raw) > MAX_PROPERTIES_BYTES:
        raise ValidationError(f"properties exceed {MAX_PROPERTIES_BYTES} bytes of JSON", field=path)
    try:
        properties = _PROPERTIES.decode(raw)
    except msgspec.ValidationError as exc:  # only their own type can be wrong: any key or value is accepted
        raise ValidationError(f"{exc} (at {path})", field=path) from exc
    if len(properties) > MAX_PROPERTY_KEYS:
        raise ValidationError(f"at most {MAX_PROPERTY_KEYS} properties are allowed", field=path)
    if not _numbers_in_range(properties):  # find the culprit, and its path, only when there is one
        _check_number(properties, path)
    return properties


def _event(wire: _EventIn, *, path: str) -> Event:
    return Event(
        id=wire.id,
        member=wire.member,
        type=wire.type,
        occurred_at=wire.occurred_at,
        properties=_decode_properties(wire.properties, path=f"{path}.properties"),
    )


def decode_events(body: bytes, *, max_batch: int) -> tuple[list[Event], bool]:
    """Decode a request body into events, in one typed pass over the body.

    A batch stops the single-event decoder at its first key (``events`` is no field of an event), so a
    batch is read once too.

    Returns:
        The events, and whether the body was a batch (``{"events": [...]}``) rather than one event.

    Raises:
        ValidationError: malformed JSON or a field that does not fit the schema; ``field`` is its path.
        PayloadTooLarge: more than ``max_batch`` events.
    """
    nul = json_nul_path(body)
    if nul:
        raise ValidationError(f"a string holds a NUL character (\\u0000), which cannot be stored (at {nul})", field=nul)
    try:
        return [_event(_ONE.decode(body), path="$")], False
    except msgspec.ValidationError as exc:
        if str(exc) != _BATCH_KEY:
            raise _raise_from_msgspec(exc) from exc
    except msgspec.DecodeError as exc:
        raise _raise_from_msgspec(exc) from exc
    try:
        wires = _BATCH.decode(body).events
    except msgspec.DecodeError as exc:  # also msgspec's ValidationError; the JSON past `events` is read here
        raise _raise_from_msgspec(exc) from exc
    if len(wires) > max_batch:
        raise PayloadTooLarge(f"a batch holds at most {max_batch} events; this one has {len(wires)}", field="$.events")
    if not wires:
        raise ValidationError("a batch needs at least one event", field="$.events")
    return [_event(wire, path=f"$.events[{index}]") for index, wire in enumerate(wires)], True


#: The brand setting that overrides how old an accepted event may be, in days.
MAX_AGE_SETTING = "event_max_age_days"


def max_event_age(brand_settings: Mapping[str, Any], default_days: int) -> timedelta:
    """How old an event the brand accepts: its ``event_max_age_days`` setting (1 to 36,500) or the default."""
    days = brand_settings.get(MAX_AGE_SETTING)
    if isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= 36_500:
        return timedelta(days=days)
    return timedelta(days=default_days)


def check_plausible(
    events: list[Event], *, now: datetime, max_future: timedelta, max_age: timedelta, is_batch: bool
) -> None:
    """Refuse events dated too far ahead of ``now`` (clock skew allowed) or older than ``max_age``.

    Raises:
        ValidationError: the first implausible ``occurred_at``, named by its JSON path.
    """
    latest, earliest = now + max_future, now - max_age
    for index, item in enumerate(events):
        path = f"$.events[{index}].occurred_at" if is_batch else "$.occurred_at"
        if item.occurred_at > latest:
            raise ValidationError(
                f"occurred_at {item.occurred_at.isoformat()} is more than {_span(max_future)} in the future "
                f"(the server's time is {now.isoformat()})",
                field=path,
            )
        if item.occurred_at < earliest:
            raise ValidationError(
                f"occurred_at {item.occurred_at.isoformat()} is older than the {_span(max_age)} this brand accepts",
                field=path,
            )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0 and seconds:
        return f"{seconds // 86400} days"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"
