"""Points-ledger rules: lots, first-expiring-first consumption, settlement and replay. Pure; no I/O.

A lot is an ``earn`` entry of the ledger. What is left of it is its points minus what consuming
entries (spend, expire, cancel) allocated from it. A held lot counts as pending until its ``release``
entry; every other lot with something left counts as available. :func:`replay` folds a member's
entries into the balance the ``point_balances`` row must hold.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable

#: Entry kinds. ``writeoff`` entries were posted once by migration 0006 for balances that old
#: adjustments had driven below zero (the debt is written off; see docs/rewards.md).
EARN, SPEND, EXPIRE, CANCEL, RELEASE, WRITEOFF = "earn", "spend", "expire", "cancel", "release", "writeoff"
#: The ``source`` of a lot that gives back the points of a cancelled redemption (not counted as earned).
REFUND = "refund"
_FAR = datetime.max.replace(tzinfo=None)


class Lot(msgspec.Struct, frozen=True, kw_only=True):
    """A lot with what is left of it."""

    id: int
    points: int
    remaining: int
    available_at: datetime
    expires_at: datetime | None
    held: bool = False
    """Counted as pending when written (``available_at`` later than its creation)."""
    released: bool = False
    """A held lot whose ``release`` entry is written (counted as available since)."""

    def pending_at(self, now: datetime) -> bool:
        """Whether the lot is still pending at ``now``."""
        return self.available_at > now

    def expired_at(self, now: datetime) -> bool:
        """Whether the lot's date has passed at ``now``."""
        return self.expires_at is not None and self.expires_at <= now

    def counted_pending(self) -> bool:
        """Whether the balance row counts the lot as pending (held and not yet released)."""
        return self.held and not self.released


def fefo_key(lot: Lot) -> tuple[bool, datetime, int]:
    """Sort key: first-expiring-first, undated lots last, ties by id (oldest first)."""
    if lot.expires_at is None:
        return (True, _FAR, lot.id)
    return (False, lot.expires_at.replace(tzinfo=None), lot.id)


def spendable(lots: Iterable[Lot], now: datetime) -> list[Lot]:
    """Lots that can be spent at ``now``, in consumption order."""
    return sorted(
        (lot for lot in lots if lot.remaining > 0 and not lot.pending_at(now) and not lot.expired_at(now)),
        key=fefo_key,
    )


def allocate(lots: Iterable[Lot], amount: int, now: datetime) -> tuple[list[tuple[int, int]], int]:
    """Take ``amount`` from the spendable lots first-expiring-first.

    Returns:
        ``(lot id, points taken)`` pairs and the shortfall (0 when the lots covered the amount).
    """
    taken: list[tuple[int, int]] = []
    left = amount
    for lot in spendable(lots, now):
        if left <= 0:
            break
        take = min(lot.remaining, left)
        taken.append((lot.id, take))
        left -= take
    return taken, left


class Settlement(msgspec.Struct, frozen=True, kw_only=True):
    """What is due on a member's lots at an instant: releases and expiries."""

    releases: list[tuple[int, int]] = []
    """``(lot id, points)`` moving from pending to available."""
    expiries: list[tuple[int, int, bool]] = []
    """``(lot id, points, from_pending)``: what is left of the lot expires."""

    @property
    def empty(self) -> bool:
        """Whether nothing is due."""
        return not self.releases and not self.expiries


def settle(lots: Iterable[Lot], now: datetime, *, expire_all: bool = False) -> Settlement:
    """Releases of held lots whose time came and expiries of lots whose date passed (all lots if ``expire_all``)."""
    releases: list[tuple[int, int]] = []
    expiries: list[tuple[int, int, bool]] = []
    for lot in sorted(lots, key=lambda lot: lot.id):
        if lot.remaining <= 0:
            continue
        pending = lot.counted_pending()
        if pending and not lot.pending_at(now):
            releases.append((lot.id, lot.remaining))
            pending = False
        if expire_all or lot.expired_at(now):
            expiries.append((lot.id, lot.remaining, pending))
    return Settlement(releases=releases, expiries=expiries)


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    """The figures of a member's ``point_balances`` row."""

    available: int = 0
    pending: int = 0
    lifetime_earned: int = 0
    lifetime_spent: int = 0


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """A ledger entry as :func:`replay` needs it."""

    id: int
    kind: str
    points: int
    source: str = ""
    lot_id: int | None = None
    held: bool = False


def replay(entries: Iterable[Entry], allocations: Iterable[tuple[int, int]]) -> Balance:
    """The balance a member's entries and allocations (``(lot id, points)``) add up to."""
    taken: dict[int, int] = {}
    for lot_id, points in allocations:
        taken[lot_id] = taken.get(lot_id, 0) + points
    lots: dict[int, Entry] = {}
    released: set[int] = set()
    earned = spent = 0
    for entry in entries:
        if entry.kind == EARN:
            lots[entry.id] = entry
            if entry.source == REFUND:
                spent -= entry.points
            else:
                earned += entry.points
        elif entry.kind in (SPEND, WRITEOFF):
            spent -= entry.points
        elif entry.kind == RELEASE and entry.lot_id is not None:
            released.add(entry.lot_id)
    available = pending = 0
    for lot in lots.values():
        left = lot.points - taken.get(lot.id, 0)
        if lot.held and lot.id not in released:
            pending += left
        else:
            available += left
    return Balance(available=available, pending=pending, lifetime_earned=earned, lifetime_spent=spent)
