"""Self-enrolment: pending joins (double opt-in), members by email, consents, magic-link throttling, erasure requests.

A join is held in Redis under the SHA-256 of a random token until the emailed link is followed: ``GETDEL``
claims it once (single use), and the expiry inside it is checked against the injected clock. A member
exists only after the confirmation; their email is normalised (trimmed, lower case) and unique per brand.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, cast

import msgspec
from sqlalchemy import select, update

from engine.db import insert_for
from engine.errors import ValidationError
from engine.ids import BrandId, MemberId
from engine.orm import MemberRow
from enrollment.orm import ConsentRow, ErasureRequestRow

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

#: How long a double opt-in link waits to be followed.
CONFIRM_LIFETIME = timedelta(hours=24)
#: How long a magic sign-in link stays valid.
MAGIC_LINK_LIFETIME = timedelta(minutes=15)
#: Sign-in links per email address, and per client address, in one window.
MAX_LINKS_PER_EMAIL = 5
MAX_LINKS_PER_CLIENT = 20
LINK_WINDOW_SECONDS = 15 * 60
#: The event type processed once per new member (earning rules and challenges can reward joining).
ENROLLED = "member.enrolled"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")

Email = Annotated[str, msgspec.Meta(max_length=320)]


class Consent(msgspec.Struct, frozen=True, kw_only=True):
    """A consent as given on the join form: what, which text version, granted or not."""

    kind: str
    version: str
    granted: bool


class PendingJoin(msgspec.Struct, frozen=True, kw_only=True):
    """What a newcomer entered, kept until the emailed link confirms it."""

    brand_id: int
    email: Email
    name: str = ""
    locale: str = ""
    joined_via: str = "web"
    referral_code: str = ""
    consents: tuple[Consent, ...] = ()
    asked_at: datetime
    expires_at: datetime


_pending_decoder = msgspec.json.Decoder(PendingJoin)


def normalise_email(value: str) -> str:
    """``value`` trimmed and lower-cased.

    Raises:
        ValidationError: not an email address.
    """
    email = value.strip().lower()
    if not _EMAIL.match(email) or ".." in email:
        raise ValidationError("enter a valid email address", field="email")
    return email


def enrolled_event_id(external_id: str) -> str:
    """The idempotency id of a member's ``member.enrolled`` event (one per member, ever)."""
    return f"{ENROLLED}:{external_id}"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _join_key(namespace: str, token: str) -> str:
    return f"{namespace}:join:pending:{_digest(token)}"


async def hold_join(redis: Redis, *, namespace: str, join: PendingJoin, now: datetime) -> str:
    """Keep ``join`` until its link is followed; returns the link's token."""
    token = secrets.token_urlsafe(32)
    seconds = max(1, int((join.expires_at - now).total_seconds()) + 60)
    await redis.set(_join_key(namespace, token), msgspec.json.encode(join), ex=seconds)
    return token


async def claim_join(redis: Redis, *, namespace: str, token: str, now: datetime) -> PendingJoin | None:
    """The join behind ``token``, claimed once (``GETDEL``); ``None`` if unknown, used or expired."""
    if not token or len(token) > 128:
        return None
    raw = await redis.getdel(_join_key(namespace, token))
    if raw is None:
        return None
    join = _pending_decoder.decode(raw)
    return join if join.expires_at > now else None


async def allow_link(redis: Redis, *, namespace: str, email: str, client: str) -> bool:
    """Count one sign-in link request; ``False`` once the email or the client asked too often in the window."""
    keys = [f"{namespace}:signin:email:{_digest(email)}", f"{namespace}:signin:client:{_digest(client)}"]
    async with redis.pipeline(transaction=True) as pipe:
        for key in keys:
            pipe.incr(key)
            pipe.expire(key, LINK_WINDOW_SECONDS, nx=True)
        email_count, _, client_count, _ = await pipe.execute()
    return int(email_count) <= MAX_LINKS_PER_EMAIL and int(client_count) <= MAX_LINKS_PER_CLIENT


async def member_by_email(session: AsyncSession, *, brand_id: BrandId, email: str) -> tuple[MemberId, str] | None:
    """The id and external id of the brand's member with ``email`` (normalised), if any."""
    row = (
        await session.execute(
            select(MemberRow.id, MemberRow.external_id).where(MemberRow.brand_id == brand_id, MemberRow.email == email)
        )
    ).first()
    return None if row is None else (MemberId(row[0]), str(row[1]))


async def enrol(session: AsyncSession, *, join: PendingJoin, now: datetime) -> tuple[MemberId, str, bool]:
    """Create the member of a confirmed join with its consents; returns id, external id, whether created.

    A second confirmation for an email that joined meanwhile returns the existing member (no new consents).
    """
    brand_id = BrandId(join.brand_id)
    existing = await member_by_email(session, brand_id=brand_id, email=join.email)
    if existing is not None:
        return existing[0], existing[1], False
    external_id = f"web-{secrets.token_hex(8)}"
    statement = (
        insert_for(session)(cast("Table", MemberRow.__table__))
        .on_conflict_do_nothing(index_elements=["brand_id", "email"])
        .returning(MemberRow.__table__.c.id)
    )
    member_id = (
        await session.execute(
            statement,
            [
                {
                    "brand_id": brand_id,
                    "external_id": external_id,
                    "display_name": join.name,
                    "locale": join.locale,
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                    "email": join.email,
                    "joined_via": join.joined_via,
                }
            ],
        )
    ).scalar()
    if member_id is None:  # a concurrent confirmation of the same email won
        existing = await member_by_email(session, brand_id=brand_id, email=join.email)
        assert existing is not None
        return existing[0], existing[1], False
    for consent in join.consents:
        session.add(
            ConsentRow(
                brand_id=brand_id,
                member_id=member_id,
                kind=consent.kind,
                version=consent.version,
                granted=consent.granted,
                source=join.joined_via,
                recorded_at=now,
            )
        )
    await session.flush()
    return MemberId(member_id), external_id, True


class ConsentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded consent (export and console)."""

    kind: str
    version: str
    granted: bool
    source: str
    recorded_at: datetime


async def consents_of(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> list[ConsentRecord]:
    """The member's recorded consents, oldest first."""
    rows = await session.scalars(
        select(ConsentRow)
        .where(ConsentRow.brand_id == brand_id, ConsentRow.member_id == member_id)
        .order_by(ConsentRow.id)
    )
    return [
        ConsentRecord(kind=r.kind, version=r.version, granted=r.granted, source=r.source, recorded_at=r.recorded_at)
        for r in rows
    ]


async def forget_identity(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> None:
    """Erasure: drop the member's email and consents (the erasure hook of this package)."""
    await session.execute(
        update(MemberRow).where(MemberRow.brand_id == brand_id, MemberRow.id == member_id).values(email=None)
    )
    for row in await session.scalars(
        select(ConsentRow).where(ConsentRow.brand_id == brand_id, ConsentRow.member_id == member_id)
    ):
        await session.delete(row)


class ErasureRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A member's pending or completed request to erase their account."""

    id: int
    member: str
    requested_at: datetime
    completed_at: datetime | None


async def request_erasure(
    session: AsyncSession, *, brand_id: BrandId, member_id: MemberId, external_id: str, now: datetime
) -> None:
    """Record the member's request to be erased (once while one is pending)."""
    pending = await session.scalar(
        select(ErasureRequestRow.id).where(
            ErasureRequestRow.brand_id == brand_id,
            ErasureRequestRow.member_id == member_id,
            ErasureRequestRow.completed_at.is_(None),
        )
    )
    if pending is None:
        session.add(
            ErasureRequestRow(brand_id=brand_id, member_id=member_id, external_id=external_id, requested_at=now)
        )
        await session.flush()


async def erasure_requests(
    session: AsyncSession, *, brand_id: BrandId, pending_only: bool = True
) -> list[ErasureRequest]:
    """The brand's erasure requests, oldest first."""
    query = select(ErasureRequestRow).where(ErasureRequestRow.brand_id == brand_id)
    if pending_only:
        query = query.where(ErasureRequestRow.completed_at.is_(None))
    rows = await session.scalars(query.order_by(ErasureRequestRow.id))
    return [
        ErasureRequest(id=r.id, member=r.external_id, requested_at=r.requested_at, completed_at=r.completed_at)
        for r in rows
    ]


async def complete_erasure(session: AsyncSession, *, brand_id: BrandId, request_id: int, now: datetime) -> str | None:
    """Mark a pending request done; returns the member's external id to erase, ``None`` if not pending."""
    row = await session.scalar(
        select(ErasureRequestRow).where(
            ErasureRequestRow.brand_id == brand_id,
            ErasureRequestRow.id == request_id,
            ErasureRequestRow.completed_at.is_(None),
        )
    )
    if row is None:
        return None
    row.completed_at = now
    external_id = row.external_id
    row.external_id = "erased"
    await session.flush()
    return external_id


async def export_section(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> dict[str, object]:
    """The member's email, where they joined and their consents (their part of the data export)."""
    row = (
        await session.execute(
            select(MemberRow.email, MemberRow.joined_via).where(
                MemberRow.brand_id == brand_id, MemberRow.id == member_id
            )
        )
    ).first()
    consents = await consents_of(session, brand_id=brand_id, member_id=member_id)
    return {
        "email": row[0] if row else None,
        "joined_via": row[1] if row else "",
        "consents": msgspec.to_builtins(consents),
    }
