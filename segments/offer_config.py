"""The ``offers`` section of the program document: a list of offer definitions.

Applying it creates or replaces the listed offers. An offer left out is kept: it carries a budget already
spent and experiment results, so it is removed only explicitly (``DELETE /v1/offers/{key}``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from engine.errors import DefinitionError
from segments import offer_repository as repo
from segments.config import convert
from segments.offers import OfferDef, validate

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId

MAX_OFFERS = 200


def parse_section(data: Any, *, path: str) -> list[OfferDef]:
    """Validate an ``offers`` section (``null``: none).

    Raises:
        DefinitionError: a wrong shape, a duplicate key or an invalid offer, naming its path.
    """
    items = convert(data or [], list[OfferDef], path=path)
    if len(items) > MAX_OFFERS:
        raise DefinitionError(f"at most {MAX_OFFERS} offers", field=path)
    seen: set[str] = set()
    for index, offer in enumerate(items):
        if offer.key in seen:
            raise DefinitionError(f"offer {offer.key!r} is defined twice", field=f"{path}[{index}].key")
        seen.add(offer.key)
        validate(offer, path=f"{path}[{index}]")
    return list(items)


async def apply_section(session: AsyncSession, *, brand_id: BrandId, defs: list[OfferDef], now: datetime) -> list[str]:
    """Create or replace the listed offers; returns the changes made."""
    current = {o.spec.key: o.spec for o in await repo.load_offers(session, brand_id)}
    changes: list[str] = []
    for offer in defs:
        if current.get(offer.key) != offer:
            await repo.save_offer(session, brand_id=brand_id, offer=offer, now=now)
            changes.append(f"offer {offer.key} {'updated' if offer.key in current else 'created'}")
    return changes


async def export_section(session: AsyncSession, *, brand_id: BrandId) -> list[dict[str, Any]]:
    """The brand's offers as an ``offers`` section."""
    return [msgspec.to_builtins(o.spec) for o in await repo.load_offers(session, brand_id)]
