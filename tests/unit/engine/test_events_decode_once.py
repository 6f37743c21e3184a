"""``decode_events`` reads the body once with typed decoders; properties are sized as sent."""

import msgspec
import pytest

from engine.errors import ValidationError
from engine.events import MAX_PROPERTIES_BYTES, decode_events

OK = {"id": "e1", "member": "m1", "type": "visit", "occurred_at": "2026-11-20T10:00:00Z"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"events": [' + msgspec.json.encode(OK) + b", ", "$"),  # malformed past the key decoding one stops at
        (b'{"events": 5}', "$.events"),
        (b'{"id": "x", "events": []}', "$.id"),  # a batch has no other fields
        (b"[]", "$"),
        (b"", "$"),
    ],
)
def test_bodies_that_are_neither_an_event_nor_a_batch_name_the_field(body, field):
    with pytest.raises(ValidationError) as info:
        decode_events(body, max_batch=10)
    assert info.value.field == field


def test_properties_are_limited_by_their_json_as_sent():
    fits = msgspec.json.encode({**OK, "properties": {"blob": "x" * (MAX_PROPERTIES_BYTES - 20)}})
    events, _ = decode_events(fits, max_batch=10)
    assert len(events[0].properties["blob"]) == MAX_PROPERTIES_BYTES - 20
    padded = fits.replace(b'{"blob"', b"{" + b" " * 64 + b'"blob"')
    with pytest.raises(ValidationError) as info:
        decode_events(padded, max_batch=10)
    assert info.value.field == "$.properties"


def test_missing_properties_are_empty_and_a_batch_keeps_its_order():
    events, is_batch = decode_events(msgspec.json.encode({"events": [OK, {**OK, "id": "e2"}]}), max_batch=2)
    assert is_batch and [(e.id, e.properties) for e in events] == [("e1", {}), ("e2", {})]
