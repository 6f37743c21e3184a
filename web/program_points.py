"""The ``points`` section of the program document: the expiry policy and the notice days.

```yaml
points:
  expiry: {kind: rolling, months: 12}   # none | rolling | calendar | inactivity
  notice_days: [30, 7]
```

A policy change applies to lots earned after it (existing lots keep their dates).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from engine.errors import DefinitionError, ValidationError
from engine.expiry import SETTINGS_KEY, PointsPolicy, parse_policy, policy_of
from engine.settlement import store_policy
from engine.tenants import Brand, get_brand_by_id


def parse_points(data: Mapping[str, Any]) -> PointsPolicy:
    """Validate the section (raises ``DefinitionError`` naming ``$.points``)."""
    if not isinstance(data["points"], Mapping):
        raise DefinitionError("the points section is an object: expiry and notice_days", field="$.points")
    try:
        return parse_policy(data["points"])
    except ValidationError as exc:
        raise DefinitionError(exc.detail, field="$.points") from exc


async def apply_points(session: AsyncSession, brand: Brand, defs: Any, now: datetime) -> list[str]:
    """Store the policy in the caller's transaction; answers the change, if any."""
    if not await store_policy(session, brand_id=brand.id, policy=defs):
        return []
    expiry = msgspec.to_builtins(defs.expiry)
    kind = expiry.pop("kind")
    rule = f"{kind} {expiry}" if expiry else kind
    days = ", ".join(str(d) for d in defs.notice_days) or "none"
    return [f"points: expiry {rule} (new lots), notices {days} days before"]


async def export_points(session: AsyncSession, brand: Brand) -> dict[str, Any]:
    """The section as stored (nothing when the brand never set a policy)."""
    settings = (await get_brand_by_id(session, brand.id)).settings  # read again: an apply may just have changed it
    if SETTINGS_KEY not in settings:
        return {}
    return {"points": msgspec.to_builtins(policy_of(settings))}
