"""Async queries of the challenges package. Every function takes the session (or database) as a parameter.

Outside this module and :mod:`challenges.orm` nothing sees ORM rows: definitions come back as
:class:`StoredCampaign` / :class:`StoredChallenge`, progress as :class:`challenges.models.MemberState` (or,
for the pipeline, :class:`EncodedState`, decoded one challenge at a time). The stored JSON of a state is
defined here: format 2 (``{"format":2,…}``, short names, no repeated keys); the first format is still read.
Reads are batched (one query per unit of work for member states and one for opt-ins) and states are
written with one bulk upsert; per-member serialisation comes from the pipeline's member-row locks.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import msgspec
from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from challenges.config import CampaignSpec, ChallengeSpec, build_campaign, build_challenge, decode
from challenges.models import (
    MEMBER_STATE_NAMES,
    PROGRESS_NAMES,
    STATE_FORMAT,
    STREAK_CARRY_NAMES,
    Campaign,
    Challenge,
    MemberState,
    Progress,
)
from challenges.orm import CampaignRow, ChallengeRow, CompletionRow, EnrolmentRow, MemberStateRow, ProgramVersionRow
from engine.db import Json, UtcDateTime, on_postgres
from engine.events import Event
from engine.ids import BrandId, MemberId
from engine.orm import BrandRow, EarningRuleRow, EventRow, MemberRow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Mapping
    from zoneinfo import ZoneInfo

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database

_CHUNK = 500


class StoredCampaign(msgspec.Struct, frozen=True, kw_only=True):
    """A campaign row as stored."""

    id: int
    key: str
    spec: dict[str, Any]
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


class StoredChallenge(msgspec.Struct, frozen=True, kw_only=True):
    """A challenge row as stored."""

    id: int
    key: str
    campaign_id: int
    spec: dict[str, Any]
    position: int
    live_since: datetime
    backfilled_from: datetime | None
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ProgramVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded version of the program document."""

    version: int
    changes: list[str]
    source: str
    created_at: datetime


def _chunks(items: Iterable[Any]) -> Iterable[list[Any]]:
    values = list(items)
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


# --- definitions -------------------------------------------------------------------------------------


async def stored_campaigns(
    session: AsyncSession, *, brand_id: BrandId, include_archived: bool = False
) -> list[StoredCampaign]:
    """The brand's campaigns by key (archived ones only if asked)."""
    query = select(CampaignRow).where(CampaignRow.brand_id == brand_id)
    if not include_archived:
        query = query.where(CampaignRow.archived_at.is_(None))
    rows = await session.scalars(query.order_by(CampaignRow.key))
    return [msgspec.convert(r, StoredCampaign, from_attributes=True) for r in rows]


async def stored_challenges(
    session: AsyncSession, *, brand_id: BrandId, include_archived: bool = False
) -> list[StoredChallenge]:
    """The brand's challenges in program order (archived ones only if asked)."""
    query = select(ChallengeRow).where(ChallengeRow.brand_id == brand_id)
    if not include_archived:
        query = query.where(ChallengeRow.archived_at.is_(None))
    rows = await session.scalars(query.order_by(ChallengeRow.position, ChallengeRow.key))
    return [msgspec.convert(r, StoredChallenge, from_attributes=True) for r in rows]


def compile_stored(
    campaigns: list[StoredCampaign], challenges: list[StoredChallenge], *, tz: ZoneInfo
) -> list[Challenge]:
    """Compile stored definitions (validated when saved) into challenges with their campaigns."""
    by_id: dict[int, Campaign] = {
        c.id: build_campaign(decode(c.spec, CampaignSpec, path="$"), tz=tz, campaign_id=c.id) for c in campaigns
    }
    compiled: list[Challenge] = []
    for row in challenges:
        campaign = by_id.get(row.campaign_id)
        if campaign is None:
            continue
        challenge = build_challenge(
            decode(row.spec, ChallengeSpec, path="$"),
            campaign=campaign,
            tz=tz,
            challenge_id=row.id,
            live_since=row.live_since,
            position=row.position,
        )
        # Events received before the challenge went live count only once a backfill has replayed them.
        compiled.append(msgspec.structs.replace(challenge, backfill_from=row.backfilled_from))
    return compiled


async def load_compiled(
    session: AsyncSession, *, brand_id: BrandId, tz: ZoneInfo, include_archived: bool = False
) -> list[Challenge]:
    """The brand's challenges, compiled, in program order."""
    campaigns = await stored_campaigns(session, brand_id=brand_id, include_archived=include_archived)
    challenges = await stored_challenges(session, brand_id=brand_id, include_archived=include_archived)
    return compile_stored(campaigns, challenges, tz=tz)


async def insert_campaign(
    session: AsyncSession, *, brand_id: BrandId, key: str, spec: dict[str, Any], now: datetime
) -> int:
    """Store a new campaign; returns its id."""
    row = CampaignRow(brand_id=brand_id, key=key, spec=spec, archived_at=None, created_at=now, updated_at=now)
    session.add(row)
    await session.flush()
    return row.id


async def update_campaign(
    session: AsyncSession, *, brand_id: BrandId, campaign_id: int, spec: dict[str, Any], now: datetime
) -> None:
    """Replace a campaign's spec (and bring it back if it was archived)."""
    await session.execute(
        update(CampaignRow)
        .where(CampaignRow.brand_id == brand_id, CampaignRow.id == campaign_id)
        .values(spec=spec, archived_at=None, updated_at=now)
    )


async def archive_campaigns(session: AsyncSession, *, brand_id: BrandId, ids: list[int], now: datetime) -> None:
    """Archive campaigns: they stop counting and leave the program; opt-ins stay for a comeback."""
    if ids:
        await session.execute(
            update(CampaignRow)
            .where(CampaignRow.brand_id == brand_id, CampaignRow.id.in_(ids))
            .values(archived_at=now, updated_at=now)
        )


async def insert_challenge(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    key: str,
    campaign_id: int,
    spec: dict[str, Any],
    position: int,
    now: datetime,
) -> int:
    """Store a new challenge, live from ``now``; returns its id."""
    row = ChallengeRow(
        brand_id=brand_id,
        key=key,
        campaign_id=campaign_id,
        spec=spec,
        position=position,
        live_since=now,
        backfilled_from=None,
        archived_at=None,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return row.id


async def update_challenge(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    challenge_id: int,
    campaign_id: int,
    spec: dict[str, Any],
    position: int,
    now: datetime,
) -> None:
    """Replace a challenge's spec in place (progress rows keep pointing at it)."""
    await session.execute(
        update(ChallengeRow)
        .where(ChallengeRow.brand_id == brand_id, ChallengeRow.id == challenge_id)
        .values(spec=spec, campaign_id=campaign_id, position=position, archived_at=None, updated_at=now)
    )


async def archive_challenges(session: AsyncSession, *, brand_id: BrandId, ids: list[int], now: datetime) -> None:
    """Archive challenges: they stop counting and leave the program, but members' progress is kept."""
    if ids:
        await session.execute(
            update(ChallengeRow)
            .where(ChallengeRow.brand_id == brand_id, ChallengeRow.id.in_(ids))
            .values(archived_at=now, updated_at=now)
        )


async def mark_backfilled(
    session: AsyncSession, *, brand_id: BrandId, challenge_id: int, backfilled_from: datetime
) -> None:
    """Record that the challenge was backfilled from ``backfilled_from``."""
    await session.execute(
        update(ChallengeRow)
        .where(ChallengeRow.brand_id == brand_id, ChallengeRow.id == challenge_id)
        .values(backfilled_from=backfilled_from)
    )


# --- progress ----------------------------------------------------------------------------------------


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    """A completed instance to record."""

    challenge_id: int
    member_id: MemberId
    instance: str
    completed_at: datetime
    event_key: str


class EncodedState(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    gc=False,
    tag_field="format",
    tag=STATE_FORMAT,
    rename=MEMBER_STATE_NAMES,
):
    """A member's stored state with each challenge's instances left encoded: the same JSON as :class:`MemberState`.

    The pipeline decodes only the challenges an event looks at (:func:`decode_instances`) and writes the
    others back byte for byte, so a member with progress on many challenges costs no more to update than
    one with progress on a few.
    """

    progress: dict[str, msgspec.Raw] = {}
    completions: dict[str, int] = {}


_state_decoder = msgspec.json.Decoder(MemberState)
_encoded_state_decoder = msgspec.json.Decoder(EncodedState)
_instances_decoder = msgspec.json.Decoder(dict[str, Progress])
_state_encoder = msgspec.json.Encoder()
_MEMBERS_PER_QUERY = 1000
_FORMAT_MARK = '{"format":'
"""How every stored state starts since format 2 (the tag's value is checked when decoding)."""


def _current(text: str | bytes) -> bool:
    """Whether a stored state has a format tag (else it is in the first, long-named format)."""
    return text.startswith(_FORMAT_MARK) if isinstance(text, str) else text.startswith(_FORMAT_MARK.encode())


def _from_legacy(text: str | bytes) -> MemberState:
    """Read a state stored in the first format: long field names, each progress naming its challenge and instance."""
    data = msgspec.json.decode(text)
    progress = {
        key: {instance: _short_names(fields) for instance, fields in instances.items()}
        for key, instances in data.get("progress", {}).items()
    }
    plain = {
        "format": STATE_FORMAT,
        MEMBER_STATE_NAMES["progress"]: progress,
        MEMBER_STATE_NAMES["completions"]: data.get("completions", {}),
    }
    return msgspec.convert(plain, MemberState)


def _short_names(fields: dict[str, Any]) -> dict[str, Any]:
    short = {PROGRESS_NAMES[name]: value for name, value in fields.items() if name in PROGRESS_NAMES}
    if isinstance(carry := fields.get("carry"), dict):
        short[PROGRESS_NAMES["carry"]] = {STREAK_CARRY_NAMES[n]: v for n, v in carry.items() if n in STREAK_CARRY_NAMES}
    return short


def _with_identity(key: str, instances: dict[str, Progress]) -> dict[str, Progress]:
    # Stored progress leaves out its challenge and instance (the keys say them); freshly decoded values
    # are seen by no one else yet, so they are completed in place rather than copied.
    for instance, progress in instances.items():
        if progress.challenge != key:
            msgspec.structs.force_setattr(progress, "challenge", key)
        if progress.instance != instance:
            msgspec.structs.force_setattr(progress, "instance", instance)
    return instances


def _without_identity(instances: Mapping[str, Progress]) -> dict[str, Progress]:
    return {
        instance: msgspec.structs.replace(progress, challenge="", instance="")
        if progress.challenge or progress.instance
        else progress
        for instance, progress in instances.items()
    }


def decode_state(text: str | bytes | None) -> MemberState:
    """A stored member state (an empty one for ``None``)."""
    if not text:
        return MemberState()
    state = _state_decoder.decode(text) if _current(text) else _from_legacy(text)
    for key, instances in state.progress.items():
        _with_identity(key, instances)
    return state


def encode_state(state: MemberState | EncodedState) -> str:
    """The stored form of a member state."""
    if isinstance(state, MemberState):
        state = MemberState(
            progress={key: _without_identity(instances) for key, instances in state.progress.items()},
            completions=state.completions,
        )
    return _state_encoder.encode(state).decode()


def encode_state_parts(
    progress: Mapping[str, msgspec.Raw | Mapping[str, Progress]], completions: Mapping[str, int]
) -> str:
    """The stored form of a state whose challenges are part still encoded (as loaded), part decoded (changed).

    The same JSON as :func:`encode_state`, in one encoder call: the pipeline saves a state per member it
    touched, and encoding each changed challenge on its own would cost a call per challenge.
    """
    document: dict[str, Any] = {"format": STATE_FORMAT}
    if progress:
        document[MEMBER_STATE_NAMES["progress"]] = progress
    if completions:
        document[MEMBER_STATE_NAMES["completions"]] = completions
    return _state_encoder.encode(document).decode()


def decode_encoded_state(text: str | bytes) -> EncodedState:
    """A stored member state with each challenge's instances left encoded."""
    if _current(text):
        return _encoded_state_decoder.decode(text)
    legacy = _from_legacy(text)
    return EncodedState(
        progress={key: encode_instances(_without_identity(instances)) for key, instances in legacy.progress.items()},
        completions=legacy.completions,
    )


def decode_instances(raw: msgspec.Raw) -> dict[str, Progress]:
    """One challenge's instances from an :class:`EncodedState` (a fresh map the caller may change).

    The values carry no identity (``challenge`` and ``instance`` are empty): the pipeline, which alone
    reads progress this way, knows both from the keys and saves a copy per value.
    """
    return _instances_decoder.decode(raw)


def encode_instances(instances: Mapping[str, Progress]) -> msgspec.Raw:
    """One challenge's instances in their stored form, to put back into an :class:`EncodedState`.

    Values should carry no identity (as :func:`decode_instances` gives them); one that does is stored
    with it, which costs a few bytes and reads back the same.
    """
    return msgspec.Raw(_state_encoder.encode(instances))


_STATE_ROWS = text(
    "SELECT member_id, state FROM challenge_member_states "
    "WHERE brand_id = :brand_id AND member_id = ANY(CAST(:member_ids AS BIGINT[]))"
)


async def _state_rows(
    session: AsyncSession, *, brand_id: BrandId, member_ids: set[MemberId]
) -> AsyncIterator[tuple[MemberId, str]]:
    ids = sorted(member_ids)
    if on_postgres(session):
        # One array parameter: an IN list of a batch's members costs SQLAlchemy a bind parameter each.
        for member_id, state in await session.execute(_STATE_ROWS, {"brand_id": brand_id, "member_ids": ids}):
            yield MemberId(member_id), state
        return
    for start in range(0, len(ids), _MEMBERS_PER_QUERY):
        rows = await session.execute(
            select(MemberStateRow.member_id, MemberStateRow.state).where(
                MemberStateRow.brand_id == brand_id,
                MemberStateRow.member_id.in_(ids[start : start + _MEMBERS_PER_QUERY]),
            )
        )
        for member_id, state in rows:
            yield MemberId(member_id), state


async def load_states(
    session: AsyncSession, *, brand_id: BrandId, member_ids: set[MemberId]
) -> dict[MemberId, MemberState]:
    """The stored challenge state of each member (members without one are left out)."""
    return {
        member_id: decode_state(state)
        async for member_id, state in _state_rows(session, brand_id=brand_id, member_ids=member_ids)
    }


async def load_encoded_states(
    session: AsyncSession, *, brand_id: BrandId, member_ids: set[MemberId]
) -> dict[MemberId, EncodedState]:
    """Like :func:`load_states`, with each challenge's instances left encoded until needed."""
    return {
        member_id: decode_encoded_state(state)
        async for member_id, state in _state_rows(session, brand_id=brand_id, member_ids=member_ids)
        if state
    }


async def member_state(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> MemberState:
    """One member's challenge state (empty when the member has none)."""
    return (await load_states(session, brand_id=brand_id, member_ids={member_id})).get(member_id, MemberState())


_UPSERT_STATES = text(
    """
    INSERT INTO challenge_member_states (brand_id, member_id, state, updated_at)
    SELECT CAST(:brand_id AS BIGINT), t.member_id, t.state, CAST(:now AS TIMESTAMPTZ)
    FROM unnest(CAST(:member_ids AS BIGINT[]), CAST(:states AS TEXT[])) AS t(member_id, state)
    ON CONFLICT (brand_id, member_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
    """
)


async def save_states(
    session: AsyncSession,
    *,
    db: Database,
    brand_id: BrandId,
    states: Mapping[MemberId, MemberState | str],
    now: datetime,
) -> None:
    """Insert or replace members' challenge states in one statement (a ``str`` is a state already encoded).

    On PostgreSQL the rows travel as two arrays into one ``INSERT … SELECT FROM unnest(…) ON CONFLICT``
    (one round trip whatever their number); SQLite gets a Core executemany upsert.
    """
    if not states:
        return
    if db.is_postgres:
        await session.execute(
            _UPSERT_STATES,
            {
                "brand_id": brand_id,
                "now": now,
                "member_ids": list(states),
                "states": [s if isinstance(s, str) else encode_state(s) for s in states.values()],
            },
        )
        return
    statement = sqlite_insert(cast("Table", MemberStateRow.__table__))
    statement = statement.on_conflict_do_update(
        index_elements=["brand_id", "member_id"],
        set_={"state": statement.excluded.state, "updated_at": statement.excluded.updated_at},
    )
    rows = [
        {
            "brand_id": brand_id,
            "member_id": member_id,
            "state": state if isinstance(state, str) else encode_state(state),
            "updated_at": now,
        }
        for member_id, state in states.items()
    ]
    for chunk in _chunks(rows):
        await session.execute(statement, chunk)


_INSERT_COMPLETIONS = text(
    """
    INSERT INTO challenge_completions
        (brand_id, challenge_id, member_id, instance, completed_at, event_key, created_at)
    SELECT CAST(:brand_id AS BIGINT), t.challenge_id, t.member_id, t.instance, t.completed_at, t.event_key,
        CAST(:now AS TIMESTAMPTZ)
    FROM unnest(
        CAST(:challenge_ids AS BIGINT[]),
        CAST(:member_ids AS BIGINT[]),
        CAST(:instances AS TEXT[]),
        CAST(:completed_at AS TIMESTAMPTZ[]),
        CAST(:event_keys AS TEXT[])
    ) WITH ORDINALITY AS t(challenge_id, member_id, instance, completed_at, event_key, position)
    ORDER BY t.position
    ON CONFLICT (challenge_id, member_id, instance) DO NOTHING
    """
)


async def record_completions(
    session: AsyncSession, *, db: Database, brand_id: BrandId, completions: list[Completion], now: datetime
) -> None:
    """Append completed instances (an instance already recorded is left as it is).

    On PostgreSQL the rows travel as arrays into one ``INSERT … SELECT FROM unnest(…)`` (as
    :func:`save_states`); SQLite gets a Core executemany insert.
    """
    if not completions:
        return
    if db.is_postgres:
        await session.execute(
            _INSERT_COMPLETIONS,
            {
                "brand_id": brand_id,
                "now": now,
                "challenge_ids": [c.challenge_id for c in completions],
                "member_ids": [c.member_id for c in completions],
                "instances": [c.instance for c in completions],
                "completed_at": [c.completed_at for c in completions],
                "event_keys": [c.event_key for c in completions],
            },
        )
        return
    statement = sqlite_insert(cast("Table", CompletionRow.__table__)).on_conflict_do_nothing(
        index_elements=["challenge_id", "member_id", "instance"]
    )
    rows = [
        {
            "brand_id": brand_id,
            "challenge_id": c.challenge_id,
            "member_id": c.member_id,
            "instance": c.instance,
            "completed_at": c.completed_at,
            "event_key": c.event_key,
            "created_at": now,
        }
        for c in completions
    ]
    for chunk in _chunks(rows):
        await session.execute(statement, chunk)


async def member_completions(
    session: AsyncSession, *, brand_id: BrandId, member_id: MemberId
) -> list[tuple[str, str, datetime, str]]:
    """The member's completions, oldest first: (challenge key, instance, completed at, event key)."""
    rows = await session.execute(
        select(ChallengeRow.key, CompletionRow.instance, CompletionRow.completed_at, CompletionRow.event_key)
        .join(ChallengeRow, ChallengeRow.id == CompletionRow.challenge_id)
        .where(CompletionRow.brand_id == brand_id, CompletionRow.member_id == member_id)
        .order_by(CompletionRow.completed_at, CompletionRow.id)
    )
    return [(str(key), str(instance), at, str(event)) for key, instance, at, event in rows]


async def forget_member(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> None:
    """Delete a member's progress and opt-ins (completions stay, pseudonymous, like the ledger)."""
    await session.execute(
        delete(MemberStateRow).where(MemberStateRow.brand_id == brand_id, MemberStateRow.member_id == member_id)
    )
    await session.execute(
        delete(EnrolmentRow).where(EnrolmentRow.brand_id == brand_id, EnrolmentRow.member_id == member_id)
    )


async def completed_instances(
    session: AsyncSession, *, brand_id: BrandId, challenge_id: int, member_ids: set[MemberId]
) -> dict[MemberId, set[str]]:
    """The instances of one challenge each member completed."""
    found: dict[MemberId, set[str]] = {}
    ids = sorted(member_ids)
    for start in range(0, len(ids), _MEMBERS_PER_QUERY):
        rows = await session.execute(
            select(CompletionRow.member_id, CompletionRow.instance).where(
                CompletionRow.brand_id == brand_id,
                CompletionRow.challenge_id == challenge_id,
                CompletionRow.member_id.in_(ids[start : start + _MEMBERS_PER_QUERY]),
            )
        )
        for member_id, instance in rows:
            found.setdefault(MemberId(member_id), set()).add(str(instance))
    return found


async def completion_counts(
    session: AsyncSession, *, brand_id: BrandId, since: datetime | None = None
) -> dict[int, int]:
    """Completed instances per challenge id (since ``since``, by when the completing event occurred)."""
    query = select(CompletionRow.challenge_id, func.count()).where(CompletionRow.brand_id == brand_id)
    if since is not None:
        query = query.where(CompletionRow.completed_at >= since)
    rows = await session.execute(query.group_by(CompletionRow.challenge_id))
    return {int(challenge_id): int(count) for challenge_id, count in rows}


# --- opt-ins -----------------------------------------------------------------------------------------


async def enrolments(
    session: AsyncSession, *, brand_id: BrandId, campaign_ids: set[int], member_ids: set[MemberId]
) -> dict[tuple[int, MemberId], datetime]:
    """When each member opted in to each campaign (missing: not opted in)."""
    if not campaign_ids or not member_ids:
        return {}
    found: dict[tuple[int, MemberId], datetime] = {}
    for members in _chunks(member_ids):
        rows = await session.execute(
            select(EnrolmentRow.campaign_id, EnrolmentRow.member_id, EnrolmentRow.opted_in_at).where(
                EnrolmentRow.brand_id == brand_id,
                EnrolmentRow.campaign_id.in_(campaign_ids),
                EnrolmentRow.member_id.in_(members),
            )
        )
        for campaign_id, member_id, opted_in_at in rows:
            found[(int(campaign_id), MemberId(member_id))] = opted_in_at
    return found


async def enrol(
    session: AsyncSession, *, brand_id: BrandId, campaign_id: int, member_id: MemberId, now: datetime
) -> tuple[datetime, bool]:
    """Opt the member in (a repeat keeps the first time); returns the opt-in time and whether it is new.

    The caller holds the member's row lock, so the check and the insert cannot race.
    """
    found = await session.scalar(
        select(EnrolmentRow.opted_in_at).where(
            EnrolmentRow.campaign_id == campaign_id, EnrolmentRow.member_id == member_id
        )
    )
    if found is not None:
        return found, False
    session.add(EnrolmentRow(brand_id=brand_id, campaign_id=campaign_id, member_id=member_id, opted_in_at=now))
    await session.flush()
    return now, True


# --- the event log -----------------------------------------------------------------------------------


def _event(key: str, external_id: str, type_: str, occurred_at: datetime, properties: Any) -> Event:
    return Event(id=key, member=external_id, type=type_, occurred_at=occurred_at, properties=dict(properties or {}))


_EARLIER_EVENTS = text(
    "SELECT member_id, occurred_at, properties FROM event_log WHERE brand_id = :brand_id "
    "AND member_id = ANY(CAST(:member_ids AS BIGINT[])) AND type = :type AND occurred_at < :before"
).columns(occurred_at=UtcDateTime(), properties=Json)


async def earlier_events(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    event_type: str,
    member_ids: set[MemberId],
    before: datetime,
) -> list[tuple[MemberId, datetime, dict[str, Any]]]:
    """Stored events of ``event_type`` of the members that occurred before ``before`` (for ``first``)."""
    found: list[tuple[MemberId, datetime, dict[str, Any]]] = []
    if on_postgres(session):
        rows = await session.execute(
            _EARLIER_EVENTS,
            {"brand_id": brand_id, "member_ids": sorted(member_ids), "type": event_type, "before": before},
        )
        return [(MemberId(m), at, dict(props or {})) for m, at, props in rows]
    for members in _chunks(member_ids):
        rows = await session.execute(
            select(EventRow.member_id, EventRow.occurred_at, EventRow.properties).where(
                EventRow.brand_id == brand_id,
                EventRow.member_id.in_(members),
                EventRow.type == event_type,
                EventRow.occurred_at < before,
            )
        )
        found.extend((MemberId(m), at, dict(props or {})) for m, at, props in rows)
    return found


async def member_events(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    member_id: MemberId,
    external_id: str,
    types: set[str] | None = None,
    since: datetime | None = None,
    received_since: datetime | None = None,
    limit: int = 5000,
    newest: bool = False,
) -> list[tuple[Event, datetime]]:
    """A member's stored events with their arrival times, oldest first (or the newest ``limit``, still oldest first).

    ``since`` keeps events that occurred from then on; with ``received_since`` too, events received from
    that instant on are kept whenever they occurred.
    """
    query = select(
        EventRow.event_key, EventRow.type, EventRow.occurred_at, EventRow.properties, EventRow.received_at
    ).where(EventRow.brand_id == brand_id, EventRow.member_id == member_id)
    if types is not None:
        query = query.where(EventRow.type.in_(types))
    if since is not None and received_since is not None:
        query = query.where(or_(EventRow.occurred_at >= since, EventRow.received_at >= received_since))
    elif since is not None:
        query = query.where(EventRow.occurred_at >= since)
    order = (EventRow.occurred_at.desc(), EventRow.id.desc()) if newest else (EventRow.occurred_at, EventRow.id)
    rows = list(await session.execute(query.order_by(*order).limit(limit)))
    if newest:
        rows.reverse()
    return [(_event(key, external_id, type_, at, props), received) for key, type_, at, props, received in rows]


async def members_with_events(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    types: set[str],
    since: datetime | None,
    received_since: datetime | None = None,
) -> list[tuple[MemberId, str, dict[str, Any]]]:
    """Members with an event of ``types`` that occurred since ``since`` (or was received since ``received_since``).

    Returns (id, external id, predicate view) by id.
    """
    window: list[Any] = []
    if since is not None and received_since is not None:
        window = [or_(EventRow.occurred_at >= since, EventRow.received_at >= received_since)]
    elif since is not None:
        window = [EventRow.occurred_at >= since]
    query = (
        select(MemberRow.id, MemberRow.external_id, MemberRow.locale, MemberRow.attributes)
        .where(MemberRow.brand_id == brand_id)
        .where(
            select(EventRow.id)
            .where(
                EventRow.brand_id == brand_id,
                EventRow.member_id == MemberRow.id,
                EventRow.type.in_(types),
                *window,
            )
            .exists()
        )
        .order_by(MemberRow.id)
    )
    rows = await session.execute(query)
    return [(MemberId(i), ext, {"locale": loc, **(attrs or {})}) for i, ext, loc, attrs in rows]


async def stream_events(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    since: datetime | None,
    until: datetime | None,
    types: set[str] | None = None,
    batch: int = 2000,
) -> AsyncIterator[list[tuple[MemberId, Event, datetime]]]:
    """The brand's stored events in ``[since, until)`` in occurrence order, a page at a time (keyset paging)."""
    after: tuple[datetime, int] | None = None
    while True:
        query = (
            select(
                EventRow.id,
                EventRow.member_id,
                MemberRow.external_id,
                EventRow.event_key,
                EventRow.type,
                EventRow.occurred_at,
                EventRow.properties,
                EventRow.received_at,
            )
            .join(MemberRow, MemberRow.id == EventRow.member_id)
            .where(EventRow.brand_id == brand_id)
        )
        if since is not None:
            query = query.where(EventRow.occurred_at >= since)
        if until is not None:
            query = query.where(EventRow.occurred_at < until)
        if types is not None:
            query = query.where(EventRow.type.in_(types))
        if after is not None:
            query = query.where(
                or_(EventRow.occurred_at > after[0], and_(EventRow.occurred_at == after[0], EventRow.id > after[1]))
            )
        rows = list(await session.execute(query.order_by(EventRow.occurred_at, EventRow.id).limit(batch)))
        if not rows:
            return
        yield [
            (MemberId(member_id), _event(key, ext, type_, at, props), received)
            for _id, member_id, ext, key, type_, at, props, received in rows
        ]
        last = rows[-1]
        after = (last[5], last[0])
        if len(rows) < batch:
            return


async def member_views(
    session: AsyncSession, *, brand_id: BrandId, ids: set[MemberId]
) -> dict[MemberId, tuple[str, dict[str, Any]]]:
    """External id and predicate view (attributes plus locale) of the given members."""
    found: dict[MemberId, tuple[str, dict[str, Any]]] = {}
    for members in _chunks(ids):
        rows = await session.execute(
            select(MemberRow.id, MemberRow.external_id, MemberRow.locale, MemberRow.attributes).where(
                MemberRow.brand_id == brand_id, MemberRow.id.in_(members)
            )
        )
        for member_id, ext, locale, attributes in rows:
            found[MemberId(member_id)] = (ext, {"locale": locale, **(attributes or {})})
    return found


# --- earning rules (engine-owned rows, written by the program document) --------------------------------


async def earning_rule_specs(session: AsyncSession, *, brand_id: BrandId) -> dict[str, dict[str, Any]]:
    """The brand's stored earning rules (plain specs) by key."""
    rows = await session.execute(
        select(EarningRuleRow.key, EarningRuleRow.spec)
        .where(EarningRuleRow.brand_id == brand_id)
        .order_by(EarningRuleRow.key)
    )
    return {str(key): dict(spec) for key, spec in rows}


async def put_earning_rule(
    session: AsyncSession, *, brand_id: BrandId, key: str, spec: dict[str, Any], exists: bool, now: datetime
) -> None:
    """Create or replace one earning rule's stored spec."""
    if exists:
        await session.execute(
            update(EarningRuleRow)
            .where(EarningRuleRow.brand_id == brand_id, EarningRuleRow.key == key)
            .values(spec=spec, updated_at=now)
        )
    else:
        session.add(EarningRuleRow(brand_id=brand_id, key=key, spec=spec, updated_at=now))
        await session.flush()


async def delete_earning_rules(session: AsyncSession, *, brand_id: BrandId, keys: list[str]) -> None:
    """Remove earning rules (points already earned stay in the ledger)."""
    if keys:
        await session.execute(
            delete(EarningRuleRow).where(EarningRuleRow.brand_id == brand_id, EarningRuleRow.key.in_(keys))
        )


# --- program versions --------------------------------------------------------------------------------


async def lock_program(session: AsyncSession, *, db: Database, brand_id: BrandId) -> None:
    """Serialise definition changes of one brand (PostgreSQL row lock on the brand; SQLite has one writer)."""
    if db.is_postgres:
        await session.execute(select(BrandRow.id).where(BrandRow.id == brand_id).with_for_update())


async def current_version(session: AsyncSession, *, brand_id: BrandId) -> int:
    """The number of the brand's latest program version (0 before the first)."""
    version = await session.scalar(
        select(func.max(ProgramVersionRow.version)).where(ProgramVersionRow.brand_id == brand_id)
    )
    return int(version or 0)


async def record_version(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    document: dict[str, Any],
    changes: list[str],
    source: str,
    now: datetime,
) -> int:
    """Append a program version; returns its number."""
    version = await current_version(session, brand_id=brand_id) + 1
    session.add(
        ProgramVersionRow(
            brand_id=brand_id, version=version, document=document, changes=changes, source=source, created_at=now
        )
    )
    await session.flush()
    return version


async def list_versions(session: AsyncSession, *, brand_id: BrandId, limit: int) -> list[ProgramVersion]:
    """The brand's latest program versions, newest first."""
    rows = await session.execute(
        select(
            ProgramVersionRow.version, ProgramVersionRow.changes, ProgramVersionRow.source, ProgramVersionRow.created_at
        )
        .where(ProgramVersionRow.brand_id == brand_id)
        .order_by(ProgramVersionRow.version.desc())
        .limit(limit)
    )
    return [ProgramVersion(version=v, changes=list(c or []), source=s, created_at=at) for v, c, s, at in rows]


async def version_document(session: AsyncSession, *, brand_id: BrandId, version: int) -> dict[str, Any] | None:
    """The program document recorded as ``version``, if any."""
    document = await session.scalar(
        select(ProgramVersionRow.document).where(
            ProgramVersionRow.brand_id == brand_id, ProgramVersionRow.version == version
        )
    )
    return dict(document) if document is not None else None
