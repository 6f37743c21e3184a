import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from engine.earning import EarningRuleSpec, Multiplier
from engine.effects import Notification, PointsAwarded, TierChanged
from engine.events import Event
from engine.member_locks import ensure_and_lock
from engine.members import get_member
from engine.orm import MemberRow, OutboxRow
from engine.pipeline import Pipeline
from engine.points import PointsProcessor, balance
from engine.rules_store import put_rule
from tiers import repository as repo
from tiers import service
from tiers.models import Metric, Qualification, TierProgram, TierSpec, Window, build_program
from tiers.orm import TierHistoryRow
from tiers.processor import Programs, TiersProcessor

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def program(**qualification) -> TierProgram:
    return build_program(
        TierProgram(
            qualification=Qualification(**qualification),
            tiers=[
                TierSpec(key="silver", name={"en": "Silver"}, threshold=0),
                TierSpec(key="gold", name={"en": "Gold", "it": "Oro"}, threshold=100, multiplier=1.5),
                TierSpec(key="platinum", name={"en": "Platinum"}, threshold=500, multiplier=2.0, birthday_points=50),
            ],
        )
    )


async def setup(db, brand, clock, prog, *, points=10, per_unit=False):
    async with db.write() as session:
        await repo.save_program(session, brand_id=brand.id, program=prog, now=clock.now())
    spec = (
        EarningRuleSpec(key="buy", event_type="purchase", per_unit={"property": "amount"})
        if per_unit
        else EarningRuleSpec(key="buy", event_type="purchase", points=points)
    )
    await put_rule(db, brand_id=brand.id, spec=spec, now=clock.now())
    programs = Programs()
    return Pipeline(db, processors=[PointsProcessor(tier_multipliers=programs), TiersProcessor(programs)], clock=clock)


def purchase(i, member="m", at=T0, **props):
    return Event(id=f"e{i}", member=member, type="purchase", occurred_at=at, properties=props)


async def history_of(db, brand, external_id):
    async with db.read() as session:
        m = await get_member(session, brand_id=brand.id, external_id=external_id)
        rows = await repo.history(session, brand_id=brand.id, member_id=m.id)
    return [(r.change, r.previous, r.tier) for r in reversed(rows)]


async def test_upgrade_on_the_qualifying_event_and_multiplier_applies_after(db, brand, clock):
    b = brand.brand
    pipeline = await setup(db, b, clock, program())
    results = await pipeline.process(b, [purchase(i) for i in range(12)])
    changed = [(r.id, e.tier) for r in results for e in r.effects if isinstance(e, TierChanged)]
    # silver on the first event (threshold 0 reached by 10 points), gold on the tenth (100 points)
    assert changed == [("e0", "silver"), ("e9", "gold")]
    topics = [e.topic for r in results for e in r.effects if isinstance(e, Notification)]
    assert topics == ["tier.upgraded", "tier.upgraded"]
    # The multiplier applies from the next unit of work (the tier read with the member).
    later = await pipeline.process(b, [purchase(100)])
    awarded = [e for e in later[0].effects if isinstance(e, PointsAwarded)]
    assert (awarded[0].points, awarded[0].multiplier) == (15, 1.5)
    assert await history_of(db, b, "m") == [("upgraded", None, "silver"), ("upgraded", "silver", "gold")]
    async with db.read() as session:
        row = await session.scalar(select(MemberRow.tier).where(MemberRow.brand_id == b.id))
    assert row == "gold"


async def test_multiplier_stacks_with_time_limited_multipliers_by_multiplying(db, brand, clock):
    b = brand.brand
    pipeline = await setup(db, b, clock, program())
    await pipeline.process(b, [purchase(i) for i in range(10)])  # gold
    rule = EarningRuleSpec(
        key="buy", event_type="purchase", points=10,
        multipliers=[Multiplier(starts_at=T0 - timedelta(days=1), ends_at=T0 + timedelta(days=1), factor=2.0)],
    )  # fmt: skip
    await put_rule(db, brand_id=b.id, spec=rule, now=clock.now())
    result = await pipeline.process(b, [purchase(50)])
    awarded = next(e for e in result[0].effects if isinstance(e, PointsAwarded))
    assert (awarded.points, awarded.multiplier) == (30, 3.0)  # 10 x 2 (weekend) x 1.5 (gold)


async def test_spending_never_lowers_points_earned(db, brand, clock):
    from engine.points import post_entry

    b = brand.brand
    pipeline = await setup(db, b, clock, program(), points=60)
    await pipeline.process(b, [purchase(1)])
    async with db.write() as session:
        m = await get_member(session, brand_id=b.id, external_id="m")
        await post_entry(session, brand_id=b.id, member_id=m.id, points=-50, source="adjustment", key="x",
                         reason="spend", occurred_at=T0, tz=b.tz, now=T0)  # fmt: skip
    await pipeline.process(b, [purchase(2)])
    assert (await history_of(db, b, "m"))[-1] == ("upgraded", "silver", "gold")


@pytest.mark.parametrize("backend", ["postgres+redis"], indirect=True)
async def test_upgrade_exactly_once_under_concurrency(db, brand, clock):
    b = brand.brand
    pipeline = await setup(db, b, clock, program(), points=60)
    await pipeline.process(b, [purchase(0)])  # 60: silver
    await asyncio.gather(*(pipeline.process(b, [purchase(i)]) for i in range(1, 21)))
    # 20 concurrent requests cross gold (100) and platinum (500): each upgrade is recorded exactly once.
    assert await history_of(db, b, "m") == [
        ("upgraded", None, "silver"), ("upgraded", "silver", "gold"), ("upgraded", "gold", "platinum"),
    ]  # fmt: skip
    async with db.read() as session:
        sent = await session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.brand_id == b.id, OutboxRow.topic == "tier.upgraded")
        )
        m = await get_member(session, brand_id=b.id, external_id="m")
    assert sent == 3
    async with db.read() as session:
        assert await balance(session, brand_id=b.id, member_id=m.id) > 0


async def test_spend_metric_and_progress(db, brand, clock):
    b = brand.brand
    prog = program(metric=Metric(kind="property_sum", property="amount"), unit="€")
    pipeline = await setup(db, b, clock, prog, per_unit=True)
    await pipeline.process(b, [purchase(1, amount=80.5)])
    async with db.read() as session:
        m = await get_member(session, brand_id=b.id, external_id="m")
    view = await service.member_tier(db, brand=b, member=m, now=T0)
    assert (view.tier, view.next_tier, view.to_next) == ("silver", "gold", pytest.approx(19.5))
    assert view.window_ends == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)  # 1 Jan local midnight in Rome


async def test_downgrade_with_grace_at_the_window_end_across_dst(db, brand, clock):
    """An anniversary window in Europe/Rome whose grace period spans the spring DST change."""
    b = brand.brand
    enrolled = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)
    prog = program(window=Window(kind="anniversary"), grace_days=7)
    pipeline = await setup(db, b, clock, prog, points=100)
    clock.set(enrolled)
    async with db.write() as session:
        await ensure_and_lock(session, db=db, brand_id=b.id, external_ids=["m"], now=enrolled)
    await pipeline.process(b, [purchase(1, at=enrolled)])  # gold in the first membership year
    async with db.read() as session:
        m = await get_member(session, brand_id=b.id, external_id="m")
        current = (await repo.current_tiers(session, brand_id=b.id, member_ids=[m.id]))[m.id]
    # The anniversary is 25 March 2027 at local midnight (CET, +01:00).
    assert current.review_at == datetime(2027, 3, 24, 23, 0, tzinfo=UTC)
    # Grace ends 1 April 2027 local midnight, after the DST change: 22:00 UTC (not review + 7x24h).
    first_grace_end = datetime(2027, 3, 31, 22, 0, tzinfo=UTC)
    assert (await service.evaluate(db, brand=b, now=first_grace_end - timedelta(seconds=1))).renewed == 0
    assert (await service.evaluate(db, brand=b, now=first_grace_end)).renewed == 1  # year 1 reached gold
    async with db.read() as session:
        current = (await repo.current_tiers(session, brand_id=b.id, member_ids=[m.id]))[m.id]
    assert current.review_at == datetime(2028, 3, 24, 23, 0, tzinfo=UTC)
    # Year 2: nothing earned; silver (threshold 0) is what the year earns.
    grace_end = datetime(2028, 3, 31, 22, 0, tzinfo=UTC)  # DST starts 26 March 2028, inside the grace
    not_yet = await service.evaluate(db, brand=b, now=grace_end - timedelta(seconds=1))
    assert (not_yet.downgraded, not_yet.renewed) == (0, 0)
    done = await service.evaluate(db, brand=b, now=grace_end)
    assert done.downgraded == 1
    assert (await history_of(db, b, "m"))[-2:] == [("renewed", "gold", "gold"), ("downgraded", "gold", "silver")]
    again = await service.evaluate(db, brand=b, now=grace_end + timedelta(days=1))
    assert again.downgraded == 0


async def test_grace_days_count_towards_keeping_the_tier(db, brand, clock):
    b = brand.brand
    prog = program(window=Window(kind="calendar_year"), grace_days=10)
    pipeline = await setup(db, b, clock, prog, points=100)
    await pipeline.process(b, [purchase(1, at=datetime(2026, 6, 1, tzinfo=UTC))])  # gold in 2026
    await service.evaluate(db, brand=b, now=datetime(2027, 1, 11, tzinfo=UTC))  # renewed for 2027
    # 2027: nothing until a 100-point purchase on 5 January 2028, inside the grace days.
    await pipeline.process(b, [purchase(2, at=datetime(2028, 1, 5, 12, tzinfo=UTC))])
    report = await service.evaluate(db, brand=b, now=datetime(2028, 1, 10, 23, tzinfo=UTC))
    assert (report.renewed, report.downgraded) == (1, 0)


async def test_renewed_when_the_window_reached_the_threshold_and_dst_review_time(db, brand, clock):
    b = brand.brand
    prog = program(window=Window(kind="rolling", days=30), grace_days=0)
    pipeline = await setup(db, b, clock, prog, points=100)
    at = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    clock.set(at)
    await pipeline.process(b, [purchase(1, at=at)])
    async with db.read() as session:
        m = await get_member(session, brand_id=b.id, external_id="m")
        current = (await repo.current_tiers(session, brand_id=b.id, member_ids=[m.id]))[m.id]
    # 30 local days later is 9 April, after the DST change: local midnight is 22:00 UTC.
    assert current.review_at == datetime(2026, 4, 8, 22, 0, tzinfo=UTC)
    await pipeline.process(b, [purchase(2, at=datetime(2026, 4, 1, 12, 0, tzinfo=UTC))])
    clock.set(current.review_at)
    report = await service.evaluate(db, brand=b, now=current.review_at)
    assert report.renewed == 1
    assert (await history_of(db, b, "m"))[-1] == ("renewed", "gold", "gold")


async def test_keep_for_at_least_n_months(db, brand, clock):
    b = brand.brand
    prog = program(window=Window(kind="rolling", days=30), keep_months=3)
    pipeline = await setup(db, b, clock, prog, points=100)
    await pipeline.process(b, [purchase(1)])
    report = await service.evaluate(db, brand=b, now=T0 + timedelta(days=40))
    assert (report.renewed, report.kept, report.downgraded) == (1, 0, 0)  # the first 30 days reached gold
    report = await service.evaluate(db, brand=b, now=T0 + timedelta(days=70))
    assert (report.kept, report.downgraded) == (1, 0)  # nothing in the next 30 days, but 3 months not over
    report = await service.evaluate(db, brand=b, now=T0 + timedelta(days=100))
    assert report.downgraded == 1
    assert (await history_of(db, b, "m"))[-1] == ("downgraded", "gold", "silver")


async def test_override_until_a_date_then_reevaluated(db, brand, clock):
    b = brand.brand
    pipeline = await setup(db, b, clock, program(), points=10)
    await pipeline.process(b, [purchase(1)])
    async with db.read() as session:
        m = await get_member(session, brand_id=b.id, external_id="m")
    until = T0 + timedelta(days=30)
    await service.override(db, brand=b, member=m, tier="platinum", until=until, reason="VIP gesture", now=T0)
    view = await service.member_tier(db, brand=b, member=m, now=T0)
    assert (view.tier, view.override_reason) == ("platinum", "VIP gesture")
    assert (await service.evaluate(db, brand=b, now=until - timedelta(seconds=1))).overrides_ended == 0
    assert (await service.evaluate(db, brand=b, now=until)).overrides_ended == 1
    assert (await history_of(db, b, "m"))[-1] == ("downgraded", "platinum", "silver")


async def test_choice_once_and_birthday_once_a_year(db, brand, clock):
    from engine.errors import Conflict, ValidationError

    b = brand.brand
    prog = build_program(
        TierProgram(tiers=[TierSpec(key="gold", threshold=0, choices=["mug", "tote"], birthday_points=50)])
    )
    pipeline = await setup(db, b, clock, prog)
    await pipeline.process(b, [purchase(1)])
    async with db.write() as session:
        row = await session.scalar(select(MemberRow).where(MemberRow.brand_id == b.id))
        row.attributes = {"birthday": "1990-11-20"}
    async with db.read() as session:
        m = await get_member(session, brand_id=b.id, external_id="m")
    with pytest.raises(ValidationError):
        await service.choose(db, brand=b, member=m, reward="car", now=T0)
    assert await service.choose(db, brand=b, member=m, reward="mug", now=T0) == "gold"
    with pytest.raises(Conflict):
        await service.choose(db, brand=b, member=m, reward="tote", now=T0)
    assert (await service.evaluate(db, brand=b, now=T0)).birthdays == 1
    assert (await service.evaluate(db, brand=b, now=T0 + timedelta(hours=1))).birthdays == 0
    async with db.read() as session:
        assert await balance(session, brand_id=b.id, member_id=m.id) == 60


async def test_simulation_counts_who_would_move(db, brand, clock):
    b = brand.brand
    pipeline = await setup(db, b, clock, program(), points=60)
    await pipeline.process(b, [purchase(1, member="a"), purchase(2, member="b"), purchase(3, member="b")])
    proposed = build_program(
        TierProgram(tiers=[TierSpec(key="silver", threshold=0), TierSpec(key="gold", threshold=50)])
    )
    report = await service.simulate_program(db, brand=b, proposed=proposed, now=T0)
    assert (report["members"], report["up"], report["down"]) == (2, 1, 0)
    assert report["after"] == {"gold": 2}
    async with db.read() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(TierHistoryRow).where(TierHistoryRow.brand_id == b.id)
            )
            == 3
        )


async def test_existing_tier_attributes_are_adopted(db, brand, clock):
    b = brand.brand
    async with db.write() as session:
        await ensure_and_lock(session, db=db, brand_id=b.id, external_ids=["old", "other"], now=T0)
        rows = (
            await session.scalars(select(MemberRow).where(MemberRow.brand_id == b.id).order_by(MemberRow.external_id))
        ).all()
        rows[0].attributes = {"tier": "gold"}
        rows[1].attributes = {"tier": "bronze"}
    await setup(db, b, clock, program())
    assert await history_of(db, b, "old") == [("migrated", None, "gold")]
    async with db.read() as session:
        other = await get_member(session, brand_id=b.id, external_id="other")
    assert other.predicate_view["tier"] == "bronze"  # no such tier: the attribute still reads as before


async def test_reaching_a_tier_awards_its_badge_once(db, brand, clock):
    from badges import config as badges_config
    from badges.models import BadgeSpec, build_badge
    from badges.openbadges import Urls
    from badges.service import grant_function
    from engine.effects import BadgeAwarded

    b = brand.brand
    async with db.write() as session:
        await badges_config.apply_section(
            session, brand_id=b.id, defs=[build_badge(BadgeSpec(key="gold-member", name="Gold member"))], now=T0
        )
    prog = build_program(
        TierProgram(
            tiers=[TierSpec(key="silver", threshold=0), TierSpec(key="gold", threshold=100, badge="gold-member")]
        )
    )
    async with db.write() as session:
        await repo.save_program(session, brand_id=b.id, program=prog, now=T0)
    await put_rule(db, brand_id=b.id, spec=EarningRuleSpec(key="buy", event_type="purchase", points=60), now=T0)
    programs = Programs()
    grant = grant_function(Urls("https://engage.example.com"))
    pipeline = Pipeline(
        db,
        processors=[PointsProcessor(tier_multipliers=programs), TiersProcessor(programs, grant_badge=grant)],
        clock=clock,
    )
    results = await pipeline.process(b, [purchase(1), purchase(2), purchase(3)])
    badges = [(r.id, e.badge) for r in results for e in r.effects if isinstance(e, BadgeAwarded)]
    assert badges == [("e2", "gold-member")]


async def test_no_tier_is_computed_and_removing_the_program_gives_the_attribute_back(db, brand, clock):
    b = brand.brand
    prog = build_program(
        TierProgram(
            tiers=[TierSpec(key="gold", threshold=100)],
            qualification=Qualification(window=Window(kind="rolling", days=10)),
        )
    )
    async with db.write() as session:
        await ensure_and_lock(session, db=db, brand_id=b.id, external_ids=["m"], now=T0)
        row = await session.scalar(select(MemberRow).where(MemberRow.brand_id == b.id))
        row.attributes = {"tier": "gold"}
    pipeline = await setup(db, b, clock, prog)  # adopted: gold
    await service.evaluate(db, brand=b, now=T0 + timedelta(days=11))  # nothing earned in the window: no tier

    async def view():
        async with db.read() as session:
            return (await get_member(session, brand_id=b.id, external_id="m")).predicate_view["tier"]

    assert (await history_of(db, b, "m"))[-1] == ("downgraded", "gold", None)
    assert await view() is None  # computed, and none: the old attribute no longer counts
    async with db.write() as session:
        await repo.save_program(session, brand_id=b.id, program=None, now=T0)
    assert await view() == "gold"  # no tiers any more: the attribute reads as before
    async with db.write() as session:
        await repo.save_program(session, brand_id=b.id, program=prog, now=T0)
    assert await view() is None  # defined again: the current tier rows count
    assert pipeline is not None


async def test_a_unit_upgrades_its_members_in_a_few_statements_whatever_their_number(db, brand, clock):
    from sqlalchemy import event as sa_event

    b = brand.brand
    pipeline = await setup(db, b, clock, program(), points=60)
    await pipeline.process(b, [purchase(0, member="old")])  # an existing tier row (version 1): silver
    seen: list[str] = []

    def statement(_conn, _cursor, text, *_args):
        seen.append(text)

    events = [purchase(i, member=f"n{i}") for i in range(1, 151)]  # 150 new members: silver each
    events += [purchase(1000, member="old"), purchase(1001, member="old")]  # 60 → 180: gold
    engines = [engine.sync_engine for engine in db.engines]
    for engine in engines:
        sa_event.listen(engine, "before_cursor_execute", statement)
    try:
        results = await pipeline.process(b, events)
    finally:
        for engine in engines:
            sa_event.remove(engine, "before_cursor_execute", statement)
    changed = [(r.member, e.tier) for r in results for e in r.effects if isinstance(e, TierChanged)]
    assert changed == [*((f"n{i}", "silver") for i in range(1, 151)), ("old", "gold")]
    writes = [
        s for s in seen
        if s.lstrip().startswith(("INSERT", "UPDATE")) and ("member_tiers" in s or "tier_history" in s or "SET tier" in s)
    ]  # fmt: skip
    # the new rows, the moved row, the history, members.tier (was four statements per upgrade)
    assert len(writes) <= 4, writes
    assert await history_of(db, b, "old") == [("upgraded", None, "silver"), ("upgraded", "silver", "gold")]
    assert await history_of(db, b, "n150") == [("upgraded", None, "silver")]
    async with db.read() as session:
        tiers = dict((await session.execute(select(MemberRow.external_id, MemberRow.tier).where(
            MemberRow.brand_id == b.id
        ))).all())  # fmt: skip
        rows = await repo.current_tiers(
            session, brand_id=b.id, member_ids=[(await get_member(session, brand_id=b.id, external_id=x)).id
                                                for x in ("old", "n1", "n150")],
        )  # fmt: skip
    assert tiers == {"old": "gold", **{f"n{i}": "silver" for i in range(1, 151)}}
    assert sorted((r.tier, r.version) for r in rows.values()) == [("gold", 2), ("silver", 1), ("silver", 1)]


async def test_recording_changes_refuses_a_row_that_moved_since_it_was_read(db, brand, clock):
    from sqlalchemy.exc import IntegrityError

    b = brand.brand
    pipeline = await setup(db, b, clock, program(), points=60)
    await pipeline.process(b, [purchase(0, member="a"), purchase(1, member="b")])  # silver, version 1 each
    async with db.read() as session:
        ids = [(await get_member(session, brand_id=b.id, external_id=x)).id for x in ("a", "b")]
        read = await repo.current_tiers(session, brand_id=b.id, member_ids=ids)
    stale = repo.Current(**{**{f: getattr(read[ids[1]], f) for f in repo.Current.__slots__}, "version": 0})
    changes = [
        repo.changed(read[ids[0]], tier="gold", change="upgraded", now=clock.now()),
        repo.changed(stale, tier="gold", change="upgraded", now=clock.now()),  # read before b's first change
    ]
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            await repo.set_tiers(session, brand_id=b.id, changes=changes, now=clock.now())
    # nothing of it was written: not even the change whose row had not moved
    assert await history_of(db, b, "a") == [("upgraded", None, "silver")]
    async with db.read() as session:
        assert (await repo.current_tiers(session, brand_id=b.id, member_ids=ids))[ids[0]].tier == "silver"
    refused = repo.changed(read[ids[0]], tier="gold", change="upgraded", now=clock.now())
    with pytest.raises(ValueError, match="version"):
        async with db.write() as session:  # a member's second change must start where its first ended
            await repo.set_tiers(session, brand_id=b.id, changes=[refused, refused], now=clock.now())


async def test_a_members_later_events_in_the_unit_see_the_tier_it_reached(db, brand, clock):
    b = brand.brand
    pipeline = await setup(db, b, clock, program(), points=60)
    seen: list[tuple[str, str | None]] = []

    class Probe:
        """A step after the tiers' one: what each event's member view says of the tier."""

        name = "probe"

        async def process(self, uow):
            seen.extend((ctx.event.id, ctx.member.get("tier")) for ctx in uow.events)

        async def after_commit(self, uow):
            pass

    pipeline = Pipeline(db, processors=[*pipeline.processors, Probe()], clock=clock)
    # m: 60 (silver), 120 (gold from its second event); n in between: silver on its own first event
    await pipeline.process(b, [purchase(1), purchase(2, member="n"), purchase(3), purchase(4)])
    assert seen == [("e1", "silver"), ("e2", "silver"), ("e3", "gold"), ("e4", "gold")]
