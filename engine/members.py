"""Members: enrolment by API or implicitly on a first event, lookup by the brand's external id."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from sqlalchemy import BigInteger, Text, func, select, update
from sqlalchemy import cast as sa_cast

from engine import publishing
from engine.db import batches, one_of
from engine.errors import NotFound
from engine.events import ExternalId, check_properties
from engine.ids import BrandId, MemberId
from engine.orm import EventRow, MemberRow, OutboxRow, WebhookDeliveryRow

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database

Locale = Annotated[str, msgspec.Meta(max_length=16, pattern=r"^([a-z]{2,3}([-_][A-Za-z0-9]{2,8})*)?$")]
DisplayName = Annotated[str, msgspec.Meta(max_length=200)]


class MemberIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Enrolment or update of a member."""

    external_id: ExternalId
    display_name: DisplayName = ""
    locale: Locale = ""
    attributes: dict[str, Any] = {}


class MemberEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One of a member's events, as stored in the event log."""

    id: str
    type: str
    occurred_at: datetime
    received_at: datetime
    properties: dict[str, Any]


class Member(msgspec.Struct, frozen=True, kw_only=True):
    """A member as the domain sees it."""

    id: MemberId
    external_id: str
    display_name: str
    locale: str
    attributes: dict[str, Any]
    created_at: datetime
    tier: str | None = None
    """The computed tier (the tiers domain keeps it); ``None`` when none is computed, ``""`` when it is none."""
    facts: dict[str, Any] = {}
    """Extra values read with the member's lock (``ensure_and_lock(columns=…)``), by label."""

    @property
    def predicate_view(self) -> dict[str, Any]:
        """What ``member.<name>`` resolves against in filters: attributes plus locale, and the computed tier.

        ``member.tier`` reads the computed tier when there is one, else a ``tier`` attribute the brand wrote.
        """
        return view_of(self.locale, self.attributes, self.tier)


def view_of(locale: str, attributes: dict[str, Any], tier: str | None) -> dict[str, Any]:
    """A member's predicate view from its stored parts."""
    view: dict[str, Any] = {"locale": locale, **attributes}
    if tier is not None:
        view["tier"] = tier or None  # "": computed, and no tier
    return view


def _to_member(row: Any, labels: Sequence[str] = ()) -> Member:
    return Member(
        id=MemberId(row.id),
        external_id=row.external_id,
        display_name=row.display_name,
        locale=row.locale,
        attributes=dict(row.attributes or {}),
        created_at=row.created_at,
        tier=row.tier,
        facts={label: row._mapping[label] for label in labels},
    )


async def upsert_member(db: Database, *, brand_id: BrandId, data: MemberIn, now: datetime) -> tuple[Member, bool]:
    """Enrol a member or update the given fields; returns the member and whether it was created.

    Raises:
        ValidationError: attributes over the size limits.
    """
    check_properties(data.attributes, path="$.attributes")
    async with db.write() as session:
        query = select(MemberRow).where(MemberRow.brand_id == brand_id, MemberRow.external_id == data.external_id)
        if db.is_postgres:
            query = query.with_for_update()
        row = await session.scalar(query)
        created = row is None
        if row is None:
            from engine.member_locks import ensure_and_lock  # it imports Member from this module

            await ensure_and_lock(session, db=db, brand_id=brand_id, external_ids=[data.external_id], now=now)
            row = await session.scalar(query)
            assert row is not None
        row.display_name = data.display_name or row.display_name
        row.locale = data.locale or row.locale
        if data.attributes:
            row.attributes = {**(row.attributes or {}), **data.attributes}
        row.updated_at = now
        await session.flush()
        return _to_member(row), created


async def get_member(session: AsyncSession, *, brand_id: BrandId, external_id: str) -> Member:
    """The brand's member with ``external_id``.

    Raises:
        NotFound: no such member in this brand.
    """
    row = await session.scalar(
        select(MemberRow).where(MemberRow.brand_id == brand_id, MemberRow.external_id == external_id)
    )
    if row is None:
        raise NotFound(f"no member {external_id!r} in this brand", field="external_id")
    return _to_member(row)


async def members_by_id(session: AsyncSession, *, brand_id: BrandId, ids: list[MemberId]) -> dict[MemberId, Member]:
    """The brand's members with the given ids (missing ones are left out)."""
    if not ids:
        return {}
    found: dict[MemberId, Member] = {}
    for chunk in batches(session, ids):
        rows = await session.scalars(
            select(MemberRow).where(MemberRow.brand_id == brand_id, one_of(session, MemberRow.id, chunk, BigInteger()))
        )
        found.update((MemberId(r.id), _to_member(r)) for r in rows)
    return found


async def erase_member(session: AsyncSession, *, brand_id: BrandId, external_id: str, now: datetime) -> Member:
    """Pseudonymise a member inside the caller's transaction: identity gone, ledger kept; ``member.erased`` sent.

    The external id, display name, locale and attributes are replaced, so nothing in Questline links the
    remaining pseudonymous rows (ledger entries kept for accounting, events) back to the person.

    Raises:
        NotFound: no such member in this brand.
    """
    import secrets

    row = await session.scalar(
        select(MemberRow).where(MemberRow.brand_id == brand_id, MemberRow.external_id == external_id).with_for_update()
    )
    if row is None:
        raise NotFound(f"no member {external_id!r} in this brand", field="external_id")
    member = _to_member(row)
    pseudonym = f"erased-{secrets.token_hex(12)}"
    row.external_id = pseudonym
    row.display_name = ""
    row.locale = ""
    row.attributes = {"erased_at": now.isoformat()}
    row.tier = None
    row.updated_at = now
    await session.flush()
    # Event properties are free-form and may carry personal data: scrubbed, the events themselves kept.
    await session.execute(
        update(EventRow).where(EventRow.brand_id == brand_id, EventRow.member_id == row.id).values(properties={})
    )
    await _scrub_outbox(session, brand_id=brand_id, secrets_=(member.external_id, member.display_name), to=pseudonym)
    # Written after the scrub: the brand learns which of its ids to erase downstream, by its hash only.
    digest = hashlib.sha256(member.external_id.encode()).hexdigest()
    await publishing.publish(
        session, brand_id=brand_id, topic="member.erased", now=now,
        data={"member": pseudonym, "external_id_sha256": digest, "erased_at": now.isoformat()},
    )  # fmt: skip
    return member


def _replace(value: Any, needles: tuple[str, ...], to: str) -> Any:
    if isinstance(value, dict):
        return {k: _replace(v, needles, to) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, needles, to) for v in value]
    if isinstance(value, str) and value in needles:
        return to
    return value


async def _scrub_outbox(session: AsyncSession, *, brand_id: BrandId, secrets_: tuple[str, ...], to: str) -> None:
    """Replace the member's external id and name in webhook messages (sent or not) and answers with the pseudonym."""
    needles = tuple(n for n in secrets_ if n)
    for needle in needles:
        rows = await session.execute(
            select(OutboxRow.id, OutboxRow.payload).where(
                OutboxRow.brand_id == brand_id, sa_cast(OutboxRow.payload, Text).contains(needle, autoescape=True)
            )
        )
        for outbox_id, payload in rows.all():
            await session.execute(
                update(OutboxRow).where(OutboxRow.id == outbox_id).values(payload=_replace(payload, needles, to))
            )
        # An endpoint's answer may echo what it received: the delivery log's excerpts are scrubbed too.
        await session.execute(
            update(WebhookDeliveryRow)
            .where(
                WebhookDeliveryRow.brand_id == brand_id,
                WebhookDeliveryRow.body_excerpt.contains(needle, autoescape=True),
            )
            .values(body_excerpt=func.replace(WebhookDeliveryRow.body_excerpt, needle, to))
        )


async def member_events(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> list[MemberEvent]:
    """Every event of the member, in the order they occurred."""
    rows = await session.scalars(
        select(EventRow)
        .where(EventRow.brand_id == brand_id, EventRow.member_id == member_id)
        .order_by(EventRow.occurred_at, EventRow.id)
    )
    return [
        MemberEvent(
            id=r.event_key,
            type=r.type,
            occurred_at=r.occurred_at,
            received_at=r.received_at,
            properties=dict(r.properties),
        )
        for r in rows
    ]


async def member_views(
    session: AsyncSession, *, brand_id: BrandId, ids: set[MemberId]
) -> dict[MemberId, tuple[str, dict[str, Any]]]:
    """External id and predicate view (attributes plus locale) of the given members."""
    found: dict[MemberId, tuple[str, dict[str, Any]]] = {}
    for members in batches(session, sorted(ids)):
        rows = await session.execute(
            select(MemberRow.id, MemberRow.external_id, MemberRow.locale, MemberRow.attributes, MemberRow.tier).where(
                MemberRow.brand_id == brand_id, one_of(session, MemberRow.id, members, BigInteger())
            )
        )
        for member_id, ext, locale, attributes, tier in rows:
            found[MemberId(member_id)] = (ext, view_of(locale, dict(attributes or {}), tier))
    return found
