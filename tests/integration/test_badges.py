import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from badges import config as badges_config
from badges import repository as repo
from badges.models import BadgeSpec, LevelSpec, Planned, RuleSpec, build_badge
from badges.openbadges import Urls
from badges.orm import BadgeAwardRow
from badges.processor import BadgesProcessor
from badges.service import award_row, grant, grant_function, revoke
from engine import metrics
from engine.effects import BadgeAwarded, ChallengeCompleted, Notification, PointsAwarded
from engine.events import Event
from engine.member_locks import ensure_and_lock
from engine.orm import LedgerRow, OutboxRow
from engine.pipeline import EventContext, UnitOfWork
from engine.tenants import config_version, get_brand_by_id

URLS = Urls("https://engage.example.com")
AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


async def _members(db, brand, clock, *external_ids):
    async with db.write() as session:
        found = await ensure_and_lock(
            session, db=db, brand_id=brand.id, external_ids=list(external_ids), now=clock.now()
        )
    return {k: m.id for k, m in found.items()}


async def _define(db, brand, clock, *specs):
    async with db.write() as session:
        return await badges_config.apply_section(
            session, brand_id=brand.id, defs=[build_badge(s) for s in specs], now=clock.now()
        )


async def _award_rows(db, brand, key):
    async with db.read() as session:
        rows = await session.execute(
            select(
                BadgeAwardRow.level, BadgeAwardRow.instance, BadgeAwardRow.source, BadgeAwardRow.revoked_at.is_(None)
            )
            .where(BadgeAwardRow.brand_id == brand.id, BadgeAwardRow.badge_key == key)
            .order_by(BadgeAwardRow.id)
        )
        return [tuple(r) for r in rows]


async def test_the_award_key_is_unique_under_concurrency(db, brand, clock):
    """20 writers insert the same award at once (no member lock): the constraint lets exactly one in."""
    await _define(db, brand.brand, clock, BadgeSpec(key="once", name="Once"))
    member_id = (await _members(db, brand.brand, clock, "m1"))["m1"]

    async def insert_one():
        row = award_row(
            brand_id=brand.brand.id,
            member_id=member_id,
            badge_key="once",
            plan=Planned(level="", instance="", points=0),
            source="manual",
            source_ref="",
            reason="race",
            awarded_at=clock.now(),
            recipient=("url", "x"),
        )
        async with db.write() as session:
            return await repo.insert_awards(session, brand.brand, [row])

    label = metrics.brand_label(brand.brand)
    before = metrics.BADGE_AWARDS.labels(label)._value.get()
    results = await asyncio.gather(*(insert_one() for _ in range(20)))
    assert sum(len(r) for r in results) == 1
    assert metrics.BADGE_AWARDS.labels(label)._value.get() - before == 1  # counted once, by the writer that won
    assert await _award_rows(db, brand.brand, "once") == [("", "", "manual", True)]


async def test_parallel_grants_award_once_and_write_points_and_outbox_once(db, brand, clock):
    await _define(db, brand.brand, clock, BadgeSpec(key="vip", name="VIP", points=40))
    member_id = (await _members(db, brand.brand, clock, "m1"))["m1"]

    async def grant_one(n):
        async with db.write() as session:
            outcome = await grant(
                session,
                brand=brand.brand,
                member_id=member_id,
                badge_key="vip",
                reason=f"try {n}",
                source="manual",
                source_ref="",
                now=clock.now(),
                urls=URLS,
            )
            return outcome.created

    created = await asyncio.gather(*(grant_one(n) for n in range(20)))
    assert created.count(True) == 1
    assert await _award_rows(db, brand.brand, "vip") == [("", "", "manual", True)]
    async with db.read() as session:
        points = await session.scalar(
            select(func.sum(LedgerRow.points)).where(LedgerRow.brand_id == brand.brand.id, LedgerRow.source == "badge")
        )
        topics = list(await session.scalars(select(OutboxRow.topic).where(OutboxRow.brand_id == brand.brand.id)))
    assert points == 40
    assert topics == ["badge.awarded"]


async def test_grant_function_is_once_per_source_instance_for_repeatables(db, brand, clock):
    await _define(
        db,
        brand.brand,
        clock,
        BadgeSpec(key="top-reviewer", name="Top reviewer", repeatable=True, points=100),
        BadgeSpec(key="champion", name="Champion"),
    )
    member_id = (await _members(db, brand.brand, clock, "m1"))["m1"]
    badges_grant = grant_function(URLS)

    async def board(key, period):
        async with db.write() as session:
            return await badges_grant(
                session,
                brand=brand.brand,
                member_id=member_id,
                badge_key=key,
                reason=f"top 3 of reviews, {period}",
                source="board",
                source_ref=f"reviews:{period}",
                now=clock.now(),
            )

    first = await board("top-reviewer", "2026-W46")
    assert [type(e) for e in first] == [BadgeAwarded, PointsAwarded]
    assert (first[0].badge, first[0].count, first[0].source) == ("top-reviewer", 1, "board")
    assert await board("top-reviewer", "2026-W46") == []  # the same period again: nothing
    again = await board("top-reviewer", "2026-W47")
    assert again[0].count == 2
    assert await _award_rows(db, brand.brand, "top-reviewer") == [
        ("", "board:reviews:2026-W46", "board", True),
        ("", "board:reviews:2026-W47", "board", True),
    ]
    assert len(await board("champion", "2026-W46")) == 1
    assert await board("champion", "2026-W47") == []  # not repeatable: once, whatever the period


async def test_revocation_is_sticky_for_automatic_sources_and_manual_grant_reinstates(db, brand, clock):
    await _define(db, brand.brand, clock, BadgeSpec(key="champion", name="Champion"))
    member_id = (await _members(db, brand.brand, clock, "m1"))["m1"]
    b = brand.brand

    async def give(source):
        async with db.write() as session:
            return await grant(
                session,
                brand=b,
                member_id=member_id,
                badge_key="champion",
                reason="r",
                source=source,
                source_ref="x",
                now=clock.now(),
                urls=URLS,
            )

    assert (await give("board")).created
    async with db.write() as session:
        revoked = await revoke(
            session, brand=b, member_id=member_id, badge_key="champion", reason="cheated", now=clock.now(), urls=URLS
        )
    assert [(a.revocation_reason, a.revoked) for a in revoked] == [("cheated", True)]
    outcome = await give("board")
    assert (outcome.created, outcome.reinstated, outcome.award.revoked) == (False, False, True)
    outcome = await give("manual")
    assert (outcome.created, outcome.reinstated, outcome.award.revoked) == (False, True, False)
    assert await _award_rows(db, brand.brand, "champion") == [("", "", "board", True)]


def _uow(db, session, brand, clock, contexts):
    return UnitOfWork(session=session, db=db, brand=brand, clock=clock, now=clock.now(), events=contexts)


async def test_processor_awards_challenge_rewards_once_per_instance(db, brand, clock):
    await _define(
        db,
        brand.brand,
        clock,
        BadgeSpec(key="critic", name="Critic", points=50),
        BadgeSpec(key="streak-master", name="Streak master", repeatable=True),
        BadgeSpec(key="paused", name="Paused", active=False),
    )
    ids = await _members(db, brand.brand, clock, "m1", "m2")
    processor = BadgesProcessor(public_url="https://engage.example.com")

    def ctx(index, member, event_id, *completions):
        event = Event(id=event_id, member=member, type="review", occurred_at=AT)
        context = EventContext(index=index, event=event, member_id=ids[member], member={"email": f"{member}@x.example"})
        for completion in completions:
            context.emit(completion)
        return context

    contexts = [
        ctx(
            0,
            "m1",
            "e1",
            ChallengeCompleted(challenge="reviews", badge="critic"),
            ChallengeCompleted(challenge="streak", instance="2026-W47", badge="streak-master"),
        ),
        ctx(
            1,
            "m1",
            "e2",
            ChallengeCompleted(challenge="reviews-2", badge="critic"),
            ChallengeCompleted(challenge="streak", instance="2026-W48", badge="streak-master"),
        ),
        ctx(
            2,
            "m2",
            "e3",
            ChallengeCompleted(challenge="reviews", badge="paused"),
            ChallengeCompleted(challenge="reviews", badge="unknown"),
            ChallengeCompleted(challenge="plain"),
        ),
    ]
    async with db.write() as session:
        await processor.process(_uow(db, session, brand.brand, clock, contexts))

    def awarded(context):
        return [(e.badge, e.count, e.source) for e in context.effects if isinstance(e, BadgeAwarded)]

    assert awarded(contexts[0]) == [("critic", 1, "challenge"), ("streak-master", 1, "challenge")]
    assert awarded(contexts[1]) == [("streak-master", 2, "challenge")]
    assert awarded(contexts[2]) == []
    assert [e.points for e in contexts[0].effects if isinstance(e, PointsAwarded)] == [50]
    notes = [e for e in contexts[0].effects if isinstance(e, Notification)]
    assert [
        (n.topic, n.data["badge"], n.data["assertion"].startswith("https://engage.example.com/ob/v2/assertions/"))
        for n in notes
    ] == [
        ("badge.awarded", "critic", True),
        ("badge.awarded", "streak-master", True),
    ]
    # the same completion instance again (a later unit of work): nothing new
    retry = [ctx(0, "m1", "e4", ChallengeCompleted(challenge="streak", instance="2026-W47", badge="streak-master"))]
    async with db.write() as session:
        await processor.process(_uow(db, session, brand.brand, clock, retry))
    assert awarded(retry[0]) == []
    assert await _award_rows(db, brand.brand, "streak-master") == [
        ("", "challenge:streak:2026-W47", "challenge", True),
        ("", "challenge:streak:2026-W48", "challenge", True),
    ]


async def test_processor_counts_rule_events_and_levels_up_in_one_batch(db, brand, clock):
    await _define(
        db,
        brand.brand,
        clock,
        BadgeSpec(
            key="regular",
            name="Regular",
            rule=RuleSpec(event_type="visit", filter={"field": "properties.store", "ne": "closed"}),
            levels=[LevelSpec(key="bronze", threshold=1), LevelSpec(key="silver", threshold=3, points=30)],
        ),
    )
    ids = await _members(db, brand.brand, clock, "m1")
    processor = BadgesProcessor(public_url="https://engage.example.com")
    contexts = [
        EventContext(
            index=i,
            event=Event(id=f"v{i}", member="m1", type="visit", occurred_at=AT, properties={"store": store}),
            member_id=ids["m1"],
            member={},
        )
        for i, store in enumerate(["a", "closed", "b", "c"])
    ]
    async with db.write() as session:
        await processor.process(_uow(db, session, brand.brand, clock, contexts))
    assert [[(e.badge, e.level) for e in c.effects if isinstance(e, BadgeAwarded)] for c in contexts] == [
        [("regular", "bronze")],
        [],
        [],
        [("regular", "silver")],
    ]
    async with db.read() as session:
        assert await repo.member_counts(session, brand_id=brand.brand.id, member_id=ids["m1"]) == {"regular": 3}


async def test_config_apply_reports_changes_bumps_version_and_exports(db, brand, clock):
    b = brand.brand
    async with db.read() as session:
        before = await config_version(session, b.id)
    section = [
        {
            "key": "critic",
            "name": "Critic",
            "icon": "chat",
            "rule": {"event_type": "review"},
            "levels": [{"key": "bronze", "threshold": 1}, {"key": "gold", "threshold": 5, "points": 50}],
        },
        {"key": "vip", "name": "VIP", "hidden": True},
    ]
    defs = badges_config.parse_section(section, path="badges")
    async with db.write() as session:
        changes = await badges_config.apply_section(session, brand_id=b.id, defs=defs, now=clock.now())
    assert changes == ["badge critic: created", "badge vip: created"]
    async with db.write() as session:
        assert await badges_config.apply_section(session, brand_id=b.id, defs=defs, now=clock.now()) == []
        exported = await badges_config.export_section(session, brand_id=b.id)
        after = await config_version(session, b.id)
    assert after == before + 1
    assert exported == [
        {
            "key": "critic",
            "name": "Critic",
            "icon": "chat",
            "levels": [
                {"key": "bronze", "threshold": 1, "name": "Bronze"},
                {"key": "gold", "threshold": 5, "name": "Gold", "points": 50},
            ],
            "rule": {"event_type": "review"},
        },
        {"key": "vip", "name": "VIP", "hidden": True},
    ]
    assert badges_config.parse_section(exported, path="badges") == defs
    changed = badges_config.parse_section([{**section[1], "name": "V.I.P."}], path="badges")
    async with db.write() as session:
        assert await badges_config.apply_section(session, brand_id=b.id, defs=changed, now=clock.now()) == [
            "badge vip: updated"
        ]
    async with db.read() as session:
        assert (await get_brand_by_id(session, b.id)).config_version == before + 2


@pytest.mark.parametrize("key", ["critic"])
async def test_deleting_an_awarded_badge_is_refused(db, brand, clock, key):
    from engine.errors import Conflict

    await _define(db, brand.brand, clock, BadgeSpec(key=key, name="Critic"))
    member_id = (await _members(db, brand.brand, clock, "m1"))["m1"]
    async with db.write() as session:
        await grant(
            session,
            brand=brand.brand,
            member_id=member_id,
            badge_key=key,
            reason="r",
            source="manual",
            source_ref="",
            now=clock.now(),
            urls=URLS,
        )
    with pytest.raises(Conflict):
        async with db.write() as session:
            await badges_config.remove_badge(session, brand_id=brand.brand.id, key=key)
