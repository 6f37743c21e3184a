"""Completed challenge instances: recorded once each, counted for caps, listed for members and the console."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, cast

import msgspec
from sqlalchemy import BigInteger, func, select, text

from challenges.orm import ChallengeRow, CompletionRow
from engine.db import batches, chunks, insert_for, one_of
from engine.fused import Upsert
from engine.ids import MemberId

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.ids import BrandId
    from engine.pipeline import UnitOfWork


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    """A completed instance to record."""

    challenge_id: int
    member_id: MemberId
    instance: str
    completed_at: datetime
    event_key: str


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


COMPLETIONS_INSERT = Upsert(
    table="challenge_completions",
    columns=(
        ("brand_id", "bigint"), ("challenge_id", "bigint"), ("member_id", "bigint"), ("instance", "varchar"),
        ("completed_at", "timestamptz"), ("event_key", "varchar"), ("created_at", "timestamptz"),
    ),
    conflict="(challenge_id, member_id, instance) DO NOTHING",
    ordered=True,
)  # fmt: skip
"""The completions' insert as a CTE of the unit's statement (:func:`record_completions_with_unit`)."""


async def record_completions_with_unit(uow: UnitOfWork, completions: list[Completion]) -> None:
    """Completed instances recorded with the unit of work (an instance already recorded is left as it is).

    In the unit's one statement on PostgreSQL (:data:`COMPLETIONS_INSERT`), else by
    :func:`record_completions` (``UnitOfWork.write_with_unit``).
    """
    if not completions:
        return

    async def apart() -> None:
        await record_completions(uow.session, db=uow.db, brand_id=uow.brand.id, completions=completions, now=uow.now)

    brand_id, now = uow.brand.id, uow.now
    rows = [
        {
            "brand_id": brand_id, "challenge_id": c.challenge_id, "member_id": c.member_id, "instance": c.instance,
            "completed_at": c.completed_at, "event_key": c.event_key, "created_at": now,
        }
        for c in completions
    ]  # fmt: skip
    await uow.write_with_unit(COMPLETIONS_INSERT, rows, apart)


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
    statement = insert_for(session)(cast("Table", CompletionRow.__table__)).on_conflict_do_nothing(
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
    for chunk in chunks(rows):
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


async def completed_instances(
    session: AsyncSession, *, brand_id: BrandId, challenge_id: int, member_ids: set[MemberId]
) -> dict[MemberId, set[str]]:
    """The instances of one challenge each member completed."""
    found: dict[MemberId, set[str]] = {}
    for ids in batches(session, sorted(member_ids)):
        rows = await session.execute(
            select(CompletionRow.member_id, CompletionRow.instance).where(
                CompletionRow.brand_id == brand_id,
                CompletionRow.challenge_id == challenge_id,
                one_of(session, CompletionRow.member_id, ids, BigInteger()),
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
