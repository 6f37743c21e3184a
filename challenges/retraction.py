"""Challenges' part of a retraction: re-fold the member's progress without the retracted event.

Progress is a fold over events (DESIGN.md), so undoing an event is a replay, not a guess: for every
challenge whose rule matches the event's type, the member's remaining events (the log no longer yields
the retracted one, and a partly refunded one with the rest of its ``amount``) are replayed with
:func:`challenges.rules.replay`, and the instance the event fell in takes the replayed progress.

A completed instance the remaining events still complete stays as it is (its rewards were given once).
One they no longer complete follows the brand's ``retraction.completions`` policy:

- ``claw_back``: the completion is removed (it can be earned again), its reward points are taken back
  (:mod:`engine.reversal`, cap at zero) and its badge revoked (:class:`engine.grants.BadgeRevoker`);
- ``keep``: the completion, its points and its badge stay; only instances not completed are re-folded.

A retraction never completes anything: an instance the replay would newly complete keeps its stored progress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from challenges.definitions import load_compiled
from challenges.enrolments import enrolments
from challenges.models import MemberState, rule_kind, rule_matches
from challenges.orm import CompletionRow
from challenges.rules import replay
from challenges.states import load_states, save_states
from engine import reversal
from engine.eventlog import member_events
from engine.periods import instance_of
from engine.retraction_models import Undone

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from challenges.models import Challenge, Progress
    from engine.db import Database
    from engine.grants import BadgeRevoker
    from engine.retraction_models import RetractedEvent

MAX_REPLAYED_EVENTS = 100_000


class ChallengesUndo:
    """:class:`engine.grants.EventUndo` for challenges (wired with the badges package's revoker)."""

    name = "challenges"

    def __init__(self, db: Database, *, revoke_badge: BadgeRevoker | None = None) -> None:
        self._db = db
        self._revoke_badge = revoke_badge

    async def undo(self, session: AsyncSession, target: RetractedEvent) -> Undone:
        """Re-fold every challenge the event could count for; report the ones whose progress changed."""
        brand, event = target.brand, target.event
        concerned = [
            c
            for c in await load_compiled(session, brand_id=brand.id, tz=brand.tz)
            if event.type in {m.event_type for m in rule_matches(c.rule)}
        ]
        if not concerned:
            return Undone()
        member_id = target.member_id
        state = (await load_states(session, brand_id=brand.id, member_ids={member_id})).get(member_id, MemberState())
        progress_map = dict(state.progress)
        completions = dict(state.completions)
        report: list[dict[str, Any]] = []
        for challenge in concerned:
            changed = await self._refold(session, target, challenge, progress_map, completions)
            if changed is not None:
                report.append(changed)
        if report:
            await save_states(
                session,
                db=self._db,
                brand_id=brand.id,
                states={member_id: MemberState(progress=progress_map, completions=completions)},
                now=target.now,
            )
        return Undone(report={"changed": report} if report else {})

    async def _refold(
        self,
        session: AsyncSession,
        target: RetractedEvent,
        challenge: Challenge,
        progress_map: dict[str, dict[str, Progress]],
        completions: dict[str, int],
    ) -> dict[str, Any] | None:
        brand, event, member_id = target.brand, target.event, target.member_id
        instance = instance_of(challenge.recurrence, event.occurred_at, brand.tz)
        key = challenge.key
        before = progress_map.get(key, {})
        stored = before.get(instance)
        if stored is None:
            return None  # the event never counted here
        opted = await enrolments(
            session, brand_id=brand.id, campaign_ids={challenge.campaign.id}, member_ids={member_id}
        )
        events = await member_events(
            session,
            brand_id=brand.id,
            member_id=member_id,
            external_id=event.member,
            types={m.event_type for m in rule_matches(challenge.rule)},
            since=None if rule_kind(challenge.rule) == "first" else challenge.campaign.starts_at,
            limit=MAX_REPLAYED_EVENTS,
        )
        replayed = replay(
            challenge,
            events,
            tz=brand.tz,
            member=target.member,
            opted_in_at=opted.get((challenge.campaign.id, member_id)),
        )
        after = replayed.progress.get(instance)
        still_done = after is not None and after.completed_at is not None
        was_done = stored.completed_at is not None
        if (was_done and still_done) or (not was_done and after == stored):
            return None
        entry: dict[str, Any] = {"challenge": key, "instance": instance}
        if was_done:
            if target.policy.completions == "keep":
                return None
            entry.update(await self._claw_back(session, target, challenge, instance))
            completions[key] = max(0, completions.get(key, 0) - 1)
        elif after is not None and after.completed_at is not None:
            return None  # a retraction never completes an instance
        instances = {k: v for k, v in before.items() if k != instance}
        if after is not None:
            instances[instance] = after
        if instances:
            progress_map[key] = instances
        else:
            progress_map.pop(key, None)
        entry["progress"] = round(after.value, 6) if after is not None else 0
        return entry

    async def _claw_back(
        self, session: AsyncSession, target: RetractedEvent, challenge: Challenge, instance: str
    ) -> dict[str, Any]:
        """Remove the completion, take back its reward points, revoke its badge."""
        brand, member_id = target.brand, target.member_id
        completing = await session.scalar(
            select(CompletionRow.event_key).where(
                CompletionRow.challenge_id == challenge.id,
                CompletionRow.member_id == member_id,
                CompletionRow.instance == instance,
            )
        )
        await session.execute(
            delete(CompletionRow).where(
                CompletionRow.challenge_id == challenge.id,
                CompletionRow.member_id == member_id,
                CompletionRow.instance == instance,
            )
        )
        done: dict[str, Any] = {"completion": "clawed_back", "points": 0}
        if completing is None:
            return done
        reason = f"retraction of event {target.event.id}: challenge {challenge.key} no longer completed"
        earned = await reversal.earned_by(
            session, brand, member_id=member_id, event_key=completing, sources=("challenge",), key=challenge.key
        )
        taken = await reversal.take_back(
            session, brand, member_id=member_id, event_key=completing, lot_ids=list(earned),
            points=sum(earned.values()), reason=reason, now=target.now,
        )  # fmt: skip
        done["points"] = taken.taken
        done["unrecovered"] = taken.unrecovered
        badge = challenge.reward.badge
        if badge and self._revoke_badge is not None:
            revoked = await self._revoke_badge(
                session, brand=brand, member_id=member_id, badge_key=badge, source="challenge",
                source_ref=f"{challenge.key}:{instance or completing}", reason=reason, now=target.now,
            )  # fmt: skip
            if revoked:
                done["badge"] = badge
        return done
