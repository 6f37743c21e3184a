"""What each domain does when a member is erased or exports their data (GDPR Art. 17, 15 and 20).

The composition root (:mod:`web.wiring`) hands these to the engine's member endpoints as typed hooks:
erasure hooks run inside the erasure transaction, export hooks each fill one section of the export.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from challenges import states as challenge_states
from challenges import views as challenges_views
from engine import members as members_repo
from engine import review
from enrollment import service as enrollment_service
from leaderboards import erase_member as erase_board_member
from notifications import feed as notifications_feed
from segments import offer_repository as offers_repo
from wallet import repository as wallet_repo
from web import exports

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.clock import Clock
    from engine.ids import MemberId
    from engine.tenants import Brand
    from web.deps import ErasureHook, ExportHook


class _ChallengesExport:
    """The challenges section of a member's data export (their challenges as of now)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def __call__(self, session: AsyncSession, brand: Brand, member_id: MemberId) -> object:
        found = await members_repo.members_by_id(session, brand_id=brand.id, ids=[member_id])
        member = found.get(member_id)
        if member is None:
            return None
        data = await challenges_views.member_data(session, brand=brand, member=member, now=self._clock.now())
        return msgspec.to_builtins(data)


async def _erase_challenges(session: AsyncSession, brand: Brand, member_id: MemberId) -> None:
    await challenge_states.forget_member(session, brand_id=brand.id, member_id=member_id)


async def _erase_enrollment(session: AsyncSession, brand: Brand, member_id: MemberId) -> None:
    await enrollment_service.forget_identity(session, brand_id=brand.id, member_id=member_id)


async def _export_enrollment(session: AsyncSession, brand: Brand, member_id: MemberId) -> object:
    return await enrollment_service.export_section(session, brand_id=brand.id, member_id=member_id)


async def _erase_wallet(session: AsyncSession, brand: Brand, member_id: MemberId) -> None:
    await wallet_repo.forget_member(session, brand_id=brand.id, member_id=member_id)


async def _erase_offer_state(session: AsyncSession, brand: Brand, member_id: MemberId) -> None:
    await offers_repo.forget_member(session, brand_id=brand.id, member_id=member_id)


async def _erase_notifications(session: AsyncSession, brand: Brand, member_id: MemberId) -> None:
    await notifications_feed.forget_member(session, brand_id=brand.id, member_id=member_id)


async def _export_notifications(session: AsyncSession, brand: Brand, member_id: MemberId) -> object:
    found = await notifications_feed.items(session, brand_id=brand.id, member_id=member_id, limit=1000)
    return msgspec.to_builtins(found)


async def _erase_held_events(session: AsyncSession, brand: Brand, member_id: MemberId) -> None:
    await review.forget_member(session, brand_id=brand.id, member_id=member_id)


class _EraseFromBoards:
    """Remove an erased member from every board: SQL totals and archives, and the Redis standings."""

    def __init__(self, redis: Redis, *, namespace: str) -> None:
        self._redis = redis
        self._namespace = namespace

    async def __call__(self, session: AsyncSession, brand: Brand, member_id: MemberId) -> None:
        await erase_board_member(
            session, self._redis, namespace=self._namespace, brand_id=brand.id, member_id=member_id
        )


def erasure_hooks(redis: Redis, *, namespace: str) -> tuple[ErasureHook, ...]:
    """Every domain's part of erasing a member, in the order they run."""
    return (
        _erase_challenges,
        _EraseFromBoards(redis, namespace=namespace),
        _erase_enrollment,
        _erase_held_events,
        _erase_wallet,
        _erase_offer_state,
        _erase_notifications,
    )


def export_hooks(clock: Clock) -> dict[str, ExportHook]:
    """Every domain's section of a member's data export, by section name."""
    return {
        "challenges": _ChallengesExport(clock),
        "enrollment": _export_enrollment,
        "points": exports.PointsExport(clock),
        "badges": exports.badges_export,
        "leaderboards": exports.leaderboards_export,
        "rewards": exports.rewards_export,
        "leagues": exports.leagues_export,
        "review": exports.review_export,
        "notifications": _export_notifications,
    }
