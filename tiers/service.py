"""Tiers: the re-evaluation job, overrides, "choose your benefit", a member's tier view and the simulation."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import msgspec
from sqlalchemy import insert, select

from engine.errors import Conflict, NotFound, ValidationError
from engine.ids import MemberId
from engine.orm import MemberRow, OutboxRow
from engine.periods import local_day, local_midnight
from engine.pipeline import outbox_row
from engine.points import post_entry
from tiers import repository as repo
from tiers.models import TierProgram, build_program
from tiers.rules import Progress, birthday_today, progress, review, review_at, simulate, tier_for, window_days

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.members import Member
    from engine.tenants import Brand

_OUTBOX = cast("Table", OutboxRow.__table__)
_TICK = timedelta(microseconds=1)


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One change of a member's tier."""

    tier: str | None
    previous: str | None
    change: str
    reason: str
    event: str | None
    at: datetime


class MemberTier(msgspec.Struct, frozen=True, kw_only=True):
    """A member's tier as the API and the portal show it."""

    member: str
    tier: str | None
    since: datetime | None
    review_at: datetime | None
    keep_until: datetime | None
    override_until: datetime | None
    override_reason: str
    value: float
    """The metric over the current window."""
    window_ends: datetime
    next_tier: str | None
    to_next: float
    keep_needed: float
    """What the member still needs by ``review_at`` to keep the current tier."""
    ratio: float
    choice: str | None
    """The reward the member chose for the current tier, if any."""
    history: list[HistoryEntry]


class Evaluation(msgspec.Struct, kw_only=True):
    """What one re-evaluation run did."""

    renewed: int = 0
    downgraded: int = 0
    upgraded: int = 0
    kept: int = 0
    overrides_ended: int = 0
    birthdays: int = 0


def grace_ends(review: datetime, grace_days: int, tz: ZoneInfo) -> datetime:
    """When the grace period after a window ending at ``review`` ends: local midnight ``grace_days`` days later."""
    return local_midnight(local_day(review, tz) + timedelta(days=grace_days), tz) if grace_days else review


async def window_value(
    session: AsyncSession, *, brand: Brand, program: TierProgram, member_id: MemberId, since: datetime, at: datetime,
    grace_days: int = 0,
) -> tuple[float, datetime]:  # fmt: skip
    """The metric over the window containing ``at`` (extended by ``grace_days``), and when that window ends."""
    tz = brand.tz
    first, end = window_days(program.qualification.window, local_day(at, tz), member_since=local_day(since, tz))
    counters = await repo.day_counters(
        session, brand_id=brand.id, metric=program.qualification.metric.signature(), member_ids=[member_id], first=first
    )
    last = end + timedelta(days=grace_days)
    value = sum(v for d, v in counters.get(member_id, {}).items() if first <= d < last)
    return value, local_midnight(end, tz)


async def member_tier(db: Database, *, brand: Brand, member: Member, now: datetime) -> MemberTier:
    """The member's current tier, progress to the next one, what keeping it takes, and the history."""
    async with db.read() as session:
        program = await repo.load_program(session, brand.id) or TierProgram()
        current = (await repo.current_tiers(session, brand_id=brand.id, member_ids=[member.id]))[member.id]
        value, ends = await window_value(
            session, brand=brand, program=program, member_id=member.id, since=member.created_at, at=now
        )
        rows = await repo.history(session, brand_id=brand.id, member_id=member.id)
        choice = await repo.bonus(session, member_id=member.id, kind="choice", period=current.tier or "")
    shown: Progress = progress(program, current=current.tier, value=value)
    return MemberTier(
        member=member.external_id, tier=current.tier, since=current.since, review_at=current.review_at,
        keep_until=current.keep_until, override_until=current.override_until,
        override_reason=current.override_reason, value=value, window_ends=ends, next_tier=shown.next_tier,
        to_next=shown.to_next, keep_needed=shown.keep_needed, ratio=shown.ratio, choice=choice,
        history=[
            HistoryEntry(tier=r.tier, previous=r.previous, change=r.change, reason=r.reason, event=r.event_key, at=r.at)
            for r in rows
        ],
    )  # fmt: skip


async def _notify(
    session: AsyncSession, *, brand: Brand, external_id: str, topic: str, data: dict[str, Any], now: datetime
) -> None:
    await session.execute(
        insert(_OUTBOX), [outbox_row(brand_id=brand.id, topic=topic, data={"member": external_id, **data}, now=now)]
    )


async def _external_ids(
    session: AsyncSession, ids: list[MemberId]
) -> dict[MemberId, tuple[str, datetime, dict[str, Any]]]:
    if not ids:
        return {}
    rows = await session.execute(
        select(MemberRow.id, MemberRow.external_id, MemberRow.created_at, MemberRow.attributes).where(
            MemberRow.id.in_(ids)
        )
    )
    return {MemberId(i): (ext, at, dict(attrs or {})) for i, ext, at, attrs in rows}


async def evaluate(db: Database, *, brand: Brand, now: datetime) -> Evaluation:
    """Re-evaluate members whose window ended (after the grace period) or whose override ended; pay birthdays.

    Downgrades happen only here: at a window's end plus ``grace_days``, a member whose metric over the
    ended window (and the grace days) no longer reaches their tier moves down to what it earns, unless
    the minimum stay (``keep_months``) is not over; one who reaches it is renewed. Idempotent.
    """
    result = Evaluation()
    async with db.read() as session:
        if await repo.load_program(session, brand.id) is None:
            return result
    async with db.write() as session:
        program = await repo.load_program(session, brand.id)
        if program is None or not program.tiers:
            return result
        grace = program.qualification.grace_days
        due = await repo.due_for_review(session, brand_id=brand.id, before=now)
        people = await _external_ids(session, [c.member_id for c in due])
        for current in due:
            external_id, since, _ = people[current.member_id]
            if current.override_until is not None and current.override_until <= now:
                await _end_override(session, brand=brand, program=program, current=current, since=since, now=now,
                                    external_id=external_id, result=result)  # fmt: skip
            elif current.override_until is None and current.review_at is not None:
                if grace_ends(current.review_at, grace, brand.tz) > now:
                    continue  # still in the grace period
                await _review(session, brand=brand, program=program, current=current, since=since, now=now,
                              external_id=external_id, result=result)  # fmt: skip
        result.birthdays = await _birthdays(session, brand=brand, program=program, now=now)
    return result


async def _review(
    session: AsyncSession, *, brand: Brand, program: TierProgram, current: repo.Current, since: datetime,
    now: datetime, external_id: str, result: Evaluation,
) -> None:  # fmt: skip
    assert current.review_at is not None
    ended = current.review_at - _TICK
    value, _ = await window_value(
        session, brand=brand, program=program, member_id=current.member_id, since=since, at=ended,
        grace_days=program.qualification.grace_days,
    )  # fmt: skip
    outcome = review(program, current=current.tier, value=value, now=now, keep_until=current.keep_until)
    window = program.qualification.window
    next_review = review_at(window, current.review_at, brand.tz, member_since=since)
    if outcome.change == "kept":
        # Minimum stay not over: look again when it is (or at the next window end, whichever first).
        later = min(next_review, current.keep_until) if current.keep_until and current.keep_until > now else next_review
        await repo.reschedule(session, member_id=current.member_id, review_at=later if outcome.tier else None)
        result.kept += 1
        return
    await repo.set_tier(
        session, brand_id=brand.id, current=current, tier=outcome.tier, change=outcome.change, now=now,
        review_at=next_review if outcome.tier else None,
        keep_until=current.keep_until if outcome.change == "renewed" else None,
        reason=f"window ended {current.review_at.isoformat()}: {value:g}",
    )  # fmt: skip
    repo.count_change(session, brand, previous=current.tier, tier=outcome.tier)
    if outcome.change == "renewed":
        result.renewed += 1
    else:
        result.downgraded += 1
    await _notify(session, brand=brand, external_id=external_id, topic=f"tier.{outcome.change}",
                  data={"tier": outcome.tier, "previous": current.tier}, now=now)  # fmt: skip


async def _end_override(
    session: AsyncSession, *, brand: Brand, program: TierProgram, current: repo.Current, since: datetime,
    now: datetime, external_id: str, result: Evaluation,
) -> None:  # fmt: skip
    value, _ = await window_value(
        session, brand=brand, program=program, member_id=current.member_id, since=since, at=now
    )
    target = tier_for(program, value)
    tier = target.key if target else None
    old, new = program.rank(current.tier), program.rank(tier)
    change = "upgraded" if new > old else ("downgraded" if new < old else "renewed")
    await repo.set_tier(
        session, brand_id=brand.id, current=current, tier=tier, change=change, now=now,
        review_at=review_at(program.qualification.window, now, brand.tz, member_since=since) if tier else None,
        reason=f"override ended ({current.override_reason})",
    )  # fmt: skip
    repo.count_change(session, brand, previous=current.tier, tier=tier)
    result.overrides_ended += 1
    await _notify(session, brand=brand, external_id=external_id, topic=f"tier.{change}",
                  data={"tier": tier, "previous": current.tier, "override_ended": True}, now=now)  # fmt: skip


async def _birthdays(session: AsyncSession, *, brand: Brand, program: TierProgram, now: datetime) -> int:
    """Birthday bonus: members of a tier with ``birthday_points`` whose ``birthday`` is today get them once a year."""
    paying = {t.key: t.birthday_points for t in program.tiers if t.birthday_points}
    if not paying:
        return 0
    today = local_day(now, brand.tz)
    rows = await session.execute(
        select(MemberRow.id, MemberRow.external_id, MemberRow.attributes, MemberRow.tier).where(
            MemberRow.brand_id == brand.id, MemberRow.tier.in_(sorted(paying))
        )
    )
    paid = 0
    for member_id, external_id, attributes, tier in rows:
        if not birthday_today((attributes or {}).get("birthday"), today):
            continue
        if not await repo.take_bonus(session, brand_id=brand.id, member_id=MemberId(member_id), kind="birthday",
                                     period=str(today.year), value=str(paying[tier]), now=now):  # fmt: skip
            continue
        await post_entry(
            session, brand_id=brand.id, member_id=MemberId(member_id), points=paying[tier], source="tier",
            key="birthday", reason=f"birthday bonus ({tier})", occurred_at=now, tz=brand.tz, now=now,
        )  # fmt: skip
        await _notify(session, brand=brand, external_id=external_id, topic="tier.birthday_bonus",
                      data={"tier": tier, "points": paying[tier]}, now=now)  # fmt: skip
        paid += 1
    return paid


async def override(
    db: Database, *, brand: Brand, member: Member, tier: str | None, until: datetime, reason: str, now: datetime
) -> None:
    """Set the member's tier by hand until ``until`` (then the job re-evaluates it).

    Raises:
        NotFound: no such tier.
        ValidationError: ``until`` is not in the future.
    """
    if until <= now:
        raise ValidationError("`until` must be in the future", field="$.until")
    async with db.write() as session:
        program = await repo.load_program(session, brand.id) or TierProgram()
        if tier is not None and program.get(tier) is None:
            raise NotFound(f"no tier {tier!r} in this brand", field="$.tier")
        current = (await repo.current_tiers(session, brand_id=brand.id, member_ids=[member.id]))[member.id]
        await repo.set_tier(session, brand_id=brand.id, current=current, tier=tier, change="override", now=now,
                            override_until=until, reason=reason)  # fmt: skip
        repo.count_change(session, brand, previous=current.tier, tier=tier)
        await _notify(session, brand=brand, external_id=member.external_id, topic="tier.overridden",
                      data={"tier": tier, "previous": current.tier, "until": until.isoformat(), "reason": reason},
                      now=now)  # fmt: skip


async def choose(db: Database, *, brand: Brand, member: Member, reward: str, now: datetime) -> str:
    """Record the member's pick among their tier's ``choices``, once per tier; returns the tier.

    The brand fulfils it from the ``tier.benefit_chosen`` webhook (or the rewards catalog).

    Raises:
        NotFound: the member has no tier.
        ValidationError: ``reward`` is not one of the tier's choices.
        Conflict: a benefit was already chosen for this tier.
    """
    async with db.write() as session:
        program = await repo.load_program(session, brand.id) or TierProgram()
        current = (await repo.current_tiers(session, brand_id=brand.id, member_ids=[member.id]))[member.id]
        spec = program.get(current.tier)
        if spec is None:
            raise NotFound("the member has no tier", field="member")
        if reward not in spec.choices:
            raise ValidationError(f"{reward!r} is not one of the {spec.key} tier's choices", field="$.reward")
        if not await repo.take_bonus(session, brand_id=brand.id, member_id=member.id, kind="choice",
                                     period=spec.key, value=reward, now=now):  # fmt: skip
            raise Conflict(f"a benefit was already chosen for the {spec.key} tier")
        await _notify(session, brand=brand, external_id=member.external_id, topic="tier.benefit_chosen",
                      data={"tier": spec.key, "reward": reward}, now=now)  # fmt: skip
        return spec.key


async def simulate_program(db: Database, *, brand: Brand, proposed: TierProgram, now: datetime) -> dict[str, Any]:
    """How many members a changed program would move, from the current windows' counters (nothing is changed)."""
    proposed = build_program(proposed)
    async with db.read() as session:
        program = await repo.load_program(session, brand.id) or TierProgram()
        signature = program.qualification.metric.signature()
        current = await repo.all_current(session, brand_id=brand.id)
        first = local_day(now, brand.tz) - timedelta(days=3660)
        members = sorted(set(current) | set(await repo.members_with_counters(
            session, brand_id=brand.id, metric=signature, first=first)))  # fmt: skip
        since = await repo.member_since(session, brand_id=brand.id, member_ids=members)
        counters = await repo.day_counters(
            session, brand_id=brand.id, metric=signature, member_ids=members, first=first
        )
    today = local_day(now, brand.tz)
    values: dict[MemberId, float] = {}
    for member_id in members:
        start, end = window_days(
            proposed.qualification.window, today, member_since=local_day(since[member_id], brand.tz)
        )
        values[member_id] = sum(v for d, v in counters.get(member_id, {}).items() if start <= d < end)
    return simulate(program, proposed, values=values, current=current)


async def members_over_time(db: Database, *, brand: Brand, now: datetime, days: int) -> list[dict[str, Any]]:
    """Members per tier at the end of each of the last ``days`` local days (from the history)."""
    tz: ZoneInfo = brand.tz
    today = local_day(now, tz)
    start = local_midnight(today - timedelta(days=days - 1), tz)
    async with db.replica() as session:  # a console chart: the read replica when there is one
        counts = Counter(await repo.distribution(session, brand_id=brand.id))
        changes = await repo.changes_between(session, brand_id=brand.id, start=start, end=now + _TICK)
    # Walk back from today's counts, undoing each change.
    series: list[dict[str, Any]] = []
    pending = list(changes)
    for offset in range(days):
        day = today - timedelta(days=offset)
        end = local_midnight(day + timedelta(days=1), tz)
        while pending and pending[-1][0] >= end:
            _, previous, tier = pending.pop()
            if tier:
                counts[tier] -= 1
            if previous:
                counts[previous] += 1
        series.append({"day": day.isoformat(), "tiers": {k: v for k, v in counts.items() if v > 0}})
    return list(reversed(series))


async def evaluate_all(db: Database, *, now: datetime) -> dict[str, Evaluation]:
    """Run :func:`evaluate` for every brand with tiers; returns the brands' reports by slug."""
    from engine.tenants import list_brands

    async with db.read() as session:
        brands = await list_brands(session)
    reports: dict[str, Evaluation] = {}
    for brand in brands:
        reports[brand.slug] = await evaluate(db, brand=brand, now=now)
    return reports
