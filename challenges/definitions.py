"""Stored campaign and challenge definitions: read, compile, insert, update, archive.

Outside this module and :mod:`challenges.orm` nothing sees definition rows: they come back as
:class:`StoredCampaign` / :class:`StoredChallenge`, or compiled as :class:`challenges.models.Challenge`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select, update

from challenges.config import CampaignSpec, ChallengeSpec, build_campaign, build_challenge, decode
from challenges.orm import CampaignRow, ChallengeRow

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from sqlalchemy.ext.asyncio import AsyncSession

    from challenges.models import Campaign, Challenge
    from engine.ids import BrandId


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
