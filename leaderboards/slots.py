"""What the Redis store speaks: slots, absolute writes, directory listings, read snapshots, rebuild-log entries.

Plain values, shared by the store (:mod:`leaderboards.store`), the pipeline step, the rebuild and the
reads. A :class:`Slot` is one sorted set: a period and scope value of a brand's board.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from leaderboards import ranking

if TYPE_CHECKING:
    from datetime import datetime

    from leaderboards.models import BoardDef, MemberInfo, PeriodRef, Placed

ListingValue = tuple[str, str, str]
"""What a board's directory holds per member: (external id, label, scope value)."""
LISTING = msgspec.json.Decoder(ListingValue)
"""Decodes a directory entry (:data:`ListingValue`)."""
encode = msgspec.json.encode


@dataclass(frozen=True, slots=True)
class Slot:
    """One sorted set: a period and scope value of a brand's board."""

    brand_id: int
    board: BoardDef
    period: PeriodRef
    scope: str = ""


@dataclass(frozen=True, slots=True)
class Write:
    """A member's absolute total on a slot; ``listed=False`` takes them off it (below minimum, opted out)."""

    slot: Slot
    member_id: int
    units: int
    reached_at: datetime
    listed: bool = True


@dataclass(frozen=True, slots=True)
class Listing:
    """A member in a board's directory: found by external id, shown by label (written with their totals)."""

    brand_id: int
    board: str
    member_id: int
    external_id: str
    label: str
    scope: str = ""


def standing_entry(board: str, period: str, scope: str, member_id: int) -> bytes:
    """The rebuild log's entry for a write of a member's standing on one slot."""
    return encode(("z", board, period, scope, member_id))


def directory_entry(board: str, member_id: int) -> bytes:
    """The rebuild log's entry for a write of a member's directory entry on a board."""
    return encode(("n", board, member_id))


def decode_entry(raw: bytes | str) -> list[Any]:
    """A rebuild log entry: ``["z", board, period, scope, member id]`` or ``["n", board, member id]``."""
    return list(msgspec.json.decode(raw))


def write_entry(write: Write) -> bytes:
    """The rebuild log's entry for ``write``."""
    slot = write.slot
    return standing_entry(slot.board.key, slot.period.id, slot.scope, write.member_id)


def listing(brand_id: int, board: BoardDef, info: MemberInfo) -> Listing:
    """What a board's directory keeps of a member: no label at all while they are opted out of a public board."""
    hidden = board.visibility == "public" and info.opt_out
    return Listing(
        brand_id=brand_id,
        board=board.key,
        member_id=info.member_id,
        external_id=info.external_id,
        label="" if hidden else ranking.member_label(board, info, brand_id=brand_id),
        scope=ranking.scope_of(board, info.attributes) or "",
    )


@dataclass(slots=True)
class Snapshot:
    """What one read of a slot found (``friends`` by external id, ``listings`` by member id)."""

    ready: bool
    total: int
    page: list[Placed] = field(default_factory=list)
    me: Placed | None = None
    me_id: int | None = None
    """The ``around`` member's id when the board's directory knows them (even if they are not ranked)."""
    around: list[Placed] = field(default_factory=list)
    friends: dict[Any, Placed] = field(default_factory=dict)
    listings: dict[int, ListingValue] = field(default_factory=dict)


def text(value: bytes | str) -> str:
    """A Redis reply as text."""
    return value.decode() if isinstance(value, bytes) else value
