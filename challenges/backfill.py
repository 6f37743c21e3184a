"""Backfill: count a new challenge's matching events since a past date by replaying the stored event log.

Progress is a fold over events (DESIGN.md), so a backfill recomputes each member's progress on the
challenge from their stored events with :func:`challenges.rules.replay` and replaces it. It runs after
the definition is committed, a chunk of members per transaction, with those members' rows locked the
way the pipeline locks them: a live event for the same member waits, and the replay covers every event
received since the challenge went live too, so nothing is counted twice or lost. An instance already
completed is kept as it is (its rewards were given); an instance the replay completes for the first time
gets its rewards now: ledger points tied to the completing event, and a ``challenge.completed`` outbox
row. The badge named by the reward travels in that notification; awarding it is the badges package's
job when it processes :class:`engine.effects.ChallengeCompleted` in the pipeline, which a backfill does
not run.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import insert

from challenges.completions import Completion, completed_instances, record_completions
from challenges.config import ChallengeSpec, decode, parse_when
from challenges.definitions import load_compiled, mark_backfilled, stored_campaigns, stored_challenges
from challenges.enrolments import enrolments
from challenges.models import Challenge, First, MemberState, Progress, rule_matches
from challenges.prerequisites import closure, event_types, replay_program
from challenges.rules import prune_instances, reward_effects
from challenges.states import load_states, save_states
from engine import member_locks, metrics
from engine.effects import Notification, PointsAwarded
from engine.errors import NotFound
from engine.eventlog import earlier_events, member_events, members_with_events
from engine.orm import OutboxRow
from engine.pipeline import outbox_row
from engine.points import post_entry
from engine.predicates import matches_event

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.events import Event
    from engine.ids import MemberId
    from engine.tenants import Brand

MEMBERS_PER_TRANSACTION = 200


class BackfillReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one backfill did."""

    challenge: str
    since: datetime
    members: int
    """Members with matching events in the period."""
    updated: int
    """Members whose progress changed."""
    completions: int
    """Instances newly completed (rewards given now)."""
    points: int


async def pending(db: Database, *, brand: Brand) -> list[tuple[str, datetime]]:
    """Challenges whose ``backfill_from`` has not been replayed yet (campaigns in draft wait until they go live)."""
    async with db.read() as session:
        campaigns = {c.id: c for c in await stored_campaigns(session, brand_id=brand.id)}
        found: list[tuple[str, datetime]] = []
        for row in await stored_challenges(session, brand_id=brand.id):
            spec = decode(row.spec, ChallengeSpec, path="$")
            campaign = campaigns.get(row.campaign_id)
            if spec.backfill_from is None or campaign is None or campaign.spec.get("status") == "draft":
                continue
            since = parse_when(spec.backfill_from, brand.tz, field="$.backfill_from")
            if row.backfilled_from != since:
                found.append((row.key, since))
    return found


async def run_pending(db: Database, *, brand: Brand, now: datetime) -> list[BackfillReport]:
    """Backfill every challenge that asks for it and has not been backfilled from that date yet."""
    return [
        await backfill(db, brand=brand, key=key, since=since, now=now) for key, since in await pending(db, brand=brand)
    ]


async def backfill(db: Database, *, brand: Brand, key: str, since: datetime, now: datetime) -> BackfillReport:
    """Recompute every member's progress on challenge ``key`` counting events that occurred since ``since``.

    Raises:
        NotFound: no such (live) challenge.
    """
    async with db.read() as session:
        compiled = {c.key: c for c in await load_compiled(session, brand_id=brand.id, tz=brand.tz)}
        if key not in compiled:
            raise NotFound(f"no challenge {key!r}", field="key")
        challenge = msgspec.structs.replace(compiled[key], backfill_from=since)
        types = {m.event_type for m in rule_matches(challenge.rule)}
        start = since if challenge.campaign.starts_at is None else max(since, challenge.campaign.starts_at)
        members = await members_with_events(
            session, brand_id=brand.id, types=types, since=start, received_since=challenge.live_since
        )
    updated = completions = points = 0
    for offset in range(0, len(members), MEMBERS_PER_TRANSACTION):
        chunk = members[offset : offset + MEMBERS_PER_TRANSACTION]
        async with db.write() as session:
            result = await _backfill_members(
                session,
                db=db,
                brand=brand,
                challenge=challenge,
                program=compiled,
                start=start,
                external_ids=[m[1] for m in chunk],
                now=now,
            )
        updated += result[0]
        completions += result[1]
        points += result[2]
    async with db.write() as session:
        await mark_backfilled(session, brand_id=brand.id, challenge_id=challenge.id, backfilled_from=since)
    return BackfillReport(
        challenge=key, since=since, members=len(members), updated=updated, completions=completions, points=points
    )


def _opted_in_at(
    opted: Mapping[tuple[int, MemberId], datetime], member_id: MemberId, challenge: Challenge
) -> datetime | None:
    return opted.get((challenge.campaign.id, member_id))


async def _backfill_members(
    session: AsyncSession,
    *,
    db: Database,
    brand: Brand,
    challenge: Challenge,
    program: dict[str, Challenge],
    start: datetime,
    external_ids: list[str],
    now: datetime,
) -> tuple[int, int, int]:
    tz = brand.tz
    locked = await member_locks.ensure_and_lock(session, db=db, brand_id=brand.id, external_ids=external_ids, now=now)
    ids = {m.id for m in locked.values()}
    states = await load_states(session, brand_id=brand.id, member_ids=ids)
    done = await completed_instances(session, brand_id=brand.id, challenge_id=challenge.id, member_ids=ids)
    campaign_ids = {c.campaign.id for c in closure(challenge, program)}
    opted = await enrolments(session, brand_id=brand.id, campaign_ids=campaign_ids, member_ids=ids)
    types = {m.event_type for m in rule_matches(challenge.rule)}
    key = challenge.key
    changed: dict[MemberId, MemberState] = {}
    recorded: list[Completion] = []
    completions = points = 0
    for member in locked.values():
        events = await member_events(
            session,
            brand_id=brand.id,
            member_id=member.id,
            external_id=member.external_id,
            types=types,
            since=start,
            received_since=challenge.live_since,
            limit=1_000_000,
        )
        prior = await _prior(
            session, brand=brand, challenge=challenge, member_id=member.id, view=member.predicate_view, start=start
        )
        history = None
        if challenge.requires.challenges:  # when it opened: its prerequisites over the member's whole history
            history = await member_events(
                session,
                brand_id=brand.id,
                member_id=member.id,
                external_id=member.external_id,
                types=event_types(challenge, program),
                limit=1_000_000,
            )
        replayed = replay_program(
            challenge,
            program,
            events,
            tz=tz,
            member=member.predicate_view,
            history=history,
            opted_in_at=functools.partial(_opted_in_at, opted, member.id),
            prior=prior,
        )
        state = states.get(member.id, MemberState())
        before = state.progress.get(key, {})
        already = done.get(member.id, set())
        merged: dict[str, Progress] = dict(before)
        completing: dict[str, Event] = {}
        by_id = {event.id: event for event, _received in events}
        for event_id, outcome in replayed.outcomes:
            if outcome.completed:
                completing.setdefault(outcome.progress.instance, by_id[event_id])
        for instance, progress in replayed.progress.items():
            if instance in already:
                continue  # completed (and rewarded) before: it stays as it was
            merged[instance] = progress
            if progress.completed and instance in completing:
                event = completing[instance]
                completions += 1
                already = already | {instance}
                recorded.append(
                    Completion(
                        challenge_id=challenge.id,
                        member_id=member.id,
                        instance=instance,
                        completed_at=event.occurred_at,
                        event_key=event.id,
                    )
                )
                points += await _reward(
                    session,
                    brand=brand,
                    challenge=challenge,
                    member_id=member.id,
                    external_id=member.external_id,
                    event=event,
                    instance=instance,
                    now=now,
                )
        merged = prune_instances(merged, challenge, now=now, tz=tz)
        if merged != before:
            progress_map = (
                {**state.progress, key: merged} if merged else {k: v for k, v in state.progress.items() if k != key}
            )
            changed[member.id] = MemberState(
                progress=progress_map, completions={**state.completions, key: len(already)}
            )
    await save_states(session, db=db, brand_id=brand.id, states=changed, now=now)
    await record_completions(session, db=db, brand_id=brand.id, completions=recorded, now=now)
    metrics.count_on_commit(session, metrics.CHALLENGE_COMPLETIONS, brand, amount=completions)
    return len(changed), completions, points


async def _prior(
    session: AsyncSession,
    *,
    brand: Brand,
    challenge: Challenge,
    member_id: MemberId,
    view: dict[str, Any],
    start: datetime,
) -> bool:
    """For ``first``: whether the member has a matching event before the replayed period."""
    if not isinstance(challenge.rule, First):
        return False
    match = challenge.rule.match
    rows = await earlier_events(
        session, brand_id=brand.id, event_type=match.event_type, member_ids={member_id}, before=start
    )
    return any(
        matches_event(match.event_type, match.filter, event_type=match.event_type, properties=props, member=view)
        for _member, _at, props in rows
    )


async def _reward(
    session: AsyncSession,
    *,
    brand: Brand,
    challenge: Challenge,
    member_id: MemberId,
    external_id: str,
    event: Event,
    instance: str,
    now: datetime,
) -> int:
    """Give a backfilled completion's rewards: ledger points and the outbox notification; returns the points."""
    given = 0
    for effect in reward_effects(challenge, instance=instance, completed_at=event.occurred_at):
        if isinstance(effect, PointsAwarded):
            await post_entry(
                session,
                brand_id=brand.id,
                member_id=member_id,
                points=effect.points,
                source="challenge",
                key=challenge.key,
                reason="backfill",
                occurred_at=event.occurred_at,
                tz=brand.tz,
                now=now,
                event_key=event.id,
            )
            given += effect.points
        elif isinstance(effect, Notification):
            row = outbox_row(
                brand_id=brand.id,
                topic=effect.topic,
                data={"member": external_id, "event": event.id, "backfill": True, **effect.data},
                now=now,
            )
            await session.execute(insert(OutboxRow), [row])
    return given
