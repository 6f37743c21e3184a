"""Wallet passes: SQL side (brand settings, members' passes, device registrations)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from engine.db import insert_for
from wallet.orm import WalletConfigRow, WalletPassRow, WalletRegistrationRow

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class StoredConfig:
    """A brand's stored wallet settings (``settings`` holds no secret) and its sealed key."""

    settings: dict[str, Any]
    sealed_key: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PassRef:
    """A member's Apple pass as stored."""

    id: int
    brand_id: int
    member_id: int
    serial_number: str
    fingerprint: str
    updated_s: int


def _ref(row: WalletPassRow) -> PassRef:
    return PassRef(
        id=row.id,
        brand_id=row.brand_id,
        member_id=row.member_id,
        serial_number=row.serial_number,
        fingerprint=row.fingerprint,
        updated_s=row.updated_s,
    )


async def load_config(session: AsyncSession, *, brand_id: int, kind: str) -> StoredConfig | None:
    """The brand's ``apple`` or ``google`` settings, or ``None``."""
    row = await session.get(WalletConfigRow, (brand_id, kind))
    return (
        None
        if row is None
        else StoredConfig(settings=dict(row.settings), sealed_key=row.sealed_key, updated_at=row.updated_at)
    )


async def save_config(
    session: AsyncSession, *, brand_id: int, kind: str, settings: dict[str, Any], sealed_key: str, now: datetime
) -> bool:
    """Store the brand's settings of ``kind``; whether they are new."""
    removed = await session.execute(
        delete(WalletConfigRow).where(WalletConfigRow.brand_id == brand_id, WalletConfigRow.kind == kind)
    )
    session.add(WalletConfigRow(brand_id=brand_id, kind=kind, settings=settings, sealed_key=sealed_key, updated_at=now))
    await session.flush()
    return not getattr(removed, "rowcount", 0)


async def delete_config(session: AsyncSession, *, brand_id: int, kind: str) -> bool:
    """Forget the brand's settings of ``kind``; whether there were any."""
    removed = await session.execute(
        delete(WalletConfigRow).where(WalletConfigRow.brand_id == brand_id, WalletConfigRow.kind == kind)
    )
    return bool(getattr(removed, "rowcount", 0))


async def member_pass(session: AsyncSession, *, brand_id: int, member_id: int) -> PassRef | None:
    """The member's pass, or ``None`` before the first download."""
    row = await session.scalar(
        select(WalletPassRow).where(WalletPassRow.brand_id == brand_id, WalletPassRow.member_id == member_id)
    )
    return None if row is None else _ref(row)


async def ensure_pass(
    session: AsyncSession, *, brand_id: int, member_id: int, fingerprint: str, now: datetime
) -> PassRef:
    """The member's pass, created with a fresh random serial when there is none (concurrent first downloads agree)."""
    insert = insert_for(session)
    await session.execute(
        insert(WalletPassRow)
        .values(
            brand_id=brand_id,
            member_id=member_id,
            serial_number=secrets.token_urlsafe(18),
            fingerprint=fingerprint,
            updated_s=int(now.timestamp()),
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["brand_id", "member_id"])
    )
    found = await member_pass(session, brand_id=brand_id, member_id=member_id)
    if found is None:  # pragma: no cover - the insert or a concurrent one made it
        raise LookupError("pass row vanished")
    return found


async def pass_by_serial(session: AsyncSession, serial_number: str) -> PassRef | None:
    """A pass by its serial number."""
    row = await session.scalar(select(WalletPassRow).where(WalletPassRow.serial_number == serial_number))
    return None if row is None else _ref(row)


async def record_fingerprint(session: AsyncSession, ref: PassRef, *, fingerprint: str, now_s: int) -> PassRef:
    """Store what the pass shows now; when it differs, the pass changed at ``max(now, last change + 1)`` seconds.

    The compare-and-set on the stored fingerprint makes a concurrent refresh of the same change count once.
    """
    if fingerprint == ref.fingerprint:
        return ref
    changed_s = max(now_s, ref.updated_s + 1)
    result = await session.execute(
        update(WalletPassRow)
        .where(WalletPassRow.id == ref.id, WalletPassRow.fingerprint == ref.fingerprint)
        .values(fingerprint=fingerprint, updated_s=changed_s)
    )
    if not getattr(result, "rowcount", 0):  # someone else recorded a change first: read theirs
        row = await session.get(WalletPassRow, ref.id, populate_existing=True)
        return ref if row is None else _ref(row)
    return PassRef(
        id=ref.id,
        brand_id=ref.brand_id,
        member_id=ref.member_id,
        serial_number=ref.serial_number,
        fingerprint=fingerprint,
        updated_s=changed_s,
    )


async def register(
    session: AsyncSession, *, device: str, pass_type: str, ref: PassRef, push_token: str, now: datetime
) -> bool:
    """Register ``device`` for the pass's updates (or refresh its push token); whether it is a new registration."""
    existing = await session.get(WalletRegistrationRow, (device, ref.id))
    if existing is not None:
        existing.push_token = push_token
        existing.pass_type_identifier = pass_type
        return False
    insert = insert_for(session)
    result = await session.execute(
        insert(WalletRegistrationRow)
        .values(
            device_library_identifier=device,
            pass_id=ref.id,
            pass_type_identifier=pass_type,
            brand_id=ref.brand_id,
            push_token=push_token,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["device_library_identifier", "pass_id"])
    )
    return bool(getattr(result, "rowcount", 0))


async def unregister(session: AsyncSession, *, device: str, ref: PassRef) -> bool:
    """Remove the device's registration for the pass; whether there was one."""
    result = await session.execute(
        delete(WalletRegistrationRow).where(
            WalletRegistrationRow.device_library_identifier == device, WalletRegistrationRow.pass_id == ref.id
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def device_passes(session: AsyncSession, *, device: str, pass_type: str) -> list[PassRef]:
    """The passes ``device`` is registered for under ``pass_type``."""
    rows = await session.scalars(
        select(WalletPassRow)
        .join(WalletRegistrationRow, WalletRegistrationRow.pass_id == WalletPassRow.id)
        .where(
            WalletRegistrationRow.device_library_identifier == device,
            WalletRegistrationRow.pass_type_identifier == pass_type,
        )
        .order_by(WalletPassRow.id)
    )
    return [_ref(r) for r in rows]


async def registered_passes(session: AsyncSession, *, after_id: int = 0, limit: int = 500) -> list[PassRef]:
    """Passes with at least one registered device, by id after ``after_id`` (the refresh job pages through them)."""
    registered = select(WalletRegistrationRow.pass_id).where(WalletRegistrationRow.pass_id == WalletPassRow.id)
    rows = await session.scalars(
        select(WalletPassRow)
        .where(WalletPassRow.id > after_id, registered.exists())
        .order_by(WalletPassRow.id)
        .limit(limit)
    )
    return [_ref(r) for r in rows]


async def push_tokens(session: AsyncSession, *, pass_id: int) -> list[tuple[str, str]]:
    """``(pass type, push token)`` of every device registered for the pass."""
    rows = await session.execute(
        select(WalletRegistrationRow.pass_type_identifier, WalletRegistrationRow.push_token)
        .where(WalletRegistrationRow.pass_id == pass_id)
        .order_by(WalletRegistrationRow.device_library_identifier)
    )
    return [(t, p) for t, p in rows.all()]


async def forget_member(session: AsyncSession, *, brand_id: int, member_id: int) -> None:
    """Remove the member's pass and its registrations (erasure)."""
    ref = await member_pass(session, brand_id=brand_id, member_id=member_id)
    if ref is None:
        return
    await session.execute(delete(WalletRegistrationRow).where(WalletRegistrationRow.pass_id == ref.id))
    await session.execute(
        delete(WalletPassRow).where(WalletPassRow.brand_id == brand_id, WalletPassRow.member_id == member_id)
    )


async def forget_tokens(session: AsyncSession, *, pass_id: int, tokens: list[str]) -> None:
    """Remove registrations whose push token APNs says is gone."""
    await session.execute(
        delete(WalletRegistrationRow).where(
            WalletRegistrationRow.pass_id == pass_id, WalletRegistrationRow.push_token.in_(tokens)
        )
    )
