"""A large unit's challenges folded before its members' locks, and the check of that fold under them.

:meth:`challenges.processor.ChallengeProcessor.prefold` folds a ``engine.pipeline.Draft`` and keeps, per
member, the inputs it read and what it made of them (:func:`record`); under the locks
:func:`keep_prefolded` takes that outcome for every member whose inputs are unchanged. What one fold of
some members' events made is a :class:`Fold`, whether it ran ahead or under the locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from challenges.models import rule_matches
from engine.eventlog import earlier_events
from engine.predicates import matches_event

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from challenges.completions import Completion
    from challenges.models import Challenge
    from challenges.processor import ActiveProgram, Plan
    from engine.effects import Effect
    from engine.ids import BrandId, MemberId
    from engine.pipeline import EventContext


_ABSENT = object()


def view_key(view: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[Any, ...]:
    """What the fold sees of a member's view: its values at the program's :attr:`ActiveProgram.member_keys`.

    A step before the challenges may change a view where no challenge looks (the segments step adds the
    member's segments to every view): the pre-fold is kept unless a value a challenge reads changed.
    """
    return tuple(view.get(key, _ABSENT) for key in keys)


PREFOLD_STASH = "challenges.prefold"
"""``uow.stash``: the challenges a large unit's events were folded into before its locks (:class:`Prefold`)."""


@dataclass(slots=True)
class Fold:
    """What folding members' events made: the states to save and the completions, by event."""

    states: dict[MemberId, str] = field(default_factory=dict)
    completed: list[tuple[int, Completion]] = field(default_factory=list)
    """(event index, completion), in the order the fold made them."""
    asked: dict[MemberId, set[tuple[int, int]]] = field(default_factory=dict)
    """Per member, the (``first`` challenge id, event index) whose earlier events were looked up."""
    prior: dict[MemberId, set[int]] = field(default_factory=dict)
    """Per member, the ``first`` challenges the look-up found an earlier event for."""

    def completions(self) -> list[Completion]:
        """The completions in event order (the order folding the whole unit in one pass makes them)."""
        return [completion for _, completion in sorted(self.completed, key=lambda pair: pair[0])]


@dataclass(frozen=True, slots=True)
class Folded:
    """One member's part of a pre-fold: every input the fold read for it, and what it made of them."""

    state: str | None
    opted: tuple[tuple[int, datetime], ...]
    seen: list[tuple[int, tuple[Any, ...]]]
    """(index, what the challenges read of the member's view: :func:`view_key`) of each of the member's events
    the challenges look at, in order."""
    asked: frozenset[tuple[int, int]]
    prior: frozenset[int]
    encoded: str | None
    """The state to save (``None``: unchanged)."""
    completed: list[tuple[int, Completion]]
    effects: dict[int, list[Effect]]
    """The step's effects, by event index."""


@dataclass(frozen=True, slots=True)
class Prefold:
    """A unit's events folded before its locks (:meth:`ChallengeProcessor.prefold`), by member's external id."""

    version: int
    members: dict[str, Folded]


def opted_by_member(
    opted: Mapping[tuple[int, MemberId], datetime],
) -> dict[MemberId, tuple[tuple[int, datetime], ...]]:
    """Each member's opt-ins as (campaign id, time), sorted (members with none left out)."""
    found: dict[MemberId, list[tuple[int, datetime]]] = {}
    for (campaign_id, member_id), at in opted.items():
        found.setdefault(member_id, []).append((campaign_id, at))
    return {member_id: tuple(sorted(pairs)) for member_id, pairs in found.items()}


def by_member(touched: list[tuple[EventContext, tuple[Plan, ...]]]) -> dict[MemberId, list[EventContext]]:
    """The events the challenges look at, by member, in order."""
    found: dict[MemberId, list[EventContext]] = {}
    for ctx, _ in touched:
        found.setdefault(ctx.member_id, []).append(ctx)
    return found


async def keep_prefolded(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    program: ActiveProgram,
    prefolded: Prefold,
    touched: list[tuple[EventContext, tuple[Plan, ...]]],
    texts: Mapping[MemberId, str],
    opted: Mapping[tuple[int, MemberId], datetime],
    fold: Fold,
) -> list[tuple[EventContext, tuple[Plan, ...]]]:
    """Take the pre-fold of every member whose inputs under the locks are the ones it read; the rest to fold.

    The inputs: the stored state, the opt-ins, the events the challenges look at with what they read of the
    member's view at each (:func:`view_key`; a step before this one may have held an event or changed the
    view), and what the earlier-events look-up of a ``first`` challenge finds (run again here for the
    members it ran for).
    """
    candidates: dict[MemberId, tuple[Folded, list[EventContext]]] = {}
    opted_by = opted_by_member(opted)
    for member_id, contexts in by_member(touched).items():
        folded = prefolded.members.get(contexts[0].event.member)
        if (
            folded is not None
            and folded.state == texts.get(member_id)
            and folded.opted == opted_by.get(member_id, ())
            and folded.seen == [(ctx.index, view_key(ctx.member, program.member_keys)) for ctx in contexts]
        ):
            candidates[member_id] = (folded, contexts)
    asked = [
        (member_id, challenge_id, index)
        for member_id, (folded, _) in candidates.items()
        for challenge_id, index in folded.asked
    ]
    if asked:
        challenges = {challenge.id: challenge for challenge in program.challenges}
        at = {ctx.index: ctx for _, contexts in candidates.values() for ctx in contexts}
        found = await lookup_prior(
            session, brand_id=brand_id, candidates=[(at[index], challenges[cid]) for _, cid, index in asked]
        )
        for member_id in {member_id for member_id, _, _ in asked}:
            if candidates[member_id][0].prior != {cid for cid, member in found if member == member_id}:
                del candidates[member_id]
    for member_id, (folded, contexts) in candidates.items():
        for ctx in contexts:
            ctx.effects.extend(folded.effects.get(ctx.index, ()))
        if folded.encoded is not None:
            fold.states[member_id] = folded.encoded
        fold.completed.extend(
            (index, msgspec.structs.replace(completion, member_id=member_id)) for index, completion in folded.completed
        )
    return [(ctx, plans) for ctx, plans in touched if ctx.member_id not in candidates]


async def lookup_prior(
    session: AsyncSession, *, brand_id: BrandId, candidates: list[tuple[EventContext, Challenge]]
) -> set[tuple[int, MemberId]]:
    """The (challenge id, member) of the candidates whose member logged a matching event before the candidate's."""
    by_challenge: dict[int, list[tuple[EventContext, Challenge]]] = {}
    for candidate in candidates:
        by_challenge.setdefault(candidate[1].id, []).append(candidate)
    found: set[tuple[int, MemberId]] = set()
    for group in by_challenge.values():
        challenge = group[0][1]
        (match,) = rule_matches(challenge.rule)
        rows = await earlier_events(
            session,
            brand_id=brand_id,
            event_type=match.event_type,
            member_ids={ctx.member_id for ctx, _ in group},
            before=max(ctx.event.occurred_at for ctx, _ in group),
        )
        first_at = {ctx.member_id: ctx.event.occurred_at for ctx, _ in group}
        views = {ctx.member_id: ctx.member for ctx, _ in group}
        found.update(
            (challenge.id, member_id)
            for member_id, occurred_at, properties in rows
            if occurred_at < first_at[member_id]
            and matches_event(
                match.event_type,
                match.filter,
                event_type=match.event_type,
                properties=properties,
                member=views[member_id],
            )
        )
    return found


def record(
    version: int,
    keys: tuple[str, ...],
    touched: list[tuple[EventContext, tuple[Plan, ...]]],
    texts: Mapping[MemberId, str],
    opted: Mapping[tuple[int, MemberId], datetime],
    fold: Fold,
) -> Prefold:
    """What a pre-fold read and made, per member: for :func:`keep_prefolded` under the locks."""
    completed: dict[MemberId, list[tuple[int, Completion]]] = {}
    opted_by = opted_by_member(opted)
    for index, completion in fold.completed:
        completed.setdefault(completion.member_id, []).append((index, completion))
    return Prefold(
        version=version,
        members={
            contexts[0].event.member: Folded(
                state=texts.get(member_id),
                opted=opted_by.get(member_id, ()),
                seen=[(ctx.index, view_key(ctx.member, keys)) for ctx in contexts],
                asked=frozenset(fold.asked.get(member_id, ())),
                prior=frozenset(fold.prior.get(member_id, ())),
                encoded=fold.states.get(member_id),
                completed=completed.get(member_id, []),
                effects={ctx.index: list(ctx.effects) for ctx in contexts if ctx.effects},
            )
            for member_id, contexts in by_member(touched).items()
        },
    )
