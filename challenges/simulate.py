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
from dataclasses import dataclass, field
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
    from zoneinfo import ZoneInfo

    from engine.db import Database
    from engine.earning import EarningRule
    from engine.events import Event
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


@dataclass(slots=True)
class _Tally:
    """The draft program's running figures while events are replayed through it."""

    tz: ZoneInfo
    challenges: list[Challenge]
    rules: tuple[EarningRule, ...]
    by_type: dict[str, list[Challenge]] = field(default_factory=lambda: defaultdict(list))
    states: dict[tuple[int, MemberId, str], Progress] = field(default_factory=dict)
    done: Counter[tuple[int, MemberId]] = field(default_factory=Counter)
    earned_today: dict[MemberId, dict[tuple[str, date], int]] = field(default_factory=lambda: defaultdict(dict))
    views: dict[MemberId, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    rule_points: Counter[str] = field(default_factory=Counter)
    rule_events: Counter[str] = field(default_factory=Counter)
    challenge_points: Counter[int] = field(default_factory=Counter)
    member_points: Counter[MemberId] = field(default_factory=Counter)
    member_completions: Counter[MemberId] = field(default_factory=Counter)
    badges: Counter[str] = field(default_factory=Counter)
    seen_members: set[MemberId] = field(default_factory=set)
    ids: dict[str, int] = field(default_factory=dict)
    events: int = 0

    def __post_init__(self) -> None:
        self.ids.update({challenge.key: challenge.id for challenge in self.challenges})
        for challenge in self.challenges:
            for event_type in dict.fromkeys(m.event_type for m in rule_matches(challenge.rule)):
                self.by_type[event_type].append(challenge)

    def add(self, member_id: MemberId, event: Event, received_at: datetime) -> None:
        """Run one stored event through the draft's earning rules and challenges."""
        self.events += 1
        self.seen_members.add(member_id)
        _external, member = self.views.get(member_id, ("", {}))
        for award in earn(self.rules, event, member, tz=self.tz, earned_today=self.earned_today[member_id]):
            self.rule_points[award.key] += award.points
            self.rule_events[award.key] += 1
            self.member_points[member_id] += award.points
        concerned = self.by_type.get(event.type, ())
        # prerequisites are judged on the completions before this event (as the pipeline does)
        unlocked = [self._unlocked(challenge, member_id) for challenge in concerned]
        for challenge, opened in zip(concerned, unlocked, strict=True):
            self._challenge(challenge, member_id, member, event, received_at, unlocked=opened)

    def _unlocked(self, challenge: Challenge, member_id: MemberId) -> bool:
        ids = self.ids
        return all(key in ids and self.done[(ids[key], member_id)] > 0 for key in challenge.requires.challenges)

    def _challenge(
        self,
        challenge: Challenge,
        member_id: MemberId,
        member: dict[str, Any],
        event: Event,
        received_at: datetime,
        *,
        unlocked: bool = True,
    ) -> None:
        key = (challenge.id, member_id, instance_of(challenge.recurrence, event.occurred_at, self.tz))
        before = self.states.get(key)
        outcome = evaluate(
            challenge,
            before,
            event,
            tz=self.tz,
            member=member,
            received_at=received_at,
            opted_in_at=_ASSUMED_OPT_IN,
            completions=self.done[(challenge.id, member_id)],
            live=False,
            unlocked=unlocked,
        )
        if outcome.progress != before and (before is not None or outcome.progress.counted):
            self.states[key] = outcome.progress
        if outcome.completed:
            self.done[(challenge.id, member_id)] += 1
            self.member_completions[member_id] += 1
            self.challenge_points[challenge.id] += challenge.reward.points
            self.member_points[member_id] += challenge.reward.points
            if challenge.reward.badge:
                self.badges[challenge.reward.badge] += 1

    def challenge_results(self) -> list[ChallengeResult]:
        """Each challenge's completions, completers, points and members with progress."""
        with_progress: Counter[int] = Counter()
        for challenge_id, _member_id in {(k[0], k[1]) for k, p in self.states.items() if p.counted}:
            with_progress[challenge_id] += 1
        completers: Counter[int] = Counter(challenge_id for challenge_id, _member_id in self.done)
        return [
            ChallengeResult(
                key=c.key,
                title=c.title,
                type=rule_kind(c.rule),
                campaign=c.campaign.key,
                completions=sum(n for (cid, _m), n in self.done.items() if cid == c.id),
                members=completers[c.id],
                points=self.challenge_points[c.id],
                badge=c.reward.badge,
                members_with_progress=with_progress[c.id],
            )
            for c in self.challenges
        ]

    def report(self, *, since: datetime | None, until: datetime | None, top: int, truncated: bool) -> SimulationReport:
        """The figures as a report."""
        views = self.views
        earning_total = sum(self.rule_points.values())
        challenge_total = sum(self.challenge_points.values())
        ranked = sorted(self.member_points.items(), key=lambda item: (-item[1], views.get(item[0], ("", {}))[0]))
        return SimulationReport(
            since=since,
            until=until,
            events=self.events,
            members=len(self.seen_members),
            points=PointsTotals(
                earning_rules=earning_total, challenges=challenge_total, total=earning_total + challenge_total
            ),
            challenges=self.challenge_results(),
            earning_rules=[
                RuleResult(key=r.key, points=self.rule_points[r.key], events=self.rule_events[r.key])
                for r in self.rules
                if r.active
            ],
            badges=dict(sorted(self.badges.items())),
            top_members=[
                TopMember(member=views.get(m, ("?", {}))[0], points=p, completions=self.member_completions[m])
                for m, p in ranked[:top]
                if p > 0
            ],
            truncated=truncated,
        )


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
    tally = _Tally(tz=brand.tz, challenges=challenges, rules=rules)
    truncated = False
    async with db.read() as session:
        async for page in stream_events(session, brand_id=brand.id, since=since, until=until):
            unknown = {member_id for member_id, _e, _r in page if member_id not in tally.views}
            if unknown:
                tally.views.update(await member_views(session, brand_id=brand.id, ids=unknown))
            for member_id, event, received_at in page:
                if tally.events >= max_events:
                    truncated = True
                    break
                tally.add(member_id, event, received_at)
            if truncated:
                break
    return tally.report(since=since, until=until, top=top, truncated=truncated)
