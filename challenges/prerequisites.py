"""Prerequisites between challenges: validating the graph, and when a challenge opens in a replay.

A challenge may require others to be completed first (``requires.challenges``). The whole program is
checked when definitions are saved: every named challenge must exist and the requirements must not form
a cycle. Live, the pipeline looks at the member's completion counts before each event; a replay (explain,
backfill) finds the same moment by replaying the prerequisites over the same events first, so both stay
pure folds that agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from challenges.models import rule_matches
from challenges.rules import replay
from engine.predicates import matches as predicate_matches

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime
    from typing import Any
    from zoneinfo import ZoneInfo

    from challenges.models import Challenge
    from challenges.rules import Replayed
    from engine.events import Event


def opens_at(
    challenge: Challenge,
    program: Mapping[str, Challenge],
    first_completion: Callable[[Challenge, int | None], int | None],
) -> int | None:
    """The index of the first event that may count for ``challenge`` in a replay, ``None`` if it never opens.

    ``first_completion(prerequisite, its own opening index)`` replays a prerequisite over the same events
    and answers the index of the event that first completed it (or ``None``). A challenge opens with the
    event *after* the last of its prerequisites completed. A prerequisite missing from ``program``
    (archived) never completes.
    """
    opening = 0
    for key in challenge.requires.challenges:
        other = program.get(key)
        if other is None:
            return None
        completed = first_completion(other, opens_at(other, program, first_completion))
        if completed is None:
            return None
        opening = max(opening, completed + 1)
    return opening


def closure(challenge: Challenge, program: Mapping[str, Challenge]) -> list[Challenge]:
    """``challenge`` and every challenge it requires, directly or not (each once)."""
    found: dict[str, Challenge] = {}
    pending = [challenge]
    while pending:
        current = pending.pop()
        if current.key in found:
            continue
        found[current.key] = current
        pending.extend(program[k] for k in current.requires.challenges if k in program)
    return list(found.values())


def event_types(challenge: Challenge, program: Mapping[str, Challenge]) -> set[str]:
    """The event types a replay of ``challenge`` with its prerequisites needs."""
    return {m.event_type for c in closure(challenge, program) for m in rule_matches(c.rule)}


def replay_program(
    challenge: Challenge,
    program: Mapping[str, Challenge],
    events: Sequence[tuple[Event, datetime]],
    *,
    tz: ZoneInfo,
    member: Mapping[str, Any],
    history: Sequence[tuple[Event, datetime]] | None = None,
    opted_in_at: Callable[[Challenge], datetime | None] | None = None,
    live: bool = False,
    prior: bool = False,
) -> Replayed:
    """:func:`challenges.rules.replay` of ``challenge`` over ``events``, opened when its prerequisites complete.

    The prerequisites are replayed (each once) over ``history`` — the member's events of every type they
    need, in the same order as ``events``, of which ``events`` is a part (by default ``events`` itself) — to
    find the event after which the last of them first completed; ``challenge`` opens with the next one.
    ``opted_in_at`` gives the member's opt-in per challenge's campaign. Prerequisites are replayed without
    ``prior`` (what a ``first`` prerequisite missed is out of reach here).
    """
    past = events if history is None else history

    def opted(target: Challenge) -> datetime | None:
        return opted_in_at(target) if opted_in_at is not None else None

    firsts: dict[str, int | None] = {}

    def first_completion(other: Challenge, opening: int | None) -> int | None:
        if other.key not in firsts:
            folded = replay(other, past, tz=tz, member=member, opted_in_at=opted(other), live=live, opens_at=opening)
            firsts[other.key] = next((i for i, (_id, o) in enumerate(folded.outcomes) if o.completed), None)
        return firsts[other.key]

    opening = opens_at(challenge, program, first_completion) if challenge.requires.challenges else 0
    if opening is not None and history is not None:
        later = {event.id for event, _received in history[opening:]}
        opening = next((i for i, (event, _r) in enumerate(events) if event.id in later), len(events))
    return replay(
        challenge, events, tz=tz, member=member, opted_in_at=opted(challenge), live=live, prior=prior, opens_at=opening
    )


class Lock(msgspec.Struct, frozen=True, kw_only=True):
    """What still keeps a challenge closed to a member (for the member API and the portal)."""

    challenges: list[str]
    """Keys of the required challenges the member has not completed yet."""
    tiers: list[str]
    """The tiers that open it, when the member is in none of them (else empty)."""
    condition: bool
    """Whether another member condition (``requires.member``) is not met."""


def lock_of(challenge: Challenge, completions: Mapping[str, int], member: Mapping[str, Any]) -> Lock | None:
    """Why ``challenge`` is closed to the member now (``None`` when it is open)."""
    requires = challenge.requires
    missing = [key for key in requires.challenges if completions.get(key, 0) <= 0]
    condition_met = requires.member is None or predicate_matches(requires.member, properties={}, member=member)
    if not missing and condition_met:
        return None
    tiers = list(requires.tiers) if requires.tiers and member.get("tier") not in requires.tiers else []
    return Lock(challenges=missing, tiers=tiers, condition=not condition_met and not tiers)
