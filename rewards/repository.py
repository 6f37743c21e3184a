"""SQL of rewards: catalog rows, the stock counter, code pools and redemptions (the caller's transaction)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, cast

import msgspec
from sqlalchemy import func, select, update

from engine.db import chunks, insert_for, on_postgres
from engine.errors import Conflict, NotFound
from engine.orm import MemberRow
from rewards.models import Redemption, RedemptionStatus, Reward, RewardSpec, build_reward
from rewards.orm import RedemptionRow, RewardCodeRow, RewardRow, RewardStockRow

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId, MemberId

STOCK = cast("Table", RewardStockRow.__table__)
CODES = cast("Table", RewardCodeRow.__table__)
REDEMPTIONS = cast("Table", RedemptionRow.__table__)


def to_reward(spec: dict[str, Any]) -> Reward:
    """A stored spec back as a validated reward."""
    return build_reward(msgspec.convert(spec, RewardSpec))


async def reward_row(session: AsyncSession, *, brand_id: BrandId, key: str) -> RewardRow:
    """The brand's reward row ``key``.

    Raises:
        NotFound: no such reward.
    """
    row = await session.scalar(select(RewardRow).where(RewardRow.brand_id == brand_id, RewardRow.key == key))
    if row is None:
        raise NotFound(f"no reward {key!r}", field="reward")
    return row


async def upsert_reward(session: AsyncSession, *, brand_id: BrandId, spec: RewardSpec, now: datetime) -> int:
    """Create or replace the reward's definition and set its stock total; returns the reward's id."""
    plain = msgspec.to_builtins(spec)
    row = await session.scalar(
        select(RewardRow).where(RewardRow.brand_id == brand_id, RewardRow.key == spec.key).with_for_update()
    )
    if row is None:
        row = RewardRow(brand_id=brand_id, key=spec.key, spec=plain, created_at=now, updated_at=now)
        session.add(row)
        await session.flush()
        session.add(RewardStockRow(reward_id=row.id, brand_id=brand_id, total=spec.stock, issued=0))
        await session.flush()
        return row.id
    issued = int(await session.scalar(select(STOCK.c.issued).where(STOCK.c.reward_id == row.id).with_for_update()) or 0)
    if spec.stock is not None and spec.stock < issued:
        raise Conflict(f"{issued} are out already: the stock cannot be {spec.stock}", field="$.stock")
    row.spec = plain
    row.updated_at = now
    await session.execute(update(STOCK).where(STOCK.c.reward_id == row.id).values(total=spec.stock))
    return row.id


async def list_rewards(session: AsyncSession, *, brand_id: BrandId) -> list[tuple[int, Reward, int | None]]:
    """Every reward of the brand with its id and stock left (``None``: unlimited), by key."""
    rows = await session.execute(
        select(RewardRow.id, RewardRow.spec, STOCK.c.total - STOCK.c.issued)
        .join(STOCK, STOCK.c.reward_id == RewardRow.id)
        .where(RewardRow.brand_id == brand_id)
        .order_by(RewardRow.key)
    )
    return [(rid, to_reward(spec), None if left is None else int(left)) for rid, spec, left in rows]


async def take_stock(session: AsyncSession, *, reward_id: int) -> tuple[int | None, int] | None:
    """Count one more out, if any is left (one conditional statement); ``(total, issued)`` after, or ``None``."""
    row = (
        await session.execute(
            update(STOCK)
            .where(STOCK.c.reward_id == reward_id, (STOCK.c.total.is_(None)) | (STOCK.c.issued < STOCK.c.total))
            .values(issued=STOCK.c.issued + 1)
            .returning(STOCK.c.total, STOCK.c.issued)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def give_back_stock(session: AsyncSession, *, reward_id: int) -> None:
    """Count one fewer out (a cancelled redemption)."""
    await session.execute(update(STOCK).where(STOCK.c.reward_id == reward_id).values(issued=STOCK.c.issued - 1))


async def add_codes(
    session: AsyncSession, *, brand_id: BrandId, reward_id: int, codes: list[str], now: datetime
) -> int:
    """Add codes to the pool, skipping ones it already holds; returns how many were added."""
    added = 0
    for chunk in chunks(codes):
        result = await session.execute(
            insert_for(session)(CODES)
            .values(
                [
                    {
                        "brand_id": brand_id,
                        "reward_id": reward_id,
                        "code": code,
                        "status": "available",
                        "generated": False,
                        "redemption_id": None,
                        "created_at": now,
                    }
                    for code in chunk
                ]
            )
            .on_conflict_do_nothing(index_elements=["reward_id", "code"])
            .returning(CODES.c.id)
        )
        added += len(list(result))
    return added


async def codes_available(session: AsyncSession, *, reward_id: int) -> int:
    """Codes of the pool not issued."""
    count = await session.scalar(
        select(func.count()).select_from(CODES).where(CODES.c.reward_id == reward_id, CODES.c.status == "available")
    )
    return int(count or 0)


async def take_code(session: AsyncSession, *, reward_id: int, redemption_id: int) -> str | None:
    """Assign a free code of the pool to the redemption, or ``None`` when the pool is empty.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED``: concurrent redemptions take different codes without
    waiting; SQLite has one writer at a time.
    """
    query = (
        select(CODES.c.id, CODES.c.code)
        .where(CODES.c.reward_id == reward_id, CODES.c.status == "available")
        .order_by(CODES.c.id)
        .limit(1)
    )
    if on_postgres(session):
        query = query.with_for_update(skip_locked=True)
    row = (await session.execute(query)).first()
    if row is None:
        return None
    await session.execute(
        update(CODES).where(CODES.c.id == row[0]).values(status="issued", redemption_id=redemption_id)
    )
    return str(row[1])


async def new_code(
    session: AsyncSession, *, brand_id: BrandId, reward_id: int, redemption_id: int, code: str, now: datetime
) -> bool:
    """Record a generated code as issued; ``False`` if the reward already had it (generate another)."""
    result = await session.execute(
        insert_for(session)(CODES)
        .values(brand_id=brand_id, reward_id=reward_id, code=code, status="issued", generated=True,
                redemption_id=redemption_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["reward_id", "code"])
        .returning(CODES.c.id)
    )  # fmt: skip
    return result.first() is not None


async def give_back_code(session: AsyncSession, *, redemption_id: int) -> None:
    """Return a pool code to the pool; a generated code is voided (it was shown once, never reissued)."""
    await session.execute(
        update(CODES)
        .where(CODES.c.redemption_id == redemption_id, CODES.c.generated.is_(False))
        .values(status="available", redemption_id=None)
    )
    await session.execute(
        update(CODES).where(CODES.c.redemption_id == redemption_id, CODES.c.generated.is_(True)).values(status="void")
    )


async def claim(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    member_id: MemberId,
    reward: RewardRow,
    idempotency_key: str,
    now: datetime,
) -> tuple[int, str] | None:
    """Insert the redemption row for this idempotency key: ``(row id, public id)``, or ``None`` if the key was used."""
    spec = reward.spec
    public_id = f"rdm_{secrets.token_hex(10)}"
    result = await session.execute(
        insert_for(session)(REDEMPTIONS)
        .values(public_id=public_id, brand_id=brand_id, member_id=member_id,
                reward_id=reward.id, reward_key=reward.key, name=dict(spec.get("name", {})), cost=int(spec["cost"]),
                code=None, status=RedemptionStatus.ISSUED.value, idempotency_key=idempotency_key,
                spend_entry_id=None, refund="", reason="", issued_at=now)
        .on_conflict_do_nothing(index_elements=["brand_id", "member_id", "idempotency_key"])
        .returning(REDEMPTIONS.c.id)
    )  # fmt: skip
    row = result.first()
    return None if row is None else (int(row[0]), public_id)


async def count_redemptions(
    session: AsyncSession,
    *,
    member_id: MemberId,
    reward_id: int,
    start: datetime | None,
    end: datetime | None,
    excluding: int,
) -> int:
    """The member's live (not cancelled) redemptions of the reward issued in ``[start, end)``."""
    query = (
        select(func.count())
        .select_from(REDEMPTIONS)
        .where(
            REDEMPTIONS.c.member_id == member_id,
            REDEMPTIONS.c.reward_id == reward_id,
            REDEMPTIONS.c.status != RedemptionStatus.CANCELLED.value,
            REDEMPTIONS.c.id != excluding,
        )
    )
    if start is not None:
        query = query.where(REDEMPTIONS.c.issued_at >= start)
    if end is not None:
        query = query.where(REDEMPTIONS.c.issued_at < end)
    return int(await session.scalar(query) or 0)


async def set_fields(session: AsyncSession, *, redemption_id: int, **values: Any) -> None:
    """Update a redemption's mutable fields (status, code, times, refund)."""
    await session.execute(update(REDEMPTIONS).where(REDEMPTIONS.c.id == redemption_id).values(**values))


def _select_redemptions() -> Any:
    return select(RedemptionRow, MemberRow.external_id).join(MemberRow, MemberRow.id == RedemptionRow.member_id)


def to_redemption(row: RedemptionRow, external_id: str) -> Redemption:
    """A redemption row as the domain value."""
    return Redemption(
        id=row.public_id,
        reward=row.reward_key,
        member=external_id,
        name=dict(row.name or {}),
        cost=row.cost,
        code=row.code,
        status=RedemptionStatus(row.status),
        issued_at=row.issued_at,
        used_at=row.used_at,
        cancelled_at=row.cancelled_at,
        refund=cast("Any", row.refund),
    )


async def by_key(
    session: AsyncSession, *, brand_id: BrandId, member_id: MemberId, idempotency_key: str
) -> tuple[RedemptionRow, str]:
    """The redemption an idempotency key made."""
    row = (
        await session.execute(
            _select_redemptions().where(
                RedemptionRow.brand_id == brand_id,
                RedemptionRow.member_id == member_id,
                RedemptionRow.idempotency_key == idempotency_key,
            )
        )
    ).first()
    if row is None:  # pragma: no cover - the caller saw the key taken
        raise NotFound("no such redemption", field="idempotency_key")
    return row[0], row[1]


async def lock_redemption(session: AsyncSession, *, brand_id: BrandId, public_id: str) -> tuple[RedemptionRow, str]:
    """The redemption, locked for a state change.

    Raises:
        NotFound: no such redemption in the brand.
    """
    row = (
        await session.execute(
            _select_redemptions()
            .where(RedemptionRow.brand_id == brand_id, RedemptionRow.public_id == public_id)
            .with_for_update(of=RedemptionRow)
        )
    ).first()
    if row is None:
        raise NotFound(f"no redemption {public_id!r}", field="redemption")
    return row[0], row[1]


async def list_redemptions(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    member_id: MemberId | None = None,
    reward_key: str | None = None,
    limit: int = 50,
    before: int | None = None,
) -> list[tuple[int, Redemption]]:
    """Redemptions of the brand (or one member), newest first, with their row ids for paging."""
    query = _select_redemptions().where(RedemptionRow.brand_id == brand_id)
    if member_id is not None:
        query = query.where(RedemptionRow.member_id == member_id)
    if reward_key is not None:
        query = query.where(RedemptionRow.reward_key == reward_key)
    if before is not None:
        query = query.where(RedemptionRow.id < before)
    rows = await session.execute(query.order_by(RedemptionRow.id.desc()).limit(limit))
    return [(row.id, to_redemption(row, external_id)) for row, external_id in rows]


async def get_redemption(session: AsyncSession, *, brand_id: BrandId, public_id: str) -> Redemption:
    """One redemption of the brand (no lock).

    Raises:
        NotFound: no such redemption in the brand.
    """
    row = (
        await session.execute(
            _select_redemptions().where(RedemptionRow.brand_id == brand_id, RedemptionRow.public_id == public_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"no redemption {public_id!r}", field="redemption")
    return to_redemption(row[0], row[1])


async def search_redemptions(
    session: AsyncSession, *, brand_id: BrandId, query: str, status: str | None = None, limit: int = 50
) -> list[Redemption]:
    """Redemptions whose id, code, reward key or member id contain ``query`` (newest first)."""
    stmt = _select_redemptions().where(RedemptionRow.brand_id == brand_id)
    if query:
        like = f"%{query.lower()}%"
        stmt = stmt.where(
            func.lower(RedemptionRow.public_id).like(like)
            | func.lower(func.coalesce(RedemptionRow.code, "")).like(like)
            | func.lower(RedemptionRow.reward_key).like(like)
            | func.lower(MemberRow.external_id).like(like)
        )
    if status:
        stmt = stmt.where(RedemptionRow.status == status)
    rows = await session.execute(stmt.order_by(RedemptionRow.id.desc()).limit(limit))
    return [to_redemption(row, external_id) for row, external_id in rows]


async def code_counts(session: AsyncSession, *, reward_id: int) -> dict[str, int]:
    """How many codes of the reward's pool are ``available``, ``issued`` and ``void``."""
    rows = await session.execute(
        select(CODES.c.status, func.count()).where(CODES.c.reward_id == reward_id).group_by(CODES.c.status)
    )
    return {str(status): int(count) for status, count in rows}


async def stock_of(session: AsyncSession, *, reward_id: int) -> tuple[int | None, int]:
    """The reward's stock ``(total, issued)``."""
    row = (await session.execute(select(STOCK.c.total, STOCK.c.issued).where(STOCK.c.reward_id == reward_id))).first()
    return (None, 0) if row is None else (row[0], int(row[1]))


async def delete_reward(session: AsyncSession, *, brand_id: BrandId, key: str) -> None:
    """Remove a reward that was never redeemed, with its stock and codes.

    Raises:
        NotFound: no such reward.
        Conflict: it has redemptions (pause or hide it instead: their history stays).
    """
    row = await reward_row(session, brand_id=brand_id, key=key)
    used = await redemption_count(session, brand_id=brand_id, key=key)
    if used:
        raise Conflict(f"reward {key!r} has {used} redemptions: pause or hide it instead", field="reward")
    await session.execute(CODES.delete().where(CODES.c.reward_id == row.id))
    await session.execute(STOCK.delete().where(STOCK.c.reward_id == row.id))
    await session.delete(row)


async def redemption_count(session: AsyncSession, *, brand_id: BrandId, key: str) -> int:
    """How many redemptions (of any state) the brand's reward ``key`` has."""
    count = await session.scalar(
        select(func.count())
        .select_from(REDEMPTIONS)
        .where(REDEMPTIONS.c.brand_id == brand_id, REDEMPTIONS.c.reward_key == key)
    )
    return int(count or 0)
