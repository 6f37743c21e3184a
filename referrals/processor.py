"""The referrals pipeline step: a friend's first qualifying event pays both sides, exactly once.

Runs inside the event's transaction with the friend's member row locked (the pipeline locks every
member of a request), so two concurrent first purchases of one friend queue; the transition out of
``joined`` is a conditional UPDATE, so only one of them pays. Guards: a device id or payment token the
referrer's events also carried rejects the referral (self-referral); a referrer past the monthly cap
has it held for review in the console.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from engine.db import chunks, on_postgres
from engine.effects import Notification, PointsAwarded
from engine.ids import MemberId
from engine.orm import MemberRow
from engine.periods import PeriodKind, period_bounds
from engine.predicates import matches_event
from referrals import service
from referrals.orm import ReferralRow

if TYPE_CHECKING:
    from engine.pipeline import EventContext, UnitOfWork


_FINGERPRINTS = frozenset(service.FINGERPRINT_PROPERTIES)
"""A set: most events carry none of these properties, which one ``isdisjoint`` tells."""


class ReferralProcessor:
    """Pays referrals when the friend qualifies; remembers hashed device ids and payment tokens."""

    name = "referrals"

    async def process(self, uow: UnitOfWork) -> None:
        """Evaluate each new event of a referred friend against the brand's referral policy."""
        policy = service.policy_of(uow.brand.settings)
        qualifying: set[int] = set()
        if policy is not None:
            predicate = policy.predicate  # parsed once a unit, not once an event
            for ctx in uow.events:
                event = ctx.event
                if matches_event(policy.event, predicate, event_type=event.type, properties=event.properties,
                                 member=ctx.member):  # fmt: skip
                    qualifying.add(ctx.index)
        # One read for the unit: which of the qualifying events' members are friends still to be paid (the
        # step used to look each event's member up on its own: a query per purchase of a batch).
        pending = await _joined_friends(uow, {ctx.member_id for ctx in uow.events if ctx.index in qualifying})
        for ctx in uow.events:
            properties = ctx.event.properties
            if not _FINGERPRINTS.isdisjoint(properties) and any(properties.get(n) for n in _FINGERPRINTS):
                await service.remember_fingerprints(
                    uow.session, brand_id=uow.brand.id, member_id=ctx.member_id, properties=dict(properties)
                )
            if policy is not None and ctx.index in qualifying and ctx.member_id in pending:
                await self._qualify(uow, ctx, policy)

    async def _qualify(self, uow: UnitOfWork, ctx: EventContext, policy: service.ReferralPolicy) -> None:
        session, brand = uow.session, uow.brand
        referral = await session.scalar(
            select(ReferralRow).where(
                ReferralRow.brand_id == brand.id, ReferralRow.friend_id == ctx.member_id, ReferralRow.status == "joined"
            )
        )
        if referral is None:
            return
        referrer_id = MemberId(referral.referrer_id)
        status, reason = "paid", ""
        if await service.shares_fingerprint(session, brand_id=brand.id, a=referrer_id, b=ctx.member_id):
            status, reason = "rejected", "self-referral: same device or payment token"
        else:
            start, end = period_bounds(PeriodKind.MONTHLY, uow.now, uow.tz)
            paid = await session.scalar(
                select(func.count())
                .select_from(ReferralRow)
                .where(
                    ReferralRow.brand_id == brand.id,
                    ReferralRow.referrer_id == referrer_id,
                    ReferralRow.status == "paid",
                    ReferralRow.paid_at >= start,
                    ReferralRow.paid_at < end,
                )
            )
            if int(paid or 0) >= policy.monthly_cap:
                status, reason = "held", "monthly cap reached"
        won = await session.execute(
            update(ReferralRow)
            .where(ReferralRow.id == referral.id, ReferralRow.status == "joined")
            .values(
                status=status,
                reason=reason,
                event_key=ctx.event.id,
                qualified_at=uow.now,
                paid_at=uow.now if status == "paid" else None,
            )
        )
        if not won.rowcount or status != "paid":  # type: ignore[attr-defined]
            return
        if policy.friend_points > 0:
            ctx.emit(PointsAwarded(points=policy.friend_points, source="referral", key="friend"))
        await service.pay(
            session, brand, referrer_id=referrer_id, policy=policy, event_key=ctx.event.id,
            occurred_at=ctx.event.occurred_at, now=uow.now,
        )  # fmt: skip
        referrer = await session.scalar(select(MemberRow.external_id).where(MemberRow.id == referrer_id))
        ctx.emit(Notification(topic="referral.qualified", data={"referrer": referrer, "friend": ctx.event.member}))

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Nothing derived to update."""


_JOINED = text(
    "SELECT m.member_id FROM unnest(:member_ids) AS m(member_id)"
    " CROSS JOIN LATERAL (SELECT referrals.status FROM referrals WHERE referrals.brand_id = :brand_id"
    " AND referrals.friend_id = m.member_id OFFSET 0) AS r WHERE r.status = 'joined'"
).bindparams(bindparam("member_ids", type_=ARRAY(BigInteger())))
"""PostgreSQL: the members among a unit's whose referral waits for their qualifying event, one probe each by
the (brand_id, friend_id) key (as the caps' read in engine.points; OFFSET 0 keeps the status check out of it)."""


async def _joined_friends(uow: UnitOfWork, member_ids: set[MemberId]) -> set[MemberId]:
    """Which of ``member_ids`` are friends whose referral is still ``joined`` (waiting to be paid)."""
    if not member_ids:
        return set()
    session, members = uow.session, sorted(member_ids)
    if on_postgres(session):
        rows = await session.execute(_JOINED, {"brand_id": uow.brand.id, "member_ids": members})
        return {MemberId(member_id) for (member_id,) in rows}
    found: set[MemberId] = set()
    for chunk in chunks(members):
        found.update(
            MemberId(member_id)
            for member_id in await session.scalars(
                select(ReferralRow.friend_id).where(
                    ReferralRow.brand_id == uow.brand.id,
                    ReferralRow.status == "joined",
                    ReferralRow.friend_id.in_(chunk),
                )
            )
        )
    return found
