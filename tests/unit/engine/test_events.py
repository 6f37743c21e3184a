import msgspec
import pytest

from engine.errors import PayloadTooLarge, ValidationError
from engine.events import decode_events


def body(obj):
    return msgspec.json.encode(obj)


OK = {
    "id": "e1",
    "member": "m1",
    "type": "review",
    "occurred_at": "2026-11-20T10:00:00+01:00",
    "properties": {"stars": 5},
}


def test_single_and_batch():
    events, is_batch = decode_events(body(OK), max_batch=10)
    assert not is_batch and events[0].properties == {"stars": 5}
    assert events[0].occurred_at.utcoffset().total_seconds() == 3600
    events, is_batch = decode_events(body({"events": [OK, {**OK, "id": "e2"}]}), max_batch=10)
    assert is_batch and [e.id for e in events] == ["e1", "e2"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({k: v for k, v in OK.items() if k != "member"}, "$.member"),
        ({**OK, "occurred_at": "2026-11-20T10:00:00"}, "$.occurred_at"),
        ({**OK, "occurred_at": "yesterday"}, "$.occurred_at"),
        ({**OK, "member": 42}, "$.member"),
        ({**OK, "properties": []}, "$.properties"),
        ({**OK, "colour": "red"}, "$.colour"),
        ({**OK, "id": ""}, "$.id"),
        ({**OK, "id": "x" * 256}, "$.id"),
        ({**OK, "type": "bad\ntype"}, "$.type"),
        ({"events": [OK, {**OK, "occurred_at": 5}]}, "$.events[1].occurred_at"),
        ({"events": []}, "$.events"),
        ({**OK, "properties": {"amount": 1e13}}, "$.properties.amount"),
        ({**OK, "properties": {f"k{i}": i for i in range(101)}}, "$.properties"),
        ({"events": [{**OK, "properties": {"blob": "x" * 20000}}]}, "$.events[0].properties"),
    ],
)
def test_bad_events_name_the_field(payload, field):
    with pytest.raises(ValidationError) as info:
        decode_events(body(payload), max_batch=10)
    assert info.value.field == field


def test_unknown_field_is_named_in_detail():
    with pytest.raises(ValidationError) as info:
        decode_events(body({**OK, "colour": "red"}), max_batch=10)
    assert "colour" in info.value.detail


def test_malformed_json():
    with pytest.raises(ValidationError):
        decode_events(b'{"id": ', max_batch=10)


def test_batch_limit():
    with pytest.raises(PayloadTooLarge) as info:
        decode_events(body({"events": [OK] * 11}), max_batch=10)
    assert info.value.field == "$.events"
