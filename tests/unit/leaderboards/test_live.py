"""leaderboards.live: a board's live message made in parts around its ranks is the message as a whole."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from leaderboards.live import Shown, live_message

AT = datetime(2026, 11, 20, 10, 30, 5, 123456, tzinfo=UTC)


def whole(board: str, changes: list[tuple[Shown, int, int]]) -> bytes:
    """The message as the API documents it, encoded as one document (the reference)."""
    entries = [
        {"period": s.period, "scope": s.scope, "member": s.member, "rank": rank, "score": s.score, "total": total}
        for s, rank, total in changes
    ]
    if len(entries) == 1:
        return msgspec.json.encode({"type": "rank_changed", "board": board, **entries[0], "at": AT.isoformat()})
    return msgspec.json.encode({"type": "rank_changes", "board": board, "changes": entries, "at": AT.isoformat()})


ODD = [
    Shown(period="2026-W47", scope="", member="anna", score=3.0),
    Shown(period="all", scope='store "7"\\', member="bé \u00e8 \u4e2d", score=12.75),
    Shown(period="2026-11", scope="s\u0000\n", member='"},{"rank":1', score=-0.5),
    Shown(period="2026", scope="x", member="m" * 300, score=1e20),
]


@pytest.mark.parametrize("count", [1, 2, 4])
def test_the_parts_filled_with_the_numbers_are_the_documented_message(count):
    shown = ODD[:count]
    numbers = [(1, 10), (123456789012, 9_000_000_000_000), (3, 3), (40, 41)][:count]
    message = live_message("ch", "wéékly", list(enumerate(shown)), at=AT)
    assert message.writes == tuple(range(count))
    assert len(message.parts) == 2 * count + 1
    expected = whole("wéékly", [(s, r, t) for s, (r, t) in zip(shown, numbers, strict=True)])
    assert message.filled(numbers) == expected
    assert msgspec.json.decode(message.filled(numbers))  # valid JSON


def test_a_message_shows_at_least_one_change():
    with pytest.raises(ValueError, match="at least one"):
        live_message("ch", "b", [], at=AT)
