"""Response bodies of the members endpoints (requests are :mod:`engine.members` and :mod:`engine.points`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from engine.members import MemberEvent
from engine.points import LedgerEntry


class MemberOut(msgspec.Struct, kw_only=True):
    """A member, with the current points balance."""

    external_id: str
    display_name: str
    locale: str
    attributes: dict[str, Any]
    created_at: datetime
    points: int


class MemberExport(msgspec.Struct, kw_only=True):
    """Everything Questline holds about one member."""

    member: MemberOut
    ledger: list[LedgerEntry]
    events: list[MemberEvent]
    sections: dict[str, Any]
    """Each domain's data (challenges, badges, leaderboards), by name."""
    exported_at: datetime
