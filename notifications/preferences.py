"""Members' email choices, brands' controls and template overrides (storage)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import msgspec
from sqlalchemy import BigInteger, delete, select

from engine.db import batches, insert_for, one_of
from engine.errors import NotFound, ValidationError
from engine.orm import BrandRow, MemberRow
from engine.tenants import bump_config_version
from notifications.models import KINDS, SETTINGS_KEY, BrandControls, MemberChoices
from notifications.orm import NotificationChoiceRow, NotificationTemplateRow

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId

#: ``(kind, locale)`` → ``(subject, body)`` of a brand's own templates.
Overrides: TypeAlias = dict[tuple[str, str], tuple[str, str]]
#: What a template can be written for: each kind, and the daily digest.
TEMPLATE_KINDS = (*KINDS, "digest")
LOCALES = ("en", "it")
MAX_TEMPLATE_CHARS = 10_000


async def choices_of(session: AsyncSession, *, member_ids: list[int]) -> dict[int, MemberChoices]:
    """Members' stored choices (members without a row have the defaults)."""
    if not member_ids:
        return {}
    found: dict[int, MemberChoices] = {}
    for chunk in batches(session, member_ids):  # an array on PostgreSQL: one statement text, prepared once
        rows = await session.scalars(
            select(NotificationChoiceRow).where(one_of(session, NotificationChoiceRow.member_id, chunk, BigInteger()))
        )
        found.update((r.member_id, MemberChoices(email_off=list(r.email_off or []), digest=r.digest)) for r in rows)
    return found


async def choices(session: AsyncSession, *, brand_id: int, member_id: int) -> MemberChoices:
    """One member's choices."""
    row = await session.get(NotificationChoiceRow, (brand_id, member_id))
    return MemberChoices(email_off=list(row.email_off or []), digest=row.digest) if row else MemberChoices()


async def has_email(session: AsyncSession, *, brand_id: int, member_id: int) -> bool:
    """Whether the member has an email address (no address, no email)."""
    found = await session.scalar(
        select(MemberRow.email).where(MemberRow.id == member_id, MemberRow.brand_id == brand_id)
    )
    return bool(found)


async def save_choices(
    session: AsyncSession, *, brand_id: int, member_id: int, chosen: MemberChoices, now: datetime
) -> None:
    """Store a member's choices (unknown kinds are refused)."""
    unknown = sorted(set(chosen.email_off) - set(KINDS))
    if unknown:
        raise ValidationError(f"unknown notification kinds: {', '.join(unknown)}", field="email_off")
    values = {"email_off": sorted(set(chosen.email_off)), "digest": chosen.digest, "updated_at": now}
    await session.execute(
        insert_for(session)(NotificationChoiceRow)
        .values(brand_id=brand_id, member_id=member_id, **values)
        .on_conflict_do_update(index_elements=["brand_id", "member_id"], set_=values)
    )


async def unsubscribe(session: AsyncSession, *, brand_id: int, member_id: int, kind: str, now: datetime) -> None:
    """Turn one kind's email off for a member (the one-click unsubscribe); ``all`` turns every kind off."""
    if kind != "all" and kind not in KINDS:
        raise ValidationError("unknown notification kind", field="kind")
    member = await session.scalar(select(MemberRow.id).where(MemberRow.id == member_id, MemberRow.brand_id == brand_id))
    if member is None:
        raise NotFound("no such member", field="member")
    current = await choices(session, brand_id=brand_id, member_id=member_id)
    off = list(KINDS) if kind == "all" else [*current.email_off, kind]
    await save_choices(
        session, brand_id=brand_id, member_id=member_id,
        chosen=MemberChoices(email_off=off, digest=current.digest), now=now,
    )  # fmt: skip


async def save_controls(session: AsyncSession, *, brand_id: BrandId, controls: BrandControls) -> bool:
    """Store the brand's controls in its settings; answers whether they changed."""
    row = await session.get(BrandRow, brand_id, with_for_update=True)
    if row is None:
        raise NotFound("no such brand", field="brand")
    plain = msgspec.to_builtins(controls)
    if (row.settings or {}).get(SETTINGS_KEY) == plain:
        return False
    row.settings = {**(row.settings or {}), SETTINGS_KEY: plain}
    await session.flush()
    await bump_config_version(session, brand_id)
    return True


async def overrides(session: AsyncSession, *, brand_id: int) -> Overrides:
    """The brand's own templates."""
    rows = await session.scalars(select(NotificationTemplateRow).where(NotificationTemplateRow.brand_id == brand_id))
    return {(r.kind, r.locale): (r.subject, r.body) for r in rows}


async def save_override(
    session: AsyncSession, *, brand_id: int, kind: str, locale: str, subject: str, body: str, now: datetime
) -> None:
    """Store (or, with an empty body, remove) a brand's template for ``kind`` in ``locale``."""
    if kind not in TEMPLATE_KINDS:
        raise ValidationError("unknown notification kind", field="kind")
    if locale not in LOCALES:
        raise ValidationError("choose en or it", field="locale")
    if not body.strip():
        await session.execute(
            delete(NotificationTemplateRow).where(
                NotificationTemplateRow.brand_id == brand_id,
                NotificationTemplateRow.kind == kind,
                NotificationTemplateRow.locale == locale,
            )
        )
        return
    if len(body) > MAX_TEMPLATE_CHARS or not subject.strip() or len(subject) > 200:
        raise ValidationError("a subject (up to 200 characters) and a body up to 10,000 characters", field="template")
    values = {"subject": subject.strip(), "body": body, "updated_at": now}
    await session.execute(
        insert_for(session)(NotificationTemplateRow)
        .values(brand_id=brand_id, kind=kind, locale=locale, **values)
        .on_conflict_do_update(index_elements=["brand_id", "kind", "locale"], set_=values)
    )
