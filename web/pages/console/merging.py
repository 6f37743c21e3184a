"""Console edits keep what their forms do not show: texts given per locale and a challenge's prerequisites.

The console's forms edit a definition's default-locale text and the common settings. Saving one must not
drop what the form cannot show, so the stored spec's other locales and its ``requires`` are carried over.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from challenges import definitions
from engine.ids import BrandId
from engine.texts import DEFAULT_LOCALE

TEXT_FIELDS = ("title", "description", "name")
KEPT_FIELDS = ("requires",)


def keep_unshown(edited: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """``edited`` with the stored per-locale texts (the form's text as the default locale's) and kept fields."""
    if stored is None:
        return edited
    merged = dict(edited)
    for field in TEXT_FIELDS:
        before, now = stored.get(field), edited.get(field)
        if isinstance(before, dict) and before and isinstance(now, str) and now:
            merged[field] = {**before, DEFAULT_LOCALE: now}
    for field in KEPT_FIELDS:
        if field in stored and field not in edited:
            merged[field] = stored[field]
    return merged


async def keep_stored(
    session: AsyncSession, *, brand_id: BrandId, campaign: dict[str, Any] | None, challenge: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A console campaign and challenge with what their stored definitions have that the forms do not show."""
    if campaign is not None:
        stored = await definitions.stored_campaigns(session, brand_id=brand_id, include_archived=True)
        campaign = keep_unshown(campaign, next((c.spec for c in stored if c.key == campaign.get("key")), None))
    if challenge is not None:
        kept = await definitions.stored_challenges(session, brand_id=brand_id, include_archived=True)
        challenge = keep_unshown(challenge, next((c.spec for c in kept if c.key == challenge.get("key")), None))
    return campaign, challenge
