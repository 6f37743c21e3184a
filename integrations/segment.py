"""Segment's HTTP tracking API payloads → Questline events and profile updates (pure, no I/O).

Segment's server libraries send ``{"batch": [message, ...], "sentAt": ...}`` to ``/v1/batch`` and single
messages to ``/v1/track`` and ``/v1/identify``; its webhook destination POSTs single messages of any type.
A message's ``messageId`` is the event's idempotency key, ``userId`` the member, ``event`` the name mapped
through the brand's :class:`~integrations.models.SourceMapping`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from engine.errors import PayloadTooLarge, ValidationError
from engine.events import Event, check_properties
from integrations.errors import from_msgspec
from integrations.models import SourceMapping, map_event

MessageType = Literal["track", "identify", "page", "screen", "group", "alias"]


class Message(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One Segment message as the libraries send it (fields Questline does not use are ignored)."""

    type: MessageType | None = None
    """Absent on ``/v1/track`` and ``/v1/identify`` bodies: the endpoint says it (else ``track``)."""
    message_id: str | None = None
    user_id: str | int | None = None
    anonymous_id: str | int | None = None
    event: str | None = None
    properties: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    timestamp: str | None = None
    original_timestamp: str | None = None
    sent_at: str | None = None
    write_key: str | None = None


class Batch(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """``/v1/batch``: several messages and when the library sent them."""

    batch: list[Message]
    sent_at: str | None = None
    write_key: str | None = None
    """Recent libraries send the write key in the body rather than as Basic auth."""


class Identify(msgspec.Struct, frozen=True, kw_only=True):
    """An ``identify`` call: the member's traits (``name`` becomes the display name)."""

    member: str
    display_name: str
    attributes: dict[str, Any]


class Retraction(msgspec.Struct, frozen=True, kw_only=True):
    """A refund message: retract the member's purchase of ``reference`` (``amount`` ``None``: all of it)."""

    request_id: str
    member: str
    reference: str
    amount: float | None


Action = Event | Identify | Retraction

_MESSAGE = msgspec.json.Decoder(Message)
_BATCH = msgspec.json.Decoder(Batch)


def decode(body: bytes, *, endpoint: str, max_batch: int) -> tuple[list[Message], str | None]:
    """Decode a body sent to ``endpoint`` (``track``, ``identify``, ``batch`` or ``any`` for webhooks).

    Returns:
        The messages, and the write key the body carries (``writeKey``), if any.

    Raises:
        ValidationError: malformed JSON or a field of the wrong type (``field`` is its JSON path).
        PayloadTooLarge: a batch over ``max_batch`` messages.
    """
    try:
        if endpoint == "batch":
            batch = _BATCH.decode(body)
            if len(batch.batch) > max_batch:
                raise PayloadTooLarge(f"a batch holds at most {max_batch} messages", field="$.batch")
            return [_typed(m, "track", batch.sent_at) for m in batch.batch], batch.write_key
        message = _MESSAGE.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise from_msgspec(exc) from exc
    kind: MessageType = "identify" if endpoint == "identify" else "track"
    return [_typed(message, kind, None)], message.write_key


def _typed(message: Message, kind: MessageType, sent_at: str | None) -> Message:
    """The message with its type (``kind`` when absent) and the batch's ``sentAt`` when it has none."""
    return msgspec.structs.replace(message, type=message.type or kind, sent_at=message.sent_at or sent_at)


def _instant(value: str | None, *, path: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = msgspec.json.decode(msgspec.json.encode(value), type=datetime)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"not an ISO 8601 timestamp: {value!r}", field=path) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def occurred_at(message: Message, *, now: datetime, path: str) -> datetime:
    """When it happened: ``timestamp``, else ``originalTimestamp`` corrected for the device's clock skew."""
    timestamp = _instant(message.timestamp, path=f"{path}.timestamp")
    if timestamp is not None:
        return timestamp
    original = _instant(message.original_timestamp, path=f"{path}.originalTimestamp")
    if original is None:
        return now
    sent = _instant(message.sent_at, path=f"{path}.sentAt")
    return now - (sent - original) if sent is not None else original


def _id(value: str | int | None) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def to_actions(messages: list[Message], *, mapping: SourceMapping, now: datetime) -> list[Action]:
    """What each message asks of Questline, in order; anonymous and unmapped messages are left out.

    Raises:
        ValidationError: a ``track`` without ``messageId`` or ``event``, or properties over the limits.
    """
    actions: list[Action] = []
    for index, message in enumerate(messages):
        path = f"$.batch[{index}]" if len(messages) > 1 else "$"
        member = _id(message.user_id)
        if member is None:
            continue  # anonymous activity earns nothing until the visitor is identified
        if message.type == "identify":
            actions.append(_identify(message, member, path=path))
        elif message.type == "track":
            action = _track(message, member, mapping=mapping, now=now, path=path)
            if action is not None:
                actions.append(action)
    return actions


def _identify(message: Message, member: str, *, path: str) -> Identify:
    traits = dict(message.traits)
    name = traits.pop("name", None)
    if name is None and ("firstName" in traits or "lastName" in traits):
        name = " ".join(str(traits.get(k, "")) for k in ("firstName", "lastName")).strip()
    check_properties(traits, path=f"{path}.traits")
    return Identify(member=member, display_name=str(name or "")[:200], attributes=traits)


def _track(message: Message, member: str, *, mapping: SourceMapping, now: datetime, path: str) -> Action | None:
    if not message.message_id:
        raise ValidationError("a track message needs its `messageId` (the idempotency key)", field=f"{path}.messageId")
    if not message.event:
        raise ValidationError("a track message needs its `event` name", field=f"{path}.event")
    mapped = map_event(message.event, message.properties, mapping)
    if mapped.retract:
        if mapped.reference is None:
            raise ValidationError("a refund needs the original order's reference", field=f"{path}.properties")
        return Retraction(
            request_id=message.message_id, member=member, reference=mapped.reference, amount=mapped.amount
        )
    if mapped.type is None:
        return None
    check_properties(mapped.properties, path=f"{path}.properties")
    wire = {
        "id": message.message_id,
        "member": member,
        "type": mapped.type,
        "occurred_at": occurred_at(message, now=now, path=path),
        "properties": mapped.properties,
    }
    try:
        return msgspec.convert(wire, Event)
    except msgspec.ValidationError as exc:  # an id, member or event name outside Questline's limits
        raise from_msgspec(exc, prefix=path) from exc
