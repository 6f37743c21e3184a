"""What the Redis store speaks: slots, absolute writes, directory listings, read snapshots, rebuild-log entries.

Plain values, shared by the store (:mod:`leaderboards.store`), the pipeline step, the rebuild and the
reads. A :class:`Slot` is one sorted set: a period and scope value of a brand's board.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from leaderboards import ranking
from leaderboards.models import DisplayChoice

if TYPE_CHECKING:
    from datetime import datetime

    from leaderboards.models import BoardDef, MemberInfo, PeriodRef, Placed

ListingValue = tuple[str, str]
"""What a read shows of a member on one board: (external id, label; ``""`` while opted out of a public board)."""
PersonValue = tuple[str, str, DisplayChoice, str, bool]
"""What the brand's directory holds per member: (external id, display name, display choice, pseudonym,
opted out). One entry per brand, whatever the number of boards: each board's label is derived from it."""
PERSON = msgspec.json.Decoder(PersonValue)
"""Decodes a directory entry (:data:`PersonValue`)."""
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
    """A member in the brand's directory: found by external id, shown by label (written with their totals)."""

    brand_id: int
    member_id: int
    external_id: str
    display_name: str = ""
    display: DisplayChoice = ""
    pseudonym: str = ""
    opt_out: bool = False

    def encoded(self) -> bytes:
        """The directory's value (:data:`PersonValue`)."""
        return person_value(self.external_id, self.display_name, self.display, self.pseudonym, self.opt_out)


def person_value(external_id: str, display_name: str, display: str, pseudonym: str, opt_out: bool) -> bytes:
    """A member's value in the brand's directory (:data:`PersonValue`, what :func:`shown` decodes)."""
    return encode((external_id, display_name, display, pseudonym, opt_out))


def standing_entry(board: str, period: str, scope: str, member_id: int) -> bytes:
    """The rebuild log's entry for a write of a member's standing on one slot."""
    return encode(("z", board, period, scope, member_id))


def directory_entry(member_id: int) -> bytes:
    """The rebuild log's entry for a write of a member's entry in the brand's directory."""
    return encode(("n", member_id))


def decode_entry(raw: bytes | str) -> list[Any]:
    """A rebuild log entry: ``["z", board, period, scope, member id]`` or ``["n", member id]``."""
    return list(msgspec.json.decode(raw))


def write_entry(write: Write) -> bytes:
    """The rebuild log's entry for ``write``."""
    slot = write.slot
    return standing_entry(slot.board.key, slot.period.id, slot.scope, write.member_id)


def listing(brand_id: int, info: MemberInfo) -> Listing:
    """What the brand's directory keeps of a member (every board's label follows from it)."""
    return Listing(
        brand_id=brand_id,
        member_id=info.member_id,
        external_id=info.external_id,
        display_name=info.display_name,
        display=info.display,
        pseudonym=info.pseudonym,
        opt_out=info.opt_out,
    )


def shown(board: BoardDef, brand_id: int, member_id: int, raw: bytes | str) -> ListingValue:
    """What ``board`` shows of a directory entry: no label at all while opted out of a public board."""
    external_id, display_name, display, pseudonym, opt_out = PERSON.decode(raw)
    if board.visibility == "public" and opt_out:
        return external_id, ""
    label = ranking.label(
        policy=board.display,
        choice=display,
        display_name=display_name,
        pseudonym=pseudonym,
        brand_id=brand_id,
        member_id=member_id,
    )
    return external_id, label


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
