"""The stored member state: compact format 2, the first format still read, and partial (lazy) decoding."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest

from challenges.codec import (
    EncodedState,
    decode_encoded_state,
    decode_instances,
    decode_state,
    encode_instances,
    encode_state,
)
from challenges.models import MemberState, Progress, StreakCarry
from tests.unit.challenges.helpers import at

STATE = MemberState(
    progress={
        "critic": {
            "": Progress(
                challenge="critic",
                kind="count",
                value=2.0,
                counted=2,
                last_counted_at=at("2026-11-02T10:00"),
                day_totals={"2026-11-02": 2.0},
            )
        },
        "weekly": {
            "2026-W45": Progress(
                challenge="weekly",
                instance="2026-W45",
                kind="sum",
                value=12.5,
                counted=1,
                completed_at=at("2026-11-03T10:00"),
            ),
            "2026-W46": Progress(challenge="weekly", instance="2026-W46", kind="sum", value=1.0, counted=1),
        },
        "daily-streak": {
            "": Progress(
                challenge="daily-streak",
                kind="streak",
                value=3.0,
                counted=40,
                periods=(date(2026, 11, 1), date(2026, 11, 2)),
                carry=StreakCarry(current=1, longest=9, freezes=1, last=date(2026, 10, 31)),
                longest=9,
                freezes=1,
                streak_last=date(2026, 11, 2),
            )
        },
        "route": {
            "": Progress(challenge="route", kind="sequence", value=1.0, counted=1, done=(0,), seen=("a",), prior=True)
        },
    },
    completions={"weekly": 1},
)

#: The same state as the first format stored it: long names, every progress naming its challenge and instance.
FIRST_FORMAT = msgspec.json.encode(
    {
        "progress": {
            "critic": {
                "": {
                    "challenge": "critic",
                    "kind": "count",
                    "value": 2.0,
                    "counted": 2,
                    "last_counted_at": "2026-11-02T09:00:00Z",
                    "day_totals": {"2026-11-02": 2.0},
                }
            },
            "weekly": {
                "2026-W45": {
                    "challenge": "weekly",
                    "instance": "2026-W45",
                    "kind": "sum",
                    "value": 12.5,
                    "counted": 1,
                    "completed_at": "2026-11-03T09:00:00Z",
                },
                "2026-W46": {"challenge": "weekly", "instance": "2026-W46", "kind": "sum", "value": 1.0, "counted": 1},
            },
            "daily-streak": {
                "": {
                    "challenge": "daily-streak",
                    "kind": "streak",
                    "value": 3.0,
                    "counted": 40,
                    "periods": ["2026-11-01", "2026-11-02"],
                    "carry": {"current": 1, "longest": 9, "freezes": 1, "last": "2026-10-31"},
                    "longest": 9,
                    "freezes": 1,
                    "streak_last": "2026-11-02",
                }
            },
            "route": {
                "": {
                    "challenge": "route",
                    "kind": "sequence",
                    "value": 1.0,
                    "counted": 1,
                    "seen": ["a"],
                    "done": [0],
                    "prior": True,
                }
            },
        },
        "completions": {"weekly": 1},
    }
).decode()


def _bare(instances: dict[str, Progress]) -> dict[str, Progress]:
    """Instances as the pipeline holds them: without the challenge and instance the keys already say."""
    return {name: msgspec.structs.replace(p, challenge="", instance="") for name, p in instances.items()}


def test_round_trip_keeps_everything():
    stored = encode_state(STATE)
    assert decode_state(stored) == STATE


def test_stored_form_is_compact_and_tagged():
    stored = encode_state(STATE)
    assert stored.startswith('{"format":2,')
    assert '"challenge"' not in stored and '"last_counted_at"' not in stored
    # challenge and instance are the keys the progress is stored under, not repeated inside it
    assert '"critic"' in stored and stored.count("critic") == 1 and stored.count("2026-W45") == 1
    assert len(stored) < len(FIRST_FORMAT) * 0.6


@pytest.mark.parametrize("text", [FIRST_FORMAT, FIRST_FORMAT.encode()])
def test_the_first_format_is_still_read(text):
    assert decode_state(text) == STATE
    assert decode_state("{}") == MemberState()
    encoded = decode_encoded_state(text)
    assert {key: decode_instances(raw) for key, raw in encoded.progress.items()} == {
        key: _bare(instances) for key, instances in STATE.progress.items()
    }
    assert encoded.completions == STATE.completions


def test_a_future_format_is_refused_rather_than_misread():
    with pytest.raises(msgspec.ValidationError):
        decode_state('{"format":3,"p":{}}')


def test_partial_decoding_reads_one_challenge_and_writes_the_others_back_unchanged():
    stored = encode_state(STATE)
    encoded = decode_encoded_state(stored)
    assert encoded.completions == {"weekly": 1}
    weekly = decode_instances(encoded.progress["weekly"])
    assert weekly == _bare(STATE.progress["weekly"])  # the pipeline knows challenge and instance from the keys
    weekly["2026-W46"] = msgspec.structs.replace(weekly["2026-W46"], value=2.0, counted=2)
    changed = EncodedState(
        progress={**encoded.progress, "weekly": encode_instances(weekly)}, completions=encoded.completions
    )
    again = encode_state(changed)
    assert decode_state(again).progress["weekly"]["2026-W46"].value == 2.0
    assert decode_state(again).progress["critic"] == STATE.progress["critic"]
    for key in ("critic", "daily-streak", "route"):
        assert bytes(decode_encoded_state(again).progress[key]) == bytes(encoded.progress[key])


def test_the_pipeline_form_stores_no_identity_and_reads_back_whole():
    stored = bytes(encode_instances(_bare(STATE.progress["weekly"])))
    assert b'"id"' not in stored and b'"in"' not in stored
    state = EncodedState(progress={"weekly": msgspec.Raw(stored)})
    assert decode_state(encode_state(state)).progress["weekly"] == STATE.progress["weekly"]
