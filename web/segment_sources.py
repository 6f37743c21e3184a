"""What other domains offer segments as SQL (:class:`engine.grants.MemberMetric`): badges held, challenges completed.

The composition root hands these to :class:`segments.processor.Segments`; the segments package imports
neither badges nor challenges.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from badges.orm import BadgeAwardRow
from challenges.orm import CompletionRow
from engine.grants import MemberMetric


def badges_held(*, brand_id: Any, member_id: Any, arg: str) -> Any:
    """Badges the member holds (not revoked); only badge ``arg`` when given (its levels count once each)."""
    where = [
        BadgeAwardRow.brand_id == brand_id,
        BadgeAwardRow.member_id == member_id,
        BadgeAwardRow.revoked_at.is_(None),
    ]
    if arg:
        where.append(BadgeAwardRow.badge_key == arg)
    return select(func.count()).where(*where).scalar_subquery()


def challenges_completed(*, brand_id: Any, member_id: Any, arg: str) -> Any:
    """Challenge instances the member completed (``arg`` is unused)."""
    return (
        select(func.count())
        .where(CompletionRow.brand_id == brand_id, CompletionRow.member_id == member_id)
        .scalar_subquery()
    )


SOURCES: dict[str, MemberMetric] = {"badges": badges_held, "challenges_completed": challenges_completed}
