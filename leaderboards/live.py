"""The messages a board's live channel carries, made before the ranks they show are known.

After a unit of work commits, a board's channel gets one message listing the unit's rank changes on it
(see docs/leaderboards.md): ``rank_changed`` for one change, ``rank_changes`` for several. Each change
shows the member's new rank and the board's size, which the same Redis call that writes the totals reads.
So a message is made in parts around those numbers (:class:`LiveMessage`), and Redis puts the numbers in
and publishes it in that call (:data:`leaderboards.scripts.ANNOUNCE_SCRIPT`): the board's write, its rank
reads and the unit's messages are one round trip. :meth:`LiveMessage.filled` makes the same bytes in
Python, for a client that publishes them itself (a Redis Cluster).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

_ENCODE = msgspec.json.encode


class Shown(msgspec.Struct, frozen=True, kw_only=True):
    """A change a live message shows, without its rank and board size."""

    period: str
    scope: str
    member: str
    score: float


class LiveMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A board's live message for ``channel``: ``parts`` around the rank and size of each of ``writes``.

    The message is ``parts[0]``, the first change's rank, ``parts[1]``, its board size, ``parts[2]``, the
    second change's rank, and so on: ``2 * len(writes) + 1`` parts. ``writes`` are the changes' indexes among
    the unit's board writes.
    """

    channel: str
    writes: tuple[int, ...]
    parts: tuple[bytes, ...]

    def filled(self, numbers: Sequence[tuple[int, int]]) -> bytes:
        """The message with each change's (rank, board size) put in."""
        out = [self.parts[0]]
        for (rank, total), index in zip(numbers, range(1, len(self.parts), 2), strict=True):
            out += (b"%d" % rank, self.parts[index], b"%d" % total, self.parts[index + 1])
        return b"".join(out)


def live_message(channel: str, board: str, changes: Sequence[tuple[int, Shown]], *, at: datetime) -> LiveMessage:
    """The message of a unit's ``changes`` (write index, what it shows) on ``board``, in the unit's order.

    One change: ``{"type":"rank_changed","board":…,"period":…,"scope":…,"member":…,"rank":…,"score":…,
    "total":…,"at":…}``. Several: ``{"type":"rank_changes","board":…,"changes":[{"period":…,…},…],"at":…}``.
    """
    if not changes:
        raise ValueError("a live message shows at least one change")
    at_part = b',"at":' + _ENCODE(at.isoformat()) + b"}"
    if len(changes) == 1:
        head = b'{"type":"rank_changed","board":' + _ENCODE(board) + b","
        parts = [head + _entry_head(changes[0][1]), _entry_middle(changes[0][1]), at_part]
    else:
        head = b'{"type":"rank_changes","board":' + _ENCODE(board) + b',"changes":['
        parts = [head]
        for number, (_index, shown) in enumerate(changes):
            parts[-1] += (b",{" if number else b"{") + _entry_head(shown)
            parts += [_entry_middle(shown), b"}"]
        parts[-1] += b"]" + at_part
    return LiveMessage(channel=channel, writes=tuple(index for index, _ in changes), parts=tuple(parts))


def _entry_head(shown: Shown) -> bytes:
    return (
        b'"period":'
        + _ENCODE(shown.period)
        + b',"scope":'
        + _ENCODE(shown.scope)
        + b',"member":'
        + _ENCODE(shown.member)
        + b',"rank":'
    )


def _entry_middle(shown: Shown) -> bytes:
    return b',"score":' + _ENCODE(shown.score) + b',"total":'
