"""Simulation: replay the brand's stored events through a draft program and report what it would cost.

Nothing is written: events are read a page at a time in occurrence order inside a read-only session,
and every member's progress lives in memory. Each event goes through the draft's earning rules (with
their multipliers and daily caps) and its challenges (with :func:`challenges.rules.evaluate`, the same
fold the pipeline runs). Draft and paused campaigns are simulated as if live, members are assumed to
have opted in where a campaign asks for it, lateness is measured against each event's stored arrival
time, and a ``first`` challenge counts the first matching event within the simulated period.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from challenges.models import Challenge, Progress, rule_kind, rule_matches
from challenges.rules import evaluate
from engine.earning import evaluate as earn
from engine.eventlog import stream_events
from engine.members import member_views
from engine.periods import instance_of

if TYPE_CHECKING:
    from engine.db import Database
    from engine.earning import EarningRule
    from engine.ids import MemberId
    from engine.tenants import Brand

#: Opt-in campaigns are simulated as if every member had opted in before the first event.
_ASSUMED_OPT_IN = datetime(1970, 1, 1, tzinfo=UTC)


class ChallengeResult(msgspec.Struct, frozen=True, kw_only=True):
    """How one challenge would have done."""

    key: str
    title: str
    type: str
    campaign: str
    completions: int
    members: int
    """Members who completed it at least once."""
    points: int
    badge: str
    members_with_progress: int


class RuleResult(msgspec.Struct, frozen=True, kw_only=True):
    """Points one earning rule would have issued."""

    key: str
    points: int
    events: int


class TopMember(msgspec.Struct, frozen=True, kw_only=True):
    """A member who would have earned the most."""

    member: str
    points: int
    completions: int


class PointsTotals(msgspec.Struct, frozen=True, kw_only=True):
    """The program's cost in points."""

    earning_rules: int
    challenges: int
    total: int


class SimulationReport(msgspec.Struct, frozen=True, kw_only=True):
    """What the draft program would have done over ``[since, until)``."""

    since: datetime | None
    until: datetime | None
    events: int
    members: int
    points: PointsTotals
    challenges: list[ChallengeResult]
    earning_rules: list[RuleResult]
    badges: dict[str, int]
    """Badge key → how many times a challenge would have awarded it."""
    top_members: list[TopMember]
    truncated: bool = False
    """True when the event limit stopped the replay early."""


async def simulate(
    db: Database,
    *,
    brand: Brand,
    challenges: list[Challenge],
    rules: tuple[EarningRule, ...],
    since: datetime | None,
    until: datetime | None,
    top: int = 10,
    max_events: int = 2_000_000,
) -> SimulationReport:
    """Replay the brand's events in ``[since, until)`` through ``challenges`` and ``rules``; write nothing."""
    tz = brand.tz
    by_type: dict[str, list[Challenge]] = defaultdict(list)
    for challenge in challenges:
        for event_type in dict.fromkeys(m.event_type for m in rule_matches(challenge.rule)):
            by_type[event_type].append(challenge)
    states: dict[tuple[int, MemberId, str], Progress] = {}
    done: Counter[tuple[int, MemberId]] = Counter()
    earned_today: dict[MemberId, dict[tuple[str, date], int]] = defaultdict(dict)
    views: dict[MemberId, tuple[str, dict[str, Any]]] = {}
    rule_points: Counter[str] = Counter()
    rule_events: Counter[str] = Counter()
    challenge_points: Counter[int] = Counter()
    member_points: Counter[MemberId] = Counter()
    member_completions: Counter[MemberId] = Counter()
    badges: Counter[str] = Counter()
    seen_members: set[MemberId] = set()
    events = 0
    truncated = False
    async with db.read() as session:
        async for page in stream_events(session, brand_id=brand.id, since=since, until=until):
            unknown = {member_id for member_id, _e, _r in page if member_id not in views}
            if unknown:
                views.update(await member_views(session, brand_id=brand.id, ids=unknown))
            for member_id, event, received_at in page:
                if events >= max_events:
                    truncated = True
                    break
                events += 1
                seen_members.add(member_id)
                _external, member = views.get(member_id, ("", {}))
                for award in earn(rules, event, member, tz=tz, earned_today=earned_today[member_id]):
                    rule_points[award.key] += award.points
                    rule_events[award.key] += 1
                    member_points[member_id] += award.points
                for challenge in by_type.get(event.type, ()):
                    key = (challenge.id, member_id, instance_of(challenge.recurrence, event.occurred_at, tz))
                    before = states.get(key)
                    outcome = evaluate(
                        challenge,
                        before,
                        event,
                        tz=tz,
                        member=member,
                        received_at=received_at,
                        opted_in_at=_ASSUMED_OPT_IN,
                        completions=done[(challenge.id, member_id)],
                        live=False,
                    )
                    if outcome.progress != before and (before is not None or outcome.progress.counted):
                        states[key] = outcome.progress
                    if outcome.completed:
                        done[(challenge.id, member_id)] += 1
                        member_completions[member_id] += 1
                        challenge_points[challenge.id] += challenge.reward.points
                        member_points[member_id] += challenge.reward.points
                        if challenge.reward.badge:
                            badges[challenge.reward.badge] += 1
            if truncated:
                break
    with_progress: Counter[int] = Counter()
    for challenge_id, _member_id in {(k[0], k[1]) for k, p in states.items() if p.counted}:
        with_progress[challenge_id] += 1
    completers: Counter[int] = Counter(challenge_id for challenge_id, _member_id in done)
    results = [
        ChallengeResult(
            key=c.key,
            title=c.title,
            type=rule_kind(c.rule),
            campaign=c.campaign.key,
            completions=sum(n for (cid, _m), n in done.items() if cid == c.id),
            members=completers[c.id],
            points=challenge_points[c.id],
            badge=c.reward.badge,
            members_with_progress=with_progress[c.id],
        )
        for c in challenges
    ]
    earning_total = sum(rule_points.values())
    challenge_total = sum(challenge_points.values())
    ranked = sorted(member_points.items(), key=lambda item: (-item[1], views.get(item[0], ("", {}))[0]))[:top]
    return SimulationReport(
        since=since,
        until=until,
        events=events,
        members=len(seen_members),
        points=PointsTotals(
            earning_rules=earning_total, challenges=challenge_total, total=earning_total + challenge_total
        ),
        challenges=results,
        earning_rules=[
            RuleResult(key=r.key, points=rule_points[r.key], events=rule_events[r.key]) for r in rules if r.active
        ],
        badges=dict(sorted(badges.items())),
        top_members=[
            TopMember(member=views.get(m, ("?", {}))[0], points=p, completions=member_completions[m])
            for m, p in ranked
            if p > 0
        ],
        truncated=truncated,
    )
