"""The challenges processor inside the pipeline, on SQLite and PostgreSQL: batching, ``first`` lookups, the demo."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from challenges.processor import ChallengeProcessor
from challenges.service import opt_in
from challenges.views import member_challenges
from engine.events import Event
from engine.members import MemberIn, get_member, upsert_member
from engine.pipeline import PREFOLD_MIN_EVENTS, Pipeline
from engine.points import PointsProcessor
from engine.tenants import get_brand_by_id
from web.program import apply_program

ALWAYS = {"key": "always", "title": "Always on"}


def ev(event_id, member, type_, at, **properties):
    from datetime import datetime

    return Event(id=event_id, member=member, type=type_, occurred_at=datetime.fromisoformat(at), properties=properties)


def pipeline(db, clock):
    return Pipeline(db, processors=[PointsProcessor(), ChallengeProcessor()], clock=clock)


async def test_first_ever_looks_at_the_event_log(db, brand, clock):
    steps = pipeline(db, clock)
    await steps.process(brand.brand, [ev("old", "veteran", "review", "2026-11-01T10:00:00+01:00", stars=5)])
    program = {
        "campaigns": [ALWAYS],
        "challenges": [
            {
                "key": "first-good-review",
                "campaign": "always",
                "title": "First good review",
                "rule": {"type": "first", "event_type": "review", "filter": {"field": "properties.stars", "gte": 4}},
                "reward": {"points": 25},
            }
        ],
    }
    await apply_program(db, brand=brand.brand, document=program, now=clock.now())
    results = await steps.process(
        brand.brand,
        [
            ev("v1", "veteran", "review", "2026-11-10T10:00:00+01:00", stars=5),
            ev("n0", "newbie", "review", "2026-11-10T09:00:00+01:00", stars=2),  # does not match the filter
            ev("n1", "newbie", "review", "2026-11-10T10:00:00+01:00", stars=4),
            ev("n2", "newbie", "review", "2026-11-10T11:00:00+01:00", stars=5),
        ],
    )
    assert [[type(e).__name__ for e in r.effects] for r in results] == [
        [],
        [],
        ["ProgressAdvanced", "ChallengeCompleted", "PointsAwarded", "Notification"],
        [],
    ]
    (later,) = await steps.process(brand.brand, [ev("v2", "veteran", "review", "2026-11-11T10:00:00+01:00", stars=5)])
    assert later.effects == []
    from challenges.states import member_state

    async with db.read() as session:
        veteran = await get_member(session, brand_id=brand.brand.id, external_id="veteran")
        state = await member_state(session, brand_id=brand.brand.id, member_id=veteran.id)
    # the earlier review is remembered, so the event log is searched once per member
    assert state.progress["first-good-review"][""].prior is True


async def test_queries_per_request_do_not_grow_with_the_batch(db, brand, clock):
    document = {
        "campaigns": [ALWAYS],
        "challenges": [
            {"key": f"c{i}", "campaign": "always", "title": f"C{i}", "rule": rule}
            for i, rule in enumerate(
                [
                    {"type": "count", "event_type": "visit", "target": 5},
                    {"type": "sum", "event_type": "purchase", "property": "amount", "target": 100},
                    {"type": "streak", "event_type": "visit", "target": 3},
                    {"type": "distinct", "event_type": "visit", "property": "store", "target": 3},
                    {"type": "all_of", "steps": [{"event_type": "visit"}, {"event_type": "purchase"}]},
                ]
            )
        ]
        + [
            {
                "key": "weekly",
                "campaign": "always",
                "title": "Weekly",
                "rule": {"type": "count", "event_type": "visit", "target": 2},
                "recurrence": "weekly",
                "max_completions": 3,
            }
        ],
    }
    await apply_program(db, brand=brand.brand, document=document, now=clock.now())
    steps = pipeline(db, clock)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    def batch(prefix, size):
        return [
            ev(
                f"{prefix}{i}",
                f"m{i % 7}",
                "visit" if i % 2 else "purchase",
                f"2026-11-1{i % 9}T10:00:00+01:00",
                amount=5,
                store=f"s{i % 4}",
            )
            for i in range(size)
        ]

    def challenge_queries(found):
        return [s.split()[0] for s in found if "challenge" in s or "brands.config_version" in s]

    await steps.process(brand.brand, batch("warm", 5))  # fills the definition cache
    sa_event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        await steps.process(brand.brand, batch("small", 4))
        small = challenge_queries(statements)
        statements.clear()
        await steps.process(brand.brand, batch("medium", PREFOLD_MIN_EVENTS + 1))
        medium = challenge_queries(statements)
        statements.clear()
        await steps.process(brand.brand, batch("large", 300))
        large = challenge_queries(statements)
    finally:
        sa_event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    # the config version (read once per unit of work, shared by points and challenges), member states, one
    # bulk upsert of states (and the completions, in one statement, when the batch completes something)
    assert len([s for s in statements if "brands.config_version" in s]) == 1
    if db.is_postgres:  # states and completions are CTEs of the unit's one statement (engine.fused)
        assert small == ["SELECT", "SELECT", "WITH"]
        # a unit of PREFOLD_MIN_EVENTS or more reads the states once more, before its locks (the pre-fold)
        assert medium == large == ["SELECT", "SELECT", "SELECT", "WITH"]
        return
    assert small[:3] == large[:3] == ["SELECT", "SELECT", "INSERT"]
    assert small[3:] in ([], ["INSERT"])
    assert large[3:] == ["INSERT"]


async def test_demo_program_uses_every_rule_type_and_makes_progress(db, brand, clock):
    from web.demo import MEMBERS, demo_events
    from web.demo.challenges import DEMO_PANELISTS, demo_program

    services = SimpleNamespace(db=db, clock=clock)
    document = demo_program(clock.now())
    assert {c["rule"]["type"] for c in document["challenges"]} == {
        "count",
        "sum",
        "streak",
        "distinct",
        "sequence",
        "all_of",
        "first",
    }
    result = await apply_program(db, brand=brand.brand, document=document, now=clock.now())
    assert result.changed
    for external_id in DEMO_PANELISTS:
        await opt_in(
            db, brand=brand.brand, external_id=external_id, campaign_key="panel", now=clock.now() - timedelta(days=30)
        )
    for external_id, name, locale, attributes in MEMBERS:
        await upsert_member(
            db,
            brand_id=brand.brand.id,
            data=MemberIn(external_id=external_id, display_name=name, locale=locale, attributes=attributes),
            now=clock.now(),
        )
    await pipeline(db, clock).process(brand.brand, demo_events(services))
    touched: set[str] = set()
    fresh = await get_brand_by_id_session(db, brand.brand.id)
    async with db.read() as session:
        for external_id, *_ in MEMBERS:
            member = await get_member(session, brand_id=brand.brand.id, external_id=external_id)
            views = await member_challenges(session, brand=fresh, member=member, now=clock.now())
            touched |= {v.key for v in views if v.progress > 0 or v.status == "completed"}
    assert touched == {c["key"] for c in document["challenges"]}


async def get_brand_by_id_session(db, brand_id):
    async with db.read() as session:
        return await get_brand_by_id(session, brand_id)


async def test_rule_cache_follows_definition_changes(db, brand, clock):
    steps = pipeline(db, clock)
    one = {
        "key": "one",
        "campaign": "always",
        "title": "One",
        "rule": {"type": "count", "event_type": "visit", "target": 9},
    }
    await apply_program(db, brand=brand.brand, document={"campaigns": [ALWAYS], "challenges": [one]}, now=clock.now())
    (first,) = await steps.process(brand.brand, [ev("a", "m", "visit", "2026-11-10T10:00:00+01:00")])
    assert [type(e).__name__ for e in first.effects] == ["ProgressAdvanced"]
    await apply_program(db, brand=brand.brand, document={"challenges": []}, now=clock.now())
    (second,) = await steps.process(brand.brand, [ev("b", "m", "visit", "2026-11-10T11:00:00+01:00")])
    assert second.effects == []
    from challenges.codec import decode_state
    from challenges.orm import MemberStateRow

    async with db.read() as session:
        (state,) = list(
            await session.scalars(select(MemberStateRow.state).where(MemberStateRow.brand_id == brand.brand.id))
        )
    assert [p.value for instances in decode_state(state).progress.values() for p in instances.values()] == [1.0]


async def test_a_state_stored_in_the_first_format_keeps_counting(db, brand, clock):
    import msgspec

    from challenges.codec import decode_state
    from challenges.orm import MemberStateRow

    count = {"type": "count", "event_type": "visit", "target": 3}
    document = {
        "campaigns": [ALWAYS],
        "challenges": [
            {"key": "visits", "campaign": "always", "title": "Visits", "rule": count},
            {"key": "buys", "campaign": "always", "title": "Buys", "rule": {**count, "event_type": "purchase"}},
        ],
    }
    await apply_program(db, brand=brand.brand, document=document, now=clock.now())
    steps = pipeline(db, clock)
    await steps.process(brand.brand, [ev("x", "old-timer", "purchase", "2026-11-09T10:00:00+01:00")])

    async with db.write() as session:
        member = await get_member(session, brand_id=brand.brand.id, external_id="old-timer")
        first_format = {
            "progress": {
                "visits": {"": {"challenge": "visits", "kind": "count", "value": 2.0, "counted": 2}},
                "buys": {"": {"challenge": "buys", "kind": "count", "value": 1.0, "counted": 1}},
            },
            "completions": {"elsewhere": 1},
        }
        await session.execute(
            MemberStateRow.__table__.update()
            .where(MemberStateRow.brand_id == brand.brand.id, MemberStateRow.member_id == member.id)
            .values(state=msgspec.json.encode(first_format).decode())
        )

    (result,) = await steps.process(brand.brand, [ev("v", "old-timer", "visit", "2026-11-10T10:00:00+01:00")])
    assert [type(e).__name__ for e in result.effects] == ["ProgressAdvanced", "ChallengeCompleted", "Notification"]
    async with db.read() as session:
        (stored,) = list(
            await session.scalars(select(MemberStateRow.state).where(MemberStateRow.member_id == member.id))
        )
    assert stored.startswith('{"format":2,')
    state = decode_state(stored)
    assert (state.progress["visits"][""].value, state.progress["visits"][""].completed) == (3.0, True)
    assert (state.progress["buys"][""].challenge, state.progress["buys"][""].value) == ("buys", 1.0)
    assert state.completions == {"elsewhere": 1, "visits": 1}


async def test_member_states_are_compressed_with_lz4_where_postgresql_has_it(db):
    if not db.is_postgres:
        pytest.skip("a PostgreSQL storage setting")
    from sqlalchemy import text

    async with db.read() as session:
        offered = (
            await session.execute(
                text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
            )
        ).scalar_one()
        method = (
            await session.execute(
                text(
                    "SELECT attcompression::text FROM pg_attribute "
                    "WHERE attrelid = 'challenge_member_states'::regclass AND attname = 'state'"
                )
            )
        ).scalar_one()
    assert method == ("l" if offered else "")


#: Every rule type and limit the pipeline's fast paths treat specially: filters, recurrence, caps,
#: the minimum interval, the daily cap, ``first`` and steps.
EQUIVALENCE_PROGRAM = {
    "campaigns": [ALWAYS],
    "challenges": [
        {"key": key, "campaign": "always", "title": key, "rule": rule, **extra}
        for key, rule, extra in [
            ("visits", {"type": "count", "event_type": "visit", "target": 4}, {}),
            ("visits-spaced", {"type": "count", "event_type": "visit", "target": 6}, {"min_interval": "6h"}),
            (
                "weekly",
                {"type": "count", "event_type": "visit", "target": 2},
                {"recurrence": "weekly", "max_completions": 2},
            ),
            (
                "daily",
                {"type": "count", "event_type": "purchase", "target": 2},
                {"recurrence": "daily", "daily_cap": 2},
            ),
            ("spend", {"type": "sum", "event_type": "purchase", "property": "amount", "target": 120}, {}),
            ("streak", {"type": "streak", "event_type": "visit", "target": 3, "freezes": 1}, {}),
            ("weeks", {"type": "streak", "event_type": "purchase", "target": 2, "period": "week", "grace": 1}, {}),
            ("stores", {"type": "distinct", "event_type": "visit", "property": "store", "target": 3}, {}),
            ("path", {"type": "sequence", "steps": [{"event_type": "review"}, {"event_type": "visit"}]}, {}),
            ("all", {"type": "all_of", "steps": [{"event_type": "review"}, {"event_type": "purchase"}]}, {}),
            ("first-review", {"type": "first", "event_type": "review"}, {}),
            (
                "good-reviews",
                {
                    "type": "count",
                    "event_type": "review",
                    "target": 2,
                    "filter": {"field": "properties.stars", "gte": 4},
                },
                {"recurrence": "monthly"},
            ),
        ]
    ],
}


async def test_live_progress_equals_the_pure_fold_of_each_members_events(db, brand, clock):
    """The pipeline's shortcuts (screening plans, partial decoding, capped challenges skipped) change nothing."""
    import random
    from datetime import UTC, datetime

    from challenges.definitions import load_compiled
    from challenges.rules import replay
    from challenges.states import member_state

    rng = random.Random(42)
    await apply_program(db, brand=brand.brand, document=EQUIVALENCE_PROGRAM, now=clock.now())
    start = datetime(2026, 11, 2, 7, tzinfo=UTC)
    events = []
    for i in range(400):
        kind = rng.choice(["visit", "visit", "purchase", "review"])
        props = {"store": f"s{rng.randint(1, 4)}"} if kind == "visit" else {}
        if kind == "purchase":
            props["amount"] = rng.randint(5, 60)
        if kind == "review":
            props["stars"] = rng.randint(1, 5)
        at = start + timedelta(minutes=rng.randint(0, 60 * 24 * 17))
        events.append(Event(id=f"x{i}", member=f"m{rng.randint(1, 12)}", type=kind, occurred_at=at, properties=props))
    steps = pipeline(db, clock)
    for offset in range(0, len(events), 100):
        await steps.process(brand.brand, events[offset : offset + 100])

    tz = brand.brand.tz
    async with db.read() as session:
        challenges = await load_compiled(session, brand_id=brand.brand.id, tz=tz)
        compared = 0
        for external_id in sorted({e.member for e in events}):
            member = await get_member(session, brand_id=brand.brand.id, external_id=external_id)
            state = await member_state(session, brand_id=brand.brand.id, member_id=member.id)
            own = [(e, clock.now()) for e in events if e.member == external_id]
            for challenge in challenges:
                folded = replay(challenge, own, tz=tz, member={})
                assert state.progress.get(challenge.key, {}) == folded.progress, (external_id, challenge.key)
                done = sum(1 for _id, outcome in folded.outcomes if outcome.completed)
                assert state.completions.get(challenge.key, 0) == done, (external_id, challenge.key)
                compared += 1
    assert compared == 12 * len(challenges)
