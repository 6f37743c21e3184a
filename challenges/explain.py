"""Why a member's challenge stands where it does: each of their events replayed through the rule, with reasons."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from challenges.enrolments import enrolments
from challenges.models import (
    CampaignState,
    Reason,
    rule_kind,
    rule_matches,
)
from challenges.prerequisites import closure, event_types, replay_program
from challenges.rules import campaign_state, evaluate
from engine.errors import NotFound
from engine.eventlog import member_events, retracted_among
from engine.predicates import matches as predicate_matches

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.events import Event
    from engine.members import Member
    from engine.tenants import Brand

from challenges.views import MAX_REPLAYED_EVENTS, MemberChallenge, member_challenge, visible_challenges


class ExplainedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One of the member's events and what it did for the challenge."""

    id: str
    type: str
    occurred_at: datetime
    received_at: datetime
    instance: str
    counted: bool
    reason: Reason
    detail: str
    progress: float | None
    """Progress of the instance after this event (``None`` when the event does not concern the challenge)."""
    retracted_at: datetime | None = None
    """When the event was retracted whole (it counts for nothing since); see ``refunded`` for a partial refund."""
    refunded: float = 0.0
    """How much of the event's ``amount`` partial retractions refunded (progress counts the rest)."""


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """A challenge, the member's stored progress on it, and their recent events explained."""

    challenge: MemberChallenge
    notes: list[str]
    events: list[ExplainedEvent]
    """Newest first."""


async def explain(
    session: AsyncSession, *, brand: Brand, member: Member, key: str, now: datetime, limit: int = 20
) -> Explanation:
    """The member's ``limit`` most recent events, each with why it did or did not count for challenge ``key``.

    Raises:
        NotFound: no such challenge.
    """
    program = {c.key: c for c in await visible_challenges(session, brand)}
    challenge = program.get(key)
    if challenge is None:
        raise NotFound(f"no challenge {key!r}", field="key")
    tz = brand.tz
    view = await member_challenge(session, brand=brand, member=member, key=key, now=now)
    campaign_ids = {c.campaign.id for c in closure(challenge, program)}
    opted = await enrolments(session, brand_id=brand.id, campaign_ids=campaign_ids, member_ids={member.id})
    types = {m.event_type for m in rule_matches(challenge.rule)}
    gated = bool(challenge.requires.challenges)
    history = await member_events(
        session,
        brand_id=brand.id,
        member_id=member.id,
        external_id=member.external_id,
        types=event_types(challenge, program),
        since=None if rule_kind(challenge.rule) == "first" or gated else challenge.campaign.starts_at,
        limit=MAX_REPLAYED_EVENTS,
        newest=True,
    )
    folded = [pair for pair in history if pair[0].type in types] if gated else history
    replayed = replay_program(
        challenge,
        program,
        folded,
        tz=tz,
        member=member.predicate_view,
        history=history if gated else None,
        opted_in_at=lambda c: opted.get((c.campaign.id, member.id)),
    )
    outcomes = dict(replayed.outcomes)
    recent = await member_events(
        session,
        brand_id=brand.id,
        member_id=member.id,
        external_id=member.external_id,
        limit=limit,
        newest=True,
        include_retracted=True,
    )
    retracted = await retracted_among(session, brand_id=brand.id, keys=[event.id for event, _ in recent])
    explained: list[ExplainedEvent] = []
    for event, received_at in reversed(recent):
        outcome = outcomes.get(event.id)
        concerned = outcome is not None
        retracted_at, refunded = retracted.get(event.id, (None, 0.0))
        if retracted_at is not None:
            explained.append(_retracted(event, received_at, retracted_at, refunded))
            continue
        if outcome is None:
            outcome = evaluate(
                challenge,
                None,
                event,
                tz=tz,
                member=member.predicate_view,
                received_at=received_at,
                live=False,
            )
        explained.append(
            ExplainedEvent(
                id=event.id,
                type=event.type,
                occurred_at=event.occurred_at,
                received_at=received_at,
                instance=outcome.progress.instance,
                counted=outcome.counted,
                reason=outcome.reason,
                detail=outcome.detail,
                progress=round(outcome.progress.value, 2) if concerned else None,
                refunded=refunded,
            )
        )
    notes = [
        "Reasons are recomputed from the stored events with the current definition; the progress shown is the stored one."
    ]
    state = campaign_state(challenge.campaign, now)
    if state is CampaignState.PAUSED:
        notes.append("The campaign is paused: events received while it is paused do not count.")
    if len(folded) >= MAX_REPLAYED_EVENTS:
        notes.append(f"Only the member's latest {MAX_REPLAYED_EVENTS} matching events were replayed.")
    if not predicate_matches(challenge.campaign.eligibility, properties={}, member=member.predicate_view):
        notes.append("The member is not eligible for this campaign.")
    return Explanation(challenge=view, notes=notes, events=explained)


def _retracted(event: Event, received_at: datetime, retracted_at: datetime, refunded: float) -> ExplainedEvent:
    """A retracted event in the explain view: it counts for nothing since ``retracted_at``."""
    return ExplainedEvent(
        id=event.id,
        type=event.type,
        occurred_at=event.occurred_at,
        received_at=received_at,
        instance="",
        counted=False,
        reason=Reason.RETRACTED,
        detail=f"retracted at {retracted_at.isoformat()}: progress was re-folded without it",
        progress=None,
        retracted_at=retracted_at,
        refunded=refunded,
    )
