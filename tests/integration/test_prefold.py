"""A large unit's challenges folded before its members' locks (``engine.pipeline.Prefolds``), on PostgreSQL.

Each test runs the same events on two brands with the same program: one brand's units are pre-folded, the
other's are folded under their locks only (``prefold_min_events=0``). Every event's effects, every
member's stored challenge state and every completion must be the same. Where something changes a member
between the pre-fold and the unit's locks (another unit, the member's attributes, an earlier event of a
``first`` challenge), the reference brand gets that change first: the pre-folded unit must fold that member
again, under its locks, and come to what folding after the change gives.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

import challenges.processor as processor_module
from challenges.orm import ChallengeRow, CompletionRow
from challenges.processor import ChallengeProcessor
from challenges.states import member_state
from engine.errors import NotFound, ValidationError
from engine.events import Event
from engine.members import MemberIn, get_member, upsert_member
from engine.orm import EventRow, MemberRow
from engine.pipeline import PREFOLD_MIN_EVENTS, Pipeline
from engine.points import PointsProcessor
from tests.helpers import make_brand
from web.program import apply_program

START = datetime.fromisoformat("2026-11-02T09:00:00+01:00")
TYPES = ["purchase", "purchase", "visit", "visit", "review", "survey"]
PROGRAM = {
    "campaigns": [
        {"key": "always", "title": "Always"},
        {"key": "members-only", "title": "Members only", "opt_in": True},
        {"key": "vip", "title": "VIP", "eligibility": {"field": "member.vip", "eq": True}},
        {"key": "from-the-9th", "title": "From the 9th", "starts_at": "2026-11-09T00:00:00+01:00"},
    ],
    "challenges": [
        {"key": "visits", "campaign": "always", "title": "Visits", "rule": {"type": "count", "event_type": "visit", "target": 3}, "reward": {"points": 10}},
        {"key": "weekly", "campaign": "always", "title": "Weekly", "rule": {"type": "count", "event_type": "purchase", "target": 2}, "recurrence": "weekly", "max_completions": 3},
        {"key": "spend", "campaign": "always", "title": "Spend", "rule": {"type": "sum", "event_type": "purchase", "property": "amount", "target": 120}},
        {"key": "stores", "campaign": "always", "title": "Stores", "rule": {"type": "distinct", "event_type": "visit", "property": "store", "target": 3}},
        {"key": "streak", "campaign": "always", "title": "Streak", "rule": {"type": "streak", "event_type": "purchase", "target": 3}},
        {"key": "then", "campaign": "always", "title": "Then", "rule": {"type": "sequence", "steps": [{"event_type": "review"}, {"event_type": "visit"}]}},
        {"key": "all", "campaign": "always", "title": "All", "rule": {"type": "all_of", "steps": [{"event_type": "visit"}, {"event_type": "survey"}]}},
        {"key": "first-five", "campaign": "always", "title": "First five", "rule": {"type": "first", "event_type": "review", "filter": {"field": "properties.stars", "eq": 5}}},
        {"key": "opted-visits", "campaign": "members-only", "title": "Opted", "rule": {"type": "count", "event_type": "visit", "target": 2}},
        {"key": "vip-surveys", "campaign": "vip", "title": "VIP surveys", "rule": {"type": "count", "event_type": "survey", "target": 2}},
        {"key": "first-purchase", "campaign": "from-the-9th", "title": "First purchase", "rule": {"type": "first", "event_type": "purchase"}},
        {"key": "first-referral", "campaign": "from-the-9th", "title": "First referral", "rule": {"type": "first", "event_type": "referral"}},
    ],
}  # fmt: skip


def batch(prefix: str, count: int, *, members: int, seed: int, first_day: int = 0) -> list[Event]:
    """``count`` plausible events over ``members`` members, a few hours apart, from ``first_day``."""
    rng = random.Random(seed)
    events = []
    for n in range(count):
        kind = rng.choice(TYPES)
        properties: dict[str, Any] = {"store": f"s{rng.randint(1, 4)}"}
        if kind == "purchase":
            properties["amount"] = rng.randint(5, 60)
        elif kind == "review":
            properties["stars"] = rng.randint(3, 5)
        at = START + timedelta(days=first_day, minutes=37 * n)
        events.append(Event(id=f"{prefix}{n}", member=f"m{rng.randint(1, members)}", type=kind, occurred_at=at,
                            properties=properties))  # fmt: skip
    return events


class Twin:
    """A brand and its pipeline; ``prefold=False`` folds every unit under its locks only."""

    def __init__(self, db: Any, clock: Any, *, prefold: bool) -> None:
        self.db, self.clock, self.prefold = db, clock, prefold
        self.challenges = ChallengeProcessor()
        self.pipeline = Pipeline(
            db, processors=[PointsProcessor(), self.challenges], clock=clock, prefold_min_events=64 if prefold else 0
        )
        self.brand: Any = None

    async def open(self) -> Twin:
        self.brand = (await make_brand(self.db, self.clock)).brand
        await apply_program(self.db, brand=self.brand, document=PROGRAM, now=self.clock.now())
        for member in ("m1", "m2", "m3", "m4"):
            from challenges.service import opt_in

            await opt_in(
                self.db, brand=self.brand, external_id=member, campaign_key="members-only", now=self.clock.now()
            )
        for member in ("m2", "m5", "m6"):
            await upsert_member(self.db, brand_id=self.brand.id, data=MemberIn(external_id=member, attributes={"vip": True}),
                                now=self.clock.now())  # fmt: skip
        return self

    async def process(self, events: list[Event], monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
        results = await self.pipeline.process(self.brand, events)
        return [list(result.effects) for result in results]

    async def outcome(self, members: int) -> tuple[dict[str, Any], list[tuple[str, str, str, datetime]]]:
        """Every member's decoded challenge state, and every completion (challenge key, member, instance, time)."""
        states: dict[str, Any] = {}
        async with self.db.read() as session:
            for n in range(1, members + 1):
                try:
                    member = await get_member(session, brand_id=self.brand.id, external_id=f"m{n}")
                except NotFound:
                    continue
                states[f"m{n}"] = await member_state(session, brand_id=self.brand.id, member_id=member.id)
            rows = await session.execute(
                select(ChallengeRow.key, MemberRow.external_id, CompletionRow.instance, CompletionRow.completed_at)
                .join(ChallengeRow, ChallengeRow.id == CompletionRow.challenge_id)
                .join(MemberRow, MemberRow.id == CompletionRow.member_id)
                .where(CompletionRow.brand_id == self.brand.id)
            )
            completions = sorted(tuple(row) for row in rows)
        return states, completions


@pytest.fixture
async def twins(db: Any, clock: Any, backend: str) -> tuple[Twin, Twin]:
    if not backend.startswith("postgres"):
        pytest.skip("units are pre-folded on PostgreSQL only")
    return await Twin(db, clock, prefold=True).open(), await Twin(db, clock, prefold=False).open()


def _prefolded(outcome: str) -> float:
    from prometheus_client import REGISTRY

    found = REGISTRY.get_sample_value("questline_prefold_events_total", {"stage": "challenges", "outcome": outcome})
    return found or 0.0


def count_kept(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(events the challenges look at, events folded again) of each unit that had a pre-fold."""
    seen: list[tuple[int, int]] = []
    keep = processor_module.keep_prefolded

    async def counted(session: Any, **kwargs: Any) -> Any:
        rest = await keep(session, **kwargs)
        seen.append((len(kwargs["touched"]), len(rest)))
        return rest

    monkeypatch.setattr(processor_module, "keep_prefolded", counted)
    return seen


def before_the_locks(twin: Twin, monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], Awaitable[None]]) -> None:
    """Run ``meanwhile`` once, after the twin's next pre-fold and before its unit takes the members' locks."""
    prefold = twin.challenges.prefold
    pending = [meanwhile]

    async def then(draft: Any) -> None:
        await prefold(draft)
        while pending:
            await pending.pop()()

    monkeypatch.setattr(twin.challenges, "prefold", then)


async def test_a_prefolded_unit_comes_to_what_folding_under_the_locks_gives(twins, monkeypatch):
    subject, reference = twins
    kept = count_kept(monkeypatch)
    assert PREFOLD_MIN_EVENTS <= 120
    for round_no in range(3):
        events = batch(f"r{round_no}-", 120, members=30, seed=round_no, first_day=round_no * 5)
        assert await subject.process(events, monkeypatch) == await reference.process(events, monkeypatch)
    assert await subject.outcome(30) == await reference.outcome(30)
    # the subject's units were pre-folded, and nothing changed their members meanwhile: every event kept
    assert len(kept) == 3 and all(touched > 0 and again == 0 for touched, again in kept), kept


async def test_a_member_another_unit_changed_meanwhile_is_folded_again(twins, monkeypatch):
    subject, reference = twins
    kept = count_kept(monkeypatch)
    warm = batch("w-", 100, members=20, seed=7)
    assert await subject.process(warm, monkeypatch) == await reference.process(warm, monkeypatch)
    other = [Event(id="x1", member="m3", type="visit", occurred_at=START + timedelta(days=2), properties={"store": "s9"}),
             Event(id="x2", member="m3", type="visit", occurred_at=START + timedelta(days=2, hours=1), properties={"store": "s8"})]  # fmt: skip
    late = batch("l-", 100, members=20, seed=8, first_day=3)
    assert any(e.member == "m3" for e in late)

    async def other_unit() -> None:
        await subject.pipeline.process(subject.brand, other)

    before_the_locks(subject, monkeypatch, other_unit)
    await reference.process(other, monkeypatch)
    counted = {outcome: _prefolded(outcome) for outcome in ("kept", "folded_again")}
    assert await subject.process(late, monkeypatch) == await reference.process(late, monkeypatch)
    assert await subject.outcome(20) == await reference.outcome(20)
    touched, again = kept[-1]
    assert 0 < again < touched, kept  # m3's events (and only members whose state moved) folded again
    # questline_prefold_events_total counts them (the reference pipeline pre-folds nothing)
    assert _prefolded("folded_again") - counted["folded_again"] == again
    assert _prefolded("kept") - counted["kept"] == touched - again


async def test_a_member_whose_attributes_changed_meanwhile_is_folded_again(twins, monkeypatch):
    subject, reference = twins
    kept = count_kept(monkeypatch)
    events = batch("a-", 100, members=8, seed=3)
    assert any(e.member == "m2" and e.type == "survey" for e in events)

    def demote(twin: Twin) -> Callable[[], Awaitable[None]]:
        async def change() -> None:
            await upsert_member(twin.db, brand_id=twin.brand.id, data=MemberIn(external_id="m2", attributes={"vip": False}),
                                now=twin.clock.now())  # fmt: skip

        return change

    before_the_locks(subject, monkeypatch, demote(subject))
    await demote(reference)()
    assert await subject.process(events, monkeypatch) == await reference.process(events, monkeypatch)
    assert await subject.outcome(8) == await reference.outcome(8)
    touched, again = kept[-1]
    assert 0 < again < touched, kept


async def test_an_earlier_event_logged_meanwhile_counts_for_a_first_challenge(twins, monkeypatch):
    """A referral before the campaign's window changes no progress, but it is the member's first referral.

    Only ``first-referral`` looks at referrals, so the member's stored state is the same before and after it:
    only the earlier-events look-up, run again under the locks, can tell.
    """
    subject, reference = twins
    kept = count_kept(monkeypatch)
    at = datetime.fromisoformat("2026-11-12T10:00:00+01:00")
    referral = Event(id="ref", member="m7", type="referral", occurred_at=at, properties={})
    events = [*batch("f-", 100, members=40, seed=11, first_day=8), referral]
    earlier = [Event(id="early", member="m7", type="referral", occurred_at=START, properties={})]

    async def log_earlier() -> None:
        await subject.pipeline.process(subject.brand, earlier)

    before_the_locks(subject, monkeypatch, log_earlier)
    await reference.process(earlier, monkeypatch)
    got = await subject.process(events, monkeypatch)
    assert got == await reference.process(events, monkeypatch)
    assert got[-1] == []  # not the member's first referral: nothing completed
    assert await subject.outcome(40) == await reference.outcome(40)
    touched, again = kept[-1]
    assert 0 < again < touched, kept


async def test_a_member_who_opted_in_meanwhile_is_folded_again(twins, monkeypatch):
    subject, reference = twins
    kept = count_kept(monkeypatch)
    events = batch("o-", 100, members=9, seed=5, first_day=18)  # from the clock's day: after the opt-in
    assert any(e.member == "m7" and e.type == "visit" and e.occurred_at > subject.clock.now() for e in events)

    def opt_in_m7(twin: Twin) -> Callable[[], Awaitable[None]]:
        async def join() -> None:
            from challenges.service import opt_in

            await opt_in(twin.db, brand=twin.brand, external_id="m7", campaign_key="members-only", now=twin.clock.now())

        return join

    before_the_locks(subject, monkeypatch, opt_in_m7(subject))
    await opt_in_m7(reference)()
    assert await subject.process(events, monkeypatch) == await reference.process(events, monkeypatch)
    assert await subject.outcome(9) == await reference.outcome(9)
    touched, again = kept[-1]
    assert 0 < again < touched, kept


async def test_a_step_that_changes_views_where_no_challenge_looks_refolds_nothing(db, clock, backend, monkeypatch):
    """The segments step adds every member's segments to its view; no challenge here reads them (or any
    member field), so the pre-fold is kept for every member."""
    if not backend.startswith("postgres"):
        pytest.skip("units are pre-folded on PostgreSQL only")
    from segments.models import SegmentDef
    from segments.processor import Segments, SegmentsStep
    from segments.repository import save_segment

    kept = count_kept(monkeypatch)
    brand = (await make_brand(db, clock)).brand
    program = {
        "campaigns": [{"key": "always", "title": "Always"}],
        "challenges": [c for c in PROGRAM["challenges"] if c["campaign"] == "always"],
    }
    await apply_program(db, brand=brand, document=program, now=clock.now())
    segment = msgspec.convert({"slug": "active", "clauses": [{"metric": "events", "days": 30, "gte": 1}]}, SegmentDef)
    async with db.write() as session:
        await save_segment(session, brand_id=brand.id, segment=segment, now=clock.now())
    steps = Pipeline(db, processors=[SegmentsStep(Segments()), PointsProcessor(), ChallengeProcessor()], clock=clock)
    for round_no in range(2):
        results = await steps.process(brand, batch(f"s{round_no}-", 100, members=12, seed=round_no))
        assert any(result.effects for result in results)
    assert len(kept) == 2 and all(touched > 0 and again == 0 for touched, again in kept), kept


def test_the_member_keys_a_program_reads():
    from engine.predicates import SEGMENTS_KEY, member_keys, parse_predicate

    assert member_keys(None) == set()
    assert member_keys(parse_predicate({"field": "properties.stars", "gte": 4})) == set()
    both = {"all": [{"field": "member.vip", "eq": True}, {"not": {"field": "member.address.city", "eq": "Roma"}}]}
    assert member_keys(parse_predicate(both)) == {"vip", "address"}
    assert member_keys(parse_predicate({"any": [{"segment": "active"}, {"field": "type", "eq": "visit"}]})) == {
        SEGMENTS_KEY
    }


async def test_a_pipeline_with_prefolding_off_folds_everything_under_the_locks(twins, monkeypatch):
    subject, reference = twins
    kept = count_kept(monkeypatch)
    calls: list[object] = []
    prefold = reference.challenges.prefold

    async def spy(draft: Any) -> None:
        calls.append(draft)
        await prefold(draft)

    monkeypatch.setattr(reference.challenges, "prefold", spy)
    await reference.process(batch("z-", 100, members=10, seed=2), monkeypatch)
    assert calls == [] and kept == []
    await subject.process(batch("z-", 100, members=10, seed=2), monkeypatch)
    assert len(kept) == 1


def test_the_setting_reaches_the_pipeline():
    from engine.settings import load_settings

    assert load_settings({}).prefold_min_events == PREFOLD_MIN_EVENTS == 64
    assert load_settings({"QUESTLINE_PREFOLD_MIN_EVENTS": "0"}).prefold_min_events == 0
    with pytest.raises(ValidationError, match=r"prefold_min_events"):
        load_settings({"QUESTLINE_PREFOLD_MIN_EVENTS": "-1"})


async def test_the_servers_pipeline_takes_the_setting(settings):
    from web.wiring import open_services

    async with open_services(msgspec.structs.replace(settings, prefold_min_events=7), migrate=False) as services:
        assert services.pipeline.prefold_min_events == 7


async def test_two_units_at_once_over_shared_members_come_to_what_one_after_the_other_gives(twins, monkeypatch):
    """Two pre-folded units run at once over shared members: the one that waits for the other's locks has
    folded from states the other then changed. Folding the same two batches one after the other, in the
    order the units committed, must give the same effects, states and completions."""
    subject, reference = twins
    kept = count_kept(monkeypatch)
    for round_no in range(3):
        first = batch(f"p{round_no}a-", 150, members=25, seed=40 + round_no, first_day=round_no * 4)
        second = batch(f"p{round_no}b-", 150, members=25, seed=80 + round_no, first_day=round_no * 4)
        got = await asyncio.gather(subject.pipeline.process(subject.brand, first),
                                   subject.pipeline.process(subject.brand, second))  # fmt: skip
        async with subject.db.read() as session:  # the unit that committed first logged its events first
            firsts = {
                key[:4]: row_id
                for key, row_id in (
                    await session.execute(
                        select(EventRow.event_key, EventRow.id).where(
                            EventRow.brand_id == subject.brand.id, EventRow.event_key.in_([first[0].id, second[0].id])
                        )
                    )
                ).all()
            }
        order = [(first, got[0]), (second, got[1])]
        order.sort(key=lambda pair: firsts[pair[0][0].id[:4]])
        for events, results in order:
            assert [list(r.effects) for r in results] == await reference.process(events, monkeypatch)
    assert await subject.outcome(25) == await reference.outcome(25)
    assert len(kept) == 6 and any(again > 0 for _, again in kept), kept  # some members were folded again
