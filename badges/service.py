"""Award services outside the event pipeline: grant, revoke, the member's shelf, hosted awards.

``grant`` is what manual grants (admin API, CLI) and leaderboard standings use; it runs inside the
caller's transaction and writes everything an award implies itself (the award row, the bonus ledger
entry, the ``badge.awarded`` outbox row). The pipeline's own awards are made by ``badges.processor``,
which emits effects instead and lets the pipeline write them.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import insert, select

from badges import repository as repo
from badges.criteria import build_shelf, external_award, instance_key
from badges.models import SOURCES, Award, AwardOut, BadgeDef, Holding, MemberBadges, Planned
from badges.openbadges import IssuerInfo, Urls, hash_identity, issuer_info, recipient_identity
from engine.effects import BadgeAwarded, Effect, Notification, PointsAwarded
from engine.errors import Conflict, NotFound, ValidationError
from engine.orm import MemberRow, OutboxRow
from engine.pipeline import outbox_row
from engine.points import post_entry
from engine.tenants import Brand, get_brand_by_id

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.grants import BadgeGranter
    from engine.ids import BrandId, MemberId


log = logging.getLogger(__name__)


def award_row(
    *,
    brand_id: BrandId,
    member_id: MemberId,
    badge_key: str,
    plan: Planned,
    source: str,
    source_ref: str,
    reason: str,
    awarded_at: datetime,
    recipient: tuple[str, str],
    event_key: str | None = None,
) -> dict[str, Any]:
    """A new award row: a fresh public uid and salt, the recipient identity hashed (never stored in clear)."""
    salt = secrets.token_hex(8)
    recipient_type, identity = recipient
    return {
        "uid": uuid.uuid4().hex,
        "brand_id": brand_id,
        "member_id": member_id,
        "badge_key": badge_key,
        "level": plan.level,
        "instance": plan.instance,
        "source": source,
        "source_ref": source_ref[:300],
        "reason": reason,
        "points": plan.points,
        "event_key": event_key,
        "awarded_at": awarded_at,
        "revoked_at": None,
        "revocation_reason": "",
        "recipient_type": recipient_type,
        "recipient_hash": hash_identity(identity, salt),
        "salt": salt,
    }


def row_to_award(row: dict[str, Any]) -> Award:
    """The :class:`Award` a freshly inserted row stands for."""
    return Award(
        uid=row["uid"],
        member_id=row["member_id"],
        badge=row["badge_key"],
        level=row["level"],
        instance=row["instance"],
        source=row["source"],
        source_ref=row["source_ref"],
        reason=row["reason"],
        points=row["points"],
        awarded_at=row["awarded_at"],
        recipient_type=row["recipient_type"],
        recipient_hash=row["recipient_hash"],
        salt=row["salt"],
        event=row["event_key"],
    )


def award_effects(badge: BadgeDef, award: Award, *, count: int, urls: Urls) -> list[Effect]:
    """What an award reports: ``BadgeAwarded``, bonus ``PointsAwarded`` if any, and the ``badge.awarded`` notification."""
    effects: list[Effect] = [
        BadgeAwarded(badge=badge.key, level=award.level, count=count, award=award.uid, source=award.source)
    ]
    if award.points > 0:
        effects.append(PointsAwarded(points=award.points, source="badge", key=badge.key))
    level = badge.level(award.level) if award.level else None
    effects.append(
        Notification(
            topic="badge.awarded",
            data={
                "badge": badge.key,
                "name": badge.name,
                "level": award.level,
                "level_name": level.name if level is not None else "",
                "count": count,
                "points": award.points,
                "source": award.source,
                "award": award.uid,
                "assertion": urls.assertion_v2(award.uid),
            },
        )
    )
    return effects


def award_out(award: Award, urls: Urls) -> AwardOut:
    """An award with its public links, as the API shows it."""
    return AwardOut(
        id=award.uid,
        level=award.level,
        source=award.source,
        reason=award.reason,
        points=award.points,
        awarded_at=award.awarded_at,
        revoked_at=award.revoked_at,
        revocation_reason=award.revocation_reason,
        assertion=urls.assertion_v2(award.uid),
        credential=urls.credential_v3(award.uid),
        baked_png=urls.baked_png(award.uid),
        baked_svg=urls.baked_svg(award.uid),
    )


class GrantOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a grant did."""

    award: Award | None
    """The new, reinstated or already existing award; ``None`` when nothing could be awarded."""
    created: bool = False
    reinstated: bool = False
    effects: list[Effect] = []
    """Already written (ledger entry, outbox row): a report, not something to write again."""


async def _member(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> tuple[str, dict[str, Any]]:
    row = (
        await session.execute(
            select(MemberRow.external_id, MemberRow.attributes).where(
                MemberRow.brand_id == brand_id, MemberRow.id == member_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"no member {member_id} in this brand", field="member")
    return row.external_id, dict(row.attributes or {})


async def _write_outbox(
    session: AsyncSession, *, brand_id: BrandId, member: str, effects: list[Effect], now: datetime
) -> None:
    rows = [
        outbox_row(brand_id=brand_id, topic=e.topic, data={"member": member, **e.data}, now=now)
        for e in effects
        if isinstance(e, Notification)
    ]
    if rows:
        await session.execute(insert(OutboxRow), rows)


async def grant(
    session: AsyncSession,
    *,
    brand: Brand,
    member_id: MemberId,
    badge_key: str,
    reason: str,
    source: str,
    source_ref: str,
    now: datetime,
    urls: Urls,
    level: str = "",
) -> GrantOutcome:
    """Award a badge inside the caller's transaction, at most once per (member, badge, level, source instance).

    A repeatable badge is awarded once per ``source:source_ref`` (a manual grant without a reference gets
    a fresh one, so each is a new award). A non-repeatable badge (or level) already awarded is not awarded
    again; when its award was revoked, a manual grant reinstates it while other sources leave it revoked.
    An inactive badge is awarded by no source but ``manual``, which is refused.

    Raises:
        NotFound: no such badge or member.
        Conflict: a manual grant of an inactive badge.
        ValidationError: an unknown source or level.
    """
    if source not in SOURCES:
        raise ValidationError(f"unknown source {source!r}; use one of {', '.join(SOURCES)}", field="source")
    badge = await repo.get_badge(session, brand_id=brand.id, key=badge_key)
    if not badge.active:
        if source == "manual":
            raise Conflict(f"badge {badge_key!r} is not active", field="badge")
        log.info("badge %s of brand %s is inactive; %s award skipped", badge_key, brand.slug, source)
        return GrantOutcome(award=None)
    external_id, attributes = await _member(session, brand_id=brand.id, member_id=member_id)
    holdings = await repo.load_holdings(session, brand_id=brand.id, member_ids=[member_id], keys=[badge_key])
    holding = holdings.get((member_id, badge_key), Holding())
    ref = source_ref or (uuid.uuid4().hex if source == "manual" else "")
    plan = external_award(badge, holding=holding, instance=instance_key(source, ref), level=level)
    if plan is None:
        return await _already_held(
            session,
            brand=brand,
            badge=badge,
            member_id=member_id,
            external_id=external_id,
            level=level,
            reason=reason,
            source=source,
            now=now,
            urls=urls,
            holding=holding,
        )
    recipient = recipient_identity(attributes=attributes, fallback=urls.recipient(brand.slug, external_id))
    row = award_row(
        brand_id=brand.id,
        member_id=member_id,
        badge_key=badge.key,
        plan=plan,
        source=source,
        source_ref=ref,
        reason=reason,
        awarded_at=now,
        recipient=recipient,
    )
    inserted = await repo.insert_awards(session, brand, [row])
    if row["uid"] not in inserted:  # a concurrent grant won the unique key: report the award it made
        existing = await repo.find_award(
            session,
            brand_id=brand.id,
            member_id=member_id,
            badge_key=badge.key,
            level=plan.level,
            instance=plan.instance,
        )
        return GrantOutcome(award=existing)
    award = row_to_award(row)
    effects = award_effects(badge, award, count=holding.live + 1 if badge.repeatable else 1, urls=urls)
    if award.points > 0:
        await post_entry(
            session,
            brand_id=brand.id,
            member_id=member_id,
            points=award.points,
            source="badge",
            key=badge.key,
            reason=reason,
            occurred_at=now,
            tz=brand.tz,
            now=now,
        )
    await _write_outbox(session, brand_id=brand.id, member=external_id, effects=effects, now=now)
    return GrantOutcome(award=award, created=True, effects=[e for e in effects if not isinstance(e, Notification)])


async def _already_held(
    session: AsyncSession,
    *,
    brand: Brand,
    badge: BadgeDef,
    member_id: MemberId,
    external_id: str,
    level: str,
    reason: str,
    source: str,
    now: datetime,
    urls: Urls,
    holding: Holding,
) -> GrantOutcome:
    target = level if level or not badge.levels else ""
    if badge.levels and not level:
        return GrantOutcome(award=None)  # every level is held already
    existing = await repo.find_award(
        session, brand_id=brand.id, member_id=member_id, badge_key=badge.key, level=target, instance=""
    )
    if existing is None or not existing.revoked or source != "manual":
        return GrantOutcome(award=existing)
    award = await repo.reinstate_award(session, uid=existing.uid, reason=reason)
    effects = award_effects(badge, award, count=holding.live + 1 if badge.repeatable else 1, urls=urls)
    notification = next(e for e in effects if isinstance(e, Notification))
    reinstated = Notification(topic=notification.topic, data={**notification.data, "points": 0, "reinstated": True})
    await _write_outbox(session, brand_id=brand.id, member=external_id, effects=[reinstated], now=now)
    return GrantOutcome(award=award, reinstated=True, effects=[effects[0]])


async def revoke(
    session: AsyncSession,
    *,
    brand: Brand,
    member_id: MemberId,
    badge_key: str,
    reason: str,
    now: datetime,
    urls: Urls,
    level: str = "",
    award: str = "",
) -> list[Award]:
    """Revoke the member's live awards of a badge (one level or one award when named), with a reason.

    The rows stay: their hosted assertions answer as revoked. Bonus points already posted stay in the
    ledger (correct them with a points adjustment if needed). Each revocation sends ``badge.revoked``.

    Raises:
        NotFound: no such badge or member, or nothing live to revoke.
    """
    badge = await repo.get_badge(session, brand_id=brand.id, key=badge_key)
    external_id, _attributes = await _member(session, brand_id=brand.id, member_id=member_id)
    revoked = await repo.revoke_awards(
        session,
        brand_id=brand.id,
        member_id=member_id,
        badge_key=badge.key,
        reason=reason,
        now=now,
        level=level,
        uid=award,
    )
    if not revoked:
        raise NotFound(f"member {external_id!r} holds no live award of badge {badge_key!r} to revoke", field="badge")
    notices: list[Effect] = [
        Notification(
            topic="badge.revoked",
            data={
                "badge": badge.key,
                "level": a.level,
                "award": a.uid,
                "reason": reason,
                "assertion": urls.assertion_v2(a.uid),
            },
        )
        for a in revoked
    ]
    await _write_outbox(session, brand_id=brand.id, member=external_id, effects=notices, now=now)
    return revoked


async def member_shelf(
    session: AsyncSession,
    *,
    brand: Brand,
    member_id: MemberId,
    external_id: str,
    urls: Urls,
    locale: str | None = None,
) -> MemberBadges:
    """The member's shelf: earned, in progress, locked (hidden ones left out), with rarity.

    Names and descriptions given per locale are in ``locale``.
    """
    badges = [badge.in_locale(locale) for badge in await repo.load_badges(session, brand.id)]
    counts = await repo.member_counts(session, brand_id=brand.id, member_id=member_id)
    awards = await repo.member_awards(session, brand_id=brand.id, member_id=member_id)
    holders, members = await repo.holders(session, brand_id=brand.id)
    return build_shelf(
        external_id,
        badges=badges,
        counts=counts,
        awards=awards,
        rarity=repo.rarity(holders, members),
        image_url=lambda badge, level: urls.image(brand.slug, badge.key, level, ext="svg"),
        award_out=lambda award: award_out(award, urls),
    )


class HostedAward(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a public Open Badges URL of one award shows."""

    brand: Brand
    issuer: IssuerInfo
    badge: BadgeDef
    award: Award


async def hosted_award(session: AsyncSession, uid: str, *, origin: str, with_image: bool = False) -> HostedAward:
    """An award by public id with its brand, issuer profile and badge.

    Raises:
        NotFound: no such award.
    """
    brand_id, award = await repo.award_by_uid(session, uid)
    brand = await get_brand_by_id(session, brand_id)
    badge = await repo.get_badge(session, brand_id=brand_id, key=award.badge, with_image=with_image)
    issuer = issuer_info(slug=brand.slug, name=brand.name, settings=brand.settings, origin=origin)
    return HostedAward(brand=brand, issuer=issuer, badge=badge, award=award)


def grant_function(urls: Urls) -> BadgeGranter:
    """The :class:`~engine.grants.BadgeGranter` other domains award badges through (wired in ``web/wiring.py``)."""

    async def badges_grant(
        session: AsyncSession,
        *,
        brand: Brand,
        member_id: MemberId,
        badge_key: str,
        reason: str,
        source: str,
        source_ref: str,
        now: datetime,
    ) -> list[Effect]:
        outcome = await grant(
            session,
            brand=brand,
            member_id=member_id,
            badge_key=badge_key,
            reason=reason,
            source=source,
            source_ref=source_ref,
            now=now,
            urls=urls,
        )
        return outcome.effects

    return badges_grant
