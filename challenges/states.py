"""Members' challenge states: one row per member holds every challenge's progress (see :mod:`challenges.codec`).

Reads are batched (one query per unit of work for the members it touches) and states are written with one
bulk upsert; per-member serialisation comes from the pipeline's member-row locks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from sqlalchemy import BigInteger, bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import ARRAY

from challenges.codec import decode_state, encode_state
from challenges.models import MemberState
from challenges.orm import EnrolmentRow, MemberStateRow
from engine.db import PerDialect, batches, chunks, insert_for, where_in_lists
from engine.fused import Upsert
from engine.ids import MemberId

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping
    from datetime import datetime

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.ids import BrandId
    from engine.pipeline import UnitOfWork


# On PostgreSQL one probe per member (as the caps' read in engine.points): inside the lateral subquery the
# member is an equality, so the plan reads each member's row by its key whatever the statistics say. With
# the members as a list, a plan made while the statistics said the brand had no states (a new program's
# first units) read every state of the brand by brand_id and filtered them against the list: 11-14 ms a
# 1000-event unit at 4,000 states in bench/ingest.py, growing with the brand. OFFSET 0 keeps the planner
# from flattening the subquery into a join; tests/integration/test_unit_plans.py checks the plan.
_STATES = PerDialect(
    text(
        "SELECT m.member_id, s.state FROM unnest(:member_ids) AS m(member_id)"
        " CROSS JOIN LATERAL (SELECT challenge_member_states.state FROM challenge_member_states"
        " WHERE challenge_member_states.brand_id = :brand_id"
        " AND challenge_member_states.member_id = m.member_id OFFSET 0) AS s"
    ).bindparams(bindparam("member_ids", type_=ARRAY(BigInteger()))),
    where_in_lists(  # SQLite: the members in an IN list
        select(MemberStateRow.member_id, MemberStateRow.state).where(MemberStateRow.brand_id == bindparam("brand_id")),
        (MemberStateRow.member_id, "member_ids", BigInteger()),
    ).other,
)


async def _state_rows(
    session: AsyncSession, *, brand_id: BrandId, member_ids: set[MemberId]
) -> AsyncIterator[tuple[MemberId, str]]:
    statement = _STATES.of(session)
    for ids in batches(session, sorted(member_ids)):
        for member_id, state in await session.execute(statement, {"brand_id": brand_id, "member_ids": ids}):
            yield MemberId(member_id), state


async def load_states(
    session: AsyncSession, *, brand_id: BrandId, member_ids: set[MemberId]
) -> dict[MemberId, MemberState]:
    """The stored challenge state of each member (members without one are left out)."""
    return {
        member_id: decode_state(state)
        async for member_id, state in _state_rows(session, brand_id=brand_id, member_ids=member_ids)
    }


async def load_state_texts(
    session: AsyncSession, *, brand_id: BrandId, member_ids: set[MemberId]
) -> dict[MemberId, str]:
    """Each member's stored state as it is stored (members without one are left out): nothing decoded."""
    return {
        member_id: state
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


STATES_UPSERT = Upsert(
    table="challenge_member_states",
    columns=(("brand_id", "bigint"), ("member_id", "bigint"), ("state", "text"), ("updated_at", "timestamptz")),
    conflict="(brand_id, member_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
)
"""The states' upsert as a CTE of the unit's statement (:func:`save_states_with_unit`)."""


async def save_states_with_unit(uow: UnitOfWork, states: Mapping[MemberId, str]) -> None:
    """Members' encoded states, written with the unit of work.

    In the unit's one statement on PostgreSQL (:data:`STATES_UPSERT`: no round trip of their own), else by
    :func:`save_states` (``UnitOfWork.write_with_unit``).
    """
    if not states:
        return

    async def apart() -> None:
        await save_states(uow.session, db=uow.db, brand_id=uow.brand.id, states=states, now=uow.now)

    brand_id, now = uow.brand.id, uow.now
    rows = [{"brand_id": brand_id, "member_id": m, "state": s, "updated_at": now} for m, s in states.items()]
    await uow.write_with_unit(STATES_UPSERT, rows, apart)


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
    statement = insert_for(session)(cast("Table", MemberStateRow.__table__))
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
    for chunk in chunks(rows):
        await session.execute(statement, chunk)


async def forget_member(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> None:
    """Delete a member's progress and opt-ins (completions stay, pseudonymous, like the ledger)."""
    await session.execute(
        delete(MemberStateRow).where(MemberStateRow.brand_id == brand_id, MemberStateRow.member_id == member_id)
    )
    await session.execute(
        delete(EnrolmentRow).where(EnrolmentRow.brand_id == brand_id, EnrolmentRow.member_id == member_id)
    )
