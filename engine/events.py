"""The inbound event: what a brand tells Questline a member did.

Decoding is done once per request by :func:`decode_events`, which accepts one event or
``{"events": [...]}`` and reports the JSON path of the first bad field.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec

from engine.errors import PayloadTooLarge, ValidationError

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
    """Enforce the size and range limits on an event's free-form properties.

    Raises:
        ValidationError: too many keys, too large once encoded, or a number out of range.
    """
    if len(properties) > MAX_PROPERTY_KEYS:
        raise ValidationError(f"at most {MAX_PROPERTY_KEYS} properties are allowed", field=path)
    if len(msgspec.json.encode(properties)) > MAX_PROPERTIES_BYTES:
        raise ValidationError(f"properties exceed {MAX_PROPERTIES_BYTES} bytes once encoded", field=path)
    _check_number(properties, path)


def decode_events(body: bytes, *, max_batch: int) -> tuple[list[Event], bool]:
    """Decode a request body into events.

    Returns:
        The events, and whether the body was a batch (``{"events": [...]}``) rather than one event.

    Raises:
        ValidationError: malformed JSON or a field that does not fit the schema; ``field`` is its path.
        PayloadTooLarge: more than ``max_batch`` events.
    """
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise _raise_from_msgspec(exc) from exc
    is_batch = isinstance(raw, dict) and "events" in raw
    if is_batch and isinstance(raw["events"], list) and len(raw["events"]) > max_batch:
        raise PayloadTooLarge(
            f"a batch holds at most {max_batch} events; this one has {len(raw['events'])}", field="$.events"
        )
    try:
        events = msgspec.convert(raw, EventBatch).events if is_batch else [msgspec.convert(raw, Event)]
    except msgspec.ValidationError as exc:
        raise _raise_from_msgspec(exc) from exc
    if not events:
        raise ValidationError("a batch needs at least one event", field="$.events")
    for index, event in enumerate(events):
        check_properties(event.properties, path=f"$.events[{index}].properties" if is_batch else "$.properties")
    return events, is_batch
