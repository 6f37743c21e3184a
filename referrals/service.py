"""Referrals: codes, linking a friend at join, the policy, the funnel, the review queue.

The policy lives in the brand's settings (``brand.settings["referrals"]``): which event qualifies the
friend (type plus an optional filter in the predicate language), the points each side gets, and the
monthly cap per referrer past which referrals are held for review instead of paid.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

import msgspec
from sqlalchemy import func, select, update

from engine import lots, metrics
from engine.db import insert_for
from engine.errors import ValidationError
from engine.ids import BrandId, MemberId
from engine.orm import MemberRow
from engine.predicates import Predicate, parse_predicate
from referrals.orm import FingerprintRow, ReferralCodeRow, ReferralRow

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.tenants import Brand

SETTINGS_KEY = "referrals"
#: Event properties whose values are hashed and compared between a friend and their referrer.
FINGERPRINT_PROPERTIES = ("device_id", "device_hash", "payment_token")
Status = Literal["joined", "held", "paid", "rejected"]
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class ReferralPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How referrals qualify and pay (a brand setting)."""

    event: str = "purchase"
    """The friend's event type that qualifies the referral (their first such event)."""
    filter: dict[str, Any] | None = None
    """An optional predicate on that event, e.g. ``{"field": "properties.amount", "gte": 20}``."""
    referrer_points: int = 0
    friend_points: int = 0
    monthly_cap: int = 10
    """Referrals paid to one referrer per calendar month (brand time); more are held for review."""

    @property
    def predicate(self) -> Predicate | None:
        """The parsed filter."""
        return None if self.filter is None else parse_predicate(self.filter, path="referrals.filter")


def policy_of(settings: dict[str, Any]) -> ReferralPolicy | None:
    """The brand's referral policy, ``None`` when referrals are off."""
    raw = settings.get(SETTINGS_KEY)
    if not raw:
        return None
    return msgspec.convert(raw, ReferralPolicy)


def check_policy(data: Any) -> ReferralPolicy:
    """Validate a policy document.

    Raises:
        ValidationError: a bad field or filter.
    """
    try:
        policy = msgspec.convert(data, ReferralPolicy)
    except msgspec.ValidationError as exc:
        raise ValidationError(str(exc), field="referrals") from exc
    if min(policy.referrer_points, policy.friend_points, policy.monthly_cap) < 0:
        raise ValidationError("points and cap must not be negative", field="referrals")
    _ = policy.predicate
    return policy


def digest(value: str) -> str:
    """The SHA-256 (hex) a device id or payment token is kept as."""
    return hashlib.sha256(f"questline:fingerprint:{value}".encode()).hexdigest()


async def code_for(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId, now: datetime) -> str:
    """The member's referral code, created on first use."""
    code = await session.scalar(
        select(ReferralCodeRow.code).where(ReferralCodeRow.brand_id == brand_id, ReferralCodeRow.member_id == member_id)
    )
    if code is not None:
        return code
    for _ in range(5):
        candidate = "".join(secrets.choice(_ALPHABET) for _ in range(8))
        statement = (
            insert_for(session)(cast("Table", ReferralCodeRow.__table__))
            .on_conflict_do_nothing()
            .returning(ReferralCodeRow.__table__.c.code)
        )
        row = (
            await session.execute(
                statement, [{"brand_id": brand_id, "member_id": member_id, "code": candidate, "created_at": now}]
            )
        ).scalar()
        if row is not None:
            return str(row)
        existing = await session.scalar(
            select(ReferralCodeRow.code).where(
                ReferralCodeRow.brand_id == brand_id, ReferralCodeRow.member_id == member_id
            )
        )
        if existing is not None:
            return existing
    raise AssertionError("no free referral code after 5 draws")  # pragma: no cover


async def referrer_of_code(session: AsyncSession, *, brand_id: BrandId, code: str) -> MemberId | None:
    """The member whose code is ``code`` (case-insensitive)."""
    found = await session.scalar(
        select(ReferralCodeRow.member_id).where(
            ReferralCodeRow.brand_id == brand_id, ReferralCodeRow.code == code.strip().upper()[:32]
        )
    )
    return None if found is None else MemberId(found)


async def link_friend(
    session: AsyncSession, *, brand_id: BrandId, code: str, friend_id: MemberId, friend_email: str, now: datetime
) -> str:
    """Link a newly joined friend to the owner of ``code``; returns ``linked`` or why not.

    Refused: an unknown code, the friend's own code, the referrer's own email. A friend is linked once.
    """
    referrer_id = await referrer_of_code(session, brand_id=brand_id, code=code)
    if referrer_id is None:
        return "unknown-code"
    if referrer_id == friend_id:
        return "self-referral"
    referrer_email = await session.scalar(select(MemberRow.email).where(MemberRow.id == referrer_id))
    if referrer_email and referrer_email == friend_email:
        return "self-referral"
    statement = insert_for(session)(cast("Table", ReferralRow.__table__)).on_conflict_do_nothing(
        index_elements=["brand_id", "friend_id"]
    )
    result = await session.execute(
        statement,
        [
            {
                "brand_id": brand_id,
                "referrer_id": referrer_id,
                "friend_id": friend_id,
                "status": "joined",
                "reason": "",
                "event_key": "",
                "created_at": now,
            }
        ],
    )
    return "linked" if result.rowcount else "already-linked"  # type: ignore[attr-defined]


async def remember_fingerprints(
    session: AsyncSession, *, brand_id: BrandId, member_id: MemberId, properties: dict[str, Any]
) -> list[str]:
    """Keep the hashes of the device ids and payment tokens an event carried; returns them."""
    digests = sorted(
        {digest(str(properties[name])) for name in FINGERPRINT_PROPERTIES if properties.get(name) not in (None, "")}
    )
    if digests:
        statement = insert_for(session)(cast("Table", FingerprintRow.__table__)).on_conflict_do_nothing()
        await session.execute(statement, [{"brand_id": brand_id, "member_id": member_id, "digest": d} for d in digests])
    return digests


async def shares_fingerprint(session: AsyncSession, *, brand_id: BrandId, a: MemberId, b: MemberId) -> bool:
    """Whether two members' events carried the same device id or payment token."""
    mine = select(FingerprintRow.digest).where(FingerprintRow.brand_id == brand_id, FingerprintRow.member_id == a)
    found = await session.scalar(
        select(func.count())
        .select_from(FingerprintRow)
        .where(FingerprintRow.brand_id == brand_id, FingerprintRow.member_id == b, FingerprintRow.digest.in_(mine))
    )
    return bool(found)


async def pay(
    session: AsyncSession, brand: Brand, *, referrer_id: MemberId, policy: ReferralPolicy, event_key: str,
    occurred_at: datetime, now: datetime,
) -> None:  # fmt: skip
    """Credit the referrer's points (the friend's are an effect of their qualifying event)."""
    if policy.referrer_points > 0:
        await lots.earn(
            session, brand, member_id=referrer_id, points=policy.referrer_points, source="referral",
            key="referrer", occurred_at=occurred_at, now=now, event_key=event_key, reason="a friend qualified",
        )  # fmt: skip
        metrics.count_on_commit(session, metrics.POINTS_AWARDED, brand, "referral", amount=policy.referrer_points)


class Referral(msgspec.Struct, frozen=True, kw_only=True):
    """A referral as the console lists it."""

    id: int
    referrer: str
    friend: str
    status: str
    reason: str
    created_at: datetime
    qualified_at: datetime | None


async def held(session: AsyncSession, *, brand_id: BrandId) -> list[Referral]:
    """Referrals waiting for review, oldest first."""
    referrer = MemberRow.__table__.alias("referrer")
    friend = MemberRow.__table__.alias("friend")
    rows = await session.execute(
        select(ReferralRow, referrer.c.external_id, friend.c.external_id)
        .join(referrer, referrer.c.id == ReferralRow.referrer_id)
        .join(friend, friend.c.id == ReferralRow.friend_id)
        .where(ReferralRow.brand_id == brand_id, ReferralRow.status == "held")
        .order_by(ReferralRow.id)
    )
    return [
        Referral(
            id=r.id,
            referrer=ref,
            friend=fr,
            status=r.status,
            reason=r.reason,
            created_at=r.created_at,
            qualified_at=r.qualified_at,
        )
        for r, ref, fr in rows
    ]


async def review(session: AsyncSession, brand: Brand, *, referral_id: int, approve: bool, now: datetime) -> bool:
    """Approve (pay both, exactly once) or reject a held referral; ``False`` if it was not held any more."""
    target: Status = "paid" if approve else "rejected"
    result = await session.execute(
        update(ReferralRow)
        .where(ReferralRow.brand_id == brand.id, ReferralRow.id == referral_id, ReferralRow.status == "held")
        .values(status=target, paid_at=now if approve else None)
        .returning(ReferralRow.referrer_id, ReferralRow.friend_id, ReferralRow.event_key)
    )
    row = result.first()
    if row is None:
        return False
    policy = policy_of(brand.settings)
    if approve and policy is not None:
        referrer_id, friend_id, event_key = MemberId(row[0]), MemberId(row[1]), str(row[2])
        await pay(session, brand, referrer_id=referrer_id, policy=policy, event_key=event_key, occurred_at=now, now=now)
        if policy.friend_points > 0:
            await lots.earn(
                session, brand, member_id=friend_id, points=policy.friend_points, source="referral", key="friend",
                occurred_at=now, now=now, event_key=event_key, reason="referral approved",
            )  # fmt: skip
            metrics.count_on_commit(session, metrics.POINTS_AWARDED, brand, "referral", amount=policy.friend_points)
    return True


class Funnel(msgspec.Struct, frozen=True, kw_only=True):
    """Invited (members with a link), joined, qualified, paid; plus held and rejected."""

    invited: int
    joined: int
    qualified: int
    paid: int
    held: int
    rejected: int


async def funnel(session: AsyncSession, *, brand_id: BrandId, referrer_id: MemberId | None = None) -> Funnel:
    """The brand's (or one referrer's) referral funnel."""
    where = [ReferralRow.brand_id == brand_id]
    codes = select(func.count()).select_from(ReferralCodeRow).where(ReferralCodeRow.brand_id == brand_id)
    if referrer_id is not None:
        where.append(ReferralRow.referrer_id == referrer_id)
        codes = codes.where(ReferralCodeRow.member_id == referrer_id)
    rows = await session.execute(select(ReferralRow.status, func.count()).where(*where).group_by(ReferralRow.status))
    counts: dict[str, int] = {str(status): int(count) for status, count in rows}
    qualified = await session.scalar(
        select(func.count()).select_from(ReferralRow).where(*where, ReferralRow.qualified_at.is_not(None))
    )
    return Funnel(
        invited=int(await session.scalar(codes) or 0),
        joined=sum(counts.values()),
        qualified=int(qualified or 0),
        paid=counts.get("paid", 0),
        held=counts.get("held", 0),
        rejected=counts.get("rejected", 0),
    )


async def save_policy(session: AsyncSession, *, brand_id: BrandId, policy: ReferralPolicy | None) -> None:
    """Store (or with ``None`` remove) the brand's referral policy and bump its configuration version."""
    from engine.orm import BrandRow
    from engine.tenants import bump_config_version

    row = await session.get(BrandRow, brand_id, with_for_update=True)
    if row is None:
        raise ValidationError("no such brand", field="brand")
    settings = {k: v for k, v in (row.settings or {}).items() if k != SETTINGS_KEY}
    if policy is not None:
        settings[SETTINGS_KEY] = msgspec.to_builtins(policy)
    row.settings = settings
    await bump_config_version(session, brand_id)
