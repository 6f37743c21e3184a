"""CloudEvents 1.0 (HTTP binding, JSON format) → Questline events (pure, no I/O).

Three modes: structured (``application/cloudevents+json``: one event as JSON), batch
(``application/cloudevents-batch+json``: a JSON array of them) and binary (the attributes in ``ce-*``
headers, the body is ``data``). ``subject`` names the member, ``type`` the event type (mapped through the
brand's mapping), ``time`` when it happened (receipt time when absent), ``data`` (a JSON object) the
properties. The event's id is ``"<source> <id>"``: CloudEvents makes the *pair* unique, and a
URI-reference ``source`` holds no space, so the pair is recovered unambiguously.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from engine.errors import PayloadTooLarge, ValidationError
from engine.events import Event, check_properties
from integrations.errors import from_msgspec
from integrations.models import SourceMapping, map_event

if TYPE_CHECKING:
    from collections.abc import Mapping

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
SPEC_VERSION = "1.0"
_REQUIRED = ("id", "source", "specversion", "type")


class CloudEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The context attributes Questline reads, and ``data`` as raw JSON (extensions are ignored)."""

    id: str
    source: str
    specversion: str
    type: str
    subject: str | None = None
    time: datetime | None = None
    datacontenttype: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")
    """Empty when absent (or ``null``)."""
    data_base64: str | None = None


_ONE = msgspec.json.Decoder(CloudEvent)
_MANY = msgspec.json.Decoder(list[CloudEvent])
_DATA = msgspec.json.Decoder(dict[str, Any])


def media_type(content_type: str) -> str:
    """The media type of a ``Content-Type`` value, lower-case, without parameters."""
    return content_type.partition(";")[0].strip().lower()


def is_cloudevents(content_type: str, headers: Mapping[str, str]) -> bool:
    """Whether the request is a CloudEvent in any mode (binary mode: a ``ce-specversion`` header)."""
    return media_type(content_type) in (STRUCTURED, BATCH) or "ce-specversion" in headers


def _is_json(datacontenttype: str | None) -> bool:
    kind = media_type(datacontenttype or "application/json")
    return kind == "application/json" or kind.endswith("+json") or kind == "text/json"


def decode_structured(body: bytes, *, batch: bool, max_batch: int) -> list[CloudEvent]:
    """Decode a structured-mode event or a batch.

    Raises:
        ValidationError: malformed JSON or an attribute of the wrong type (``field`` names it).
        PayloadTooLarge: a batch over ``max_batch`` events.
    """
    try:
        events = _MANY.decode(body) if batch else [_ONE.decode(body)]
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise from_msgspec(exc) from exc
    if len(events) > max_batch:
        raise PayloadTooLarge(f"a batch holds at most {max_batch} events", field="$")
    if not events:
        raise ValidationError("a batch needs at least one event", field="$")
    return events


def decode_binary(headers: Mapping[str, str], body: bytes, *, content_type: str) -> CloudEvent:
    """Decode a binary-mode event: attributes from ``ce-*`` headers, ``data`` from the body.

    Raises:
        ValidationError: a required attribute missing, a bad ``ce-time`` or a non-JSON body.
    """
    attributes: dict[str, Any] = {name[3:]: value for name, value in headers.items() if name.lower().startswith("ce-")}
    for name in _REQUIRED:
        if not attributes.get(name):
            raise ValidationError(f"the `ce-{name}` header is required", field=name)
    wire: dict[str, Any] = {
        **{k: attributes[k] for k in ("id", "source", "specversion", "type", "subject", "time") if k in attributes},
        "datacontenttype": content_type or None,
    }
    try:
        event = msgspec.convert(wire, CloudEvent, strict=False)
    except msgspec.ValidationError as exc:
        raise from_msgspec(exc) from exc
    return msgspec.structs.replace(event, data=msgspec.Raw(body.strip()))


def _check(event: CloudEvent, *, path: str) -> None:
    for name in _REQUIRED:
        if not getattr(event, name):
            raise ValidationError(f"`{name}` must not be empty", field=f"{path}.{name}")
    if event.specversion != SPEC_VERSION:
        raise ValidationError(
            f"unsupported specversion {event.specversion!r}; Questline reads CloudEvents {SPEC_VERSION}",
            field=f"{path}.specversion",
        )
    if any(c.isspace() for c in event.source):
        raise ValidationError("`source` must be a URI-reference (no spaces)", field=f"{path}.source")
    if not event.subject:
        raise ValidationError("`subject` must name the member", field=f"{path}.subject")
    if event.data_base64 is not None:
        raise ValidationError("binary `data_base64` is not accepted: send JSON `data`", field=f"{path}.data_base64")
    if event.time is not None and event.time.tzinfo is None:
        raise ValidationError("`time` must be RFC 3339 with an offset", field=f"{path}.time")
    if _has_data(event) and not _is_json(event.datacontenttype):
        raise ValidationError(f"`data` must be JSON, not {event.datacontenttype!r}", field=f"{path}.datacontenttype")


def _has_data(event: CloudEvent) -> bool:
    return bytes(event.data) not in (b"", b"null")


def _properties(event: CloudEvent, *, path: str) -> dict[str, Any]:
    if not _has_data(event):
        return {}
    try:
        properties = _DATA.decode(event.data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ValidationError(f"`data` must be a JSON object ({exc})", field=f"{path}.data") from exc
    check_properties(properties, path=f"{path}.data")
    return properties


def to_events(events: list[CloudEvent], *, mapping: SourceMapping, now: datetime, batch: bool) -> list[Event]:
    """Questline events for valid CloudEvents.

    Raises:
        ValidationError: an invalid attribute or a type the brand's mapping leaves out; ``field`` names it
            (``$[2].subject`` in a batch).
    """
    out: list[Event] = []
    for index, event in enumerate(events):
        path = f"$[{index}]" if batch else "$"
        _check(event, path=path)
        mapped = map_event(event.type, _properties(event, path=path), mapping)
        if mapped.type is None or mapped.retract:
            raise ValidationError(f"type {event.type!r} is not mapped for this brand", field=f"{path}.type")
        event_id = f"{event.source} {event.id}"
        if len(event_id) > 255:
            raise ValidationError("`source` and `id` together exceed 254 characters", field=f"{path}.id")
        wire = {
            "id": event_id,
            "member": event.subject,
            "type": mapped.type,
            "occurred_at": event.time or now,
            "properties": mapped.properties,
        }
        try:
            out.append(msgspec.convert(wire, Event))
        except msgspec.ValidationError as exc:
            raise _renamed(from_msgspec(exc, prefix=path)) from exc
    return out


_ATTRIBUTE = {"member": "subject", "type": "type", "id": "id"}


def _renamed(error: ValidationError) -> ValidationError:
    """Name the CloudEvents attribute, not the Questline field, in an error."""
    field = error.field or "$"
    head, _, last = field.rpartition(".")
    if last in _ATTRIBUTE:
        field = f"{head}.{_ATTRIBUTE[last]}"
    return ValidationError(error.detail.replace(f"`{last}`", f"`{_ATTRIBUTE.get(last, last)}`"), field=field)
