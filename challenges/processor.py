"""The pipeline step that moves challenges forward: load → :mod:`challenges.rules` → save → effects.

Per unit of work it runs a fixed number of queries whatever the batch size: the brand's config version
(definitions are cached per version), opt-ins for opt-in campaigns, the state rows of the members the
batch touches (one row per member holds every challenge), the earlier events ``first`` challenges need,
one bulk upsert of the changed states and one insert of the completions. Members are locked by the
pipeline, so two requests for one member are applied one after the other and no update is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from challenges import repository
from challenges.models import Challenge, First, Match, MemberState, Progress, rule_matches
from challenges.periods import instance_of
from challenges.rules import count_event, event_matches, fresh_progress, prune_instances, screen
from engine.events import Event
from engine.tenants import config_version

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId, MemberId
    from engine.pipeline import EventContext, UnitOfWork
    from engine.tenants import Brand


@dataclass(frozen=True, slots=True)
class ActiveProgram:
    """A brand's live challenges (draft, paused and archived ones left out), indexed by event type."""

    challenges: tuple[Challenge, ...]
    by_type: dict[str, tuple[Challenge, ...]] = field(default_factory=dict)
    opt_in: frozenset[int] = frozenset()
    """Ids of the campaigns that need an opt-in."""

    @classmethod
    def of(cls, challenges: list[Challenge]) -> ActiveProgram:
        """Index the challenges whose campaign is live by the event types their rules look at."""
        live = tuple(c for c in challenges if c.campaign.status == "live")
        by_type: dict[str, list[Challenge]] = {}
        for challenge in live:
            for event_type in dict.fromkeys(m.event_type for m in rule_matches(challenge.rule)):
                by_type.setdefault(event_type, []).append(challenge)
        return cls(
            challenges=live,
            by_type={k: tuple(v) for k, v in by_type.items()},
            opt_in=frozenset(c.campaign.id for c in live if c.campaign.opt_in),
        )


class DefinitionCache:
    """Per-brand compiled challenges, reloaded when the brand's config version moves."""

    def __init__(self) -> None:
        self._entries: dict[BrandId, tuple[int, str, ActiveProgram]] = {}

    async def program(self, session: AsyncSession, brand: Brand) -> ActiveProgram:
        """The brand's live challenges as of this transaction."""
        version = await config_version(session, brand.id)
        hit = self._entries.get(brand.id)
        if hit is not None and hit[0] == version and hit[1] == brand.timezone:
            return hit[2]
        compiled = await repository.load_compiled(session, brand_id=brand.id, tz=brand.tz)
        program = ActiveProgram.of(compiled)
        self._entries[brand.id] = (version, brand.timezone, program)
        return program


@dataclass(slots=True)
class _Candidate:
    ctx: EventContext
    challenge: Challenge
    instance: str


@dataclass(slots=True)
class _Member:
    """A member's state being worked on; a challenge's instances are copied when first changed."""

    progress: dict[str, dict[str, Progress]]
    completions: dict[str, int]
    touched: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, state: MemberState | None) -> _Member:
        if state is None:
            return cls(progress={}, completions={})
        return cls(progress=dict(state.progress), completions=dict(state.completions))

    def instances(self, key: str) -> dict[str, Progress]:
        """The challenge's instances, as a map this unit of work may change."""
        if key not in self.touched:
            self.progress[key] = dict(self.progress.get(key, {}))
            self.touched.add(key)
        return self.progress[key]

    def state(self) -> MemberState:
        return MemberState(progress={k: v for k, v in self.progress.items() if v}, completions=self.completions)


class ChallengeProcessor:
    """Evaluates every new event against the brand's live challenges."""

    name = "challenges"

    def __init__(self, cache: DefinitionCache | None = None) -> None:
        self.cache = cache or DefinitionCache()

    async def process(self, uow: UnitOfWork) -> None:
        """Advance progress for the unit's events, in order, and emit progress, completion and reward effects."""
        program = await self.cache.program(uow.session, uow.brand)
        if not program.by_type:
            return
        session, brand_id, tz, now = uow.session, uow.brand.id, uow.tz, uow.now
        by_type = program.by_type
        touched = [(ctx, by_type[ctx.event.type]) for ctx in uow.events if ctx.event.type in by_type]
        if not touched:
            return
        opted = await repository.enrolments(
            session,
            brand_id=brand_id,
            campaign_ids=set(program.opt_in),
            member_ids={ctx.member_id for ctx, _ in touched} if program.opt_in else set(),
        )
        candidates: list[_Candidate] = []
        for ctx, challenges in touched:
            for challenge in challenges:
                opted_in_at = opted.get((challenge.campaign.id, ctx.member_id)) if challenge.campaign.opt_in else None
                if screen(challenge, ctx.event, tz=tz, member=ctx.member, received_at=now, opted_in_at=opted_in_at):
                    continue
                instance = (
                    ""
                    if challenge.recurrence == "none"
                    else instance_of(challenge.recurrence, ctx.event.occurred_at, tz)
                )
                candidates.append(_Candidate(ctx, challenge, instance))
        if not candidates:
            return
        member_ids = {c.ctx.member_id for c in candidates}
        stored = await repository.load_states(session, brand_id=brand_id, member_ids=member_ids)
        members = {member_id: _Member.of(stored.get(member_id)) for member_id in member_ids}
        dirty = await self._seed_firsts(session, brand_id=brand_id, candidates=candidates, members=members)
        completed: list[repository.Completion] = []
        for candidate in candidates:
            challenge, instance, ctx = candidate.challenge, candidate.instance, candidate.ctx
            member = members[ctx.member_id]
            key = challenge.key
            before = fresh_progress(member.progress.get(key, {}).get(instance), challenge, instance)
            outcome = count_event(
                challenge,
                before,
                ctx.event,
                tz=tz,
                member=ctx.member,
                completions=member.completions.get(key, 0),
            )
            if outcome.progress is not before:
                member.instances(key)[instance] = outcome.progress
                dirty.add(ctx.member_id)
            if outcome.completed:
                member.completions[key] = member.completions.get(key, 0) + 1
                completed.append(
                    repository.Completion(
                        challenge_id=challenge.id,
                        member_id=ctx.member_id,
                        instance=instance,
                        completed_at=ctx.event.occurred_at,
                        event_key=ctx.event.id,
                    )
                )
            ctx.effects.extend(outcome.effects)
        recurring = {c.key: c for c in program.challenges if c.recurrence != "none"}
        for member_id in dirty:
            member = members[member_id]
            for key in member.touched & recurring.keys():
                if len(member.progress[key]) > 1:  # the current instance alone never needs pruning yet
                    member.progress[key] = prune_instances(member.progress[key], recurring[key], now=now, tz=tz)
        await repository.save_states(
            session, db=uow.db, brand_id=brand_id, states={m: members[m].state() for m in dirty}, now=now
        )
        await repository.record_completions(session, db=uow.db, brand_id=brand_id, completions=completed, now=now)

    async def _seed_firsts(
        self,
        session: AsyncSession,
        *,
        brand_id: BrandId,
        candidates: list[_Candidate],
        members: dict[MemberId, _Member],
    ) -> set[MemberId]:
        """For ``first`` challenges a member has no progress on yet, look for an earlier matching event.

        Returns:
            The members found to have one (their state changed and must be saved).
        """
        seeded: set[MemberId] = set()
        earliest: dict[tuple[int, MemberId], _Candidate] = {}
        for candidate in candidates:
            challenge, member_id = candidate.challenge, candidate.ctx.member_id
            if isinstance(challenge.rule, First) and challenge.key not in members[member_id].progress:
                pair = (challenge.id, member_id)
                known = earliest.get(pair)
                if known is None or candidate.ctx.event.occurred_at < known.ctx.event.occurred_at:
                    earliest[pair] = candidate
        by_challenge: dict[int, list[_Candidate]] = {}
        for candidate in earliest.values():
            by_challenge.setdefault(candidate.challenge.id, []).append(candidate)
        for group in by_challenge.values():
            challenge = group[0].challenge
            (match,) = rule_matches(challenge.rule)
            rows = await repository.earlier_events(
                session,
                brand_id=brand_id,
                event_type=match.event_type,
                member_ids={c.ctx.member_id for c in group},
                before=max(c.ctx.event.occurred_at for c in group),
            )
            first_at = {c.ctx.member_id: c.ctx.event.occurred_at for c in group}
            views = {c.ctx.member_id: c.ctx.member for c in group}
            prior = {
                member_id
                for member_id, occurred_at, properties in rows
                if occurred_at < first_at[member_id] and _matches(match, occurred_at, properties, views[member_id])
            }
            for candidate in group:
                if candidate.ctx.member_id in prior:
                    fresh = fresh_progress(None, challenge, candidate.instance)
                    # Remembered (and stored) so the log is searched once per member and challenge.
                    instances = members[candidate.ctx.member_id].instances(challenge.key)
                    instances[candidate.instance] = msgspec.structs.replace(fresh, prior=True)
                    seeded.add(candidate.ctx.member_id)
        return seeded

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Nothing derived to update: progress, ledger and outbox rows were written in the transaction."""


def _matches(match: Match, occurred_at: datetime, properties: dict[str, Any], member: Mapping[str, Any]) -> bool:
    probe = Event(id="-", member="-", type=match.event_type, occurred_at=occurred_at, properties=properties)
    return event_matches(match, probe, member)
