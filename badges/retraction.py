"""Badges' part of a retraction: direct-rule counters and awards, and the award of a clawed-back completion.

:class:`BadgesUndo` is the badges' :class:`engine.grants.EventUndo`; :func:`revoke_function` is exposed to the
challenges package through :class:`engine.grants.BadgeRevoker` (both wired in ``web/wiring.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from badges import repository as repo
from badges import service
from badges.criteria import instance_key, rule_matches
from badges.orm import BadgeAwardRow
from engine import reversal
from engine.retraction_models import Undone

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from badges.models import BadgeDef
    from badges.openbadges import Urls
    from engine.grants import BadgeRevoker
    from engine.ids import MemberId
    from engine.retraction_models import RetractedEvent
    from engine.tenants import Brand


def revoke_function(urls: Urls) -> BadgeRevoker:
    """A :class:`~engine.grants.BadgeRevoker` revoking with ``badge.revoked`` notices and hosted assertions."""

    async def badges_revoke(
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
        uid = await session.scalar(
            select(BadgeAwardRow.uid).where(
                BadgeAwardRow.brand_id == brand.id,
                BadgeAwardRow.member_id == member_id,
                BadgeAwardRow.badge_key == badge_key,
                BadgeAwardRow.source == source,
                BadgeAwardRow.source_ref == instance_key(source, source_ref),
                BadgeAwardRow.revoked_at.is_(None),
            )
        )
        if uid is None:
            return []
        revoked = await service.revoke(
            session, brand=brand, member_id=member_id, badge_key=badge_key, reason=reason, now=now, urls=urls,
            award=uid,
        )  # fmt: skip
        return [a.uid for a in revoked]

    return badges_revoke


class BadgesUndo:
    """:class:`engine.grants.EventUndo` for badges' direct rules: the event no longer counts towards them.

    Each active badge whose rule the event matched loses one count when the event is retracted whole (a
    partial refund leaves the count). Under the ``claw_back`` policy an award of that rule the new count no
    longer reaches is revoked (a level above it, a repeatable award past it, a single award below the rule's
    count), with its bonus points taken back (cap at zero); a revoked award is not given again automatically,
    as after any revocation. Under ``keep`` awards stay.
    """

    name = "badges"

    def __init__(self, urls: Urls) -> None:
        self._urls = urls

    async def undo(self, session: AsyncSession, target: RetractedEvent) -> Undone:
        """Lower the counters of the rules the event matched; claw back awards they no longer reach."""
        if not target.whole:
            return Undone()
        event, brand, member_id = target.event, target.brand, target.member_id
        badges = [
            b
            for b in await repo.load_badges(session, brand.id)
            if b.rule is not None
            and rule_matches(b, event_type=event.type, properties=event.properties, member=target.member)
        ]
        if not badges:
            return Undone()
        counts = await repo.load_counts(
            session, brand_id=brand.id, member_ids={member_id}, keys={b.key for b in badges}
        )
        lowered = {(member_id, b.key): max(0, counts.get((member_id, b.key), 0) - 1) for b in badges}
        await repo.save_counts(session, brand_id=brand.id, counts=lowered, now=target.now)
        report: dict[str, Any] = {"counts": {key: count for (_, key), count in lowered.items()}}
        if target.policy.completions == "claw_back":
            revoked: list[str] = []
            for badge in badges:
                revoked.extend(await self._claw_back(session, target, badge, lowered[(member_id, badge.key)]))
            if revoked:
                report["revoked"] = revoked
        return Undone(report=report)

    async def _claw_back(self, session: AsyncSession, target: RetractedEvent, badge: BadgeDef, count: int) -> list[str]:
        assert badge.rule is not None
        rows = (
            await session.scalars(
                select(BadgeAwardRow).where(
                    BadgeAwardRow.brand_id == target.brand.id,
                    BadgeAwardRow.member_id == target.member_id,
                    BadgeAwardRow.badge_key == badge.key,
                    BadgeAwardRow.source == "rule",
                    BadgeAwardRow.revoked_at.is_(None),
                )
            )
        ).all()
        thresholds = {level.key: level.threshold for level in badge.levels}
        unreached = [
            row
            for row in rows
            if (row.level and thresholds.get(row.level, 0) > count)
            or (row.instance.startswith("rule:") and int(row.instance[5:] or 0) * badge.rule.count > count)
            or (not row.level and not row.instance and count < badge.rule.count)
        ]
        reason = f"retraction of event {target.event.id}"
        done: list[str] = []
        for row in unreached:
            await service.revoke(
                session, brand=target.brand, member_id=target.member_id, badge_key=badge.key, reason=reason,
                now=target.now, urls=self._urls, award=row.uid,
            )  # fmt: skip
            if row.event_key:
                earned = await reversal.earned_by(
                    session, target.brand, member_id=target.member_id, event_key=row.event_key, sources=("badge",),
                    key=badge.key,
                )  # fmt: skip
                await reversal.take_back(
                    session, target.brand, member_id=target.member_id, event_key=row.event_key, lot_ids=list(earned),
                    points=min(sum(earned.values()), row.points), reason=reason, now=target.now,
                )  # fmt: skip
            done.append(f"{badge.key}{':' + row.level if row.level else ''}")
        return done
