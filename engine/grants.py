"""What one domain offers another, as engine-level Protocols.

Domains never import each other (import-linter's layered contract). When one needs another's service —
a leaderboard period whose reward includes a badge, a challenge completion that grants one — the
composition root (``web/wiring.py``) passes the providing domain's implementation as a typed field, and
the consuming domain depends only on the Protocol defined here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.effects import Effect
    from engine.ids import MemberId
    from engine.retraction_models import RetractedEvent, Undone
    from engine.tenants import Brand


class BadgeGranter(Protocol):
    """Award a badge inside the caller's transaction; returns the effects it wrote (none if already held)."""

    async def __call__(
        self,
        session: AsyncSession,
        *,
        brand: Brand,
        member_id: MemberId,
        badge_key: str,
        reason: str,
        source: str,
        source_ref: str,
        now: datetime,
    ) -> list[Effect]:
        """Award ``badge_key`` to ``member_id`` exactly once for ``(source, source_ref)``."""
        ...


class TierMultipliers(Protocol):
    """The earning multiplier of each of the brand's tiers (tier key → factor), for the points step."""

    async def __call__(self, session: AsyncSession, *, brand: Brand, version: int) -> Mapping[str, float]:
        """Factors by tier key for the brand at configuration ``version`` (empty when it has no tiers)."""
        ...


class MemberMetric(Protocol):
    """A per-member number another domain keeps (badges held, challenges completed), as SQL.

    The segments domain reads it inside its own statements (the pipeline's member lock, a segment count),
    so it costs no round trip of its own; the providing domain owns the table it reads.
    """

    def __call__(self, *, brand_id: Any, member_id: Any, arg: str) -> Any:
        """A scalar SQL expression for the member whose id is the SQL expression ``member_id``.

        ``arg`` narrows it (a badge key; empty: all).
        """
        ...


class SegmentMembership(Protocol):
    """The segments each of some members is in now (for predicates with a ``segment`` leaf outside the pipeline)."""

    async def __call__(
        self, session: AsyncSession, *, brand: Brand, member_ids: Sequence[MemberId], now: datetime
    ) -> Mapping[MemberId, frozenset[str]]:
        """Slugs per member (members in none are mapped to an empty set)."""
        ...


@runtime_checkable
class LockColumns(Protocol):
    """A pipeline step that reads per-member values with the pipeline's member lock.

    The pipeline reads the expressions of every such step in one statement once the unit's members are
    locked (not in the ``SELECT … FROM members … FOR NO KEY UPDATE`` itself, whose columns come from the
    snapshot before a wait for a lock: :func:`engine.member_locks.ensure_and_lock`) and hands the values to each
    event's context (``EventContext.facts``): the steps share one round trip.
    """

    async def lock_columns(
        self, session: AsyncSession, *, brand: Brand, version: int, now: datetime
    ) -> Mapping[str, Any]:
        """Label → SQL expression correlated to ``members`` (``engine.orm.MemberRow``); empty for none."""


class EventUndo(Protocol):
    """A domain's part of a retraction (:mod:`engine.retraction`): undo what the event did there.

    Runs inside the retraction's transaction, under the member's lock, after the event is marked retracted
    in the log (replays of the log no longer see it, or see the rest of its amount).
    """

    name: str
    """The key of the domain's report in the retraction's outcome."""

    async def undo(self, session: AsyncSession, target: RetractedEvent) -> Undone:
        """Undo ``target.share`` of the event for the member; returns a report and post-commit work."""
        ...


class BadgeRevoker(Protocol):
    """Revoke the member's live award of a badge given for ``(source, source_ref)``; the badge keys revoked."""

    async def __call__(
        self,
        session: AsyncSession,
        *,
        brand: Brand,
        member_id: MemberId,
        badge_key: str,
        source: str,
        source_ref: str,
        reason: str,
        now: datetime,
    ) -> list[str]:
        """Revoke (with a ``badge.revoked`` notice) what ``(source, source_ref)`` awarded; nothing if none is live."""
        ...


@dataclass(frozen=True, slots=True)
class PeriodScores:
    """A board period as a league reads it: its id, when it may be closed, and each member's score.

    ``scores`` holds ``(member_id, value, reached_at)`` with ``value`` turned so that higher is better;
    only members listed on the board (above its minimum, not opted out of a public board) appear.
    """

    period: str
    ends_at: datetime
    closes_at: datetime
    """``ends_at`` plus the board's grace: late events may still count until then."""
    scores: list[tuple[int, int, datetime]]
    decimals: int = 0
    """Score units per displayed unit: ``display = units / 10**decimals``."""
    descending: bool = True
    """Whether the board ranks higher totals first (``value`` is then the units, else their negation)."""


class BoardScores(Protocol):
    """Read a board's period scores (the leaderboards package's totals in SQL) for the leagues package."""

    async def __call__(
        self, session: AsyncSession, *, brand: Brand, board_key: str, period: str | None, now: datetime
    ) -> PeriodScores | None:
        """The scores of ``period`` (``None``: the period containing ``now``, in the brand's timezone).

        ``None`` when the brand has no such active board or the board has no fixed periods
        (``all_time``, ``window``).
        """
        ...
